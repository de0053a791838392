"""The signed-in user's own API tokens: create one (shown once), see them, revoke one. Creating needs the full
sign-in, second factor included, so a password alone never mints a token."""

from flask import Blueprint, current_app, render_template, request

from flask_babel import gettext as _

from appliance.api_tokens import ApiTokens
from appliance.errors import AccessError
from appliance.web.auth import signed_in

blueprint = Blueprint("account", __name__)


def _page(created=None, error=None, status=200):
    tokens = ApiTokens(current_app.extensions["home"].store).list(request.user)
    return render_template("account/tokens.html", user=request.user, role=request.role, tokens=tokens,
                           created=created, error=error), status


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
