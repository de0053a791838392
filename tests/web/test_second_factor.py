"""The console's second factor (TOTP) for admin and compliance: enrolment with a QR code drawn on the box,
a code at every sign-in, a code accepted once, wrong codes counted towards the lockout (a right password does
not wipe the count), nothing reachable before the code, and an admin's reset from the command line."""

import json
import re

import pyotp
import pytest

from appliance.web import create_app
from tests.conftest import ADMIN_ENV, run_cli
from tests.web.test_console import HTTPS, SAME_SITE, _english, _sign_in, current_code


@pytest.fixture
def app(home):
    with home.store.transaction():
        home.users().add("cora", "compliance", "cora-password-1")
        home.users().add("sam", "staff", "sam-password-1")
    return create_app(home, testing=True)


def _password(client, user, password):
    page = client.get("/signin", base_url=HTTPS).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/signin", base_url=HTTPS, headers=SAME_SITE,
                       data={"user": user, "password": password, "csrf_token": token})


def _code(client, code):
    page = client.get("/signin/code", base_url=HTTPS).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/signin/code", base_url=HTTPS, headers=SAME_SITE, data={"code": code, "csrf_token": token})


def _events(home, event):
    return [json.loads(r[0]) for r in home.store.query("SELECT details FROM audit_log WHERE event = ? ORDER BY seq",
                                                        (event,))]


def test_first_sign_in_enrols_with_a_qr_code_and_nothing_is_reachable_before_the_code(app, home):
    client = _english(app)
    response = _password(client, "cora", "cora-password-1")
    assert response.headers["Location"].endswith("/signin/code")
    for page in ("/", "/churn", "/segments"):
        assert client.get(page, base_url=HTTPS).headers["Location"].endswith("/signin/code")
    enrol = client.get("/signin/code", base_url=HTTPS).get_data(as_text=True)
    assert 'src="data:image/svg+xml' in enrol  # drawn here, nothing fetched
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol).group(1)
    assert secret.encode() not in bytes(home.store.scalar("SELECT totp_pending FROM users WHERE name = 'cora'"))
    assert _code(client, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111").status_code == 401
    assert _code(client, pyotp.TOTP(secret).now()).headers["Location"].endswith("/")
    assert client.get("/", base_url=HTTPS).status_code == 200
    assert _events(home, "login.second_factor")[-1] == {"user": "cora", "enrolled": True}


def test_a_code_is_needed_at_every_sign_in_and_accepted_only_once(app, home):
    first = _english(app)
    _sign_in(first, "cora", "cora-password-1")  # enrols
    second = _english(app)
    assert _password(second, "cora", "cora-password-1").headers["Location"].endswith("/signin/code")
    page = second.get("/signin/code", base_url=HTTPS).get_data(as_text=True)
    assert "totp-secret" not in page  # enrolled: the key is never shown again
    code = current_code(home, "cora")
    assert _code(second, code).status_code == 302
    third = _english(app)
    _password(third, "cora", "cora-password-1")
    replayed = _code(third, code)
    assert replayed.status_code == 401 and "used already" in replayed.get_data(as_text=True)


def test_wrong_codes_lock_the_account_and_a_right_password_does_not_reset_the_count(app, home):
    _sign_in(_english(app), "cora", "cora-password-1")
    attempts, locked_out = 0, False
    for _round in range(4):
        client = _english(app)
        if locked_out or _password(client, "cora", "cora-password-1").status_code != 302:
            break
        for _ in range(2):  # two wrong codes, then the right password again
            response = _code(client, "000000")
            attempts += 1
            if response.status_code == 302:  # locked: the session is ended, back to the sign-in page
                assert response.headers["Location"].endswith("/signin")
                locked_out = True
                break
    assert locked_out and attempts == home.settings["users.max_failures"]  # 2 + 2 + 1, not 2 forever
    assert home.store.scalar("SELECT locked_until FROM users WHERE name = 'cora'") is not None
    locked = _password(_english(app), "cora", "cora-password-1")
    assert locked.status_code == 401
    assert any("second-factor" in e["reason"] for e in _events(home, "login.failure"))


def test_staff_sign_in_with_a_password_alone(app):
    client = _english(app)
    assert _password(client, "sam", "sam-password-1").headers["Location"].endswith("/")
    assert client.get("/churn", base_url=HTTPS).status_code == 200


def test_signing_out_while_the_code_is_due_ends_only_that_session(app, home):
    signed = _english(app)
    _sign_in(signed, "cora", "cora-password-1")
    stranger = _english(app)  # knows the password, not the phone
    _password(stranger, "cora", "cora-password-1")
    page = stranger.get("/signin/code", base_url=HTTPS).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    stranger.post("/signout", base_url=HTTPS, headers=SAME_SITE, data={"csrf_token": token})
    assert signed.get("/", base_url=HTTPS).status_code == 200


def test_an_admin_resets_a_lost_second_factor_from_the_command_line(app, home, home_path, key_file):
    client = _english(app)
    _sign_in(client, "cora", "cora-password-1")
    env = ADMIN_ENV | {"APPLIANCE_HOME": str(home_path), "APPLIANCE_KEY_FILE": str(key_file)}
    result = run_cli("user", "reset-second-factor", "cora", env_extra=env)
    assert result.returncode == 0, result.stderr
    assert client.get("/", base_url=HTTPS).headers["Location"].endswith("/signin")  # her sessions ended
    again = _english(app)
    _password(again, "cora", "cora-password-1")
    assert "totp-secret" in again.get("/signin/code", base_url=HTTPS).get_data(as_text=True)  # enrols anew
    assert _events(home, "user.second_factor.reset")[-1]["user"] == "cora"
