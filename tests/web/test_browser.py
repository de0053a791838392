"""The console in a real headless Chromium (Debian's, through Playwright): sign-in per role, language switch,
the at-risk list's filters, a customer's reveal found in the audit log, logout in one tab ending the other,
charts drawn with no Content-Security-Policy violation. `make test` installs chromium and fonts-noto-cjk."""

import json
import os
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest

from appliance.keys import Credentials, new_key_file
from appliance.home import Home
from appliance.jobs import nightly, recorded
from appliance.web import create_app
from tests.conftest import ADMIN, ADMIN_PASSWORD, ROOT, TESTS
from tests.web.browser import CHROMIUM, chromium, serving, sign_in
from tests.web.conftest import scored_home

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make test installs it)")
SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def console(tmp_path_factory, demo_dir):
    root = tmp_path_factory.mktemp("browser")
    key = root / "keys" / "appliance.key"
    key.parent.mkdir()
    new_key_file(key)
    with Home.init(root / "home", Credentials(key_file=key), admin=ADMIN, admin_password=ADMIN_PASSWORD) as home:
        as_of = scored_home(home, demo_dir)
        with recorded(home, "nightly", TESTS):  # a second, recorded run: trends and flows have two points
            nightly(home, as_of + timedelta(30), TESTS)
        app = create_app(home, credentials=Credentials(key_file=key))
        with serving(app) as base, chromium() as browser:
            yield home, base, browser


@pytest.fixture
def browser_pages(console):
    """New pages, each in a browser context of its own (two people at two desks)."""
    _home, _base, browser = console
    contexts = []

    def make():
        context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(console):
    _home, _base, browser = console
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.violations = []
    page.on("console", lambda message: page.violations.append(message.text)
            if "Content Security Policy" in message.text or message.type == "error" else None)
    yield page
    context.close()


@pytest.mark.parametrize("user, password, menu, refused", [
    ("sam", "sam-password-1", {"Overview", "Customers at risk", "Campaigns", "Segments", "Tags", "Lifecycle"},
     "/jobs"),
    ("ana", "ana-password-1", {"Overview", "Customers at risk", "Campaigns", "Segments", "Tags", "Lifecycle",
                               "Models", "Jobs", "Exports", "Data"}, None),
    ("cora", "cora-password-1", {"Overview", "Customers at risk", "Campaigns", "Segments", "Tags", "Lifecycle",
                                 "Models", "Jobs", "Exports", "Audit log", "Policies"}, None),
    ("admin", "admin-password-1", {"Overview", "Segments", "Tags", "Lifecycle", "Models", "Jobs", "Exports",
                                   "Data", "Policies", "Users"}, "/churn"),
])
def test_each_role_sees_its_menu_and_a_403_page_for_what_it_may_not_see(console, page, user, password, menu, refused):
    home, base, _browser = console
    sign_in(page, base, user, password, home)
    assert set(page.locator("header nav a").all_inner_texts()) == menu
    for link in sorted(menu):
        page.click(f"header nav a:text-is('{link}')")
        page.wait_for_load_state()
        assert "You may not see this page" not in page.content(), link
    if refused:
        assert page.goto(f"{base}{refused}").status == 403
        assert "You may not see this page" in page.content()


def test_staff_see_their_pages_and_a_403_for_the_models(console, page):
    _home, base, _browser = console
    sign_in(page, base, "sam", "sam-password-1")
    assert page.locator("h1").inner_text() == "Overview"
    assert page.locator("nav a", has_text="Customers at risk").count() == 1
    assert page.locator("nav a", has_text="Models").count() == 0
    response = page.goto(f"{base}/models")
    assert response.status == 403 and "You may not see this page" in page.content()


def test_admin_gets_403_for_customer_level_pages(console, page):
    home, base, _browser = console
    sign_in(page, base, "admin", "admin-password-1", home)
    assert page.locator("nav a", has_text="Customers at risk").count() == 0
    assert page.goto(f"{base}/churn").status == 403


def test_a_compliance_officer_enrols_a_second_factor_from_the_qr_code_and_signs_in_with_it(console, page):
    home, base, _browser = console
    with home.store.transaction():
        home.users().add("vera", "compliance", "vera-password-1")
    page.goto(f"{base}/signin")
    page.fill("input[name=user]", "vera")
    page.fill("input[name=password]", "vera-password-1")
    page.click("form.signin button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith("/signin/code")
    assert page.evaluate("document.querySelector('img.qr').naturalWidth") > 100  # drawn, from a data: URI
    secret = page.locator("#totp-secret").inner_text()
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("form.code button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Overview"
    page.click("form.signout button[type=submit]")
    page.wait_for_load_state()
    sign_in(page, base, "vera", "vera-password-1", home)  # the second time: a code, no QR
    assert page.locator("h1").inner_text() == "Overview"


def test_switching_language_is_remembered_for_the_user(console, page):
    home, base, browser = console
    sign_in(page, base, "ana", "ana-password-1")
    page.click("form.language button[value=zh_CN]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "概览"
    other = browser.new_context(locale="en-GB").new_page()  # another browser: the user's choice follows them
    sign_in(other, base, "ana", "ana-password-1")
    assert other.locator("h1").inner_text() == "概览"
    other.click("form.language button[value=en]")
    other.wait_for_load_state()
    assert other.locator("h1").inner_text() == "Overview"
    other.context.close()


def test_filtering_the_at_risk_list_by_band(console, page):
    home, base, _browser = console
    sign_in(page, base, "sam", "sam-password-1")
    page.click("nav a:has-text('Customers at risk')")
    page.select_option("select[name=band]", "high")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    assert "band=high" in page.url
    bands = page.locator("table.list tbody tr td:nth-child(3)").all_inner_texts()
    assert bands and set(bands) == {"high"}
    shown = json.loads(home.store.query("SELECT details FROM audit_log WHERE event = 'customer.read' AND actor = "
                                        "'sam' ORDER BY seq DESC LIMIT 1")[0][0])
    assert shown["band"] == "high" and len(shown["customers"]) == len(bands)


def test_a_compliance_officer_reveals_a_field_with_a_reason_and_finds_it_in_the_audit_log(console, page):
    home, base, _browser = console
    sign_in(page, base, "cora", "cora-password-1", home)
    page.click("nav a:has-text('Customers at risk')")
    page.locator("table.list tbody tr a").first.click()
    page.wait_for_load_state()
    customer = page.url.rsplit("/", 1)[1]
    raw_name = home.vault().reveal("name", home.store.scalar("SELECT name FROM customers WHERE customer_id = ?",
                                                             (customer,)))
    assert raw_name not in page.content()
    page.check("form.reveal input[value=name]")
    page.select_option("form.reveal select[name=purpose]", "fraud_investigation")
    page.fill("form.reveal textarea[name=reason]", "AML case 2026-0457, suspicious transfers")
    page.click("form.reveal button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".revealed").inner_text() == raw_name
    entry = home.store.query("SELECT actor, details FROM audit_log WHERE event = 'vault.reveal' ORDER BY seq DESC "
                             "LIMIT 1")[0]
    details = json.loads(entry[1])
    assert entry[0] == "cora" and details["customer"] == customer and details["fields"] == ["name"]
    assert details["purpose"] == "fraud_investigation" and details["reason"].startswith("AML case 2026-0457")
    page.goto(f"{base}/customers/{customer}")
    assert raw_name not in page.content()


def test_logout_in_one_tab_ends_the_session_in_the_other(console, page):
    _home, base, _browser = console
    sign_in(page, base, "ana", "ana-password-1")
    second = page.context.new_page()
    second.goto(f"{base}/segments")
    assert second.locator("h1").inner_text() == "Segments"
    page.click("form.signout button[type=submit]")
    page.wait_for_load_state()
    second.goto(f"{base}/segments")
    assert second.url.endswith("/signin")


def test_charts_are_drawn_from_local_assets_with_no_policy_violation(console, page):
    _home, base, _browser = console
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    sign_in(page, base, "ana", "ana-password-1")
    for path, chart in (("/", "chart-risk"), ("/segments", "chart-segments"), ("/tags", "chart-overlap"),
                        ("/lifecycle", "chart-flow")):
        page.goto(f"{base}{path}")
        box = page.locator(f"[data-chart={chart}][data-drawn]")  # set by charts.js once drawn
        box.wait_for(state="visible")
        assert box.locator("svg path").count() >= 5  # drawn, not an empty frame
    assert page.violations == []
    assert all(url.startswith(base) for url in requests), [u for u in requests if not u.startswith(base)]


def test_concurrent_requests_of_one_signed_in_user_all_succeed(console):
    """Pages and their scripts load in parallel: the session's store lookup must take its turn like the page
    (it once ran outside the lock and failed now and then with a 500)."""
    import concurrent.futures
    import urllib.request

    _home, base, browser = console
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base, "ana", "ana-password-1")
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
    paths = ["/", "/segments", "/tags", "/static/charts.js", "/static/console.css", "/lifecycle"] * 10

    def fetch(path):
        request = urllib.request.Request(f"{base}{path}", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310 - our own loopback server
            return response.status

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(fetch, paths)) == {200}
    context.close()


def test_a_campaign_from_the_at_risk_list_with_a_20_percent_control_group_shows_an_interval(console, page,
                                                                                             demo_dir, tmp_path):
    import shutil

    from tests.test_campaigns import ingest_responses

    home, base, _browser = console
    sign_in(page, base, "ana", "ana-password-1")
    page.click("header nav a:text-is('Campaigns')")
    page.fill("form.campaign input[name=name]", "Q4 retention calls")
    page.select_option("form.campaign select[name=chosen_from]", "at_risk")
    page.fill("form.campaign input[name=control_percent]", "20")
    page.click("form.campaign button[type=submit]")
    page.wait_for_load_state()
    campaign_id = page.url.rsplit("/", 1)[1]
    arms = dict(home.store.query("SELECT customer_id, arm FROM campaign_members WHERE campaign_id = ?",
                                 (campaign_id,)))
    assert abs(list(arms.values()).count("control") / len(arms) - 0.2) < 0.1
    treated = sorted(c for c, a in arms.items() if a == "treatment")
    folder = tmp_path / "bank" / "data"
    folder.parent.mkdir()
    shutil.copytree(demo_dir, folder)
    ingest_responses(home, folder, campaign_id, {c: "accepted" for c in treated[::2]})
    page.reload()
    interval = page.locator("#response-interval").inner_text()
    assert "95% interval" in interval and "points" in interval
    shown = page.locator("#treatment tbody tr").count()
    assert shown == min(50, len(treated))


def test_an_export_is_requested_approved_with_its_suppressions_seen_and_the_download_verifies(console, browser_pages,
                                                                                             tmp_path):
    import zipfile

    from appliance.audit import load_public_key, verify_pack
    from appliance.exports import verify
    from appliance.home import EXPORT_PUBLIC_KEY

    home, base, _browser = console
    analyst, officer = browser_pages(), browser_pages()
    sign_in(analyst, base, "ana", "ana-password-1")
    analyst.click("header nav a:text-is('Exports')")
    analyst.select_option("form.export-request select[name=report]", "segment_profile")
    analyst.fill("form.export-request input[name=first]", "segment")
    analyst.fill("form.export-request input[name=second]", "region")
    analyst.select_option("form.export-request select[name=recipient]", "head_office")
    analyst.click("form.export-request button[type=submit]")
    analyst.wait_for_load_state()
    request_id = analyst.url.rsplit("/", 1)[1]
    assert analyst.locator("#export-status").inner_text() == "pending"
    sign_in(officer, base, "cora", "cora-password-1", home)
    officer.goto(f"{base}/exports")
    officer.click(f"a:text-is('{request_id}')")
    assert officer.locator("#suppression-reasons tr").count() == home.exports().get(request_id)["result"]["suppressed"]
    officer.click("form.approve button[type=submit]")
    officer.wait_for_load_state()
    assert officer.locator("#export-status").inner_text() == "approved"
    with officer.expect_download() as download:
        officer.click("#download-bundle")
    archive = tmp_path / "bundle.zip"
    download.value.save_as(archive)
    zipfile.ZipFile(archive).extractall(tmp_path)
    verdict = verify(tmp_path / request_id, load_public_key((home.path / EXPORT_PUBLIC_KEY).read_bytes()))
    assert verdict.ok, verdict.message
    # The officer finds the approval in the audit log and takes an evidence pack that verifies.
    officer.click("header nav a:text-is('Audit log')")
    officer.fill("#audit-filters input[name=ref]", request_id)
    officer.click("#audit-filters button[type=submit]")
    officer.wait_for_load_state()
    events = officer.locator("#audit-entries tbody tr td:nth-child(4)").all_inner_texts()
    assert {"export.request", "export.approve", "export.write", "export.download"} <= set(events)
    with officer.expect_download() as pack:
        officer.click("#download-pack")
    assert verify_pack(Path(pack.value.path()).read_bytes(), home.audit.public_key).ok


def test_a_malformed_policy_draft_shows_its_line_and_changes_nothing(console, page):
    home, base, _browser = console
    sign_in(page, base, "cora", "cora-password-1", home)
    page.click("header nav a:text-is('Policies')")
    in_force = dict(home.store.rows("SELECT name, sha256 FROM policy_state"))
    text = (home.path / "policies" / "retention.yaml").read_text()
    page.select_option("form.draft select[name=name]", "retention.yaml")
    page.fill("form.draft textarea[name=text]", text + "\n  bogus: [\n")
    page.click("form.draft button[type=submit]:not(.apply)")
    page.wait_for_load_state()
    error = page.locator("#draft-error").inner_text()
    assert "retention.yaml" in error and "line" in error
    assert dict(home.store.rows("SELECT name, sha256 FROM policy_state")) == in_force
    assert (home.path / "policies" / "retention.yaml").read_text() == text


def test_an_admin_uploads_a_file_and_watches_it_to_a_committed_batch_with_its_quarantined_row(console, page,
                                                                                               demo_dir, tmp_path):
    from tests.web.test_data_pages import BAD_DATE, upload_file

    home, base, _browser = console
    path, customers = upload_file(demo_dir, tmp_path, rows=30)
    sign_in(page, base, "admin", "admin-password-1", home)
    page.click("header nav a:text-is('Data')")
    page.select_option("#upload select[name=source]", "demo")
    page.set_input_files("#upload input[type=file]", str(path))
    page.click("#upload button[type=submit]")
    link = page.locator("#upload-progress a.batch-link")
    link.wait_for(state="visible", timeout=60_000)
    assert page.locator("#upload-progress progress").evaluate("bar => bar.value === bar.max")
    assert "29 rows loaded, 1 quarantined" in link.inner_text()
    link.click()
    page.wait_for_load_state()
    cells = page.locator("#quarantine tbody tr td").all_inner_texts()
    assert cells[0] == "customers.csv" and cells[2] and cells[3]
    assert BAD_DATE not in page.content()
    assert [p for p in (home.path / "inbox").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("language", ["en-GB", "zh-CN"])
def test_screenshots_of_the_main_pages(console, language):
    """Renders the main pages in both languages (CJK fonts present: Chinese text has real glyph widths).
    With UPDATE_SCREENSHOTS=1 they replace the ones in docs/screenshots."""
    home, base, browser = console
    context = browser.new_context(locale=language, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, base, "cora", "cora-password-1", home)
    customer = home.store.scalar("SELECT customer_id FROM customer_scores ORDER BY probability DESC LIMIT 1")
    out = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") else Path(home.path.parent / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    suffix = "zh" if language.startswith("zh") else "en"
    campaign = home.store.scalar("SELECT max(campaign_id) FROM retention_campaigns")
    export = home.store.scalar("SELECT max(request_id) FROM export_requests")
    pages = [("overview", "/"), ("churn", "/churn"), ("customer", f"/customers/{customer}"),
             ("segments", "/segments"), ("tags", "/tags"), ("lifecycle", "/lifecycle"), ("models", "/models"),
             ("audit", "/audit"), ("policies", "/policies?show=export.yaml")]
    pages += [("campaign", f"/campaigns/{campaign}")] if campaign else []
    pages += [("exports", "/exports"), ("export", f"/exports/{export}")] if export else []
    admin = browser.new_context(locale=language, viewport={"width": 1280, "height": 900}).new_page()
    sign_in(admin, base, "admin", "admin-password-1", home)
    for viewer, name, path in [(page, n, p) for n, p in pages] + [(admin, "users", "/users"), (admin, "data", "/data")]:
        viewer.goto(f"{base}{path}")
        for box in viewer.locator("[data-chart]").all():
            box.wait_for(state="visible")
        viewer.wait_for_timeout(300)
        shot = out / f"{name}-{suffix}.png"
        viewer.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    admin.context.close()
    page.goto(f"{base}/models")
    heading = page.locator("h1").inner_text()
    assert heading == ("模型" if suffix == "zh" else "Models")
    # The console's font is installed (fonts-noto-cjk): Chinese is drawn in it, not as empty boxes.
    assert page.evaluate("document.fonts.check('16px \"Noto Sans CJK SC\"', '客户流失风险')")
    context.close()
