"""Nightly features, full against incremental: a full rebuild of every customer's features, then one day of
new data (about 1 % of customers transact) and the incremental run after it, which recomputes only the
customers whose data changed or crossed a window's edge; then a full rebuild of the same day, to check the
two agree exactly. Beside them, a floor: the windowed transaction sums in plain pandas on an in-memory frame.

    .venv/bin/python benchmarks/incremental.py [--customers 100000] [--tx-per-month 0.3]

Target (issue 16): the incremental nightly after one day of data in under a minute at 1,000,000 customers.
After the incremental features, the rest of that night's pipeline (churn scores with reasons and drift,
segments, tags and lifecycle, with the shipped models) is timed too: the whole incremental nightly.
"""

import argparse
import csv
import random
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd


def _one_day(data: Path, out: Path, day: date, share: float) -> int:
    """A day's transactions for `share` of the customers, on their first account."""
    first_account = {}
    with open(data / "accounts.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            first_account.setdefault(row["customer_no"], row["account_no"])
    rng = random.Random(5)
    chosen = [c for c in sorted(first_account) if rng.random() < share]
    out.mkdir()
    with open(out / "transactions.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["txn_id", "account_no", "customer_no", "txn_time", "amount", "dc_flag", "balance_after",
                         "channel", "category", "memo"])
        for n, customer in enumerate(chosen):
            writer.writerow([f"NEW{n:09d}", first_account[customer], customer, f"{day} 10:{n % 60:02d}:00",
                             f"{rng.randint(10, 5000)}.00", rng.choice("DC"), f"{rng.randint(0, 90000)}.00",
                             rng.choice(["app", "atm", "branch", "web"]), "shopping", ""])
    return len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--tx-per-month", type=float, default=0.3,
                        help="customer-initiated transactions a month (0.3: about 1 %% of customers a day)")
    parser.add_argument("--months", type=int, default=18)
    args = parser.parse_args()
    from appliance import features
    from appliance.access import system
    from appliance.demo_data import generate
    from appliance.home import Home
    from appliance.jobs import build_features, score_customers, tag_customers
    from appliance.keys import Credentials, new_key_file
    from appliance.shipped import install_models


    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        started = time.perf_counter()
        generate(folder / "data", args.customers, seed=3, months=args.months, tx_per_month=args.tx_per_month)
        print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
        key = folder / "bench.key"
        new_key_file(key)
        actor = system("benchmark")
        with Home.init(folder / "home", Credentials(key_file=key), admin="admin",
                       admin_password="benchmark-admin") as home:
            started = time.perf_counter()
            loaded = home.ingestor(actor).ingest(home.mapping("demo"), [folder / "data"]).rows_loaded
            ingest_seconds = time.perf_counter() - started
            print(f"ingested {loaded:,} rows in {ingest_seconds:.0f} s", flush=True)
            install_models(home.path / "models")
            transactions = home.store.scalar("SELECT count(*) FROM transactions")
            latest = home.store.scalar("SELECT max(booked_at) FROM transactions")
            day = date.fromisoformat(latest[:10]) + timedelta(days=1)
            started = time.perf_counter()
            customers = build_features(home, day, full=True)
            full_seconds = time.perf_counter() - started

            print(f"full rebuild in {full_seconds:.0f} s", flush=True)
            score_customers(home, day, actor)
            tag_customers(home, day)

            active = _one_day(folder / "data", folder / "day", day, 0.01)
            started = time.perf_counter()
            home.ingestor(actor).ingest(home.mapping("demo"), [folder / "day"])
            day_ingest_seconds = time.perf_counter() - started
            next_day = day + timedelta(days=1)
            started = time.perf_counter()
            build_features(home, next_day)
            incremental_seconds = time.perf_counter() - started
            started = time.perf_counter()
            score_customers(home, next_day, actor)
            score_seconds = time.perf_counter() - started
            started = time.perf_counter()
            tag_customers(home, next_day)
            tag_seconds = time.perf_counter() - started
            run = home.store.query("SELECT mode, recomputed FROM feature_runs WHERE as_of = ?",
                                   (next_day.isoformat(),))[0]
            incremental = features.load(home.store, next_day)
            started = time.perf_counter()
            build_features(home, next_day, full=True)
            full_again_seconds = time.perf_counter() - started
            rebuilt = features.load(home.store, next_day)
            columns = [*features.FEATURE_NAMES, "churn_label"]
            agree = incremental[columns].astype("float64").equals(rebuilt[columns].astype("float64"))

            rows = home.store.rows("SELECT customer_id, booked_at, amount, direction FROM transactions "
                                   "WHERE booked_at >= ?", ((day - timedelta(days=730)).isoformat(),))
            frame = pd.DataFrame(rows, columns=["customer_id", "booked_at", "amount", "direction"])
            frame["booked_at"] = pd.to_datetime(frame["booked_at"], format="ISO8601")
            started = time.perf_counter()
            age = (pd.Timestamp(day) - frame["booked_at"]).dt.days
            for days in (90, 365):
                recent = frame[age <= days]
                recent.groupby("customer_id").size()
                recent[recent["direction"] == "debit"].groupby("customer_id")["amount"].sum()
                recent[recent["direction"] == "credit"].groupby("customer_id")["amount"].sum()
            floor_seconds = time.perf_counter() - started
    print(f"{customers:,} customers, {transactions:,} transactions over {args.months} months "
          f"({args.tx_per_month} customer transactions a month each, plus the generator's salaries and fees)")
    print(f"  full rebuild                 {full_seconds:>8.1f} s  {customers / full_seconds:>10,.0f} customers/s")
    print(f"  ingest of all that: {ingest_seconds:.0f} s")
    print(f"  one day's data: {active:,} customers active ({active / customers:.1%}), ingested in "
          f"{day_ingest_seconds:.1f} s")
    print(f"  incremental run ({run['mode']})    {incremental_seconds:>8.1f} s  recomputed {run['recomputed']:,} "
          f"({run['recomputed'] / customers:.1%}), carried the rest")
    print(f"  then churn scores, reasons, drift, segments {score_seconds:>6.1f} s")
    print(f"  then tags and lifecycle      {tag_seconds:>8.1f} s")
    whole = incremental_seconds + score_seconds + tag_seconds
    print(f"  whole incremental nightly    {whole:>8.1f} s  ({whole * 1e6 / customers / 60:.1f} min at 1,000,000)")
    print(f"  full rebuild of the same day {full_again_seconds:>8.1f} s  identical to the incremental run: {agree}")
    print(f"  floor: windowed sums in pandas, in memory {floor_seconds:>6.1f} s  "
          f"{customers / floor_seconds:>10,.0f} customers/s")
    print(f"  projected at 1,000,000 customers: full {full_seconds * 1e6 / customers / 60:.1f} min, "
          f"incremental {incremental_seconds * 1e6 / customers / 60:.1f} min")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
