"""Disclosure control on tables built by hand: primary and complementary suppression, the differencing
defence, rounding and noise. Recoverability is judged here by an attacker written independently of the
product's check: a cell is exposed when adding its equation does not raise the rank of what is known."""

import itertools
import random

import numpy as np
import pytest

from appliance import disclosure
from appliance.disclosure import PUBLISHED, SUPPRESSED, Earlier, cell_key
from appliance.errors import PolicyError
from appliance.policies import SHIPPED_DIR, ExportPolicy
from appliance.reports import REPORTS, Aggregate, Table

POLICY = ExportPolicy.load(SHIPPED_DIR)
PROFILE = REPORTS["segment_profile"]
DIMS = ("segment", "region")


def table(cells: dict[tuple, int], dims=DIMS, balances: dict[tuple, list[float]] | None = None,
          report=PROFILE) -> Table:
    """Cells and every marginal, as reports.compute builds them; balances give each customer's value."""
    balances = balances or {}
    result = Table(report, dims, {"as_of": "2026-01-01"})
    for size in range(len(dims), -1, -1):
        for group in itertools.combinations(dims, size):
            counts, values = {}, {}
            for key, n in cells.items():
                sub = tuple(v for d, v in zip(dims, key) if d in group)
                counts[sub] = counts.get(sub, 0) + n
                values.setdefault(sub, []).extend(balances.get(key, [1.0] * n))
            for sub, n in counts.items():
                if not n:
                    continue
                sums = {m.name: 0.0 for m in report.measures}
                shares = {m.name: 0.0 for m in report.measures}
                if "balance" in sums:
                    sums["balance"] = float(sum(values[sub]))
                    shares["balance"] = max(values[sub]) / sums["balance"]
                result.aggregates.append(Aggregate(dict(zip(group, sub)), n, n, sums,
                                                   {m.name: n for m in report.measures}, shares))
    return result


def exposed(tables_and_protections, known_earlier=()) -> list[str]:
    """Every suppressed aggregate (of any of the exports) whose value follows from everything published by
    all of them. Unknowns are the finest cells of the finest table."""
    finest_table = max((t for t, _ in tables_and_protections), key=lambda t: len(t.dimensions))
    finest = [a for a in finest_table.aggregates if a.level == len(finest_table.dimensions)]

    def vector(key):
        return np.array([1.0 if all(c.key.get(d) == v for d, v in key.items()) else 0.0 for c in finest])

    known = [vector(a.key) for t, p in tables_and_protections for a in p.by_status(PUBLISHED)]
    hidden = {cell_key(a.key): a.key for t, p in tables_and_protections for a in p.by_status(SUPPRESSED)}
    if not known:
        return []
    matrix = np.array(known)
    rank = np.linalg.matrix_rank(matrix)
    return sorted(name for name, key in hidden.items()
                  if np.linalg.matrix_rank(np.vstack([matrix, vector(key)])) == rank)


def earlier_of(protection) -> Earlier:
    return Earlier({cell_key(a.key) for a in protection.by_status(PUBLISHED)},
                   {cell_key(a.key) for a in protection.by_status(SUPPRESSED)})


def test_random_tables_publish_only_safe_cells_and_hide_every_suppressed_one():
    rng = random.Random(20261123)
    for _ in range(150):
        rows, cols = rng.randint(1, 5), rng.randint(2, 5)
        cells = {(f"s{i}", f"r{j}"): rng.choice([0, 1, 2, 4, 9, 10, 14, 30, 120]) for i in range(rows)
                 for j in range(cols)}
        if not any(cells.values()):
            continue
        built = table(cells)
        try:
            protection = disclosure.protect(built, POLICY, (), Earlier())
        except PolicyError:
            continue  # too little left to protect with: refused, nothing published
        assert all(a.customers >= POLICY.min_cell_size for a in protection.by_status(PUBLISHED))
        assert exposed([(built, protection)]) == []


def test_a_lone_small_cell_gets_a_complement_in_its_row_and_column():
    cells = {("s0", "r0"): 3, ("s0", "r1"): 40, ("s1", "r0"): 50, ("s1", "r1"): 60}
    protection = disclosure.protect(table(cells), POLICY, (), Earlier())
    suppressed = {cell_key(a.key) for a in protection.by_status(SUPPRESSED)}
    assert cell_key({"segment": "s0", "region": "r0"}) in suppressed
    assert len(suppressed) == 4  # a rectangle: the cheapest pattern that hides one cell in a 2x2 with totals
    assert exposed([(table(cells), protection)]) == []


def test_dominated_sums_are_suppressed_and_published_sums_pass_dominance():
    cells = {("s0", "r0"): 20, ("s0", "r1"): 20, ("s1", "r0"): 20, ("s1", "r1"): 20}
    balances = {key: [100.0] * 20 for key in cells}
    balances[("s0", "r0")] = [100.0] * 19 + [50_000.0]  # one customer holds almost all of the cell
    built = table(cells, balances=balances)
    protection = disclosure.protect(built, POLICY, ("balance",), Earlier())
    dominated = cell_key({"segment": "s0", "region": "r0"})
    assert protection.status[dominated] == SUPPRESSED
    assert "balance" in protection.reasons[dominated]
    for agg in protection.by_status(PUBLISHED):
        assert agg.top_share["balance"] <= POLICY.dominance_share


def test_differencing_two_exports_is_defeated_by_the_ledger():
    """One export by segment publishes both segment totals; a second by segment and region would, without
    the ledger, publish a pattern that together with the first gives away a cell of one customer."""
    cells = {("s0", "r0"): 40, ("s1", "r0"): 1, ("s1", "r1"): 40}
    by_segment = table({("s0",): 40, ("s1",): 41}, dims=("segment",))
    first = disclosure.protect(by_segment, POLICY, (), Earlier())
    assert first.suppressed_count == 0

    naive = disclosure.protect(table(cells), POLICY, (), Earlier())
    assert exposed([(by_segment, first), (table(cells), naive)]), "the attack works without the ledger"

    guarded = disclosure.protect(table(cells), POLICY, (), earlier_of(first))
    assert exposed([(by_segment, first), (table(cells), guarded)]) == []


def test_a_cell_suppressed_earlier_stays_suppressed_in_a_coarser_export():
    cells = {("s0", "r0"): 3, ("s0", "r1"): 9, ("s1", "r0"): 50, ("s1", "r1"): 60, ("s2", "r0"): 30}
    fine = disclosure.protect(table(cells), POLICY, (), Earlier())
    coarse_cells = {("s0",): 12, ("s1",): 110, ("s2",): 30}
    coarse = disclosure.protect(table(coarse_cells, dims=("segment",)), POLICY, (), earlier_of(fine))
    for agg in fine.by_status(SUPPRESSED):
        key = cell_key(agg.key)
        if key in coarse.status:
            assert coarse.status[key] == SUPPRESSED
    assert exposed([(table(cells), fine), (table(coarse_cells, dims=("segment",)), coarse)]) == []


def test_tag_overlaps_whose_difference_would_be_small_are_suppressed():
    overlap = REPORTS["tag_overlap"]
    built = Table(overlap, ("tag_a", "tag_b"), {"as_of": "2026-01-01"})
    built.aggregates = [Aggregate({"tag_a": "a", "tag_b": "b"}, 30, 30, {}, {}, {}, (2, 50)),
                        Aggregate({"tag_a": "a", "tag_b": "c"}, 30, 30, {}, {}, {}, (20, 50))]
    protection = disclosure.protect(built, POLICY, (), Earlier())
    assert protection.status[cell_key({"tag_a": "a", "tag_b": "b"})] == SUPPRESSED
    assert protection.status[cell_key({"tag_a": "a", "tag_b": "c"})] == PUBLISHED


def test_released_counts_are_rounded_and_suppressed_cells_carry_no_value():
    cells = {("s0", "r0"): 3, ("s0", "r1"): 41, ("s1", "r0"): 52, ("s1", "r1"): 67}
    protection = disclosure.protect(table(cells), POLICY, ("balance",), Earlier())
    released = disclosure.release(protection, POLICY, 1)
    for row in released.rows:
        if row["status"] == SUPPRESSED:
            assert row["units"] is None and row["balance"] is None
        else:
            assert row["units"] % POLICY.round_counts == 0
    assert released.epsilon == 0


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_noise_through_opendp_spends_the_policy_epsilon(tmp_path, mechanism):
    text = (SHIPPED_DIR / "export.yaml").read_text(encoding="utf-8").replace("mechanism: none",
                                                                             f"mechanism: {mechanism}")
    policy = ExportPolicy.parse(text)
    cells = {("s0", "r0"): 300, ("s0", "r1"): 410, ("s1", "r0"): 520, ("s1", "r1"): 670}
    protection = disclosure.protect(table(cells), policy, ("balance",), Earlier())
    released = disclosure.release(protection, policy, 1)
    assert released.epsilon == policy.privacy.epsilon
    assert (released.delta > 0) == (mechanism == "gaussian")
    true = {cell_key(a.key): a.units for a in protection.by_status(PUBLISHED)}
    noisy = [row["units"] for row in released.rows]
    assert noisy != [true[cell_key({d: row[d] for d in DIMS if row[d] != "*"})] for row in released.rows]
    # noise at this scale moves counts of hundreds by a few dozen at most
    for row in released.rows:
        key = cell_key({d: row[d] for d in DIMS if row[d] != "*"})
        assert abs(row["units"] - true[key]) < 200


def test_too_many_cells_are_refused():
    cells = {(f"s{i}", f"r{j}"): 20 for i in range(40) for j in range(30)}
    with pytest.raises(PolicyError, match="max_cells"):
        disclosure.protect(table(cells), POLICY, (), Earlier())


def test_the_last_gate_refuses_what_protection_would_never_publish():
    cells = {("s0", "r0"): 3, ("s0", "r1"): 40, ("s1", "r0"): 50, ("s1", "r1"): 60}
    protection = disclosure.protect(table(cells), POLICY, (), Earlier())
    disclosure.assert_publishable(protection, POLICY, Earlier())
    small = cell_key({"segment": "s0", "region": "r0"})
    protection.status[small] = PUBLISHED  # a bug that publishes the small cell
    with pytest.raises(PolicyError, match="fewer than 10 customers"):
        disclosure.assert_publishable(protection, POLICY, Earlier())
    protection.status[small] = SUPPRESSED
    partner = next(cell_key(a.key) for a in protection.by_status(SUPPRESSED) if cell_key(a.key) != small)
    protection.status[partner] = PUBLISHED  # a bug that drops a complement
    with pytest.raises(PolicyError, match="recoverable"):
        disclosure.assert_publishable(protection, POLICY, Earlier())
