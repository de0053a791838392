"""Users in the console, for admins: add with a one-time password shown once, change a role, disable, reset
a password or a second factor, end sessions, revoke tokens; each ends the user's live sessions where it
should, each is audited, and the last admin cannot lock everyone out."""

import json
import re

from appliance.api_tokens import ApiTokens
from tests.web.test_console import HTTPS, SAME_SITE, _english, _sign_in
from tests.web.test_customer_view import _csrf_of


def _admin(app):
    client = _english(app)
    _sign_in(client, "admin", "admin-password-1")
    return client


def _act(client, **form):
    page = client.get("/users", base_url=HTTPS).get_data(as_text=True)
    return client.post("/users", base_url=HTTPS, headers=SAME_SITE, data={"csrf_token": _csrf_of(page)} | form)


def _last(home, event):
    return json.loads(home.store.query("SELECT details FROM audit_log WHERE event = ? ORDER BY seq DESC LIMIT 1",
                                       (event,))[0][0])


def test_an_admin_adds_a_user_whose_one_time_password_works_once_handed_over(scored):
    home, app = scored
    admin = _admin(app)
    body = _act(admin, action="add", name="wang.li", role="staff").get_data(as_text=True)
    password = re.search(r'id="one-time-password">([^<]+)<', body).group(1)
    assert password not in admin.get("/users", base_url=HTTPS).get_data(as_text=True)  # shown once
    newcomer = _english(app)
    _sign_in(newcomer, "wang.li", password)
    assert newcomer.get("/churn", base_url=HTTPS).status_code == 200
    assert _last(home, "user.add") == {"user": "wang.li", "role": "staff", "one_time_password": True}
    assert password not in json.dumps([dict(r) for r in home.store.query("SELECT * FROM audit_log")])


def test_role_change_disable_and_resets_end_the_users_live_sessions(scored):
    home, app = scored
    admin = _admin(app)
    password = "sam-password-1"
    for action, extra, event in (("role", {"role": "analyst"}, "user.role"), ("disable", {}, "user.disable"),
                                 ("enable", {}, "user.enable"), ("password", {}, "user.passwd"),
                                 ("sessions", {}, "user.sessions.end")):
        staff = _english(app)
        if action != "enable":  # a disabled user cannot sign in
            _sign_in(staff, "sam", password)
            assert staff.get("/", base_url=HTTPS).status_code == 200
        body = _act(admin, action=action, name="sam", **extra).get_data(as_text=True)
        assert _last(home, event)["user"] == "sam"
        if action == "password":
            password = re.search(r'id="one-time-password">([^<]+)<', body).group(1)
        if action != "enable":
            assert staff.get("/", base_url=HTTPS).headers["Location"].endswith("/signin"), action
        if action == "role":
            _act(admin, action="role", name="sam", role="staff")


def test_tokens_are_revoked_and_second_factors_reset_by_the_admin(scored):
    home, app = scored
    with home.store.transaction():
        token, token_id = ApiTokens(home.store).create("ana", "reporting", 30)
    admin = _admin(app)
    _act(admin, action="revoke", token_id=token_id)
    assert app.test_client().get("/api/v1/overview", base_url=HTTPS,
                                 headers={"Authorization": f"Bearer {token}"}).status_code == 401
    officer = _english(app)
    _sign_in(officer, "cora", "cora-password-1")
    assert home.second_factor().enrolled("cora")
    _act(admin, action="second_factor", name="cora")
    assert not home.second_factor().enrolled("cora")
    assert officer.get("/", base_url=HTTPS).headers["Location"].endswith("/signin")


def test_the_last_admin_is_not_disabled_or_demoted_and_only_admins_see_the_page(scored):
    home, app = scored
    admin = _admin(app)
    refused = _act(admin, action="disable", name="admin")
    assert refused.status_code == 400 and home.store.scalar("SELECT disabled FROM users WHERE name = 'admin'") == 0
    demoted = _act(admin, action="role", name="admin", role="staff")
    assert demoted.status_code == 400 and "last active admin" in demoted.get_data(as_text=True)
    for user in ("sam", "ana", "cora"):
        client = _english(app)
        _sign_in(client, user, f"{user}-password-1")
        assert client.get("/users", base_url=HTTPS).status_code == 403


def test_a_compliance_officer_added_in_the_console_changes_the_one_time_password_and_may_then_approve(scored):
    home, app = scored
    admin = _admin(app)
    body = _act(admin, action="add", name="li.na", role="compliance").get_data(as_text=True)
    handed = re.search(r'id="one-time-password">([^<]+)<', body).group(1)
    officer = _english(app)
    _sign_in(officer, "li.na", handed)
    account = officer.get("/account", base_url=HTTPS).get_data(as_text=True)
    assert 'id="one-time-notice"' in account and home.users().actor("li.na").one_time_password
    elsewhere = _english(app)
    _sign_in(elsewhere, "li.na", handed)

    def change(current, new, again=None):
        page = officer.get("/account", base_url=HTTPS).get_data(as_text=True)
        return officer.post("/account/password", base_url=HTTPS, headers=SAME_SITE,
                            data={"csrf_token": _csrf_of(page), "current": current, "new": new,
                                  "again": again or new})

    assert change("not-the-password", "her-own-password-1").status_code == 400
    assert change(handed, "her-own-password-1", "something-else-1").status_code == 400
    assert change(handed, "short").status_code == 400
    assert home.users().actor("li.na").one_time_password
    assert change(handed, "her-own-password-1").status_code == 200
    assert not home.users().actor("li.na").one_time_password
    assert officer.get("/", base_url=HTTPS).status_code == 200  # this session stays
    assert elsewhere.get("/", base_url=HTTPS).headers["Location"].endswith("/signin")  # the others end
    assert home.store.scalar("SELECT count(*) FROM audit_log WHERE event = 'login.failure' AND instr(details, "
                             "'password change') > 0") == 1
