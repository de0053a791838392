"""The overview: aggregate counts only (customers, the latest scoring's risk bands), for every signed-in role."""

from flask import Blueprint, current_app, render_template, request

from appliance.web.auth import signed_in

blueprint = Blueprint("overview", __name__)


@blueprint.route("/")
@signed_in
def index():
    store = current_app.extensions["home"].store
    latest = store.scalar("SELECT max(as_of) FROM customer_scores")
    bands = dict(store.query("SELECT risk_band, count(*) FROM customer_scores WHERE as_of = ? GROUP BY 1",
                             (latest,))) if latest else {}
    return render_template("overview/index.html", user=request.user, role=request.role,
                           customers=store.scalar("SELECT count(*) FROM customers"), as_of=latest, bands=bands)
