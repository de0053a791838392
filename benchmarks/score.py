"""The nightly pipeline's speed: customers/s for features + churn scoring (with reasons and drift) + segments +
tags over generated customers, beside scikit-learn's predict_proba on the same feature matrix, and peak RSS.

    .venv/bin/python benchmarks/score.py [--customers 1000000]

Target: the full nightly pipeline for 1,000,000 customers in under 10 minutes on 2 cores, RSS under 4 GB.
Each stage is timed on its own; the input is made in a child process so the figures are the pipeline's.
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    from appliance import features, tagging, training
    from appliance.access import system
    from appliance.home import Home
    from appliance.jobs import build_features
    from appliance.keys import Credentials, new_key_file
    from appliance.models import Model
    from appliance.scoring import assign_segments, current_card, score

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        subprocess.run([sys.executable, "-m", "appliance", "demo-data", "--customers", str(args.customers),
                        "--seed", "3", "--out", str(folder / "data")], check=True, capture_output=True)
        key = folder / "bench.key"
        new_key_file(key)
        with Home.init(folder / "home", Credentials(key_file=key), admin="admin", admin_password="benchmark-admin") as home:
            started = time.perf_counter()
            home.ingestor(system("benchmark")).ingest(home.mapping("demo"), [folder / "data"])
            ingest_seconds = time.perf_counter() - started
            latest = home.store.scalar("SELECT max(booked_at) FROM transactions")
            as_of = date.fromisoformat(latest[:10]) + timedelta(days=1)
            timings = {}
            started = time.perf_counter()
            customers = build_features(home, as_of)
            timings["features"] = time.perf_counter() - started
            churn = Model(current_card(ROOT / "models"))
            segments = Model(current_card(ROOT / "models", "segments"))
            started = time.perf_counter()
            score(home.store, churn, as_of, (0.3, 0.6))
            timings["churn score, reasons, drift"] = time.perf_counter() - started
            started = time.perf_counter()
            assign_segments(home.store, segments, as_of)
            timings["segments"] = time.perf_counter() - started
            started = time.perf_counter()
            tagging.build(home.store, as_of)
            timings["tags"] = time.perf_counter() - started
            frame = features.load(home.store, as_of)
            x = churn.matrix(frame)
            started = time.perf_counter()
            churn.probabilities(x)
            onnx_seconds = time.perf_counter() - started
            names = churn.features
            # The same kind of model fitted to the same matrix (labels are not knowable at the data's end, so
            # it learns the ONNX model's own high-risk calls): only predict_proba's speed is compared.
            probabilities = churn.probabilities(x)
            pipeline = training._pipeline().fit(x, (probabilities > np.median(probabilities)).astype(int))
            started = time.perf_counter()
            pipeline.predict_proba(x)
            sklearn_seconds = time.perf_counter() - started
    total = sum(timings.values())
    print(f"customers scored: {customers:,} (ingest of their data took {ingest_seconds:.0f} s, not counted below)")
    for stage, seconds in timings.items():
        print(f"  {stage:<30} {seconds:>8.1f} s  {customers / seconds:>10,.0f} customers/s")
    print(f"  {'nightly pipeline':<30} {total:>8.1f} s  {customers / total:>10,.0f} customers/s")
    print(f"  ONNX predict only              {onnx_seconds:>8.2f} s  {customers / onnx_seconds:>10,.0f} customers/s")
    print(f"  scikit-learn predict_proba     {sklearn_seconds:>8.2f} s  {customers / max(sklearn_seconds, 1e-9):>10,.0f}"
          f" customers/s (same matrix, {len(names)} features)")
    print(f"  projected for 1,000,000 customers: {total * 1_000_000 / customers / 60:.1f} min (target: under 10)")
    print(f"  peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (target: under 4,096)")


if __name__ == "__main__":
    main()
