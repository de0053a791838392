"""The real console in a real headless Chromium: Debian's /usr/bin/chromium driven by Playwright
(`executable_path`; Playwright's own browser download cannot work on an air-gapped box), the app served by
waitress on loopback in a thread, on a scored home."""

import threading
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium tries to reach Google's services at start and on its own schedule.
QUIET = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@contextmanager
def serving(app):
    """The app on a free loopback port; yields its base URL."""
    import waitress.server

    server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=QUIET)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page, base: str, user: str, password: str, home=None) -> None:
    """Password, then (admin, compliance) the code an authenticator app would show: read off the enrolment
    page the first time, from the user's sealed secret after that (which needs `home`)."""
    from tests.web.test_console import current_code

    page.goto(f"{base}/signin")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("form.signin button[type=submit]")
    page.wait_for_load_state()
    if page.url.endswith("/signin/code"):
        page.fill("input[name=code]", current_code(home, user, page.content()))
        page.click("form.code button[type=submit]")
        page.wait_for_load_state()
