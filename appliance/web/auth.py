"""Sign-in and sign-out. The same users, Argon2id hashes, lockout and audit entries as the command line
(`Home.sign_in`); a new session id at every sign-in; sign-out ends every session of the user."""

import functools
import secrets

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for

from flask_babel import gettext as _

from appliance.errors import AccessError
from appliance.web.sessions import COOKIE, PRE_COOKIE

blueprint = Blueprint("auth", __name__)


def signed_in(view):
    """A view for signed-in users only; the user's name and role are `request.user`, `request.role`."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if getattr(session, "user", None) is None:
            return redirect(url_for("auth.signin"))
        request.user, request.role = session.user, session.role
        return view(*args, **kwargs)

    return wrapper


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
        try:
            actor = home.sign_in(name, request.form.get("password", "")[:1024])
        except AccessError:  # the same words whatever the reason (the audit log keeps it)
            error = _("Sign-in refused: wrong user name or password, or the account is locked or disabled.")
        else:
            session_id = current_app.extensions["sessions"].start(actor.name, actor.role, secrets.token_hex(20))
            response = redirect(url_for("overview.index"))
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


@blueprint.route("/signout", methods=["POST"])
@signed_in
def signout():
    home = current_app.extensions["home"]
    ended = current_app.extensions["sessions"].end_user(request.user)
    home.audit.record(request.user, "logout", sessions=ended)
    response = redirect(url_for("auth.signin"))
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response
