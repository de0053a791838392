"""Data in the console: upload files for a source and follow them to a committed batch; batch history; the
quarantine of a batch (file, line, column, reason, never the value).

An upload arrives in chunks of CHUNK bytes (each under the request size limit, each with the CSRF token),
appended in order to a hidden partial file in the home's inbox for that source, up to the setting
`console.upload_mib`. When the last chunk is in, the file takes its name and is ingested in the background
on a connection of its own, as the person who uploaded it (the same all-or-nothing batch and checks as the
command line); the file is removed afterwards whatever the outcome, so it lives only in the inbox and only
until it is ingested. The page follows the upload's state through /data/uploads/<id>."""

import re
import secrets
import threading
from pathlib import Path

from flask import Blueprint, abort, current_app, jsonify, render_template, request

from appliance.access import Actor
from appliance.errors import ApplianceError
from appliance.web.auth import requires

blueprint = Blueprint("data", __name__)
CHUNK = 512 * 1024
PAGE = 100
_lock = threading.Lock()


def _uploads() -> dict:
    return current_app.extensions.setdefault("uploads", {})


def _sources(home) -> list[str]:
    from appliance.mapping import available_mappings

    return sorted(available_mappings(home.sources_dir))


def _safe_name(name: str) -> str:
    """The file's own name, reduced to letters, digits, dot, dash and underscore (no folders, no hidden file)."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^\w.\-]", "_", base, flags=re.ASCII).lstrip(".")[:120]
    if not cleaned:
        raise ApplianceError("the file needs a name")
    return cleaned


@blueprint.route("/data")
@requires("data.ingest")
def overview():
    home = current_app.extensions["home"]
    batches = [dict(r) for r in home.store.query(
        "SELECT batch_id, source, started_at, finished_at, status, rows_read, rows_loaded, rows_quarantined "
        "FROM ingest_batches ORDER BY batch_id DESC LIMIT 50")]
    return render_template("data/overview.html", user=request.user, role=request.role, sources=_sources(home),
                           batches=batches, chunk=CHUNK, limit_mib=home.settings["console.upload_mib"])


@blueprint.route("/data/batches/<int:batch_id>")
@requires("quarantine.read")
def batch(batch_id):
    home = current_app.extensions["home"]
    found = home.store.query("SELECT * FROM ingest_batches WHERE batch_id = ?", (batch_id,))
    if not found:
        abort(404)
    after = request.args.get("after", type=int) or 0
    files = [dict(r) for r in home.store.query(
        "SELECT file_name, file_sha256, encoding, rows_read, rows_loaded, rows_quarantined, rows_filtered FROM "
        "ingest_files WHERE batch_id = ? ORDER BY file_name", (batch_id,))]
    rows = [dict(r) for r in home.store.query(
        "SELECT quarantine_id, file_name, line, column_name, reason FROM quarantine WHERE batch_id = ? AND "
        "quarantine_id > ? ORDER BY quarantine_id LIMIT ?", (batch_id, after, PAGE))]
    home.audit.record(request.user, "quarantine.read", batch=batch_id, rows=len(rows))
    return render_template("data/batch.html", user=request.user, role=request.role, batch=dict(found[0]),
                           files=files, rows=rows, following=rows[-1]["quarantine_id"] if len(rows) == PAGE else None)


@blueprint.route("/data/uploads", methods=["POST"])
@requires("data.ingest")
def start_upload():
    home = current_app.extensions["home"]
    asked = request.get_json(silent=True) or {}
    source, size = str(asked.get("source", ""))[:64], asked.get("size")
    limit = home.settings["console.upload_mib"] * 1024 * 1024
    try:
        name = _safe_name(str(asked.get("name", "")))
        if source not in _sources(home):
            raise ApplianceError(f"no source mapping '{source}'")
        if not isinstance(size, int) or not 0 < size <= limit:
            raise ApplianceError(f"{name}: a file of 1 byte to {home.settings['console.upload_mib']} MiB "
                                 "(setting console.upload_mib)")
        if home.mapping(source).file_for(name) is None:
            raise ApplianceError(f"{name}: no file entry in source mapping '{source}' matches it")
    except ApplianceError as refused:
        return jsonify({"error": refused.message}), 400
    sweep_partials(home.path)
    folder = home.path / "inbox" / source
    folder.mkdir(parents=True, exist_ok=True)
    upload_id = secrets.token_hex(8)
    partial = folder / f".upload-{upload_id}.partial"
    partial.touch(mode=0o600)
    with _lock:
        _uploads()[upload_id] = {"user": request.user, "role": request.role, "source": source, "name": name,
                                 "size": size, "received": 0, "state": "receiving", "partial": partial,
                                 "batch": None, "loaded": None, "quarantined": None, "error": None}
    return jsonify({"id": upload_id, "chunk": CHUNK})


def sweep_partials(home_path: Path, older_than: float = 24 * 3600) -> int:
    """Remove what uploads cut off by a restart or a closed browser left in the inbox (hidden `.upload-*.partial`
    files), once they are a day old; an upload in progress keeps writing to its file and so stays."""
    import time

    removed = 0
    for partial in (home_path / "inbox").glob("*/.upload-*.partial"):
        if time.time() - partial.stat().st_mtime > older_than:
            partial.unlink(missing_ok=True)
            removed += 1
    return removed


def _mine(upload_id: str) -> dict:
    upload = _uploads().get(upload_id[:16])
    if upload is None or upload["user"] != request.user:
        abort(404)
    return upload


@blueprint.route("/data/uploads/<upload_id>/chunk", methods=["POST"])
@requires("data.ingest")
def chunk(upload_id):
    upload = _mine(upload_id)
    body = request.get_data(cache=False)
    if upload["state"] != "receiving" or request.args.get("offset", type=int) != upload["received"]:
        return jsonify({"error": "chunks arrive in order, once"}), 409
    if not body or len(body) > CHUNK or upload["received"] + len(body) > upload["size"]:
        return jsonify({"error": "a chunk of the announced file, at most CHUNK bytes"}), 400
    with open(upload["partial"], "ab") as handle:
        handle.write(body)
    upload["received"] += len(body)
    return jsonify({"received": upload["received"]})


@blueprint.route("/data/uploads/<upload_id>/finish", methods=["POST"])
@requires("data.ingest")
def finish(upload_id):
    upload = _mine(upload_id)
    if upload["state"] != "receiving" or upload["received"] != upload["size"]:
        return jsonify({"error": "the file has not all arrived"}), 409
    credentials = current_app.extensions.get("credentials")
    if credentials is None:
        return jsonify({"error": "this console was started without the home's credentials; it cannot ingest"}), 503
    target = upload["partial"].with_name(upload["name"])
    if target.exists():
        return jsonify({"error": f"{upload['name']} is already waiting in the inbox"}), 409
    upload["partial"].rename(target)
    upload["state"] = "ingesting"
    home_path = current_app.extensions["home"].path
    threading.Thread(target=_ingest, args=(home_path, credentials, upload, target), daemon=True,
                     name=f"upload-{upload_id}").start()
    return jsonify({"state": upload["state"]})


def _ingest(home_path: Path, credentials, upload: dict, path: Path) -> None:
    """Ingest the uploaded file on a connection of its own; record the outcome; remove the file."""
    from appliance.home import Home

    try:
        with Home.open(home_path, credentials) as home:
            report = home.ingestor(Actor(upload["user"], upload["role"])).ingest(home.mapping(upload["source"]),
                                                                                 [path])
        upload.update(state="committed", batch=report.batch_id, loaded=report.rows_loaded,
                      quarantined=report.rows_quarantined)
    except ApplianceError as refused:
        upload.update(state="failed", error=refused.message)
    except Exception as unexpected:  # noqa: BLE001 - the page says it failed; the log names the kind, no values
        upload.update(state="failed", error=f"internal error ({type(unexpected).__name__})")
    finally:
        path.unlink(missing_ok=True)


@blueprint.route("/data/uploads/<upload_id>")
@requires("data.ingest")
def status(upload_id):
    upload = _mine(upload_id)
    return jsonify({k: upload[k] for k in ("name", "source", "size", "received", "state", "batch", "loaded",
                                           "quarantined", "error")})
