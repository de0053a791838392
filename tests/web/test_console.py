"""The console's foundation: sign-in and server-side sessions, CSRF on every form, security headers, friendly
errors. The real Flask app on a real encrypted home (the test client speaks HTTPS, as a browser would)."""

import re

import pytest

from appliance.web import SECURITY_HEADERS, create_app

HTTPS = "https://localhost"
SAME_SITE = {"Referer": "https://localhost/"}  # what a browser sends with a form of this site


@pytest.fixture
def app(home):
    home.users().add("ana", "analyst", "analyst-password")
    return create_app(home, testing=True)


def _csrf(client, path="/signin") -> str:
    page = client.get(path, base_url=HTTPS).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _sign_in(client, user="ana", password="analyst-password"):
    return client.post("/signin", base_url=HTTPS, headers=SAME_SITE,
                       data={"user": user, "password": password, "csrf_token": _csrf(client)})


def test_health_needs_no_sign_in_and_shows_no_data(app):
    response = app.test_client().get("/healthz", base_url=HTTPS)
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_pages_need_a_sign_in_and_the_cookie_is_locked_down(app, home):
    client = app.test_client()
    assert client.get("/", base_url=HTTPS).headers["Location"].endswith("/signin")
    response = _sign_in(client)
    assert response.status_code == 302
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("__Host-session="))
    assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= {part.strip() for part in cookie.split(";")}
    page = client.get("/", base_url=HTTPS)
    assert page.status_code == 200 and "Overview" in page.get_data(as_text=True)
    stored = home.store.query("SELECT id_sha256 FROM web_sessions")
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert len(stored) == 1 and session_id not in stored[0][0]  # only its hash is kept
    assert home.store.scalar("SELECT count(*) FROM audit_log WHERE event = 'login.success'") >= 1


def test_a_wrong_password_reads_like_any_refusal_and_is_audited(app, home):
    client = app.test_client()
    response = _sign_in(client, password="not-the-password")
    assert response.status_code == 401
    assert "wrong user name or password, or the account is locked or disabled" in response.get_data(as_text=True)
    unknown = _sign_in(app.test_client(), user="nobody")
    assert unknown.get_data(as_text=True).count("wrong user name or password") == 1
    assert home.store.scalar("SELECT count(*) FROM audit_log WHERE event = 'login.failure'") == 2


def test_every_form_refuses_a_missing_or_wrong_csrf_token(app):
    client = app.test_client()
    form = {"user": "ana", "password": "analyst-password"}
    assert client.post("/signin", base_url=HTTPS, headers=SAME_SITE, data=form).status_code == 400
    assert client.post("/signin", base_url=HTTPS, headers=SAME_SITE,
                       data={**form, "csrf_token": "forged"}).status_code == 400
    token = _csrf(client)
    assert client.post("/signin", base_url=HTTPS, headers={"Referer": "https://evil.example/"},
                       data={**form, "csrf_token": token}).status_code == 400  # another site's form
    _sign_in(client)
    assert client.post("/signout", base_url=HTTPS, headers=SAME_SITE, data={}).status_code == 400
    assert client.get("/", base_url=HTTPS).status_code == 200  # the refused sign-out did nothing


def test_signing_out_in_one_place_ends_every_session_of_the_user(app):
    first, second = app.test_client(), app.test_client()
    _sign_in(first)
    _sign_in(second)
    token = _csrf(first, "/")
    assert first.post("/signout", base_url=HTTPS, headers=SAME_SITE, data={"csrf_token": token}).status_code == 302
    assert second.get("/", base_url=HTTPS).status_code == 302  # back to sign-in


def test_a_disabled_user_or_a_changed_role_ends_the_live_session_at_once(app, home):
    client = app.test_client()
    _sign_in(client)
    with home.store.transaction():
        home.users().set_role("ana", "staff")
    assert client.get("/", base_url=HTTPS).status_code == 302
    with home.store.transaction():
        home.users().add("sam", "staff", "staff-password")
    sam = app.test_client()
    _sign_in(sam, "sam", "staff-password")
    assert sam.get("/", base_url=HTTPS).status_code == 200
    with home.store.transaction():
        home.users().disable("sam")
    assert sam.get("/", base_url=HTTPS).status_code == 302
    assert home.store.scalar("SELECT count(*) FROM web_sessions WHERE user_name = 'sam'") == 0


def test_every_response_carries_the_security_headers_and_errors_show_no_internals(app):
    @app.route("/boom")
    def boom():
        raise RuntimeError("secret 13812345678")

    client = app.test_client()
    for path, code in (("/signin", 200), ("/nowhere", 404), ("/boom", 500), ("/healthz", 200)):
        response = client.get(path, base_url=HTTPS)
        assert response.status_code == code
        for header, value in SECURITY_HEADERS.items():
            assert response.headers[header] == value, (path, header)
        body = response.get_data(as_text=True)
        assert "Traceback" not in body and "13812345678" not in body and "RuntimeError" not in body
    assert "Incident" in client.get("/boom", base_url=HTTPS).get_data(as_text=True)
    assert "'unsafe-inline'" not in SECURITY_HEADERS["Content-Security-Policy"]


def test_serve_refuses_an_address_other_than_loopback(home_path, key_file, home):
    from tests.conftest import assert_one_line_error, run_cli

    home.close()
    result = run_cli("serve", "--home", home_path, "--key-file", key_file, "--host", "0.0.0.0")
    assert_one_line_error(result, "--host 0.0.0.0", "loopback addresses only")
