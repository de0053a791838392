"""`appliance doctor`: is this home healthy? Each check names what it looked at and, when something is wrong,
what: the store's pages and structure, free disk, every installed model against its card, every policy, the
audit chain and its last checkpoint off the box, the scheduler's last runs. Nothing here changes the home;
the report is for bank IT and monitoring, and the exit code is non-zero when anything is wrong."""

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

OK, WARN, FAIL = "ok", "warning", "FAIL"
LOW_DISK = 1 << 30  # 1 GiB: a night's batch and a backup need room
CHECKPOINT_AGE = timedelta(hours=2)  # the scheduler ships one every hour
NIGHTLY_AGE = timedelta(days=2)


@dataclass(frozen=True)
class Finding:
    check: str
    state: str
    detail: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _store(home) -> list[Finding]:
    problems = home.store.integrity_problems()
    if problems:
        return [Finding("store", FAIL, f"integrity check: {problems[0]}"
                        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))]
    return [Finding("store", OK, "cipher_integrity_check and integrity_check pass")]


def _disk(home) -> list[Finding]:
    free = shutil.disk_usage(home.path).free
    state = OK if free >= LOW_DISK else (WARN if free >= LOW_DISK // 4 else FAIL)
    return [Finding("disk", state, f"{free / (1 << 30):.1f} GiB free where the home is")]


def _models(home) -> list[Finding]:
    from appliance.models import sha256_file

    found = []
    for card_path in sorted((home.path / "models").glob("*-*.json")):
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
            model = card_path.with_name(card["onnx_file"])
        except (OSError, ValueError, KeyError, TypeError):
            found.append(Finding("models", FAIL, f"{card_path.name}: not a readable model card"))
            continue
        if not model.exists():
            found.append(Finding("models", FAIL, f"{card_path.name}: its model file {model.name} is missing"))
        elif sha256_file(model) != card.get("sha256"):
            found.append(Finding("models", FAIL, f"{model.name} does not match its card's sha256"))
        else:
            found.append(Finding("models", OK, f"{model.name} matches its card"))
    return found or [Finding("models", WARN, "no models installed: nothing is scored")]


def _policies(home) -> list[Finding]:
    found = []
    for name, error, in_force in home.check_policies():
        if error is None:
            found.append(Finding("policies", OK, f"{name} valid"))
        else:
            kept = " (the last good version stays in force)" if in_force else " (no good version: refused)"
            found.append(Finding("policies", WARN if in_force else FAIL, f"{error}{kept}"))
    return found


def _audit(home) -> list[Finding]:
    from appliance.checkpoints import shipped

    verdict = home.audit.verify(shipped(home.checkpoint_target()))
    found = [Finding("audit", OK if verdict.ok else FAIL, verdict.message.split(";")[0])]
    target = home.checkpoint_target()
    if target is None:
        found.append(Finding("checkpoint", WARN, "no off-box checkpoint target (setting audit.checkpoint_target)"))
        return found
    off_box = shipped(target)
    if target[0] != "folder":
        last = home.store.query("SELECT at FROM audit_log WHERE event = 'audit.checkpoint' ORDER BY seq DESC LIMIT 1")
        when = datetime.fromisoformat(last[0][0]) if last else None
        where = "sent to the syslog target"
    else:
        newest = max(off_box, key=lambda c: c.count) if off_box else None
        when = datetime.fromisoformat(newest.at) if newest else None
        where = "in the off-box folder"
    if when is None:
        found.append(Finding("checkpoint", FAIL, f"no checkpoint {where} yet"))
    elif _now() - when > CHECKPOINT_AGE:
        found.append(Finding("checkpoint", FAIL, f"the newest checkpoint {where} is stale: {when:%Y-%m-%d %H:%M} "
                                                 f"UTC, older than {CHECKPOINT_AGE.seconds // 3600} h"))
    else:
        found.append(Finding("checkpoint", OK, f"the newest checkpoint {where} is from {when:%Y-%m-%d %H:%M} UTC"))
    return found


def _jobs(home) -> list[Finding]:
    found = []
    for job, started, status, error in home.store.rows(
            "SELECT job, started_at, status, error FROM job_runs r WHERE run_id = (SELECT max(run_id) FROM job_runs "
            "q WHERE q.job = r.job) ORDER BY job"):
        if status == "failed":
            found.append(Finding("jobs", FAIL, f"the last {job} run failed ({started[:16]}): {error}"))
        elif job == "nightly" and _now() - datetime.fromisoformat(started) > NIGHTLY_AGE:
            found.append(Finding("jobs", WARN, f"the last nightly run was {started[:16]}, more than two days ago"))
        else:
            found.append(Finding("jobs", OK, f"the last {job} run ({started[:16]}) is {status}"))
    return found or [Finding("jobs", WARN, "no job has run yet (is the scheduler started?)")]


def examine_unopenable(path, credentials, why: str) -> list[Finding]:
    """When the home will not open (its first writes fail on a damaged store, say): the keys and the store's
    own checks alone, without anything that writes."""
    from appliance.errors import ApplianceError
    from appliance.home import KEYRING, STORE
    from appliance.keys import Keyring
    from appliance.store import Store

    found = [Finding("home", FAIL, f"does not open: {why}")]
    try:
        keyring = Keyring.open(path / KEYRING, credentials)
    except ApplianceError as refused:
        return found + [Finding("keys", FAIL, refused.message)]
    found.append(Finding("keys", OK, "the key file or passphrase opens the keyring"))
    try:
        store = Store(path / STORE, keyring.data_key)
    except ApplianceError as refused:
        return found + [Finding("store", FAIL, refused.message)]
    try:
        return found + _store(type("Opened", (), {"store": store})())
    finally:
        store.close()


def examine(home) -> list[Finding]:
    """Every check, in the order an operator reads them."""
    return [f for check in (_store, _disk, _models, _policies, _audit, _jobs) for f in check(home)]
