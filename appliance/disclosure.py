"""Statistical disclosure control: which aggregates of a report may be published, and with what values.

1. Primary suppression: an aggregate with fewer than k customers, whose count measure (customers at high
   risk, who responded) counts fewer than k or leaves fewer than k uncounted, whose published sum one or two
   customers dominate, whose difference from a published size would be small (tag overlaps), or that an earlier export
   of the same report and scope suppressed.
2. Complementary suppression: cells and totals are tied by sums (each line: its members add up to its
   total). A line with a single unknown entry gives it away, so another entry of that line is suppressed
   (the smallest). Totals published by earlier exports of the same report and scope count as known: that is
   the defence against differencing two exports. A line rule cannot see every recovery (a suppressed cell can
   be a "bridge" between two protected groups), so the pattern is then checked by linear algebra: an entry
   is recoverable exactly when its indicator vector lies in the row space of what is known. Suppression
   grows until nothing protected is recoverable.
3. Release: rounding, and differential-privacy noise through OpenDP when the policy asks for it.

Decisions rest on true values; the published values are rounded (and noised). Only aggregates come in and
only aggregates go out.
"""

import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np

from appliance.errors import PolicyError
from appliance.policies import ExportPolicy, Privacy
from appliance.reports import Aggregate, Table

PUBLISHED, SUPPRESSED, WITHHELD = "published", "suppressed", "withheld"
ALL = "*"  # a dimension's value in a total over it


def cell_key(key: dict) -> str:
    return json.dumps(sorted(key.items()), ensure_ascii=False, separators=(",", ":"))


@dataclass
class Earlier:
    """What earlier exports of the same report and scope did with each aggregate."""
    published: set[str] = field(default_factory=set)
    suppressed: set[str] = field(default_factory=set)


@dataclass
class Protection:
    table: Table
    measures: tuple[str, ...]
    status: dict[str, str]
    reasons: dict[str, str]  # suppressed aggregates only; shown to the approver, never published

    def by_status(self, status: str) -> list[Aggregate]:
        return [a for a in self.table.aggregates if self.status[cell_key(a.key)] == status]

    @property
    def suppressed_count(self) -> int:
        return len(self.by_status(SUPPRESSED))

    @property
    def shown_count(self) -> int:
        return len(self.by_status(SUPPRESSED)) + len(self.by_status(PUBLISHED))

    def basis_sha256(self) -> str:
        """A digest of the true aggregates and the decisions: an approval re-checks it, so what is released
        is what was previewed, on data and earlier exports that have not changed since."""
        rows = sorted([cell_key(a.key), self.status[cell_key(a.key)], a.customers, a.units,
                       sorted((k, round(v, 6)) for k, v in a.sums.items())] for a in self.table.aggregates)
        return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode("utf-8")).hexdigest()


def _primary_reason(agg: Aggregate, policy: ExportPolicy, table: Table, measures: tuple[str, ...],
                    earlier: Earlier) -> str | None:
    k = policy.min_cell_size
    if agg.customers < k:
        return f"fewer than {k} customers"
    for name in measures:
        measure = table.report.measure(name)
        if measure.dominance and agg.sums[name] and agg.top_share[name] > policy.dominance_share:
            return f"{name}: top {policy.dominance_top} contributor(s) over {policy.dominance_share:.0%} of the sum"
        if measure.kind == "count":
            # A count inside a cell is a cell of its own ("1 high-risk customer of 29"), and so is its rest
            # ("28 of 29": the one who is not). Both need k; the cell goes, and complements follow as for any cell.
            counted = round(agg.sums[name])
            if 0 < counted < k or 0 < agg.units - counted < k:
                return f"{name}: fewer than {k} customers counted, or fewer than {k} not counted"
    if any(0 < d < k for d in agg.difference_counts):
        return f"its difference from a tag's size is under {k} customers"
    if cell_key(agg.key) in earlier.suppressed:
        return "suppressed in an earlier export of this report"
    return None


def protect(table: Table, policy: ExportPolicy, measures: tuple[str, ...], earlier: Earlier) -> Protection:
    dims = table.dimensions
    finest = [a for a in table.aggregates if a.level == len(dims)]
    if len(finest) > policy.max_cells:
        raise PolicyError(f"{len(finest)} cells exceed the policy's max_cells ({policy.max_cells}): "
                          "ask for fewer dimensions")
    status, reasons = {}, {}
    for agg in table.aggregates:
        key = cell_key(agg.key)
        reason = _primary_reason(agg, policy, table, measures, earlier)
        if reason:
            status[key], reasons[key] = SUPPRESSED, reason
        else:
            status[key] = PUBLISHED if agg.level == len(dims) or table.report.publishes_totals else WITHHELD
    protection = Protection(table, measures, status, reasons)
    _complement(protection, earlier)
    return protection


def _lines(table: Table) -> list[tuple[Aggregate | None, list[Aggregate]]]:
    """Each total with the members it sums: for a total and a dimension it is not split by, the aggregates
    one level finer along that dimension."""
    by_key = {cell_key(a.key): a for a in table.aggregates}
    lines: dict[tuple[str, str], list[Aggregate]] = {}
    for agg in table.aggregates:
        for dim in agg.key:
            parent = {d: v for d, v in agg.key.items() if d != dim}
            lines.setdefault((cell_key(parent), dim), []).append(agg)
    return [(by_key.get(parent), members) for (parent, _), members in sorted(lines.items())]


def _complement(protection: Protection, earlier: Earlier) -> None:
    status, reasons = protection.status, protection.reasons
    lines = _lines(protection.table)

    def known(agg: Aggregate) -> bool:
        key = cell_key(agg.key)
        return status[key] == PUBLISHED or key in earlier.published

    def candidate(agg: Aggregate) -> bool:
        key = cell_key(agg.key)
        return status[key] == PUBLISHED and key not in earlier.published

    def entries_of(line) -> list[Aggregate]:
        total, members = line
        return members + ([total] if total is not None else [])

    lines_of: dict[str, list[list[Aggregate]]] = {}
    for line in lines:
        for agg in entries_of(line):
            lines_of.setdefault(cell_key(agg.key), []).append(entries_of(line))

    def dead_end(agg: Aggregate) -> bool:
        """Suppressing it would leave it alone in a line where nothing else can be suppressed any more."""
        for entries in lines_of[cell_key(agg.key)]:
            others = [a for a in entries if a is not agg]
            if all(known(a) for a in others) and not any(candidate(a) for a in others):
                return True
        return False

    def suppress_one_more(entries: list[Aggregate]) -> bool:
        # cells before totals (the finest level first), then the smallest; never into a dead end if avoidable
        options = sorted((a for a in entries if candidate(a)), key=lambda a: (-a.level, a.customers, cell_key(a.key)))
        options = [a for a in options if not dead_end(a)] or options
        if not options:
            return False
        chosen = cell_key(options[0].key)
        status[chosen], reasons[chosen] = SUPPRESSED, "complementary: protects another suppressed cell"
        return True

    while True:
        changed = False
        for total, members in lines:
            entries = entries_of((total, members))
            unknown = [a for a in entries if not known(a)]
            if total is not None and len(unknown) == 1 and status[cell_key(unknown[0].key)] == SUPPRESSED:
                if not suppress_one_more(entries):
                    raise PolicyError("this export cannot be protected: earlier exports of the report already "
                                      "published every entry that could hide a suppressed cell")
                changed = True
        if changed:
            continue
        exposed = recoverable(protection, earlier)
        if not exposed:
            return
        target = exposed[0]
        if not any(suppress_one_more(entries) for entries in lines_of[cell_key(target.key)]):
            raise PolicyError("this export cannot be protected: a suppressed cell would be recoverable")


def recoverable(protection: Protection, earlier: Earlier) -> list[Aggregate]:
    """Suppressed aggregates whose exact value follows from what is published now or was earlier: those
    whose indicator over the finest cells lies in the span of the known aggregates' indicators."""
    table = protection.table
    finest = [a for a in table.aggregates if a.level == len(table.dimensions)]
    index = {cell_key(a.key): i for i, a in enumerate(finest)}

    def indicator(agg: Aggregate) -> np.ndarray:
        vector = np.zeros(len(finest))
        for cell in finest:
            if all(cell.key.get(d) == v for d, v in agg.key.items()):
                vector[index[cell_key(cell.key)]] = 1.0
        return vector

    known, hidden = [], []
    for agg in table.aggregates:
        key = cell_key(agg.key)
        if protection.status[key] == PUBLISHED or key in earlier.published:
            known.append(indicator(agg))
        elif protection.status[key] == SUPPRESSED:
            hidden.append(agg)
    if not hidden or not known:
        return []
    matrix = np.array(known)
    _, singular, vh = np.linalg.svd(matrix, full_matrices=True)
    tolerance = max(matrix.shape) * np.finfo(float).eps * (singular[0] if len(singular) else 1.0)
    rank = int((singular > tolerance).sum())
    null_space = vh[rank:]
    if null_space.shape[0] == 0:
        return hidden  # everything is determined
    return [agg for agg in hidden if np.abs(null_space @ indicator(agg)).max() < 1e-8]


def assert_publishable(protection: Protection, policy: ExportPolicy, earlier: Earlier) -> None:
    """The last gate before anything is written: every published aggregate passes the primary rules and no
    suppressed one is recoverable. Protect guarantees this; the gate makes a future mistake fail loudly."""
    for agg in protection.by_status(PUBLISHED):
        reason = _primary_reason(agg, policy, protection.table, protection.measures, earlier)
        if reason:
            raise PolicyError(f"refused to publish an aggregate that fails the policy ({reason})")
    if recoverable(protection, earlier):
        raise PolicyError("refused to publish: a suppressed aggregate would be recoverable")


# Release --------------------------------------------------------------------------------------------------

def _round_to(value: float, base: float) -> float:
    return math.floor(value / base + 0.5) * base


@dataclass
class Release:
    columns: list[str]
    rows: list[dict]
    epsilon: float
    delta: float


def release(protection: Protection, policy: ExportPolicy, max_units_per_customer: int) -> Release:
    """The published table: every published and suppressed aggregate (suppressed ones without values),
    rounded, with noise when the policy asks for it."""
    table, measures = protection.table, protection.measures
    report = table.report
    shown = protection.by_status(PUBLISHED)
    noisy_units = [float(a.units) for a in shown]
    noisy_sums = {m: [a.sums[m] for a in shown] for m in measures}
    epsilon = delta = 0.0
    if policy.privacy.enabled and shown:
        levels = 2 ** len(table.dimensions) if report.publishes_totals else 1
        families = 1 + len(measures)
        noisy_units = _noise(noisy_units, levels * max_units_per_customer, policy.privacy, families)
        for m in measures:
            bound = max(abs(b) for b in report.measure(m).bounds)
            noisy_sums[m] = _noise(noisy_sums[m], levels * max_units_per_customer * bound, policy.privacy, families)
        epsilon, delta = policy.privacy.epsilon, policy.privacy.delta
    labels = table.labels
    columns = list(table.dimensions)
    for dim in table.dimensions:
        if dim in labels:
            columns += [f"{dim}_name_zh", f"{dim}_name_en"]
    columns += ["status", "units"] + list(measures)
    rows = []
    values = {cell_key(a.key): i for i, a in enumerate(shown)}
    for agg in table.aggregates:
        key = cell_key(agg.key)
        state = protection.status[key]
        if state == WITHHELD:
            continue
        row = {dim: agg.key.get(dim, ALL) for dim in table.dimensions}
        for dim in table.dimensions:
            if dim in labels:
                zh, en = labels[dim].get(agg.key.get(dim), ("", "")) if dim in agg.key else ("全部", "all")
                row[f"{dim}_name_zh"], row[f"{dim}_name_en"] = zh, en
        row["status"] = state
        if state == PUBLISHED:
            i = values[key]
            units = max(0.0, noisy_units[i])
            row["units"] = int(_round_to(units, policy.round_counts))
            for m in measures:
                kind = report.measure(m).kind
                total = noisy_sums[m][i]
                if kind == "mean":
                    denominator = units if policy.privacy.enabled else agg.counted[m]
                    row[m] = round(total / denominator, policy.decimals) if denominator >= 1 else None
                elif kind == "count":
                    row[m] = int(_round_to(max(0.0, total), policy.round_counts))
                else:
                    row[m] = round(_round_to(total, policy.round_amounts), 2)
        else:
            row["units"] = None
            for m in measures:
                row[m] = None
        rows.append(row)
    return Release(columns, rows, epsilon, delta)


def _noise(values: list[float], sensitivity: float, privacy: Privacy, families: int) -> list[float]:
    """Noise calibrated by OpenDP so that this family of values spends epsilon / families (and, for the
    Gaussian mechanism, delta / families) when one customer can move them by `sensitivity` in total."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    epsilon = privacy.epsilon / families
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    sensitivity = float(max(sensitivity, 1e-9))
    if privacy.mechanism == "laplace":
        def make(scale):
            return dp.m.make_laplace(domain, dp.l1_distance(T=float), scale)
        d_out = epsilon
    else:
        delta = privacy.delta / families

        def make(scale):
            # L2 sensitivity is at most the L1 bound used for both mechanisms.
            return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(
                dp.m.make_gaussian(domain, dp.l2_distance(T=float), scale)), delta)
        d_out = (epsilon, delta)
    # Searched within sane bounds around sensitivity / epsilon (an unbounded search overflows OpenDP's maps).
    scale = dp.binary_search_param(make, d_in=sensitivity, d_out=d_out, T=float,
                                   bounds=(sensitivity / epsilon / 2, sensitivity / epsilon * 1e3))
    return list(make(scale)([float(v) for v in values]))
