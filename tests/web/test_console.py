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
    """Sign in as a browser would, with the second factor when the role needs one (enrolling the first time,
    as the page asks)."""
    response = client.post("/signin", base_url=HTTPS, headers=SAME_SITE,
                           data={"user": user, "password": password, "csrf_token": _csrf(client)})
    if response.headers.get("Location", "").endswith("/signin/code"):
        response = _second_factor(client, user)
    return response


def current_code(home, user: str, page: str = "") -> str:
    """The code an authenticator app would show now: from the key the enrolment page shows, or (enrolled)
    from the sealed secret. The last accepted step is forgotten, so that tests may sign in twice a minute."""
    import pyotp

    from appliance.protect import Sealer

    shown = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    if shown:
        return pyotp.TOTP(shown.group(1)).now()
    with home.store.transaction():
        home.store.execute("UPDATE users SET totp_last_step = NULL WHERE name = ?", (user,))
    sealed = home.store.scalar("SELECT totp_sealed FROM users WHERE name = ?", (user,))
    return pyotp.TOTP(Sealer(home.keyring.vault_key).unseal("totp", user, bytes(sealed))).now()


def _second_factor(client, user):
    page = client.get("/signin/code", base_url=HTTPS).get_data(as_text=True)
    code = current_code(client.application.extensions["home"], user, page)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/signin/code", base_url=HTTPS, headers=SAME_SITE, data={"code": code, "csrf_token": token})


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


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_on_any_address_but_loopback_speaks_https_only(home_path, key_file, home):
    """`appliance serve --host 0.0.0.0`: HTTPS with the box's own certificate (made with cryptography), TLS 1.2
    or newer; plain HTTP on that port gets no page."""
    import http.client
    import os
    import signal
    import socket
    import ssl
    import subprocess
    import sys
    import time
    import warnings

    home.close()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "appliance", "serve", "--home", str(home_path), "--key-file",
                               str(key_file), "--host", "0.0.0.0", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        certificate = home_path / "tls" / "console-cert.pem"
        context = ssl.create_default_context(cafile=None)
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and answer is None:
            time.sleep(0.5)
            if not certificate.exists():
                continue
            context = ssl.create_default_context(cafile=str(certificate))
            try:
                connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=5)
                connection.request("GET", "/healthz")
                answer = connection.getresponse()
            except (ConnectionError, OSError):
                continue
        assert answer is not None and answer.status == 200, server.stderr.read1().decode() if answer is None else ""
        assert answer.getheader("Strict-Transport-Security")
        assert oct((home_path / "tls" / "console-key.pem").stat().st_mode & 0o777) == "0o600"
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(str(certificate))
        with warnings.catch_warnings():  # asking for an old version on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(ssl.SSLError):
            with socket.create_connection(("localhost", port), timeout=5) as raw:
                old.wrap_socket(raw, server_hostname="localhost")
        plain = http.client.HTTPConnection("localhost", port, timeout=5)
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            plain.request("GET", "/healthz")
            assert plain.getresponse().status != 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_a_bank_certificate_that_does_not_match_its_key_is_refused_in_one_line(home_path, key_file, home, tmp_path):
    from appliance.web.tls import make_self_signed
    from tests.conftest import assert_one_line_error, run_cli

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one, two = make_self_signed(tmp_path / "one"), make_self_signed(tmp_path / "two")
    config = home_path / "config.yaml"
    config.write_text(config.read_text() + f"console.tls_certificate: {one[0]}\nconsole.tls_key: {two[1]}\n")
    home.close()
    result = run_cli("serve", "--home", home_path, "--key-file", key_file, "--host", "0.0.0.0",
                     "--port", str(_free_port()))
    assert_one_line_error(result, "console.tls_key", "is not the key of console-cert.pem")


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


def test_every_state_changing_route_refuses_a_missing_or_wrong_csrf_token(app, home):
    """All POST routes of the app, found in its URL map (a new one is checked without being listed here);
    the API is exempt because it takes no cookies and changes nothing."""
    client = _english(app)
    _sign_in(client)
    posts = [rule for rule in app.url_map.iter_rules() if "POST" in rule.methods]
    assert len(posts) >= 7
    for rule in posts:
        assert not rule.rule.startswith("/api/"), rule.rule
        url = rule.rule.replace("<customer_id>", "c" * 32).replace("<token_id>", "abcd1234")
        for data in ({}, {"csrf_token": "forged"}):
            response = client.post(url, base_url=HTTPS, headers=SAME_SITE, data=data)
            assert response.status_code == 400, (rule.rule, data, response.status_code)
    assert client.get("/", base_url=HTTPS).status_code == 200  # nothing refused changed anything
