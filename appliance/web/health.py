"""`/healthz` for monitoring: whether the console and its store answer; no data, no sign-in."""

from flask import Blueprint, current_app, jsonify

blueprint = Blueprint("health", __name__)


@blueprint.route("/healthz")
def healthz():
    current_app.extensions["home"].store.scalar("SELECT 1")
    return jsonify(status="ok")
