"""The console's foundation: sign-in and server-side sessions, CSRF on every form, security headers, friendly
errors. The real Flask app on a real encrypted home (the test client speaks HTTPS, as a browser would)."""

import re

import pytest

from appliance.web import SECURITY_HEADERS, create_app
from tests.conftest import DATA_DIR

HTTPS = "https://localhost"
SAME_SITE = {"Referer": "https://localhost/"}  # what a browser sends with a form of this site


@pytest.fixture
def app(home):
    home.users().add("ana", "analyst", "analyst-password")
    return create_app(home, testing=True)


def _english(app):
    """A browser that asks for English (a Chinese one, or one that asks for nothing, gets Chinese)."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    return client


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
    client = _english(app)
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
    client = _english(app)
    response = _sign_in(client, password="not-the-password")
    assert response.status_code == 401
    assert "wrong user name or password, or the account is locked or disabled" in response.get_data(as_text=True)
    unknown = _sign_in(app.test_client(), user="nobody")  # a Chinese browser
    assert "用户名或密码错误，或账户已锁定或停用" in unknown.get_data(as_text=True)
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

    client = _english(app)
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


def test_chinese_for_a_chinese_browser_switchable_and_remembered_per_user(app, home):
    client = app.test_client()
    chinese = client.get("/signin", base_url=HTTPS, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "<h1>登录</h1>" in chinese.get_data(as_text=True) and 'lang="zh-Hans-CN"' in chinese.get_data(as_text=True)
    english = app.test_client().get("/signin", base_url=HTTPS, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "<h1>Sign in</h1>" in english.get_data(as_text=True)
    assert "<h1>登录</h1>" in app.test_client().get("/signin", base_url=HTTPS).get_data(as_text=True)  # no header
    _sign_in(client)
    switched = client.post("/language", base_url=HTTPS, headers=SAME_SITE,
                           data={"language": "en", "csrf_token": _csrf(client, "/")})
    assert switched.status_code == 302 and "Overview" in client.get("/", base_url=HTTPS).get_data(as_text=True)
    assert home.store.scalar("SELECT language FROM users WHERE name = 'ana'") == "en"
    elsewhere = app.test_client()  # another browser, which asks for Chinese: the user's choice wins
    _sign_in(elsewhere)
    page = elsewhere.get("/", base_url=HTTPS, headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "<h1>Overview</h1>" in page


def test_every_string_of_the_console_has_a_chinese_translation_and_the_catalog_is_compiled():
    from io import BytesIO

    from babel.messages.extract import extract_from_dir
    from babel.messages.mofile import read_mo, write_mo
    from babel.messages.pofile import read_po

    web = DATA_DIR.parent.parent / "appliance" / "web"
    found = {message for _, _, message, *_ in extract_from_dir(
        web, [("**.py", "python"), ("templates/**.html", "jinja2")], keywords={"_": None, "_l": None, "gettext": None})}
    with open(web / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = read_po(handle)
    untranslated = sorted(m for m in found if not (catalog.get(m) and catalog.get(m).string))
    assert untranslated == [], f"strings without a zh_CN translation: {untranslated}"
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    with open(web / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo", "rb") as handle:
        committed = read_mo(handle)
    assert {m.id: m.string for m in read_mo(compiled) if m.id} == {m.id: m.string for m in committed if m.id}, \
        "messages.mo is older than messages.po: run pybabel compile -d appliance/web/translations"
