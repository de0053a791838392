"""Exports: the only way insights leave the box, as aggregates that the export policy allows, that a
compliance officer other than the requester approved, in a bundle the receiver can verify.

request  an analyst names a report, its dimensions, a recipient and a purpose; the appliance computes the
         report, protects it (`disclosure`) and keeps the result for preview;
approve  a compliance officer previews it and approves: the report is protected again against the data and
         earlier exports as they are now, and only if nothing changed is the bundle written to the outbox
         (data.csv, data.json, manifest.json, signature) and its cells added to the ledger;
reject   with a reason.

This module reads the store only through the report registry's restricted reads and its own tables; it
cannot reach the vault (a test enforces the import boundary). Every step is in the audit log.
"""

import base64
import csv
import hashlib
import io
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance import disclosure, report_cells, reports
from appliance.access import Actor
from appliance.audit import AuditLog, canonical, fingerprint, strict_b64decode
from appliance.disclosure import Earlier, cell_key
from appliance.errors import AccessError, AuditError, ExportError, PolicyError, os_reason
from appliance.failpoints import failpoint
from appliance.policies import ExportPolicy, PurposePolicy
from appliance.store import Store

BUNDLE_FORMAT = 1
DATA_FILES = ("data.csv", "data.json")
BUNDLE_FILES = DATA_FILES + ("manifest.json", "signature")
STATUSES = ("pending", "approved", "rejected", "stale")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _period_start(period: str, today: date) -> date:
    if period == "day":
        return today
    if period == "month":
        return today.replace(day=1)
    if period == "quarter":
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    return today.replace(month=1, day=1)


@dataclass
class Computed:
    protection: disclosure.Protection
    release: disclosure.Release
    scope: str


class Exports:
    def __init__(self, store: Store, audit: AuditLog, policy: ExportPolicy, purposes: PurposePolicy,
                 signing_key: Ed25519PrivateKey, outbox: Path, cache_mib: int = 0):
        self.store = store
        self.audit = audit
        self.policy = policy
        self.purposes = purposes
        self.signing_key = signing_key
        self.outbox = Path(outbox)
        self.cache_mib = cache_mib

    # Computing ---------------------------------------------------------------------------------------
    def _earlier(self, report: str, scope: str) -> Earlier:
        earlier = Earlier()
        for cell, suppressed in self.store.rows("SELECT cell, suppressed FROM export_ledger WHERE report = ? "
                                                "AND scope = ?", (report, scope)):
            (earlier.suppressed if suppressed else earlier.published).add(cell)
        earlier.suppressed -= earlier.published  # once published, a value is known whatever came after
        return earlier

    def _compute(self, report: reports.Report, dims: tuple[str, ...], params: dict,
                 measures: tuple[str, ...]) -> Computed:
        scope = hashlib.sha256(canonical({"report": report.name, "parameters": params})).hexdigest()[:16]
        table = report_cells.compute(self.store, report, dims, params, top=self.policy.dominance_top,
                                     clamp=self.policy.privacy.enabled, cache_mib=self.cache_mib)
        if not table.aggregates:
            raise ExportError(f"report '{report.name}' has no data for {params['as_of']}")
        protection = disclosure.protect(table, self.policy, measures, self._earlier(report.name, scope))
        released = disclosure.release(protection, self.policy, table.max_units_per_customer)
        return Computed(protection, released, scope)

    def spent(self, recipient: str, today: date | None = None) -> float:
        start = _period_start(self.policy.privacy.period, today or _now().date())
        return self.store.scalar("SELECT coalesce(sum(epsilon), 0) FROM export_requests WHERE recipient = ? "
                                 "AND status = 'approved' AND decided_at >= ?", (recipient, start.isoformat())) or 0.0

    def _check_budget(self, recipient: str) -> None:
        privacy = self.policy.privacy
        if not privacy.enabled:
            return
        budget, spent = self.policy.budgets[recipient], self.spent(recipient)
        if spent + privacy.epsilon > budget + 1e-9:
            raise PolicyError(f"recipient '{recipient}' has spent epsilon {spent:g} of {budget:g} this "
                              f"{privacy.period}; this export needs {privacy.epsilon:g}: refused")

    # Requests ----------------------------------------------------------------------------------------
    def request(self, actor: Actor, report_name: str, dims: tuple[str, ...], *, recipient: str, purpose: str,
                as_of: date | None = None, months: int = 1) -> dict:
        actor.require("export.request")
        report = reports.get(report_name)
        reports.check_dimensions(report, dims)
        measures = self.policy.allowed(report.name, dims)
        if recipient not in self.policy.budgets:
            raise PolicyError(f"'{recipient}' is not a recipient in the export policy "
                              f"(recipients: {', '.join(self.policy.budgets)})")
        self.purposes.check(purpose, export=True)
        self._check_budget(recipient)
        params = reports.resolve_parameters(self.store, report, as_of, months)
        computed = self._compute(report, dims, params, measures)
        request_id = f"EXP-{_now():%Y%m%d}-{secrets.token_hex(4)}"
        protection = computed.protection
        result = {"columns": computed.release.columns, "rows": computed.release.rows, "measures": list(measures),
                  "published": len(protection.by_status(disclosure.PUBLISHED)),
                  "suppressed": protection.suppressed_count,
                  "reasons": [{"cell": a.key, "reason": protection.reasons[cell_key(a.key)]}
                              for a in protection.by_status(disclosure.SUPPRESSED)]}
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO export_requests (request_id, report, dimensions, parameters, recipient, purpose, "
                "requested_by, requested_at, status, result, basis_sha256, policy_sha256, epsilon, delta) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (request_id, report.name, json.dumps(list(dims)), json.dumps(params), recipient, purpose,
                 actor.name, _now().isoformat(timespec="seconds"), "pending", json.dumps(result, ensure_ascii=False),
                 protection.basis_sha256(), self.policy.sha256, computed.release.epsilon, computed.release.delta))
            self.audit.record(actor, "export.request", request=request_id, report=report.name, dimensions=list(dims),
                              parameters=params, recipient=recipient, purpose=purpose,
                              published=result["published"], suppressed=result["suppressed"],
                              epsilon=computed.release.epsilon)
        return self.get(request_id)

    def get(self, request_id: str) -> dict:
        rows = self.store.query("SELECT * FROM export_requests WHERE request_id = ?", (request_id,))
        if not rows:
            raise ExportError(f"no export request '{request_id}'")
        request = dict(rows[0])
        for key in ("dimensions", "parameters", "result"):
            request[key] = json.loads(request[key])
        return request

    def list(self, status: str | None = None) -> list[dict]:
        sql = ("SELECT request_id, report, dimensions, recipient, requested_by, requested_at, status, decided_by, "
               "decided_at FROM export_requests")
        params: tuple = ()
        if status:
            sql, params = sql + " WHERE status = ?", (status,)
        return [dict(r) for r in self.store.query(sql + " ORDER BY requested_at, request_id", params)]

    def preview(self, actor: Actor, request_id: str) -> dict:
        """The request as the approver sees it: the table exactly as it would be published, and why each
        suppressed cell is suppressed (reasons stay on the box)."""
        request = self.get(request_id)
        self.audit.record(actor, "export.preview", request=request_id)
        return request

    def _pending(self, request_id: str) -> dict:
        request = self.get(request_id)
        if request["status"] != "pending":
            raise ExportError(f"export request '{request_id}' is {request['status']}, not pending")
        return request

    def reject(self, actor: Actor, request_id: str, reason: str) -> None:
        actor.require("export.approve")
        if not reason or not reason.strip():
            raise ExportError("a rejection needs a reason")
        with self.store.transaction():
            self._pending(request_id)
            self.store.execute("UPDATE export_requests SET status = 'rejected', decided_by = ?, decided_at = ?, "
                               "reason = ? WHERE request_id = ?",
                               (actor.name, _now().isoformat(timespec="seconds"), reason.strip(), request_id))
            self.audit.record(actor, "export.reject", request=request_id, reason=reason.strip())

    def approve(self, actor: Actor, request_id: str) -> Path:
        """Approve, re-check and record; then write the signed bundle; returns its path.

        The order is what makes an export accountable: the re-check, the approval, the ledger, the bundle's
        bytes and the audit entries are one transaction under the store's write lock (two approvals cannot
        miss each other). Only after it commits do the files appear in the outbox, staged and renamed into
        place. If the commit fails, nothing was written; if writing the files fails, the export stays
        approved and recorded and `export write` writes them when the disk allows."""
        actor.require("export.approve")
        request = self._pending(request_id)
        if request["requested_by"] == actor.name:
            raise AccessError(f"user '{actor.name}' requested {request_id} and cannot also approve it")
        report = reports.get(request["report"])
        stale = None
        with self.store.transaction():
            request = self._pending(request_id)
            computed, stale = self._recheck(request, report)
            if stale is None:
                self._check_budget(request["recipient"])
                approved_at = _now().isoformat(timespec="seconds")
                files = self._bundle_files(request, report, actor, approved_at)
                self._record_approval(actor, request, computed, approved_at, files)
                failpoint("export.before_commit")
        if stale is not None:
            self._mark_stale(request_id, stale)
        failpoint("export.after_commit")
        return self.write_bundle(actor, request_id)

    def write_bundle(self, actor: Actor, request_id: str) -> Path:
        """The approved export's files in the outbox, from the bytes recorded at approval; a bundle already
        there is left alone if it holds exactly those bytes. A failed write removes what it started."""
        actor.require("export.approve")
        request = self.get(request_id)
        if request["status"] != "approved":
            raise ExportError(f"export request '{request_id}' is {request['status']}, not approved")
        files = {name: bytes(content) for name, content in self.store.rows(
            "SELECT name, content FROM export_bundles WHERE request_id = ?", (request_id,))}
        if sorted(files) != sorted(BUNDLE_FILES):
            raise ExportError(f"{request_id} was approved before bundles were kept in the store; it cannot be "
                              "written again")
        target = self.outbox / request_id
        if target.exists():
            present = {p.name: p.read_bytes() for p in target.iterdir()} if target.is_dir() else {}
            if present != files:
                raise ExportError(f"{target} exists and differs from the approved bundle; move it away first")
            if not self.store.scalar("SELECT 1 FROM audit_log WHERE event = 'export.write' AND instr(details, ?) > 0",
                                     (f'"request":"{request_id}"',)):
                self._audit_write(actor, request_id, target, files)  # a full disk stopped it the first time
            return target
        staging = self.outbox / f".{request_id}.partial"
        try:
            self.outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
            if staging.exists():
                shutil.rmtree(staging)
            staging.mkdir(mode=0o700)
            for name, content in files.items():
                with open(staging / name, "wb") as handle:
                    handle.write(content)
                    handle.flush()
                    os.fsync(handle.fileno())
                failpoint("export.file_written")
            _fsync_dir(staging)
            os.replace(staging, target)
            _fsync_dir(self.outbox)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ExportError(f"{request_id} is approved and recorded, but its bundle could not be written to "
                              f"{self.outbox} ({os_reason(exc)}); when that is fixed, run "
                              f"`appliance export write {request_id}`") from None
        self._audit_write(actor, request_id, target, files)
        return target

    def _audit_write(self, actor: Actor, request_id: str, target: Path, files: dict[str, bytes]) -> None:
        try:
            self.audit.record(actor, "export.write", request=request_id, bundle=target.name,
                              manifest_sha256=hashlib.sha256(files["manifest.json"]).hexdigest())
        except AuditError:
            raise AuditError(f"{request_id}: the bundle is in the outbox and its approval is recorded, but the entry "
                             "for writing it could not be added to the audit log (disk full?); "
                             f"`appliance export write {request_id}` adds it") from None

    def _recheck(self, request: dict, report: reports.Report) -> tuple[Computed | None, str | None]:
        """The report protected again now; a reason when that is not what was previewed."""
        if request["policy_sha256"] != self.policy.sha256:
            return None, "the export policy changed since the request"
        computed = self._compute(report, tuple(request["dimensions"]), request["parameters"],
                                 tuple(request["result"]["measures"]))
        if computed.protection.basis_sha256() != request["basis_sha256"]:
            return None, "the data or earlier exports changed since the request"
        disclosure.assert_publishable(computed.protection, self.policy, self._earlier(report.name, computed.scope))
        return computed, None

    def _record_approval(self, actor: Actor, request: dict, computed: Computed, approved_at: str,
                         files: dict[str, bytes]) -> None:
        request_id = request["request_id"]
        target = self.outbox / request_id
        self.store.execute("UPDATE export_requests SET status = 'approved', decided_by = ?, decided_at = ?, "
                           "bundle = ? WHERE request_id = ?", (actor.name, approved_at, str(target), request_id))
        protection = computed.protection
        self.store.executemany(
            "INSERT INTO export_ledger VALUES (?,?,?,?,?)",
            [(request["report"], computed.scope, cell_key(a.key), request_id, int(state == disclosure.SUPPRESSED))
             for a in protection.table.aggregates if (state := protection.status[cell_key(a.key)]) != disclosure.WITHHELD])
        self.store.executemany("INSERT INTO export_bundles VALUES (?,?,?)",
                               [(request_id, name, content) for name, content in files.items()])
        self.audit.record(actor, "export.approve", request=request_id, requested_by=request["requested_by"],
                          bundle=target.name, manifest_sha256=hashlib.sha256(files["manifest.json"]).hexdigest(),
                          recipient=request["recipient"], epsilon=request["epsilon"])

    def _mark_stale(self, request_id: str, why: str) -> None:
        with self.store.transaction():
            self.store.execute("UPDATE export_requests SET status = 'stale', reason = ? WHERE request_id = ?",
                               (why, request_id))
            self.audit.record("system:exports", "export.stale", request=request_id, reason=why)
        raise ExportError(f"{request_id} cannot be approved: {why}; request it again")

    # Bundles -----------------------------------------------------------------------------------------
    def _bundle_files(self, request: dict, report: reports.Report, approver: Actor, approved_at: str) -> dict[str, bytes]:
        if (self.outbox / request["request_id"]).exists():
            raise ExportError(f"{self.outbox / request['request_id']} already exists; refusing to overwrite it")
        result = request["result"]
        data = {"data.csv": _csv(result["columns"], result["rows"]),
                "data.json": (json.dumps({"report": report.name, "columns": result["columns"], "rows": result["rows"]},
                                         ensure_ascii=False, indent=1) + "\n").encode("utf-8")}
        policy = self.policy
        manifest = {
            "format": BUNDLE_FORMAT, "export_id": request["request_id"],
            "report": report.name, "title_en": report.title_en, "title_zh": report.title_zh, "unit": report.unit_en,
            "dimensions": request["dimensions"], "measures": result["measures"], "parameters": request["parameters"],
            "recipient": request["recipient"],
            "purpose": dict(zip(("name", "zh", "en"), (request["purpose"], *self.purposes.titles[request["purpose"]]))),
            "policy": {"file": ExportPolicy.FILE, "revision": policy.revision, "sha256": policy.sha256,
                       "min_cell_size": policy.min_cell_size,
                       "dominance": {"top": policy.dominance_top, "max_share": policy.dominance_share},
                       "rounding": {"counts": policy.round_counts, "amounts": policy.round_amounts,
                                    "decimals": policy.decimals}},
            "cells": {"published": result["published"], "suppressed": result["suppressed"]},
            "differential_privacy": {"mechanism": policy.privacy.mechanism, "epsilon": request["epsilon"],
                                     "delta": request["delta"]},
            "requested_by": request["requested_by"], "requested_at": request["requested_at"],
            "approved_by": approver.name, "approved_at": approved_at,
            "files": {name: hashlib.sha256(content).hexdigest() for name, content in data.items()},
            "signing_key": fingerprint(self.signing_key.public_key()),
        }
        manifest_bytes = (json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")
        data["manifest.json"] = manifest_bytes
        data["signature"] = base64.b64encode(self.signing_key.sign(_signed_message(data))) + b"\n"
        return data


def _fsync_dir(path: Path) -> None:
    """A rename or a new file is durable only once its folder is synced."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _signed_message(files: dict[str, bytes]) -> bytes:
    """What the signature covers: the manifest and every data file, each framed by its name and length."""
    message = b""
    for name in ("manifest.json",) + DATA_FILES:
        content = files[name]
        message += name.encode() + b"\n" + str(len(content)).encode() + b"\n" + content
    return message


# A text cell a spreadsheet would run as a formula (OWASP: CSV injection): = + - @, tab, carriage return.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """The cell as text, with a leading apostrophe where a spreadsheet would read text as a formula
    (`=HYPERLINK(...)` in a campaign name). Numbers stay numbers: -3 is a number, not a formula."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv(columns: list[str], rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_safe(c) for c in columns])
    writer.writerows([csv_safe(row.get(c)) for c in columns] for row in rows)
    return buffer.getvalue().encode("utf-8")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def verify(bundle: Path, public_key: Ed25519PublicKey) -> Verdict:
    """Check a bundle anywhere: exactly the expected files, a valid signature by the pinned key over the
    manifest and the data, and data files that match the manifest's hashes."""
    bundle = Path(bundle)
    if not bundle.is_dir():
        return Verdict(False, f"{bundle} is not an export bundle (a directory)")
    names = sorted(p.name for p in bundle.iterdir())
    if names != sorted(BUNDLE_FILES):
        extra = sorted(set(names) - set(BUNDLE_FILES)) or sorted(set(BUNDLE_FILES) - set(names))
        return Verdict(False, f"bundle files differ from {', '.join(BUNDLE_FILES)} (at '{extra[0]}')")
    files = {name: (bundle / name).read_bytes() for name in BUNDLE_FILES}
    try:
        signature = strict_b64decode(files["signature"].removesuffix(b"\n"))
        public_key.verify(signature, _signed_message(files))
    except (InvalidSignature, ValueError):
        return Verdict(False, "the signature does not match the manifest and data (changed, or another key)")
    try:
        manifest = json.loads(files["manifest.json"])
    except ValueError:
        return Verdict(False, "manifest.json is not JSON")
    for name in DATA_FILES:
        if hashlib.sha256(files[name]).hexdigest() != manifest.get("files", {}).get(name):
            return Verdict(False, f"{name} does not match the manifest")
    return Verdict(True, f"bundle {manifest['export_id']} intact: report {manifest['report']}, "
                         f"{manifest['cells']['published']} published and {manifest['cells']['suppressed']} "
                         f"suppressed cells, requested by {manifest['requested_by']}, approved by "
                         f"{manifest['approved_by']} at {manifest['approved_at']}, signed by key "
                         f"{manifest['signing_key']}")
