"""Users and roles: Argon2id hashes, lockout, role checks, and every sign-in in the audit log."""

import pytest

from appliance.access import PERMISSIONS, ROLES, AccessError, SignInRefused
from tests.conftest import ADMIN, ADMIN_PASSWORD, assert_one_line_error, run_cli


def test_passwords_are_argon2id_hashes(home):
    stored = home.store.scalar("SELECT password_hash FROM users WHERE name = ?", (ADMIN,))
    assert stored.startswith("$argon2id$") and ADMIN_PASSWORD not in stored


REFUSED = "sign-in refused: wrong user name or password, or the account is locked or disabled"


def test_lockout_after_repeated_failures(home):
    users = home.users()
    users.add("ana", "analyst", "analyst-password")
    for _ in range(home.settings["users.max_failures"]):
        with pytest.raises(SignInRefused, match="wrong user name or password"):
            users.authenticate("ana", "not-the-password")
    with pytest.raises(SignInRefused) as locked:
        users.authenticate("ana", "analyst-password")  # even the right password, while locked
    assert locked.value.reason == "locked"
    users.enable("ana")
    assert users.authenticate("ana", "analyst-password").role == "analyst"


def test_refusals_read_alike_whatever_the_reason(home):
    """An unknown name, a wrong password, a locked and a disabled account give the same words; only the
    audit log knows which it was."""
    users = home.users()
    users.add("sam", "staff", "staff-password")
    users.add("lou", "staff", "staff-password")
    users.disable("sam")
    for _ in range(home.settings["users.max_failures"]):
        with pytest.raises(SignInRefused):
            users.authenticate("lou", "wrong-password")
    messages, reasons = set(), []
    for name, password in (("nobody", "x" * 12), ("sam", "staff-password"), ("lou", "staff-password"),
                           (ADMIN, "wrong-password")):
        with pytest.raises(SignInRefused) as refused:
            users.authenticate(name, password)
        messages.add(str(refused.value))
        reasons.append(refused.value.reason)
    assert messages == {REFUSED}
    assert reasons == ["unknown user", "disabled", "locked", "wrong password"]


def test_an_admin_set_password_is_one_time_for_approve_reveal_and_erase(home):
    """Four eyes that stay four: an admin who sets an officer's password cannot then act as that officer."""
    users = home.users()
    users.add("olga", "compliance", "olga-own-password")
    assert not users.authenticate("olga", "olga-own-password").one_time_password
    users.set_password("olga", "admin-chosen-1", set_by=ADMIN)
    olga = users.authenticate("olga", "admin-chosen-1")
    for permission in ("export.approve", "vault.reveal", "subject.rights"):
        with pytest.raises(AccessError, match="password an admin set; change it first"):
            olga.require(permission)
    olga.require("audit.read")  # reading stays possible
    users.set_password("olga", "olga-new-password", set_by="olga")
    users.authenticate("olga", "olga-new-password").require("export.approve")
    users.add("nick", "compliance", "admin-chosen-2", set_by=ADMIN)  # a new user's first password too
    with pytest.raises(AccessError, match="change it first"):
        users.authenticate("nick", "admin-chosen-2").require("vault.reveal")


def test_disabled_users_and_the_last_admin(home):
    users = home.users()
    users.add("sam", "staff", "staff-password")
    users.disable("sam")
    with pytest.raises(SignInRefused) as refused:
        users.authenticate("sam", "staff-password")
    assert refused.value.reason == "disabled"
    with pytest.raises(AccessError, match="last active admin"):
        users.set_role(ADMIN, "analyst")
    with pytest.raises(AccessError, match="at least 10 characters"):
        users.add("short", "staff", "short")


def test_every_role_has_something_to_do_and_staff_cannot_reach_raw_data():
    assert {role for allowed in PERMISSIONS.values() for role in allowed} == set(ROLES)
    for permission in ("vault.reveal", "subject.rights", "audit.read", "data.ingest", "keys.manage"):
        assert "staff" not in PERMISSIONS[permission]
    assert PERMISSIONS["export.request"].isdisjoint(PERMISSIONS["export.approve"])


def test_cli_roles_and_sign_in_are_audited(tmp_path, key_file):
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    run_cli("user", "add", "ana", "--role", "analyst", "--home", home,
            env_extra={**env, "APPLIANCE_NEW_USER_PASSWORD": "analyst-password"}, check=True)
    analyst = {**env, "APPLIANCE_USER": "ana", "APPLIANCE_USER_PASSWORD": "analyst-password"}
    assert_one_line_error(run_cli("rekey", "--home", home, env_extra=analyst), "needs keys.manage")
    assert_one_line_error(run_cli("user", "list", "--home", home, env_extra=analyst), "needs users.manage")
    assert_one_line_error(run_cli("rekey", "--home", home, env_extra={**analyst, "APPLIANCE_USER_PASSWORD": "nope"}),
                          "wrong user name or password")
    assert_one_line_error(run_cli("rekey", "--home", home, env_extra={**env, "APPLIANCE_USER": ""}),
                          "acts for a person")
    listing = run_cli("user", "list", "--home", home, env_extra=env, check=True).stdout
    assert "ana" in listing and "analyst" in listing
    run_cli("user", "passwd", "--home", home, env_extra={**analyst, "APPLIANCE_NEW_USER_PASSWORD": "new-password-1"},
            check=True)
    run_cli("user", "role", "ana", "compliance", "--home", home, env_extra=env, check=True)
    officer = {**analyst, "APPLIANCE_USER_PASSWORD": "new-password-1"}
    events = run_cli("audit", "list", "--home", home, env_extra=officer, check=True).stdout
    for event in ("init", "user.add", "login.success", "login.failure", "user.passwd", "user.role"):
        assert f" {event} " in events, event


def test_init_refuses_a_weak_admin_password_before_creating_anything(tmp_path, key_file):
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    assert_one_line_error(run_cli("init", "--home", home, env_extra={**env, "APPLIANCE_ADMIN_PASSWORD": "short"}),
                          "at least 10 characters")
    assert not (home / "keyring.json").exists() and not (home / "store.db").exists()
    run_cli("init", "--home", home, env_extra=env, check=True)  # and a retry works
