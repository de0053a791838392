"""Ingest throughput and memory: generated transactions through full ingestion (read, validate, tokenise,
encrypt, upsert) beside the same rows copied into stdlib sqlite3 with csv + executemany (the floor).

    .venv/bin/python benchmarks/ingest.py [--rows 100000 1000000]

Each measurement runs in its own process so peak RSS is its own. Prints one line per run.
"""

import argparse
import csv
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CUSTOMERS_PER_MILLION = 11_000  # about 92 transactions per customer over 18 months


def make_input(folder: Path, rows: int) -> Path:
    # In a child process: Linux carries a parent's peak RSS into its children across exec, so the parent stays small.
    customers = max(200, rows * CUSTOMERS_PER_MILLION // 1_000_000 + 50)
    subprocess.run([sys.executable, "-m", "appliance", "demo-data", "--customers", str(customers), "--seed", "1",
                    "--out", str(folder / "gen")], check=True, capture_output=True)
    target = folder / "transactions.csv"
    with open(folder / "gen" / "transactions.csv", encoding="utf-8") as source, open(target, "w",
                                                                                     encoding="utf-8") as out:
        for index, line in enumerate(source):
            if index > rows:
                break
            out.write(line)
    return target


def run_appliance(path: Path, work: Path) -> dict:
    from appliance.access import system
    from appliance.home import Home
    from appliance.keys import Credentials, new_key_file

    key = work / "bench.key"
    new_key_file(key)
    with Home.init(work / "home", Credentials(key_file=key), admin="admin", admin_password="benchmark-admin") as home:
        started = time.perf_counter()
        report = home.ingestor(system("benchmark")).ingest(home.mapping("demo"), [path])
        seconds = time.perf_counter() - started
    return {"rows": report.rows_loaded, "seconds": seconds}


def run_floor(path: Path, work: Path) -> dict:
    started = time.perf_counter()
    conn = sqlite3.connect(work / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        conn.execute(f"CREATE TABLE t ({', '.join(header)})")
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(header))})", reader)
        conn.execute("COMMIT")
    rows = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    conn.close()
    return {"rows": rows, "seconds": time.perf_counter() - started}


def child(kind: str, path: str, work: str) -> None:
    result = (run_appliance if kind == "appliance" else run_floor)(Path(path), Path(work))
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(kind: str, path: Path) -> dict:
    with tempfile.TemporaryDirectory() as work:
        out = subprocess.run([sys.executable, __file__, "--child", kind, str(path), work], capture_output=True,
                             text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"{'rows':>9}  {'what':<34} {'rows/s':>9}  {'seconds':>8}  {'peak RSS MiB':>12}")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as folder:
            path = make_input(Path(folder), rows)
            floor = measure("floor", path)
            ours = measure("appliance", path)
            for label, result in (("stdlib sqlite3 copy (floor)", floor), ("appliance full ingestion", ours)):
                print(f"{result['rows']:>9}  {label:<34} {result['rows'] / result['seconds']:>9,.0f}  "
                      f"{result['seconds']:>8.1f}  {result['peak_rss_mib']:>12.0f}")
            print(f"{'':>9}  appliance / floor: {ours['rows'] / ours['seconds'] / (floor['rows'] / floor['seconds']):.2f}")


if __name__ == "__main__":
    main()
