"""Audit log speed: appends per second (each its own durable transaction, as an operation's entry is), the
time `audit verify` takes over 1,000,000 entries (target: under 60 s), and the console's searches of the log
at that size (a page of 100, newest first, by each filter; p50 / p95 over 20 searches).

    .venv/bin/python benchmarks/audit.py [--entries 1000000]
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

from appliance.access import system
from appliance.home import Home
from appliance.keys import Credentials, new_key_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=2_000, help="appends timed one transaction each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        key = Path(folder) / "bench.key"
        new_key_file(key)
        with Home.init(Path(folder) / "home", Credentials(key_file=key), admin="admin",
                       admin_password="benchmark-admin") as home:
            actor = system("benchmark")
            started = time.perf_counter()
            for i in range(args.single):
                home.audit.record(actor, "job.run", job="benchmark", number=i)
            single = args.single / (time.perf_counter() - started)
            started = time.perf_counter()
            remaining = args.entries - args.single - 2
            written = 0
            while remaining > 0:  # bulk, to reach the size quickly: entries inside larger transactions
                with home.store.transaction():
                    for _ in range(min(10_000, remaining)):
                        written += 1
                        if written % 1000 == 0:  # a reveal now and then, naming one customer
                            home.audit.record("officer", "vault.reveal", customer=f"{written % 50_000:032x}",
                                              purpose="fraud_investigation", reason="case", fields=["name"])
                        else:
                            home.audit.record(actor, "customer.read", customers=[f"{written % 50_000:032x}"],
                                              purpose="bench")
                remaining -= 10_000
            batched = (args.entries - args.single) / (time.perf_counter() - started)
            started = time.perf_counter()
            verdict = home.audit.verify()
            seconds = time.perf_counter() - started
            searches = _searches(home)
    print(f"appends/s, one durable transaction each : {single:>10,.0f}")
    print(f"appends/s, inside larger transactions   : {batched:>10,.0f}")
    print(f"verify {verdict.entries:,} entries           : {seconds:>10.1f} s  ({verdict.message})")
    print(f"peak RSS                                : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>10.0f} MiB")
    print("console search of the log, a page of 100, ms (p50 / p95):")
    for name, (p50, p95) in searches.items():
        print(f"  {name:38}: {p50:>7.1f} / {p95:>7.1f}")


def _searches(home) -> dict[str, tuple[float, float]]:
    import numpy as np

    count = home.store.scalar("SELECT max(seq) FROM audit_log")
    middle = home.store.scalar("SELECT at FROM audit_log WHERE seq = ?", (count // 2,))
    kinds = {
        "newest": lambda i: {},
        "a page halfway back": lambda i: {"before": count // 2 - i},
        "one event (reveals)": lambda i: {"event": "vault.reveal"},
        "one actor": lambda i: {"actor": "officer"},
        "one customer token": lambda i: {"ref": f"{(i * 997) % 50_000:032x}"},
        "from a time halfway back": lambda i: {"since": middle},
        "reveals of one customer": lambda i: {"ref": f"{(i + 1) * 1000 % 50_000:032x}", "event": "vault.reveal"},
    }
    results = {}
    for name, make in kinds.items():
        times = []
        for i in range(20):
            started = time.perf_counter()
            found = home.audit.search(**make(i), limit=100)
            times.append((time.perf_counter() - started) * 1000)
            assert found or name == "reveals of one customer", name
        results[name] = (float(np.percentile(times, 50)), float(np.percentile(times, 95)))
    return results


if __name__ == "__main__":
    main()
