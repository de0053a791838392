"""The console: a Flask application factory with one blueprint per area (flaskr's pattern).

The app holds one open home (its keys in memory, like the scheduler) and serves it on loopback through
waitress. Security baseline on every response: a strict Content-Security-Policy (no inline script or style),
no framing, no sniffing, no referrer to other sites, no caching of pages; CSRF tokens on every form (flask-wtf); friendly
error pages with an incident id and never an exception's text. Sessions are server-side
(`appliance.web.sessions`).
"""

import secrets
import threading
import uuid

from flask import Flask, jsonify, render_template, request, session
from flask_babel import Babel, get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError, CSRFProtect

from appliance.web.sessions import STORELESS, SessionStore, StoreSessionInterface

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # flask-wtf checks the referrer of HTTPS forms; nothing leaves the site
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Strict-Transport-Security": "max-age=31536000",
}


LANGUAGES = ("zh_CN", "en")
LANGUAGE_COOKIE = "__Host-language"


def _language() -> str:
    """The signed-in user's choice, else this browser's (remembered in a cookie), else the browser's
    Accept-Language, Chinese first: zh_CN for a Chinese browser and for one that asks for neither."""
    chosen = getattr(session, "language", None) or request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return "en" if best == "en" else "zh_CN"


class _OneAtATime:
    """One home, one store connection: requests that read the store take turns with it, from the session's
    lookup to its save (SQLite's connection is not shared between threads at once). Static files, which never
    touch the store, are served beside them."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(STORELESS):
            return self.wsgi_app(environ, start_response)
        with self.lock:
            return self.wsgi_app(environ, start_response)


def create_app(home, *, testing: bool = False, credentials=None) -> Flask:
    """The console on an open home. With the home's credentials it can also start jobs in the background
    ("run now"), each on a connection of its own."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secrets.token_bytes(32), TESTING=testing, WTF_CSRF_TIME_LIMIT=3600,
                      MAX_CONTENT_LENGTH=1 << 20, SESSION_COOKIE_NAME="__Host-session")
    app.extensions["home"] = home
    app.extensions["credentials"] = credentials
    sessions = SessionStore(home, home.settings["console.idle_minutes"] * 60,
                            home.settings["console.session_hours"] * 3600)
    app.extensions["sessions"] = sessions
    app.session_interface = StoreSessionInterface(sessions)
    csrf = CSRFProtect(app)
    Babel(app, locale_selector=_language, default_translation_directories="translations")

    @app.context_processor
    def _language_in_templates():
        return {"language": str(get_locale()).replace("_", "-")}
    app.wsgi_app = _OneAtATime(app.wsgi_app)

    @app.after_request
    def _headers(response):
        response.headers.update(SECURITY_HEADERS)
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.route("/favicon.ico")
    def _favicon():  # browsers ask for it whatever the page says
        return app.send_static_file("favicon.svg")

    @app.errorhandler(CSRFError)
    def _csrf(_error):
        return render_template("errors/error.html", code=400, message=_l(
            "The form expired or did not come from this console. Reload the page and try again.")), 400

    def _error_page(code, message, incident=None):
        if request.path.startswith("/api/"):  # the API answers in JSON, errors too
            return jsonify({"error": str(message)} | ({"incident": incident} if incident else {})), code
        return render_template("errors/error.html", code=code, message=message, incident=incident), code

    for code, message in ((400, _l("The request could not be read.")), (403, _l("You may not see this page.")),
                          (404, _l("There is no such page.")), (405, _l("That is not how this page is used.")),
                          (413, _l("The request is too large."))):
        app.register_error_handler(code, lambda _e, c=code, m=message: _error_page(c, m))

    @app.errorhandler(Exception)
    def _unexpected(_error):
        incident = uuid.uuid4().hex[:12]
        app.logger.error("console incident %s on %s (%s)", incident, request.path, type(_error).__name__)
        return _error_page(500, _l("Something went wrong on our side."), incident)

    from appliance.web import (account, api, audit_log, auth, campaigns, churn, customers, data, exports, health,
                               insights, overview, policies, users)

    app.register_blueprint(health.blueprint)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(overview.blueprint)
    app.register_blueprint(churn.blueprint)
    app.register_blueprint(customers.blueprint)
    app.register_blueprint(insights.blueprint)
    app.register_blueprint(account.blueprint)
    app.register_blueprint(campaigns.blueprint)
    app.register_blueprint(exports.blueprint)
    app.register_blueprint(audit_log.blueprint)
    app.register_blueprint(users.blueprint)
    app.register_blueprint(policies.blueprint)
    app.register_blueprint(data.blueprint)
    app.register_blueprint(api.blueprint)
    csrf.exempt(api.blueprint)  # token-authenticated and read-only: no cookie for another site to ride on
    return app
