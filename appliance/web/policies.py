"""Compliance policies in the console: every policy in force with its revision (hash, when loaded) and its
history (loads, changes, refusals from the audit log); a draft, pasted or uploaded, validated with the same
parser as on load, its errors named with their line, before anything changes; an admin applies a valid draft
(written in place atomically, loaded, audited with who applied it)."""

import os
import tempfile
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, request


from appliance.errors import PolicyError
from appliance.home import POLICIES, policy_parsers
from appliance.policies import text_sha256
from appliance.web.auth import requires

blueprint = Blueprint("policies", __name__)
MAX_DRAFT = 256 * 1024


def _page(draft=None, status=200):
    home = current_app.extensions["home"]
    names = list(policy_parsers())
    state = {r["name"]: dict(r) for r in home.store.query(
        "SELECT name, sha256, loaded_at, refused_sha256, content FROM policy_state")}
    history = sorted((e for event in ("policy.apply", "policy.change", "policy.refuse", "policy.load")
                      for e in home.audit.search(event=event, limit=50)), key=lambda e: -e["seq"])
    shown = request.args.get("show") if request.args.get("show") in names else None
    return render_template("policies/list.html", user=request.user, role=request.role, names=names, state=state,
                           history=history, shown=shown, draft=draft,
                           can_apply=request.role == "admin"), status


def _draft() -> tuple[str, str]:
    """(policy file name, draft text) from the form: pasted, or an uploaded file."""
    name = request.form.get("name", "")
    if name not in policy_parsers():
        abort(400)
    upload = request.files.get("file")
    raw = upload.read(MAX_DRAFT + 1) if upload and upload.filename else request.form.get("text", "").encode("utf-8")
    if len(raw) > MAX_DRAFT:
        raise PolicyError(f"{name}: the draft is larger than {MAX_DRAFT // 1024} KiB")
    try:
        return name, raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError:
        raise PolicyError(f"{name}: the draft is not UTF-8 text") from None


def _check(name: str, text: str) -> dict:
    try:
        policy_parsers()[name](text)
    except PolicyError as refused:
        return {"name": name, "text": text, "error": refused.message, "sha256": None}
    return {"name": name, "text": text, "error": None, "sha256": text_sha256(text)}


@blueprint.route("/policies")
@requires("audit.verify")  # compliance and admin
def listing():
    return _page()


@blueprint.route("/policies/check", methods=["POST"])
@requires("audit.verify")
def check():
    try:
        name, text = _draft()
    except PolicyError as refused:
        return _page(draft={"name": request.form.get("name"), "text": "", "error": refused.message}, status=400)
    draft = _check(name, text)
    return _page(draft=draft, status=400 if draft["error"] else 200)


@blueprint.route("/policies/apply", methods=["POST"])
@requires("users.manage")  # the admin applies; the change and who made it are audited
def apply():
    home = current_app.extensions["home"]
    try:
        name, text = _draft()
    except PolicyError as refused:
        return _page(draft={"name": request.form.get("name"), "text": "", "error": refused.message}, status=400)
    draft = _check(name, text)
    if draft["error"]:
        return _page(draft=draft, status=400)
    folder = home.path / POLICIES
    old = home.store.scalar("SELECT sha256 FROM policy_state WHERE name = ?", (name,))
    handle, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(staging, folder / name)
    finally:
        Path(staging).unlink(missing_ok=True)
    home.audit.record(request.user, "policy.apply", file=name, old_sha256=old, new_sha256=draft["sha256"])
    home.policy(name, policy_parsers()[name])  # loads it now: the change is recorded as any load is
    draft["applied"] = True
    return _page(draft=draft)
