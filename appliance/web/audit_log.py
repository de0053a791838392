"""The audit log for compliance officers: search it (who, what, when, a customer token, an export request or
a campaign), a page at a time at any size; see the chain's state with its last signed checkpoints; verify it
now; download a signed evidence pack for a period (`appliance audit verify-pack` checks it anywhere). Each
search, verification and pack is itself in the log."""

from datetime import datetime

from flask import Blueprint, Response, current_app, render_template, request

from appliance.audit import EVENTS
from appliance.web.auth import requires

blueprint = Blueprint("audit_log", __name__)
PAGE = 100


def _when(name: str) -> str | None:
    """A date or date-time from the form, as the log's UTC ISO text; None when empty or unreadable."""
    raw = request.values.get(name, "").strip()[:32]
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw).isoformat()
    except ValueError:
        return None


def _filters() -> dict:
    event = request.args.get("event", "")
    return {"actor": request.args.get("actor", "").strip()[:80] or None,
            "event": event if event in EVENTS else None,
            "ref": request.args.get("ref", "").strip()[:80] or None,
            "since": _when("from"), "until": _when("to")}


def _status(home) -> dict:
    from appliance.checkpoints import shipped

    stored = home.audit.stored_checkpoints()
    target = home.checkpoint_target()
    off_box = shipped(target) if target is not None else []
    return {"entries": home.store.scalar("SELECT max(seq) FROM audit_log") or 0,
            "stored": stored[-1] if stored else None,
            "off_box": max(off_box, key=lambda c: c.count) if off_box else None, "target": target is not None}


@blueprint.route("/audit")
@requires("audit.read")
def search(verdict=None):
    home = current_app.extensions["home"]
    filters = _filters()
    before = request.args.get("before", type=int)
    entries = home.audit.search(**filters, before=before, limit=PAGE)
    home.audit.record(request.user, "audit.search", filters={k: v for k, v in filters.items() if v}, shown=len(entries),
                      **({"ref": filters["ref"]} if filters["ref"] else {}))
    following = entries[-1]["seq"] if len(entries) == PAGE else None
    return render_template("audit/search.html", user=request.user, role=request.role, entries=entries,
                           filters=filters, raw=request.args, events=sorted(EVENTS), following=following,
                           status=_status(home), verdict=verdict)


@blueprint.route("/audit/verify", methods=["POST"])
@requires("audit.read")
def verify():
    home = current_app.extensions["home"]
    verdict = home.verify_audit()
    home.audit.record(request.user, "audit.verify", ok=verdict.ok, entries=verdict.entries)
    return search(verdict=verdict)


@blueprint.route("/audit/pack")
@requires("audit.read")
def pack():
    home = current_app.extensions["home"]
    since, until = _when("from"), _when("to")
    home.audit.record(request.user, "audit.export", since=since, until=until)
    body = home.audit.export_pack(since, until)
    name = f"audit-pack-{(since or 'start')[:10]}-{(until or 'now')[:10]}.json"
    return Response(body, mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
