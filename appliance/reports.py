"""The registry of reports that may leave the box, and how each is aggregated.

Every report declares its dimensions and measures and the tables it reads. It is computed in SQL, straight
from customer-level rows to aggregates: one row per cell and per marginal, holding the number of distinct
customers (for the minimum cell size), the number of units (what the report counts; a customer may hold
several, e.g. products), each measure's sum and the share of its largest contributors (for the dominance
rule). Nothing customer-level comes back to Python, except for the tag reports: each customer's set of
tags (with region and segment), without an identifier, counted in numpy (see _tag_sets_sql). While a
report runs, the connection may read only the tables the report names (SQLite's authorizer), so no report
can reach the vault or the audit log.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from typing import Callable

import numpy as np
import pandas as pd

from appliance.errors import PolicyError
from appliance.store import Store, each_day

UNKNOWN = "unknown"
AGE_BANDS = ((0, 25, "<25"), (25, 35, "25-34"), (35, 45, "35-44"), (45, 55, "45-54"), (55, 65, "55-64"),
             (65, 200, "65+"))
MAX_DIMENSIONS = 2


def _age_band_sql(age: str) -> str:
    cases = " ".join(f"WHEN {age} >= {lo} AND {age} < {hi} THEN '{label}'" for lo, hi, label in AGE_BANDS)
    return f"CASE {cases} ELSE '{UNKNOWN}' END"


_AGE = "coalesce(CAST(substr(:as_of, 1, 4) AS INTEGER) - c.birth_year, c.age)"
_CUSTOMER_DIMENSIONS = {
    "region": f"coalesce(c.region, b.region, '{UNKNOWN}')",  # else the branch's region
    "branch": f"coalesce(c.branch, '{UNKNOWN}')",
    "age_band": _age_band_sql(_AGE),
}


@dataclass(frozen=True)
class Measure:
    name: str
    kind: str  # "sum", "mean" or "count" (a count of customers with a 0/1 flag)
    bounds: tuple[float, float]  # each unit's value is clamped to these under differential privacy
    dominance: bool  # magnitudes (balances, amounts) get the dominance rule; flags and bounded scores do not
    title_en: str
    title_zh: str


@dataclass(frozen=True)
class Report:
    name: str
    title_en: str
    title_zh: str
    unit_en: str  # what the count column counts
    dimensions: tuple[str, ...]
    measures: tuple[Measure, ...]
    tables: frozenset[str]
    # One row per unit: customer_id (the customer's row number: an integer groups faster and takes less
    # memory than a token), every dimension, every measure.
    units_sql: str = ""
    required_dimensions: tuple[str, ...] = ()
    # Dimensions that, with the customer, name a unit (a campaign, a product): a grouping by all of them has
    # at most one unit per customer in each cell. Empty: checked on the units instead.
    unit_key: tuple[str, ...] = ()
    publishes_totals: bool = True  # tag reports count a customer in several cells: their totals mean nothing
    max_units_per_customer: Callable[[Store, dict], int] = lambda store, params: 1
    labels: Callable[[Store, dict], dict[str, dict[str, tuple[str, str]]]] = lambda store, params: {}
    # For cells that are intersections (tag A and tag B): each value's own size, which another export may
    # publish. A cell then also reveals "A and not B" (size of A minus the cell), which must pass k too.
    intersection_sizes: Callable[[Store, dict], dict[str, int]] | None = None
    # Instead of units_sql: each wanted grouping's rows (as aggregate_rows gives them), counted another way.
    rows_by_grouping: Callable[[Store, dict, list[tuple[str, ...]]], dict[tuple[str, ...], list[tuple]]] | None = None

    def measure(self, name: str) -> Measure:
        return next(m for m in self.measures if m.name == name)


@dataclass
class Aggregate:
    """One cell or marginal: `key` maps each dimension it is split by to its value (the grand total: {})."""
    key: dict[str, str]
    customers: int
    units: int
    sums: dict[str, float]
    counted: dict[str, int]  # units with a value, per measure (the denominator of a mean)
    top_share: dict[str, float]  # the largest contributors' share of the sum, per measure (0 without dominance rule)
    difference_counts: tuple[int, ...] = ()

    @property
    def level(self) -> int:
        return len(self.key)


@dataclass
class Table:
    report: Report
    dimensions: tuple[str, ...]
    parameters: dict
    aggregates: list[Aggregate] = field(default_factory=list)
    labels: dict = field(default_factory=dict)
    max_units_per_customer: int = 1
    precomputed_at: str | None = None  # when its cells came from the run after the nightly (report_cells)


def _latest_as_of(store: Store, table: str) -> str | None:
    return store.scalar(f"SELECT max(as_of) FROM {table}")


# The reports ---------------------------------------------------------------------------------------------

def _segment_labels(store: Store, params: dict) -> dict:
    import json

    rows = store.query("SELECT segment, profile FROM segment_profiles WHERE as_of = ?", (params["as_of"],))
    names = {str(r[0]): json.loads(r[1]) for r in rows}
    return {"segment": {k: (p.get("name_zh", k), p.get("name_en", k)) for k, p in names.items()}}


_SEGMENT_PROFILE_UNITS = f"""
        SELECT c.rowid AS customer_id, CAST(s.segment AS TEXT) AS segment,
               {_CUSTOMER_DIMENSIONS['region']} AS region, {_CUSTOMER_DIMENSIONS['branch']} AS branch,
               {_CUSTOMER_DIMENSIONS['age_band']} AS age_band,
               f.balance_now AS balance, f.tenure_days / 365.25 AS tenure_years, f.products_held AS products,
               sc.probability AS churn_probability
        FROM customer_segments s JOIN customers c ON c.customer_id = s.customer_id
        LEFT JOIN branches b ON b.branch_id = c.branch
        LEFT JOIN customer_features f ON f.customer_id = s.customer_id AND f.as_of = s.as_of
        LEFT JOIN customer_scores sc ON sc.customer_id = s.customer_id AND sc.as_of = s.as_of
        WHERE s.as_of = :as_of"""


# Each customer's latest score in each calendar month of the window (by default just the month of
# `as_of`), whatever the dimensions: so cells of exports with and without `month` count the same units. The
# days are walked a seek each (store.each_day): a max per month over the window's index entries read a
# million entries for every day kept.
# Customers first (CROSS JOIN fixes SQLite's join order): driven from the day's scores in risk order, every
# lookup of a customer and a segment landed on a random page of the store (44 s against 33 s at 1M).
_CHURN_UNITS = f"""
        SELECT c.rowid AS customer_id, substr(sc.as_of, 1, 7) AS month, sc.risk_band AS risk_band,
               coalesce(CAST(sg.segment AS TEXT), '{UNKNOWN}') AS segment,
               {_CUSTOMER_DIMENSIONS['region']} AS region, {_CUSTOMER_DIMENSIONS['branch']} AS branch,
               sc.probability AS churn_probability, sc.risk_band = 'high' AS high_risk
        FROM customers c CROSS JOIN customer_scores sc ON sc.customer_id = c.customer_id
        LEFT JOIN branches b ON b.branch_id = c.branch
        LEFT JOIN customer_segments sg ON sg.customer_id = sc.customer_id AND sg.as_of = sc.as_of
        WHERE sc.as_of IN (WITH RECURSIVE {each_day('customer_scores')}
                           SELECT max(d) FROM days WHERE d >= date(:as_of, 'start of month', :window) AND d <= :as_of
                           GROUP BY substr(d, 1, 7))"""


def _months(store, params) -> int:
    return params["months"]


def _tag_catalogue_size(store, params) -> int:
    return max(1, len(_tag_sizes(store, params)))


# Both tag reports count each customer's set of tags (a row of customer_tags, a JSON array), not rows of
# tags (or pairs of them) joined in SQL: at a million customers the pairs were 45 million rows held in memory
# (6 GB, growing with customers) and sorted three times for the marginals. A set comes back with no
# identifier; customers with the same set (and dimensions) are counted together, a chunk of sets at a time,
# so memory stays flat.
def _tag_sets_sql(dimensions: bool) -> str:
    by = (f"{_CUSTOMER_DIMENSIONS['region']}, coalesce(CAST(sg.segment AS TEXT), '{UNKNOWN}'), "
          if dimensions else "")
    joins = ("LEFT JOIN branches b ON b.branch_id = c.branch LEFT JOIN customer_segments sg "
             "ON sg.customer_id = c.customer_id AND sg.as_of = :as_of" if dimensions else "")
    return f"""
        SELECT {by}t.tags
        FROM customer_tags t CROSS JOIN customers c ON c.customer_id = t.customer_id
        {joins}
        WHERE t.as_of = :as_of"""


TAG_SETS_PER_CHUNK = 100_000
_TAG_DIMENSIONS = ("region", "segment")  # in the order _tag_sets_sql selects them


def _count_tag_sets(store: Store, sql: str, params: dict, add: Callable[[Counter], None]) -> None:
    """Each customer's (dimensions..., joined tags) counted with the same ones, handed to `add` by chunks."""
    chunk: Counter = Counter()
    for row in store.execute(sql, {"as_of": params["as_of"]}):
        chunk[tuple(row)] += 1
        if len(chunk) >= TAG_SETS_PER_CHUNK:
            add(chunk)
            chunk = Counter()
    if chunk:
        add(chunk)


def _held(chunk: Counter) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The chunk's tags in SQLite's order of text (for UTF-8, Python's order of code points), which of them
    each set holds (0/1, sets x tags) and how many customers hold each set (a column)."""
    sets = [json.loads(key[-1]) for key in chunk]
    names = sorted({tag for tags in sets for tag in tags})
    code = {name: i for i, name in enumerate(names)}
    held = np.zeros((len(chunk), len(names)), dtype=np.int64)
    for row, tags in enumerate(sets):
        held[row, [code[tag] for tag in tags]] = 1
    return names, held, np.fromiter(chunk.values(), dtype=np.int64, count=len(chunk))[:, None]


@dataclass
class _TagCounts:
    """tag_counts' rows: a customer is a unit of each tag they hold."""
    wanted: list[tuple[str, ...]]
    customers: dict = field(default_factory=dict)  # grouping: Counter of its keys
    units: dict = field(default_factory=dict)

    def add(self, chunk: Counter) -> None:
        names, held, weight = _held(chunk)
        counted = pd.DataFrame(held * weight)  # columns: the tags' positions in `names`
        counted["customers"], counted["units"] = weight[:, 0], held.sum(axis=1) * weight[:, 0]
        keys = list(chunk)
        for group in self.wanted:
            dims = [d for d in group if d != "tag"]
            by = [np.array([key[_TAG_DIMENSIONS.index(d)] for key in keys], dtype=object) for d in dims]
            totals = counted.groupby(by).sum() if dims else counted.sum().to_frame().T
            customers = self.customers.setdefault(group, Counter())
            units = self.units.setdefault(group, Counter())
            for index, row in zip(totals.index, totals.to_numpy(dtype=np.int64)):
                at = dict(zip(dims, index if isinstance(index, tuple) else (index,)))
                if "tag" in group:
                    for position in np.flatnonzero(row[:len(names)]):
                        key = tuple(names[position] if d == "tag" else at[d] for d in group)
                        customers[key] += int(row[position])
                        units[key] += int(row[position])
                elif row[-2]:
                    key = tuple(at[d] for d in group)
                    customers[key] += int(row[-2])
                    units[key] += int(row[-1])

    def rows(self, group: tuple[str, ...]) -> list[tuple]:
        customers, units = self.customers.get(group, Counter()), self.units.get(group, Counter())
        if not group and not customers:
            return [(0, None)]  # as SQL's grand total over no units
        return [key + (n, units[key]) for key, n in customers.items()]


def _tag_count_rows(store: Store, params: dict, wanted: list[tuple[str, ...]]) -> dict[tuple[str, ...], list[tuple]]:
    counts = _TagCounts(wanted)
    _count_tag_sets(store, _tag_sets_sql(dimensions=True), params, counts.add)
    return {group: counts.rows(group) for group in wanted}


@dataclass
class _PairCounts:
    """tag_overlap's rows: a customer is a unit of each pair of tags they hold, (tag_a, tag_b) with
    tag_a < tag_b."""
    both: Counter = field(default_factory=Counter)  # (tag, later tag): customers holding both
    first: Counter = field(default_factory=Counter)  # tag: customers holding it and a later tag
    first_units: Counter = field(default_factory=Counter)  # tag: its pairs with later tags
    second: Counter = field(default_factory=Counter)  # tag: customers holding it and an earlier tag
    second_units: Counter = field(default_factory=Counter)
    customers: int = 0  # customers with two tags or more
    units: int = 0  # pairs

    def add(self, chunk: Counter) -> None:
        names, held, weight = _held(chunk)
        later = np.cumsum(held[:, ::-1], axis=1)[:, ::-1] - held  # tags after each held one
        earlier = np.cumsum(held, axis=1) - held
        both = (held * weight).T @ held
        for i, j in zip(*np.nonzero(np.triu(both, 1))):
            self.both[names[i], names[j]] += int(both[i, j])
        for counter, values in ((self.first, held * (later > 0)), (self.first_units, held * later),
                                (self.second, held * (earlier > 0)), (self.second_units, held * earlier)):
            for i, n in enumerate((values * weight).sum(axis=0)):
                if n:
                    counter[names[i]] += int(n)
        size = held.sum(axis=1, keepdims=True)
        self.customers += int((weight * (size >= 2)).sum())
        self.units += int((weight * (size * (size - 1) // 2)).sum())

    def rows(self, group: tuple[str, ...]) -> list[tuple]:
        if not group:
            return [(self.customers, self.units or None)]  # NULL units, as SQL's, when nobody holds two tags
        if len(group) == 2:
            return [tuple({"tag_a": a, "tag_b": b}[d] for d in group) + (n, n) for (a, b), n in self.both.items()]
        customers, units = ((self.first, self.first_units) if group == ("tag_a",) else
                            (self.second, self.second_units))
        return [(tag, n, units[tag]) for tag, n in customers.items()]


def _tag_pair_rows(store: Store, params: dict, wanted: list[tuple[str, ...]]) -> dict[tuple[str, ...], list[tuple]]:
    counts = _PairCounts()
    _count_tag_sets(store, _tag_sets_sql(dimensions=False), params, counts.add)
    return {group: counts.rows(group) for group in wanted}


def _tag_sizes(store: Store, params: dict) -> dict[str, int]:
    return dict(store.rows("SELECT first, customers FROM tag_overlaps WHERE as_of = ? AND first = second",
                           (params["as_of"],)))


# A campaign's customers: those in its responses (ingested, or recorded by staff in the console) and, for the
# campaigns made on the box, every member of both groups, so the control group is counted too.
_CAMPAIGN_UNITS = f"""
        SELECT c.rowid AS customer_id, r.campaign_id AS campaign, coalesce(max(r.arm), '{UNKNOWN}') AS arm,
               {_CUSTOMER_DIMENSIONS['region']} AS region,
               coalesce(CAST(sg.segment AS TEXT), '{UNKNOWN}') AS segment,
               max(r.responded) AS responded, sc.probability AS churn_probability
        FROM (SELECT customer_id, campaign_id, group_name AS arm, responded_at IS NOT NULL AS responded
              FROM campaign_responses
              UNION ALL SELECT customer_id, campaign_id, arm, 0 FROM campaign_members) r
        JOIN customers c ON c.customer_id = r.customer_id
        LEFT JOIN branches b ON b.branch_id = c.branch
        LEFT JOIN customer_segments sg ON sg.customer_id = r.customer_id AND sg.as_of = :as_of
        LEFT JOIN customer_scores sc ON sc.customer_id = r.customer_id AND sc.as_of = :as_of
        GROUP BY r.customer_id, r.campaign_id"""


def _campaign_count(store, params) -> int:
    return max(1, store.scalar("SELECT count(*) FROM (SELECT campaign_id FROM campaign_responses UNION "
                               "SELECT campaign_id FROM campaign_members)") or 1)


def _campaign_labels(store: Store, params: dict) -> dict:
    return {"campaign": {r[0]: (r[1] or r[0], r[1] or r[0]) for r in store.rows("SELECT campaign_id, name FROM campaigns")}}


_HOLDING_UNITS = f"""
        SELECT c.rowid AS customer_id, coalesce(h.category, h.product_code, '{UNKNOWN}') AS product,
               {_CUSTOMER_DIMENSIONS['region']} AS region, {_CUSTOMER_DIMENSIONS['age_band']} AS age_band,
               sum(h.amount) AS amount
        FROM product_holdings h JOIN customers c ON c.customer_id = h.customer_id
        LEFT JOIN branches b ON b.branch_id = c.branch
        WHERE (h.opened_on IS NULL OR h.opened_on <= :as_of) AND (h.closed_on IS NULL OR h.closed_on > :as_of)
        GROUP BY h.customer_id, product"""


def _product_count(store, params) -> int:
    return max(1, store.scalar("SELECT count(DISTINCT coalesce(category, product_code)) FROM product_holdings") or 1)


_PROBABILITY = Measure("churn_probability", "mean", (0.0, 1.0), False, "mean churn probability", "平均流失概率")
_BALANCE_CAP = 1_000_000.0

REPORTS: dict[str, Report] = {r.name: r for r in (
    Report("segment_profile", "Segment sizes and profiles", "客群规模与画像", "customers",
           ("segment", "region", "branch", "age_band"),
           (Measure("balance", "mean", (0.0, _BALANCE_CAP), True, "mean balance", "平均余额"),
            Measure("tenure_years", "mean", (0.0, 50.0), False, "mean tenure (years)", "平均客龄（年）"),
            Measure("products", "mean", (0.0, 20.0), False, "mean products held", "平均持有产品数"),
            _PROBABILITY),
           frozenset({"customer_segments", "customers", "branches", "customer_features", "customer_scores", "segment_profiles"}),
           _SEGMENT_PROFILE_UNITS, labels=_segment_labels),
    Report("churn_risk", "Churn risk", "流失风险", "customers",
           ("segment", "branch", "region", "month", "risk_band"),
           (_PROBABILITY,
            Measure("high_risk", "count", (0.0, 1.0), False, "customers at high risk", "高风险客户数")),
           frozenset({"customer_scores", "customers", "branches", "customer_segments", "segment_profiles"}),
           _CHURN_UNITS, max_units_per_customer=_months, labels=_segment_labels),
    Report("tag_counts", "Tag counts", "标签人数", "customers with the tag",
           ("tag", "region", "segment"), (),
           frozenset({"customer_tags", "tag_overlaps", "customers", "branches", "customer_segments",
                      "segment_profiles"}),
           rows_by_grouping=_tag_count_rows, required_dimensions=("tag",), publishes_totals=False,
           max_units_per_customer=_tag_catalogue_size, labels=_segment_labels),
    Report("tag_overlap", "Tag overlaps", "标签重叠", "customers with both tags",
           ("tag_a", "tag_b"), (), frozenset({"customer_tags", "tag_overlaps", "customers"}),
           rows_by_grouping=_tag_pair_rows, required_dimensions=("tag_a", "tag_b"), publishes_totals=False,
           max_units_per_customer=lambda store, params: _tag_catalogue_size(store, params) ** 2,
           intersection_sizes=_tag_sizes),
    Report("campaign_results", "Campaign results", "营销活动效果", "customers in the campaign",
           ("campaign", "arm", "region", "segment"),
           (Measure("responded", "count", (0.0, 1.0), False, "customers who responded", "响应客户数"),
            _PROBABILITY),
           frozenset({"campaign_responses", "campaign_members", "campaigns", "customers", "branches",
                      "customer_segments", "customer_scores", "segment_profiles"}),
           _CAMPAIGN_UNITS, unit_key=("campaign",), max_units_per_customer=_campaign_count,
           labels=lambda store, params: {**_campaign_labels(store, params), **_segment_labels(store, params)}),
    Report("product_holdings", "Product holdings", "产品持有", "holdings",
           ("product", "age_band", "region"),
           (Measure("amount", "sum", (0.0, _BALANCE_CAP), True, "amount held", "持有金额"),),
           frozenset({"product_holdings", "customers", "branches"}),
           _HOLDING_UNITS, unit_key=("product",), max_units_per_customer=_product_count),
)}


def get(name: str) -> Report:
    report = REPORTS.get(name)
    if report is None:
        raise PolicyError(f"unknown report '{name}' (reports: {', '.join(REPORTS)})")
    return report


def resolve_parameters(store: Store, report: Report, as_of: date | None, months: int = 1) -> dict:
    """The date a report is computed for: the given one, or the latest date the pipeline has results for."""
    source = {"tag_counts": "customer_tags", "tag_overlap": "customer_tags"}.get(report.name, "customer_scores")
    chosen = as_of.isoformat() if as_of else (_latest_as_of(store, source) or _latest_as_of(store, "customer_segments"))
    if chosen is None:
        raise PolicyError(f"report '{report.name}' has no data yet: run `appliance run nightly` first")
    params = {"as_of": chosen}
    if report.name == "churn_risk":
        if not 1 <= months <= 24:
            raise PolicyError("--months must be between 1 and 24")
        params["months"] = months
    return params


def check_dimensions(report: Report, dims: tuple[str, ...]) -> None:
    unknown = [d for d in dims if d not in report.dimensions]
    if unknown:
        raise PolicyError(f"report '{report.name}' has no dimension '{unknown[0]}' "
                          f"(dimensions: {', '.join(report.dimensions)})")
    if len(set(dims)) != len(dims):
        raise PolicyError("a dimension was given twice")
    if not dims or len(dims) > MAX_DIMENSIONS:
        raise PolicyError(f"choose 1 to {MAX_DIMENSIONS} dimensions (--by)")
    missing = [d for d in report.required_dimensions if d not in dims]
    if missing:
        raise PolicyError(f"report '{report.name}' needs the dimension '{missing[0]}'")


UNITS = "report_units"


def _aggregate_sql(report: Report, group: tuple[str, ...], top: int, clamp: bool, one_unit_each: bool = False) -> str:
    """Cells (or marginals) over `group`: customers, units, and per measure its sum, its count of values
    and the sum of its `top` largest per-customer contributions (in absolute value). `one_unit_each`: no
    customer has two units, so each unit is its customer's total as it stands (a sort of every unit saved)."""
    keys = ", ".join(group)
    partition = f"PARTITION BY {keys}" if group else ""
    per_customer, ranked, outer = [], [], []
    for m in report.measures:
        value = f"min(max({m.name}, {m.bounds[0]!r}), {m.bounds[1]!r})" if clamp else m.name
        if one_unit_each:  # the sum and count of one value, as SQLite's sum() and count() give them
            per_customer += [f"{value} AS s_{m.name}", f"{m.name} IS NOT NULL AS n_{m.name}"]
        else:
            per_customer += [f"sum({value}) AS s_{m.name}", f"count({m.name}) AS n_{m.name}"]
        outer += [f"coalesce(sum(s_{m.name}), 0)", f"sum(n_{m.name})"]
        if m.dominance and top == 1:  # the largest contribution: no ranking needed
            outer += [f"coalesce(max(abs(s_{m.name})), 0)", f"coalesce(sum(abs(s_{m.name})), 0)"]
        elif m.dominance:  # the ranking is a sort of every customer: only where the dominance rule reads it
            ranked.append(f"row_number() OVER ({partition} ORDER BY abs(coalesce(s_{m.name}, 0)) DESC) AS r_{m.name}")
            outer += [f"coalesce(sum(CASE WHEN r_{m.name} <= {int(top)} THEN abs(s_{m.name}) END), 0)",
                      f"coalesce(sum(abs(s_{m.name})), 0)"]
        else:
            outer += ["0", "0"]
    select_keys = f"{keys}, " if group else ""
    units = "1" if one_unit_each else "count(*)"
    grouped = "" if one_unit_each else f"GROUP BY {select_keys}customer_id"
    return f"""
        WITH per_customer AS (
            SELECT {select_keys}customer_id, {units} AS units {''.join(', ' + p for p in per_customer)}
            FROM temp.{UNITS} {grouped}),
        ranked AS (SELECT *{''.join(', ' + r for r in ranked)} FROM per_customer)
        SELECT {select_keys}count(*), sum(units){''.join(', ' + o for o in outer)}
        FROM ranked {'GROUP BY ' + keys if group else ''}"""


def one_unit_each(report: Report, group: tuple[str, ...]) -> bool:
    return bool(report.unit_key) and set(report.unit_key) <= set(group)


def groupings(dims: tuple[str, ...]) -> list[tuple[str, ...]]:
    """What a table over `dims` holds: its cells, then every marginal down to the grand total."""
    return [group for size in range(len(dims), -1, -1) for group in combinations(dims, size)]


def aggregate_rows(store: Store, report: Report, wanted: list[tuple[str, ...]], params: dict, *, top: int = 1,
                   clamp: bool = False, cache_mib: int = 0) -> dict[tuple[str, ...], list[tuple]]:
    """Each grouping's rows (its keys, customers, units, then four columns per measure), from the units
    joined once into memory: joining them afresh for each grouping cost a minute a report at a million.
    `cache_mib`, when set, is the page cache the join may use (the customers' pages are then decrypted once,
    not again on every lookup that missed the store's own smaller cache)."""
    sql_params = {"as_of": params["as_of"], "window": f"-{params.get('months', 1) - 1} months"}
    before = store.scalar("PRAGMA cache_size")
    if cache_mib:  # set outside reading_only, whose authorizer refuses pragmas
        store.execute(f"PRAGMA cache_size = -{int(cache_mib) * 1024}")
    try:
        with store.reading_only(report.tables, scratch=UNITS):
            if report.rows_by_grouping:
                return report.rows_by_grouping(store, params, wanted)
            store.execute(f"DROP TABLE IF EXISTS temp.{UNITS}")
            store.execute(f"CREATE TEMP TABLE {UNITS} AS {report.units_sql}", sql_params)
            try:
                unique = not report.unit_key and bool(store.scalar(
                    f"SELECT count(*) = count(DISTINCT customer_id) FROM temp.{UNITS}"))
                return {group: [tuple(row) for row in store.rows(_aggregate_sql(
                            report, group, top, clamp, unique or one_unit_each(report, group)))]
                        for group in wanted}
            finally:
                store.execute(f"DROP TABLE temp.{UNITS}")
    finally:
        store.execute(f"PRAGMA cache_size = {int(before)}")


def labels(store: Store, report: Report, params: dict) -> dict:
    with store.reading_only(report.tables):
        return report.labels(store, params)


def counts(store: Store, report: Report, params: dict) -> dict:
    """What a table needs besides its rows and labels: intersection sizes, units a customer may hold."""
    with store.reading_only(report.tables):
        return {"sizes": report.intersection_sizes(store, params) if report.intersection_sizes else None,
                "max_units_per_customer": report.max_units_per_customer(store, params)}


def assemble(report: Report, dims: tuple[str, ...], params: dict, rows: dict[tuple[str, ...], list],
             labels: dict, counts: dict) -> Table:
    table = Table(report, dims, dict(params), labels=labels, max_units_per_customer=counts["max_units_per_customer"])
    for group in groupings(dims):
        # In key order (as SQLite's GROUP BY gives it, NULL first): a table precomputed over the dimensions
        # in another order lists its rows like one computed afresh.
        for row in sorted(rows[group], key=lambda r: tuple((v is not None, str(v)) for v in r[:len(group)])):
            if row[len(group)] == 0:
                continue  # an empty grand total: no customers at all
            table.aggregates.append(_aggregate(report, group, row, counts["sizes"]))
    return table


def compute(store: Store, report: Report, dims: tuple[str, ...], params: dict, *, top: int = 1,
            clamp: bool = False, cache_mib: int = 0) -> Table:
    """The report's cells and all their marginals (every subset of the dimensions), from the store."""
    check_dimensions(report, dims)
    rows = aggregate_rows(store, report, groupings(dims), params, top=top, clamp=clamp, cache_mib=cache_mib)
    return assemble(report, dims, params, rows, labels(store, report, params), counts(store, report, params))


def _aggregate(report: Report, group: tuple[str, ...], row: tuple, sizes: dict | None) -> Aggregate:
    key = {d: str(v) for d, v in zip(group, row)}
    values = row[len(group):]
    customers, units = int(values[0]), int(values[1] or 0)
    sums, counted, shares = {}, {}, {}
    for i, m in enumerate(report.measures):
        total, n, top_abs, all_abs = values[2 + 4 * i: 6 + 4 * i]
        sums[m.name], counted[m.name] = float(total), int(n or 0)
        shares[m.name] = (top_abs / all_abs) if all_abs else 0.0
    differences = ()
    if sizes is not None and len(key) == len(report.required_dimensions):
        differences = tuple(sizes.get(key[d], 0) - units for d in report.required_dimensions)
    return Aggregate(key, customers, units, sums, counted, shares, differences)
