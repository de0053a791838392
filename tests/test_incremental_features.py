"""Incremental nightly features: after several days of batches (new transactions, late ones dated before
the last run, complaints and events, a new account, an erasure), the features an incremental run keeps equal
exactly those a full rebuild computes from the same store, while it recomputes only a few customers."""

import csv
import json
import shutil
from datetime import date, datetime, time, timedelta

import pandas as pd
import pytest

from appliance import features, subjects
from appliance.store import Store
from tests.conftest import DATA_DIR, TESTS

HORIZON = INACTIVITY = 90


def _build(store, as_of, full=False, workers=1, key=None):
    return features.build(store, as_of, chunk_customers=9, horizon_days=HORIZON, inactivity_days=INACTIVITY,
                          full=full, workers=workers, key=key)


def _full_rebuild(home, as_of, tmp_path) -> pd.DataFrame:
    """What a full rebuild computes from the same data, on a copy of the store (the home keeps its chain),
    in two worker processes (the chain runs in one, then in two: each path must agree)."""
    copy_path = tmp_path / f"full-{as_of}.db"
    home.store.backup_to(copy_path, home.keyring.data_key)
    with Store(copy_path, home.keyring.data_key) as copy:
        features.build(copy, as_of, chunk_customers=9, horizon_days=HORIZON, inactivity_days=INACTIVITY, full=True,
                       workers=2, key=home.keyring.data_key)
        return _comparable(features.load(copy, as_of))


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[*features.FEATURE_NAMES, "churn_label"]].astype("float64").sort_index()


def _read(path):
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _day_batch(demo_dir, folder, day: date, n: int, late_days: list[int]):
    """One day's new transactions for some customers, plus late ones dated `late_days` before `day`,
    a complaint filed late, and app events."""
    source = _read(demo_dir / "transactions.csv")
    rows = []
    for i, row in enumerate(source[n * 7: n * 7 + 12]):
        when = day if i < 8 else day - timedelta(days=late_days[i % len(late_days)])
        rows.append({**row, "txn_id": f"TX-{day:%Y%m%d}-{i}", "txn_time": f"{when} 1{i % 10}:15:00",
                     "amount": f"{100 + 13 * i}.25", "balance_after": f"{5000 + 77 * i}.5"})
    _write(folder / "transactions.csv", rows)
    notes = _read(demo_dir / "interactions.csv")[n: n + 2]
    _write(folder / "interactions.csv", [
        {**note, "interaction_id": f"IN-{day:%Y%m%d}-{i}", "type": "complaint",
         "occurred_at": f"{day - timedelta(days=30 * (i + 1))} 09:00:00"} for i, note in enumerate(notes)])
    events = [json.loads(line) for line in (demo_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    (folder / "events.jsonl").write_text("".join(
        json.dumps({**event, "event_id": f"EV{day:%Y%m%d}-{i}", "ts": f"{day - timedelta(days=i * 45)}T08:00:00"},
                   ensure_ascii=False) + "\n" for i, event in enumerate(events[n * 3: n * 3 + 3])), encoding="utf-8")


@pytest.fixture
def loaded(home, demo_dir, tmp_path):
    """The demo customers with one transaction in 15 kept: a customer every few weeks, as most retail
    customers are, rather than the demo's several a week (where every customer crosses some window's edge
    every day and an incremental run recomputes nearly everyone)."""
    sparse = tmp_path / "sparse"
    shutil.copytree(demo_dir, sparse)
    rows = _read(demo_dir / "transactions.csv")
    _write(sparse / "transactions.csv", rows[::15])
    home.ingestor(TESTS).ingest(home.mapping("demo"), [sparse])
    return home


@pytest.mark.parametrize("workers", [1, 2])
def test_incremental_runs_equal_a_full_rebuild_after_several_batches(loaded, demo_dir, tmp_path, workers):
    """In two workers, one plans while this process reads the customers, and they compute chunks while it
    carries the rest."""
    home = loaded
    latest = date.fromisoformat(home.store.scalar("SELECT max(booked_at) FROM transactions")[:10])
    day = latest + timedelta(days=1)
    key = home.keyring.data_key if workers > 1 else None
    _build(home.store, day, workers=workers, key=key)
    assert home.store.scalar("SELECT mode FROM feature_runs WHERE as_of = ?", (day.isoformat(),)) == "full"
    customers = home.store.scalar("SELECT count(*) FROM customer_features WHERE as_of = ?", (day.isoformat(),))
    modes = []
    for step in range(1, 6):
        folder = tmp_path / f"batch-{step}"
        # Late rows: before the last run, on a window's edge (90, 365 days back) and well inside one.
        _day_batch(demo_dir, folder, day, step, late_days=[3, 90, 365, 200])
        home.ingestor(TESTS).ingest(home.mapping("demo"), [folder])
        if step == 3:  # an erasure between runs
            erased = features.load(home.store, day).index[5]
            with home.store.transaction():
                subjects.erase(home.store, subjects.load(home.store, erased))
        day += timedelta(days=1 if step != 4 else 3)  # a weekend without a run
        _build(home.store, day, workers=workers, key=key)
        run = home.store.query("SELECT mode, customers, recomputed FROM feature_runs WHERE as_of = ?",
                               (day.isoformat(),))[0]
        modes.append((run["mode"], run["recomputed"], run["customers"]))
        pd.testing.assert_frame_equal(_comparable(features.load(home.store, day)), _full_rebuild(home, day, tmp_path),
                                      check_exact=True)
    assert all(mode == "incremental" for mode, _, _ in modes), modes
    assert all(recomputed < customers // 2 for _, recomputed, _ in modes), modes  # the point of it
    assert modes[-1][2] == customers - 1  # the erased customer is gone


def test_a_long_gap_or_a_purge_falls_back_to_a_full_rebuild(loaded):
    home = loaded
    latest = date.fromisoformat(home.store.scalar("SELECT max(booked_at) FROM transactions")[:10])
    day = latest + timedelta(days=1)
    _build(home.store, day)
    _build(home.store, day + timedelta(days=features.MAX_GAP_DAYS + 1))
    assert home.store.scalar("SELECT mode FROM feature_runs ORDER BY as_of DESC LIMIT 1") == "full"
    home.audit.record(TESTS, "retention.purge", as_of=day.isoformat(), counts={})
    _build(home.store, day + timedelta(days=features.MAX_GAP_DAYS + 2))
    assert home.store.scalar("SELECT mode FROM feature_runs ORDER BY as_of DESC LIMIT 1") == "full"
    _build(home.store, day + timedelta(days=features.MAX_GAP_DAYS + 3))
    assert home.store.scalar("SELECT mode FROM feature_runs ORDER BY as_of DESC LIMIT 1") == "incremental"


def _moves(table: str, booked: datetime, before: date, after: date) -> bool:
    """Whether a row dated then counts differently in the features on the two dates. A transaction: read or
    not (the two years before the date) and, if read, inside or outside each window (`age <= k`, whole days).
    An event or complaint: read or not (before the date), recent or not (from the date k days back)."""
    def place(day: date) -> tuple:
        if table != "transactions":
            recent = {"digital_events": 90, "interactions": 365}[table]
            return booked.date() < day, day - timedelta(days=recent) <= booked.date() < day
        read = day - timedelta(days=features.TX_READ_DAYS) <= booked.date() < day
        age = (datetime.combine(day, time()) - booked).days
        return (read, *(read and age <= k for k in (*features.TX_WINDOW_EDGES, 730)))

    return place(before) != place(after)


def test_a_row_at_any_moment_near_a_window_edge_is_recomputed_when_it_crosses(loaded, tmp_path):
    """Probe customers with one transaction, app event or complaint each and nothing else, at every spelling
    and time of day around each window's edge, then nights one and two days apart: every probe whose row
    crosses an edge is in the plan, no other probe is but for a transaction band's own margin (its first and
    last midnight), and the incremental features equal a full rebuild."""
    store = loaded.store
    first = date.fromisoformat(store.scalar("SELECT max(booked_at) FROM transactions")[:10]) + timedelta(days=1)
    nights = [first, first + timedelta(days=1), first + timedelta(days=3)]
    probes = []
    for table, edges in (("transactions", (0, 90, 180, 360, 365, 730)), ("digital_events", (0, 90)),
                         ("interactions", (0, 365))):
        for k in edges:
            for shift in range(-4, 3):
                day = nights[1] - timedelta(days=k + 1 + shift)
                probes += [(table, when) for when in (day.isoformat(), f"{day}T00:00:00", f"{day}T00:00:01",
                                                      f"{day}T13:30:00", f"{day}T23:59:59")]
    customers = [f"T-probe-{i:03d}" for i in range(len(probes))]
    with store.transaction():
        batch = store.scalar("SELECT max(batch_id) FROM ingest_batches")
        store.executemany("INSERT INTO customers (customer_id, joined_on, status, source, batch_id) "
                          "VALUES (?, '2015-06-01', 'active', 'demo', ?)", [(c, batch) for c in customers])
        for table, sql in (
                ("transactions", "INSERT INTO transactions (transaction_id, customer_id, booked_at, amount, direction, "
                                 "balance_after, channel, category, source, batch_id) VALUES "
                                 "(?, ?, ?, 100.0, 'debit', 900.0, 'app', 'transfer_out', 'demo', ?)"),
                ("digital_events", "INSERT INTO digital_events (event_id, customer_id, occurred_at, channel, "
                                   "event_type, source, batch_id) VALUES (?, ?, ?, 'app', 'login', 'demo', ?)"),
                ("interactions", "INSERT INTO interactions (interaction_id, customer_id, occurred_at, kind, source, "
                                 "batch_id) VALUES (?, ?, ?, 'complaint', 'demo', ?)")):
            store.executemany(sql, [(f"PROBE-{c}", c, when, batch) for c, (kind, when) in zip(customers, probes)
                                    if kind == table])
    _build(store, nights[0], full=True)
    for before, after in zip(nights, nights[1:]):
        plan = features._plan(store, after, HORIZON, INACTIVITY)
        assert plan is not None
        crossing = {c for c, (table, when) in zip(customers, probes)
                    if _moves(table, datetime.fromisoformat(when), before, after)}
        margin = {c for c, (table, when) in zip(customers, probes)
                  if table == "transactions" and when[10:] in ("", "T00:00:00")}
        assert len(crossing) >= 50 and crossing <= plan.recompute, \
            sorted(probes[customers.index(c)] for c in crossing - plan.recompute)
        assert plan.recompute & set(customers) <= crossing | margin, \
            sorted(probes[customers.index(c)] for c in plan.recompute & set(customers) - crossing)
        _build(store, after)
        pd.testing.assert_frame_equal(_comparable(features.load(store, after)),
                                      _full_rebuild(loaded, after, tmp_path), check_exact=True)


def test_a_carried_tenure_grows_only_where_it_counts_from_a_join_date(home, tmp_path):
    """The churn set gives tenure in years and no join date: carried, its tenure stays as it was, while the
    demo's customers, who have join dates, grow older with the bank (the chain above)."""
    home.ingestor(TESTS).ingest(home.mapping("churn_modelling"), [DATA_DIR / "churn_sample" / "Churn_Modelling.csv"])
    day = date(2025, 3, 3)
    _build(home.store, day)
    later = day + timedelta(days=2)
    _build(home.store, later, workers=2, key=home.keyring.data_key)
    run = home.store.query("SELECT mode, customers, recomputed FROM feature_runs WHERE as_of = ?",
                           (later.isoformat(),))[0]
    assert (run["mode"], run["recomputed"]) == ("incremental", 0) and run["customers"] > 100
    carried = _comparable(features.load(home.store, later))
    pd.testing.assert_frame_equal(carried, _full_rebuild(home, later, tmp_path), check_exact=True)
    pd.testing.assert_series_equal(carried["tenure_days"], _comparable(features.load(home.store, day))["tenure_days"])


def test_features_read_in_two_halves_equal_those_read_at_once(loaded, monkeypatch):
    """Typed as one read types them, also where a column is empty in one half only."""
    home = loaded
    day = date.fromisoformat(home.store.scalar("SELECT max(booked_at) FROM transactions")[:10]) + timedelta(days=1)
    _build(home.store, day)
    ids = home.store.rows("SELECT customer_id FROM customer_features WHERE as_of = ? ORDER BY customer_id",
                          (day.isoformat(),))
    with home.store.transaction():  # balance_now empty for the first half, income for the second
        home.store.execute("UPDATE customer_features SET balance_now = NULL WHERE as_of = ? AND customer_id < ?",
                           (day.isoformat(), ids[len(ids) // 2][0]))
        home.store.execute("UPDATE customer_features SET income = 1.5 WHERE as_of = ? AND customer_id < ?",
                           (day.isoformat(), ids[len(ids) // 2][0]))
    monkeypatch.setattr(features, "LOAD_SPLIT_ROWS", 2)
    halves = features.load(home.store, day, workers=2, key=home.keyring.data_key)
    whole = features.load(home.store, day)
    assert len(whole) == len(ids) > 20 and whole["balance_now"].dtype == "float64"
    pd.testing.assert_frame_equal(halves, whole, check_exact=True)
