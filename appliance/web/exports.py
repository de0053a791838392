"""Aggregated exports in the console: an analyst requests one (report, dimensions, recipient, purpose) and
sees it exactly as it would leave; a compliance officer reviews it with the reason for every suppressed cell
and approves or rejects it with a reason (never their own request; their own password and second factor);
the signed bundle is downloadable as a zip that `appliance export verify` checks anywhere. The ledger and each
recipient's privacy budget are on the list page. Every step is the library's own (`Exports`), with its audit
entries."""

import io
import zipfile

from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from appliance.errors import AccessError, ApplianceError
from appliance.exports import BUNDLE_FILES, STATUSES, ExportError
from appliance.reports import REPORTS
from appliance.web.auth import requires, roles

blueprint = Blueprint("exports", __name__)


def _actor():
    """The signed-in user as the library's actor: their role now and whether their password is their own."""
    return current_app.extensions["home"].users().actor(request.user)


def _list_page(error=None, status=200, form=None):
    home = current_app.extensions["home"]
    exports = home.exports()
    wanted = request.args.get("status") if request.args.get("status") in STATUSES else None
    policy = exports.policy
    zh = str(get_locale()).startswith("zh")
    purposes = home.purpose_policy()
    budgets = [{"recipient": r, "budget": b, "spent": exports.spent(r),
                "cells": home.store.scalar("SELECT count(*) FROM export_ledger l JOIN export_requests q ON "
                                           "q.request_id = l.request_id WHERE q.recipient = ?", (r,))}
               for r, b in policy.budgets.items()]
    reports = [{"name": name, "title": REPORTS[name].title_zh if zh else REPORTS[name].title_en,
                "dimensions": dims} for name, (dims, _measures) in policy.reports.items() if name in REPORTS]
    return render_template(
        "exports/list.html", user=request.user, role=request.role, requests=list(reversed(exports.list(wanted))),
        statuses=STATUSES, wanted=wanted, budgets=budgets, privacy=policy.privacy, reports=reports,
        dimensions=sorted({d for r in reports for d in r["dimensions"]}),
        recipients=list(policy.budgets),
        purposes=[(n, t[0] if zh else t[1]) for n, t in purposes.titles.items() if n in purposes.export_purposes],
        error=error, form=form or {}, can_request=request.role in roles("export.request")), status



@blueprint.route("/exports")
@requires("insights.read")
def listing():
    return _list_page()


@blueprint.route("/exports", methods=["POST"])
@requires("export.request")
def request_export():
    home = current_app.extensions["home"]
    form = request.form
    dims = tuple(d for d in (form.get("first", ""), form.get("second", "")) if d)[:2]
    try:
        made = home.exports().request(_actor(), form.get("report", "")[:40], dims,
                                      recipient=form.get("recipient", "")[:64], purpose=form.get("purpose", "")[:64])
    except ApplianceError as refused:
        return _list_page(error=refused.message, status=400, form=form)
    return redirect(url_for("exports.view", request_id=made["request_id"]))


def _request_or_404(request_id):
    try:
        return current_app.extensions["home"].exports().preview(_actor(), request_id[:40])
    except ExportError:
        abort(404)


@blueprint.route("/exports/<request_id>")
@requires("insights.read")
def view(request_id, error=None, status=200):
    item = _request_or_404(request_id)
    may_decide = (request.role in roles("export.approve") and item["status"] == "pending"
                  and item["requested_by"] != request.user)
    return render_template("exports/view.html", user=request.user, role=request.role, item=item, error=error,
                           may_decide=may_decide,
                           may_download=item["status"] == "approved" and request.role in
                           roles("export.approve") | roles("export.request")), status


@blueprint.route("/exports/<request_id>/approve", methods=["POST"])
@requires("export.approve")
def approve(request_id):
    home = current_app.extensions["home"]
    try:
        home.exports().approve(_actor(), request_id[:40])
    except (ApplianceError, AccessError) as refused:
        return view(request_id, error=refused.message, status=400)
    return redirect(url_for("exports.view", request_id=request_id))


@blueprint.route("/exports/<request_id>/reject", methods=["POST"])
@requires("export.approve")
def reject(request_id):
    home = current_app.extensions["home"]
    reason = " ".join(request.form.get("reason", "").split())[:500]
    try:
        home.exports().reject(_actor(), request_id[:40], reason)
    except (ApplianceError, AccessError) as refused:
        return view(request_id, error=refused.message or _("Say why."), status=400)
    return redirect(url_for("exports.view", request_id=request_id))


@blueprint.route("/exports/<request_id>/bundle.zip")
@requires("insights.read")
def bundle(request_id):
    """The approved bundle's files, from the bytes recorded at approval (the same bytes as in the outbox)."""
    home = current_app.extensions["home"]
    if request.role not in roles("export.approve") | roles("export.request"):
        abort(403)
    item = _request_or_404(request_id)
    if item["status"] != "approved":
        abort(404)
    files = dict(home.store.rows("SELECT name, content FROM export_bundles WHERE request_id = ?",
                                 (item["request_id"],)))
    if sorted(files) != sorted(BUNDLE_FILES):
        abort(404)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in BUNDLE_FILES:
            archive.writestr(f"{item['request_id']}/{name}", bytes(files[name]))
    home.audit.record(request.user, "export.download", request=item["request_id"])
    packed.seek(0)
    return send_file(packed, mimetype="application/zip", as_attachment=True,
                     download_name=f"{item['request_id']}.zip")
