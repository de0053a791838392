"""The signed-in user's own account: their password (a password an admin set is one-time: its owner changes it
here before approving, revealing or erasing), and their API tokens: create one (shown once), see them, revoke
one. Creating needs the full sign-in, second factor included, so a password alone never mints a token."""

from flask import Blueprint, current_app, render_template, request, session

from flask_babel import gettext as _

from appliance.api_tokens import ApiTokens
from appliance.access import SignInRefused
from appliance.errors import AccessError
from appliance.web.auth import signed_in

blueprint = Blueprint("account", __name__)


def _page(created=None, error=None, status=200, password_message=None, password_error=None):
    home = current_app.extensions["home"]
    tokens = ApiTokens(home.store).list(request.user)
    one_time = home.users().actor(request.user).one_time_password
    return render_template("account/tokens.html", user=request.user, role=request.role, tokens=tokens,
                           created=created, error=error, one_time=one_time, password_message=password_message,
                           password_error=password_error), status


@blueprint.route("/account/password", methods=["POST"])
@signed_in
def password():
    """A new password of one's own: the current one first (as at sign-in, a wrong one counts towards the
    lockout); every other session of the user ends."""
    home = current_app.extensions["home"]
    current, new = request.form.get("current", "")[:1024], request.form.get("new", "")[:1024]
    if new != request.form.get("again", "")[:1024]:
        return _page(password_error=_("The two new passwords differ."), status=400)
    refused = None
    with home.store.transaction():
        try:
            home.users().authenticate(request.user, current)
        except SignInRefused as wrong:
            refused = _("The current password is not right, or the account is locked.")
            home.audit.record(f"unauthenticated:{request.user}", "login.failure", user=request.user,
                              reason=f"{wrong.reason} (password change)")
    if refused is None:
        try:
            with home.store.transaction():
                home.users().set_password(request.user, new, set_by=request.user)
                home.audit.record(request.user, "user.passwd", user=request.user, one_time_password=False)
        except AccessError as weak:
            refused = weak.message
        else:
            current_app.extensions["sessions"].end_others(request.user, session.session_id)
    if refused is not None:
        return _page(password_error=refused, status=400)
    return _page(password_message=_("Your password is changed; your other sessions have ended."))


@blueprint.route("/account")
@signed_in
def tokens():
    return _page()


@blueprint.route("/account/tokens", methods=["POST"])
@signed_in
def create():
    home = current_app.extensions["home"]
    try:
        days = int(request.form.get("days", "90"))
    except ValueError:
        days = 0
    try:
        with home.store.transaction():
            token, token_id = ApiTokens(home.store).create(request.user, request.form.get("label", "")[:200], days)
            home.audit.record(request.user, "api_token.create", token=token_id, days=days)
    except AccessError:
        return _page(error=_("Give the token a label and a life of 1 to 365 days."), status=400)
    return _page(created=token)


@blueprint.route("/account/tokens/<token_id>/revoke", methods=["POST"])
@signed_in
def revoke(token_id):
    home = current_app.extensions["home"]
    with home.store.transaction():
        revoked = ApiTokens(home.store).revoke(token_id, user=request.user)
        if revoked:
            home.audit.record(request.user, "api_token.revoke", token=token_id[:16])
    return _page(status=200 if revoked else 404)
