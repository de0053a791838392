"""Consecutive nights: does a night cost the same on the tenth night as on the first?

Builds a home of generated customers, then runs the nightly pipeline (`jobs.nightly`: features, loading them
once, churn scores with reasons and drift, segments and the risk summary, tags and lifecycle) for consecutive
days, and prints each stage's seconds per night beside the store's size. Tags are built in a forked process
beside the segments and the risk summary: the column `tags after` is how long the night still waited for them. The nightly's results are kept per
day (the console shows history, campaigns are measured against the scores of their day), so a store keyed
customer first puts each night's rows among every earlier night's: the night's writes touch every page the
earlier nights wrote, and cost grows with the days kept. Keyed date first, a night's rows are appended.

    .venv/bin/python benchmarks/nights.py [--customers 100000] [--nights 10]
"""

import argparse
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=3, help="history generated per customer")
    parser.add_argument("--tx-per-month", type=float, default=0.3)
    parser.add_argument("--nights", type=int, default=10)
    args = parser.parse_args()
    from appliance import features, jobs
    from appliance.access import system
    from appliance.demo_data import generate
    from appliance.home import Home
    from appliance.keys import Credentials, new_key_file
    from appliance.shipped import install_models
    from appliance.store import store_files

    actor = system("benchmark")
    # The nightly itself (jobs.nightly: the features loaded once and handed on), each stage timed in passing.
    seconds: dict[str, float] = {}

    def timed(name, stage):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return stage(*args, **kwargs)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
        return run

    jobs.build_features = timed("features", jobs.build_features)
    features.load = timed("load", features.load)
    jobs.score_customers = timed("scores", jobs.score_customers)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        started = time.perf_counter()
        generate(folder / "data", args.customers, seed=3, months=args.months, tx_per_month=args.tx_per_month)
        key = folder / "bench.key"
        new_key_file(key)
        with Home.init(folder / "home", Credentials(key_file=key), admin="admin",
                       admin_password="benchmark-admin") as home:
            loaded = home.ingestor(actor).ingest(home.mapping("demo"), [folder / "data"]).rows_loaded
            print(f"{args.customers:,} customers, {loaded:,} rows generated and ingested in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            install_models(home.path / "models")
            first = date.fromisoformat(home.store.scalar("SELECT max(booked_at) FROM transactions")[:10])
            print(f"{'night':>5} {'features':>9} {'load':>6} {'scores':>8} {'tags after':>10} {'whole':>8} "
                  f"{'store MiB':>10}")
            for night in range(args.nights):
                day = first + timedelta(days=night + 1)
                seconds.clear()
                started = time.perf_counter()
                jobs.nightly(home, day, actor)
                whole = time.perf_counter() - started
                size = sum(p.stat().st_size for p in store_files(home.store.path) if p.exists()) / 2 ** 20
                after = whole - sum(seconds.values())
                print(f"{night + 1:>5} {seconds['features']:>9.1f} {seconds['load']:>6.1f} {seconds['scores']:>8.1f} "
                      f"{after:>10.1f} {whole:>8.1f} {size:>10,.0f}", flush=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
