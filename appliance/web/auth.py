"""Sign-in and sign-out. The same users, Argon2id hashes, lockout and audit entries as the command line
(`Home.sign_in`); a new session id at every sign-in; sign-out ends every session of the user."""

import functools
import secrets

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

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


@blueprint.route("/signin", methods=["GET", "POST"])
def signin():
    error = None
    if request.method == "POST":
        home = current_app.extensions["home"]
        name = request.form.get("user", "")[:64]
        try:
            actor = home.sign_in(name, request.form.get("password", "")[:1024])
        except AccessError as refused:
            error = refused.message  # the same words whatever the reason (the audit log keeps it)
        else:
            session_id = current_app.extensions["sessions"].start(actor.name, actor.role, secrets.token_hex(20))
            response = redirect(url_for("overview.index"))
            response.set_cookie(COOKIE, session_id, secure=True, httponly=True, samesite="Strict", path="/")
            response.delete_cookie(PRE_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
            return response
    return render_template("auth/signin.html", error=error), (401 if error else 200)


@blueprint.route("/signout", methods=["POST"])
@signed_in
def signout():
    home = current_app.extensions["home"]
    ended = current_app.extensions["sessions"].end_user(request.user)
    home.audit.record(request.user, "logout", sessions=ended)
    response = redirect(url_for("auth.signin"))
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response
