"""The cost of privacy: each report's share of suppressed cells (primary and complementary, totals
included) under the shipped export policy (k = 10), beside the same report with k = 5 and k = 20.

    .venv/bin/python benchmarks/exports.py [--customers 2000]
    .venv/bin/python benchmarks/exports.py --customers 1000000 --months 3 --tx-per-month 0.3 --demo-only

Runs on generated demo data (the shipped models) and, when ../shared is beside the project, on the
10,000-customer churn set (models trained on it here), with no earlier exports in the ledger. After the
nightly run the report cells are precomputed (as the scheduled nightly does; seconds per report printed).
"seconds" is one export read from those cells plus its disclosure control (target at 1,000,000 customers:
5 s each); "fresh" is the same export computed afresh from the store, as when the data changed since the
cells (`--no-fresh` skips it). A short history keeps the 1M-customer run's set-up in minutes and changes
nothing the reports read (they aggregate customers, their features, scores and tags).
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


def precompute(home, as_of) -> None:
    from appliance.jobs import precompute_reports

    started = time.perf_counter()
    seconds = precompute_reports(home, as_of)
    print(f"report cells precomputed in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{name} {s:.1f}" for name, s in seconds.items()), flush=True)


def suppression_table(home, label: str, fresh: bool = True) -> None:
    from appliance import disclosure, report_cells, reports
    from appliance.errors import PolicyError
    from appliance.policies import ExportPolicy

    text = (home.path / "policies" / "export.yaml").read_text(encoding="utf-8")
    policies = {k: ExportPolicy.parse(text.replace("min_cell_size: 10", f"min_cell_size: {k}")) for k in KS}
    shipped = home.export_policy()
    options = {"top": shipped.dominance_top, "clamp": shipped.privacy.enabled}
    print(f"\n{label}: share of cells suppressed (suppressed / shown, totals included)")
    print(f"{'report':18} {'by':22} {'cells':>6} " + " ".join(f"{'k=' + str(k):>7}" for k in KS)
          + "  seconds    fresh")
    for name, dims in EXPORTS:
        report = reports.get(name)
        try:
            params = reports.resolve_parameters(home.store, report, None)
        except PolicyError:
            continue
        started = time.perf_counter()
        table = report_cells.compute(home.store, report, dims, params, **options)
        computed = time.perf_counter() - started
        afresh = "-"
        if fresh:
            started = time.perf_counter()
            again = reports.compute(home.store, report, dims, params, **options)
            afresh = f"{time.perf_counter() - started:8.2f}"
            assert again.aggregates == table.aggregates, (name, dims)
        cached = "" if table.precomputed_at else " (no cells)"
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
        protected = sum(protecting) / len(protecting)
        print(f"{name:18} {' x '.join(dims):22} {cells:>6} " + " ".join(shares)
              + f"  {computed + protected:7.2f} {afresh}{cached}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--months", type=int, default=18, help="history generated per customer")
    parser.add_argument("--tx-per-month", type=float, default=4.0)
    parser.add_argument("--demo-only", action="store_true", help="skip the churn set")
    parser.add_argument("--home", type=Path, help="time the reports on this home (after its nightly run) instead")
    parser.add_argument("--key", type=Path, help="the home's key file, with --home")
    parser.add_argument("--no-fresh", action="store_true", help="only time exports read from precomputed cells")
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
            precompute(home, None)  # each report's latest results, as the exports below take them
            suppression_table(home, f"{args.home}, {customers:,} customers", not args.no_fresh)
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
            precompute(home, as_of + timedelta(days=1))
            suppression_table(home, f"demo data, {args.customers:,} customers", not args.no_fresh)
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
            precompute(home, date.today())
            suppression_table(home, "churn set, 10,000 customers (models trained on it here)", not args.no_fresh)


if __name__ == "__main__":
    main()
