"""Audit log speed: appends per second (each its own durable transaction, as an operation's entry is) and
the time `audit verify` takes over 1,000,000 entries (target: under 60 s).

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
            while remaining > 0:  # bulk, to reach the size quickly: entries inside larger transactions
                with home.store.transaction():
                    for _ in range(min(10_000, remaining)):
                        home.audit.record(actor, "customer.read", customers=["3fa2b1c45d6e7f80"], purpose="bench")
                remaining -= 10_000
            batched = (args.entries - args.single) / (time.perf_counter() - started)
            started = time.perf_counter()
            verdict = home.audit.verify()
            seconds = time.perf_counter() - started
    print(f"appends/s, one durable transaction each : {single:>10,.0f}")
    print(f"appends/s, inside larger transactions   : {batched:>10,.0f}")
    print(f"verify {verdict.entries:,} entries           : {seconds:>10.1f} s  ({verdict.message})")
    print(f"peak RSS                                : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>10.0f} MiB")


if __name__ == "__main__":
    main()
