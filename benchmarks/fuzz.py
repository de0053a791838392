"""The fuzz tests (tests/test_fuzz.py) at length: the `long` Hypothesis profile (20,000 examples per test,
against 1,000 in `make test`), with fresh randomness each run.

    .venv/bin/python benchmarks/fuzz.py
"""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests/test_fuzz.py"),
                             "--hypothesis-show-statistics"], cwd=ROOT,
                            env={**os.environ, "APPLIANCE_FUZZ_PROFILE": "long"})
    print(f"fuzzing took {time.perf_counter() - started:.0f} s")
    sys.exit(result.returncode)
