"""Sign-in and sign-out. The same users, Argon2id hashes, lockout and audit entries as the command line
(`Home.sign_in`); a new session id at every sign-in; sign-out ends every session of the user."""

import functools
import secrets

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for

from flask_babel import gettext as _

from appliance.errors import AccessError
from appliance.second_factor import REQUIRED_FOR
from appliance.web.sessions import COOKIE, PRE_COOKIE

blueprint = Blueprint("auth", __name__)


def signed_in(view):
    """A view for signed-in users only; the user's name and role are `request.user`, `request.role`."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if getattr(session, "user", None) is None:
            return redirect(url_for("auth.signin"))
        if session.pending:  # the password was right; the second factor is still due
            return redirect(url_for("auth.second_factor"))
        request.user, request.role = session.user, session.role
        return view(*args, **kwargs)

    return wrapper


def roles(permission: str) -> frozenset[str]:
    """The roles that hold a permission (the command line's table), for what a page offers to whom."""
    from appliance.access import PERMISSIONS

    return PERMISSIONS[permission]


def requires(permission: str):
    """A view for signed-in users whose role holds the permission (the same table as the command line);
    anyone else gets 403, whatever the menus show."""
    from appliance.access import PERMISSIONS

    def decorate(view):
        @signed_in
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if request.role not in PERMISSIONS[permission]:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


@blueprint.route("/signin", methods=["GET", "POST"])
def signin():
    error = None
    if request.method == "POST":
        home = current_app.extensions["home"]
        name = request.form.get("user", "")[:64]
        due = home.store.scalar("SELECT role FROM users WHERE name = ?", (name,)) in REQUIRED_FOR
        try:
            actor = home.sign_in(name, request.form.get("password", "")[:1024], second_factor_due=due)
        except AccessError:  # the same words whatever the reason (the audit log keeps it)
            error = _("Sign-in refused: wrong user name or password, or the account is locked or disabled.")
        else:
            pending = None
            if actor.role in REQUIRED_FOR:
                pending = "totp" if home.second_factor().enrolled(actor.name) else "enrol"
            session_id = current_app.extensions["sessions"].start(actor.name, actor.role, secrets.token_hex(20),
                                                                  pending)
            response = redirect(url_for("auth.second_factor" if pending else "overview.index"))
            response.set_cookie(COOKIE, session_id, secure=True, httponly=True, samesite="Strict", path="/")
            response.delete_cookie(PRE_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
            return response
    return render_template("auth/signin.html", error=error), (401 if error else 200)


@blueprint.route("/language", methods=["POST"])
def language():
    """Switch the console's language: for this browser, and for the signed-in user wherever they sign in."""
    from appliance.web import LANGUAGE_COOKIE, LANGUAGES

    chosen = request.form.get("language")
    if chosen not in LANGUAGES:
        abort(400)
    user = getattr(session, "user", None)
    if user:
        home = current_app.extensions["home"]
        with home.store.transaction():
            home.store.execute("UPDATE users SET language = ? WHERE name = ?", (chosen, user))
    response = redirect(request.referrer if _same_site(request.referrer) else url_for("overview.index"))
    response.set_cookie(LANGUAGE_COOKIE, chosen, secure=True, httponly=True, samesite="Strict", path="/",
                        max_age=365 * 86400)
    return response


def _same_site(target: str | None) -> bool:
    """Only back to a page of this console: never an open redirect."""
    return bool(target) and target.startswith(request.host_url)


@blueprint.route("/signin/code", methods=["GET", "POST"])
def second_factor():
    """The second factor, after the right password: a code from the authenticator app, or, the first time,
    enrolment with a QR code drawn here. Wrong codes count towards the account's lockout."""
    from appliance.second_factor import enrolment_uri, qr_data_uri

    if getattr(session, "user", None) is None:
        return redirect(url_for("auth.signin"))
    if not session.pending:
        return redirect(url_for("overview.index"))
    home, user, enrolling = current_app.extensions["home"], session.user, session.pending == "enrol"
    factor, error = home.second_factor(), None
    if request.method == "POST":
        code = request.form.get("code", "")[:16]
        with home.store.transaction():
            accepted = factor.confirm(user, code) if enrolling else factor.verify(user, code)
            if accepted:
                home.users().succeeded(user)
                home.audit.record(user, "login.second_factor", user=user, enrolled=enrolling)
            else:
                locked = home.users().failed(user)
                home.audit.record(f"unauthenticated:{user}", "login.failure", user=user,
                                  reason="wrong second-factor code" + (", now locked" if locked else ""))
        if accepted:
            current_app.extensions["sessions"].second_factor_done(session.session_id)
            return redirect(url_for("overview.index"))
        if locked:
            current_app.extensions["sessions"].end_user(user)
            response = redirect(url_for("auth.signin"))
            response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
            return response
        error = _("That code is not right, or it was used already. Wait for the next code and try again.")
    secret = qr = None
    if enrolling:
        with home.store.transaction():
            secret = factor.pending(user) or factor.begin(user)
        qr = qr_data_uri(enrolment_uri(secret, user))
    return render_template("auth/code.html", enrolling=enrolling, secret=secret, qr=qr, error=error,
                           signing_in=user), (401 if error else 200)


@blueprint.route("/signout", methods=["POST"])
def signout():
    if getattr(session, "user", None) is None:  # also a session still waiting for its second factor
        return redirect(url_for("auth.signin"))
    home, user, sessions = current_app.extensions["home"], session.user, current_app.extensions["sessions"]
    if session.pending:  # only this one: a password alone must not end the user's real sessions
        sessions.end(session.session_id)
        ended = 1
    else:
        ended = sessions.end_user(user)
    home.audit.record(user, "logout", sessions=ended)
    response = redirect(url_for("auth.signin"))
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response
