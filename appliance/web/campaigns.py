"""Retention campaigns in the console: analysts create one from the at-risk list's filters, a segment or a
tag with a random control group; staff work the treatment list (masked, with the reasons to talk about) and
record each contact's outcome; everyone who may read customers sees the effect with its interval. The
treatment list is customer-level: each page shown is in the audit log with its customers."""

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from appliance import campaigns
from appliance.access import Actor
from appliance.web.auth import requires, roles
from appliance.web.churn import BANDS, VALUE_BANDS

blueprint = Blueprint("campaigns", __name__)
PAGE = 50


def _zh() -> bool:
    return str(get_locale()).startswith("zh")


def _list(error=None, status=200, form=None):
    home = current_app.extensions["home"]
    from appliance.web.insights import tag_names

    return render_template("campaigns/list.html", user=request.user, role=request.role,
                           campaigns=campaigns.listing(home.store), error=error, form=form or {}, bands=BANDS,
                           values=tuple(VALUE_BANDS), tags=sorted(tag_names().items(), key=lambda kv: kv[1]),
                           can_create=request.role in roles("campaign.manage")), status



@blueprint.route("/campaigns")
@requires("campaign.read")
def listing():
    return _list()


def _criteria(form) -> tuple[str, dict]:
    chosen_from = form.get("chosen_from", "at_risk")
    if chosen_from not in campaigns.CHOSEN_FROM:
        raise campaigns.CampaignError("choose customers from the at-risk list, a segment or a tag")
    criteria = {}
    if chosen_from == "at_risk":
        if form.get("band") in BANDS:
            criteria["band"] = form["band"]
        if form.get("value") in VALUE_BANDS:
            criteria["value"] = form["value"]
        if form.get("branch"):
            criteria["branch"] = form["branch"][:64]
    if form.get("segment", "").strip():
        try:
            criteria["segment"] = int(form["segment"])
        except ValueError:
            raise campaigns.CampaignError("the segment is a number") from None
    elif chosen_from == "segment":
        raise campaigns.CampaignError("say which segment")
    if chosen_from == "tag":
        if not form.get("tag"):
            raise campaigns.CampaignError("say which tag")
        criteria["tag"] = form["tag"][:64]
    return chosen_from, criteria


@blueprint.route("/campaigns", methods=["POST"])
@requires("campaign.manage")
def create():
    home = current_app.extensions["home"]
    form = request.form
    try:
        chosen_from, criteria = _criteria(form)
        try:
            share = float(form.get("control_percent", "20")) / 100
            seed = int(form["seed"]) if form.get("seed", "").strip() else None
        except ValueError:
            raise campaigns.CampaignError("the control share is a percentage and the seed a whole number") from None
        if seed is not None and not 0 <= seed < 2**31:
            raise campaigns.CampaignError("the seed is a whole number from 0 to 2147483647")
        with home.store.transaction():
            made = campaigns.create(home.store, Actor(request.user, request.role), form.get("name", "")[:200],
                                    chosen_from, criteria, share, seed)
            home.audit.record(request.user, "campaign.create", campaign=made["campaign_id"], chosen_from=chosen_from,
                              criteria=criteria, control_share=share, seed=made["seed"], members=made["members"],
                              treatment=made["treatment"], control=made["control"])
    except campaigns.CampaignError as refused:
        return _list(error=refused.message, status=400, form=form)
    return redirect(url_for("campaigns.view", campaign_id=made["campaign_id"]))


@blueprint.route("/campaigns/<campaign_id>")
@requires("campaign.read")
def view(campaign_id):
    home = current_app.extensions["home"]
    try:
        campaign = campaigns.get(home.store, campaign_id)
    except campaigns.CampaignError:
        abort(404)
    after_p, after_id = request.args.get("after_key", type=float), request.args.get("after_id", "")[:80]
    rows = campaigns.treatment_page(home.store, campaign["campaign_id"], zh=_zh(), limit=PAGE,
                                    after=(after_p, after_id) if after_p is not None and after_id else None)
    home.audit.record(request.user, "customer.read", page="campaigns.treatment", campaign=campaign["campaign_id"],
                      customers=[r["customer_id"] for r in rows])
    measured = campaigns.effect(home.store, campaign["campaign_id"])
    chart = {"kind": "lines", "x": [f"{p['days']}" for p in measured["over_time"]],
             "series": [{"name": _("treatment"), "data": [p["treatment"] for p in measured["over_time"]]},
                        {"name": _("control"), "data": [p["control"] for p in measured["over_time"]]}]}
    following = ({"after_key": rows[-1]["probability"], "after_id": rows[-1]["customer_id"]}
                 if len(rows) == PAGE else None)
    return render_template("campaigns/view.html", user=request.user, role=request.role, campaign=campaign,
                           rows=rows, effect=measured, chart=chart, following=following, outcomes=campaigns.OUTCOMES,
                           can_work=request.role in roles("campaign.work"))


@blueprint.route("/campaigns/<campaign_id>/contacts", methods=["POST"])
@requires("campaign.work")
def contact(campaign_id):
    home = current_app.extensions["home"]
    customer = request.form.get("customer_id", "")[:80]
    outcome = request.form.get("outcome", "")
    try:
        campaign = campaigns.get(home.store, campaign_id)
        with home.store.transaction():
            campaigns.record_contact(home.store, campaign["campaign_id"], customer, outcome,
                                     Actor(request.user, request.role))
            home.audit.record(request.user, "campaign.contact", campaign=campaign["campaign_id"], customer=customer,
                              outcome=outcome)
    except campaigns.CampaignError:
        abort(400)
    return redirect(url_for("campaigns.view", campaign_id=campaign["campaign_id"]) + f"#c-{customer[:12]}")
