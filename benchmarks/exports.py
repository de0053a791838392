"""The cost of privacy: each report's share of suppressed cells (primary and complementary, totals
included) under the shipped export policy (k = 10), beside the same report with k = 5 and k = 20.

    .venv/bin/python benchmarks/exports.py [--customers 2000]
    .venv/bin/python benchmarks/exports.py --customers 1000000 --months 3 --tx-per-month 0.3 --demo-only

Runs on generated demo data (the shipped models) and, when ../shared is beside the project, on the
10,000-customer churn set (models trained on it here). Each export is computed fresh, with no earlier
exports in the ledger. "seconds" is one report's aggregation over the store plus its disclosure control
(target at 1,000,000 customers: 5 s each); a short history keeps the 1M-customer run's set-up in minutes
and changes nothing the reports read (they aggregate customers, their features, scores and tags).
"""

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
EXPORTS = [("segment_profile", ("segment",)), ("segment_profile", ("segment", "region")),
           ("segment_profile", ("segment", "age_band")), ("churn_risk", ("segment", "risk_band")),
           ("churn_risk", ("branch", "risk_band")), ("churn_risk", ("region", "risk_band")),
           ("tag_counts", ("tag",)), ("tag_counts", ("tag", "region")), ("tag_overlap", ("tag_a", "tag_b")),
           ("campaign_results", ("arm",)), ("campaign_results", ("arm", "region")),
           ("product_holdings", ("product", "age_band")), ("product_holdings", ("product", "region"))]
KS = (5, 10, 20)


def suppression_table(home, label: str) -> None:
    from appliance import disclosure, reports
    from appliance.errors import PolicyError
    from appliance.policies import ExportPolicy

    text = (home.path / "policies" / "export.yaml").read_text(encoding="utf-8")
    policies = {k: ExportPolicy.parse(text.replace("min_cell_size: 10", f"min_cell_size: {k}")) for k in KS}
    print(f"\n{label}: share of cells suppressed (suppressed / shown, totals included)")
    print(f"{'report':18} {'by':22} {'cells':>6} " + " ".join(f"{'k=' + str(k):>7}" for k in KS) + "  seconds")
    for name, dims in EXPORTS:
        report = reports.get(name)
        try:
            params = reports.resolve_parameters(home.store, report, None)
        except PolicyError:
            continue
        started = time.perf_counter()
        table = reports.compute(home.store, report, dims, params)
        computed = time.perf_counter() - started
        if not table.aggregates:
            print(f"{name:18} {' x '.join(dims):22} {'no data':>6}")
            continue
        shares, protecting = [], []
        for k in KS:
            started = time.perf_counter()
            measures = policies[k].allowed(name, dims)
            try:
                protection = disclosure.protect(table, policies[k], measures, disclosure.Earlier())
                shares.append(f"{protection.suppressed_count / max(protection.shown_count, 1):>7.1%}")
            except PolicyError:
                shares.append(f"{'refused':>7}")
            protecting.append(time.perf_counter() - started)
        cells = sum(1 for a in table.aggregates if a.level == len(dims))
        print(f"{name:18} {' x '.join(dims):22} {cells:>6} " + " ".join(shares)
              + f"  {computed + sum(protecting) / len(protecting):7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--months", type=int, default=18, help="history generated per customer")
    parser.add_argument("--tx-per-month", type=float, default=4.0)
    parser.add_argument("--demo-only", action="store_true", help="skip the churn set")
    parser.add_argument("--home", type=Path, help="time the reports on this home (after its nightly run) instead")
    parser.add_argument("--key", type=Path, help="the home's key file, with --home")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from appliance.access import system
    from appliance.demo_data import generate
    from appliance.home import Home
    from appliance.jobs import nightly
    from appliance.keys import Credentials, new_key_file

    if args.home:
        with Home.open(args.home, Credentials(key_file=args.key)) as home:
            customers = home.store.scalar("SELECT count(*) FROM customers")
            suppression_table(home, f"{args.home}, {customers:,} customers")
        return
    actor = system("benchmark")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        key = folder / "bench.key"
        new_key_file(key)
        started = time.perf_counter()
        generate(folder / "data", args.customers, seed=7, months=args.months, tx_per_month=args.tx_per_month)
        print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
        with Home.init(folder / "demo", Credentials(key_file=key), admin="admin", admin_password="benchmark-admin") as home:
            started = time.perf_counter()
            report = home.ingestor(actor).ingest(home.mapping("demo"), [folder / "data"])
            print(f"ingested {report.rows_loaded:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
            (home.path / "models").mkdir()
            for path in (ROOT / "models").glob("*-*.*"):
                shutil.copy(path, home.path / "models" / path.name)
            as_of = date.fromisoformat(home.store.scalar("SELECT max(booked_at) FROM transactions")[:10])
            started = time.perf_counter()
            nightly(home, as_of + timedelta(days=1), actor)
            print(f"nightly run in {time.perf_counter() - started:.0f} s", flush=True)
            suppression_table(home, f"demo data, {args.customers:,} customers")
        churn_set = SHARED / "churn_modelling"
        if args.demo_only:
            return
        if not churn_set.is_dir():
            print(f"\nchurn set: skipped, {churn_set} is absent")
            return
        from appliance import training

        with Home.init(folder / "churn", Credentials(key_file=key), admin="admin", admin_password="benchmark-admin") as home:
            home.ingestor(actor).ingest(home.mapping("churn_modelling"), [churn_set])
            training.churn_for_home(home, "churn_modelling", None)
            training.segments_for_home(home, "churn_modelling", 6)
            nightly(home, date.today(), actor)
            suppression_table(home, "churn set, 10,000 customers (models trained on it here)")


if __name__ == "__main__":
    main()
