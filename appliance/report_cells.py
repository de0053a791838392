"""Report cells precomputed after the nightly run, so that an export at a million customers reads a few
hundred stored rows instead of joining every customer again.

For each report, the run after the nightly joins the units once (the very SQL an export runs, so the sums
are the same to the last bit) and stores the rows of every grouping any export of that report can ask for,
with the intersection sizes and the units a customer may hold. An export uses them only while nothing that
reports read can have changed: the cells record the last audit entry they saw, and any later entry other
than the ones listed below (reads, exports, sign-ins, the audit log's own reviews) sends the export back to
computing afresh. A data change without an audit entry is not a path the appliance has: batches, erasures,
purges, scores, tags and campaigns are each in the log.
"""

import json
import time
from datetime import date, datetime, timezone
from itertools import combinations

from appliance import reports
from appliance.audit import canonical
from appliance.errors import PolicyError
from appliance.store import Store

JOB = "report_cells"
# Entries after which every report reads what it read before. Anything else (and any event added later)
# makes the cells stale: a wrong "unchanged" would publish old figures, a wrong "changed" costs seconds.
UNCHANGING = frozenset({
    "login.success", "login.second_factor", "login.failure", "logout", "user.sessions.end", "customer.read",
    "vault.reveal", "vault.reveal.refused", "quarantine.read", "subject.find", "subject.report",
    "export.request", "export.preview", "export.approve", "export.reject", "export.stale", "export.write",
    "export.download", "audit.export", "audit.checkpoint", "audit.verify", "audit.search", "store.backup",
    "store.backup.refused", "store.restore.refused", "api_token.create", "api_token.revoke", "job.requested",
    "user.add", "user.disable", "user.enable", "user.passwd", "user.role", "user.second_factor.reset",
    # Policies change what may be published (the dominance rule and clamping are part of the cells' key),
    # never the rows reports aggregate; a new model changes nothing until it scores ("model.score").
    "policy.load", "policy.change", "policy.refuse", "policy.apply", "model.train", "model.install",
})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def all_groupings(report: reports.Report) -> list[tuple[str, ...]]:
    """Every grouping of every export the report allows, each in the report's order of dimensions."""
    found: dict[tuple[str, ...], None] = {}
    for size in range(1, reports.MAX_DIMENSIONS + 1):
        for dims in combinations(report.dimensions, size):
            try:
                reports.check_dimensions(report, dims)
            except PolicyError:
                continue
            found.update(dict.fromkeys(reports.groupings(dims)))
    return list(found)


def _canonical(report: reports.Report, group: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(group, key=report.dimensions.index))


def _key(report: reports.Report, params: dict, top: int, clamp: bool) -> tuple:
    return report.name, canonical(params).decode("utf-8"), int(top), int(clamp)


def build(store: Store, as_of: date | None, *, top: int, clamp: bool, cache_mib: int = 0) -> dict[str, float]:
    """Every report's cells as of the date (churn risk over its one month), or as of each report's latest
    results (what an export asks for by default); seconds per report."""
    seconds = {}
    for report in reports.REPORTS.values():
        params = reports.resolve_parameters(store, report, as_of)
        # Read before the units: an entry committed while they are joined is later than it, so the cells
        # can only be stale too early, never too late.
        seen = store.scalar("SELECT coalesce(max(seq), 0) FROM audit_log")
        started = time.perf_counter()
        wanted = all_groupings(report)
        rows = reports.aggregate_rows(store, report, wanted, params, top=top, clamp=clamp, cache_mib=cache_mib)
        cells = {"groupings": {",".join(group): [list(row) for row in rows[group]] for group in wanted},
                 **reports.counts(store, report, params)}
        seconds[report.name] = round(time.perf_counter() - started, 2)
        with store.transaction():
            store.execute("DELETE FROM report_cells WHERE report = ?", (report.name,))
            store.execute("INSERT INTO report_cells VALUES (?,?,?,?,?,?,?,?)",
                          (*_key(report, params, top, clamp), seen, _now(), seconds[report.name],
                           json.dumps(cells, separators=(",", ":"))))
    return seconds


def stale(store: Store, seen: int) -> bool:
    for event, details in store.rows("SELECT event, details FROM audit_log WHERE seq > ?", (seen,)):
        if event in UNCHANGING:
            continue
        if event == "job.run" and json.loads(details).get("job") == JOB:
            continue
        return True
    return False


def compute(store: Store, report: reports.Report, dims: tuple[str, ...], params: dict, *, top: int = 1,
            clamp: bool = False, cache_mib: int = 0) -> reports.Table:
    """The report's table from its precomputed cells when they are current, else computed afresh."""
    reports.check_dimensions(report, dims)
    found = store.query("SELECT audit_seq, built_at, cells FROM report_cells WHERE report = ? AND parameters = ? "
                        "AND top = ? AND clamp = ?", _key(report, params, top, clamp))
    cells = json.loads(found[0]["cells"]) if found and not stale(store, found[0]["audit_seq"]) else None
    stored = {group: ",".join(_canonical(report, group)) for group in reports.groupings(dims)}
    # Cells from a release whose report had other dimensions lack some groupings: afresh until the next run.
    if cells is None or any(name not in cells["groupings"] for name in stored.values()):
        return reports.compute(store, report, dims, params, top=top, clamp=clamp, cache_mib=cache_mib)
    rows = {}
    for group, name in stored.items():
        order = [_canonical(report, group).index(d) for d in group]
        rows[group] = [tuple(row[i] for i in order) + tuple(row[len(group):]) for row in cells["groupings"][name]]
    table = reports.assemble(report, dims, params, rows, reports.labels(store, report, params), cells)
    table.precomputed_at = found[0]["built_at"]
    return table
