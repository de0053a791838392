import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# Fuzzing: thousands of examples in `make test`; benchmarks/fuzz.py runs the long profile.
hypothesis_settings.register_profile("ci", max_examples=1000, derandomize=True, print_blob=True)
hypothesis_settings.register_profile("long", max_examples=20000)
hypothesis_settings.load_profile(os.environ.get("APPLIANCE_FUZZ_PROFILE", "ci"))

from appliance.access import system
from appliance.demo_data import generate
from appliance.home import Home
from appliance.keys import Credentials, new_key_file

ROOT = Path(__file__).resolve().parent.parent
ADMIN, ADMIN_PASSWORD = "admin", "admin-password-1"
TESTS = system("tests")  # library-level calls in tests act as the system, as scheduled jobs do
# Every CLI call may sign in as the first admin unless a test says otherwise.
ADMIN_ENV = {"APPLIANCE_ADMIN_PASSWORD": ADMIN_PASSWORD, "APPLIANCE_USER": ADMIN,
             "APPLIANCE_USER_PASSWORD": ADMIN_PASSWORD}
SHARED = ROOT.parent / "shared" / "data"
DATA_DIR = ROOT / "tests" / "data"
APPLIANCE = [sys.executable, "-m", "appliance"]


@pytest.fixture(scope="session")
def pii():
    from appliance.pii.engine import engine

    return engine()


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small generated dataset (60 customers), made once per run."""
    out = tmp_path_factory.mktemp("demo-data")
    generate(out, 60, seed=11, months=14)
    return out


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "keys" / "appliance.key"
    path.parent.mkdir()
    new_key_file(path)
    return path


@pytest.fixture
def home_path(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def home(home_path, key_file):
    with Home.init(home_path, Credentials(key_file=key_file), admin=ADMIN, admin_password=ADMIN_PASSWORD) as opened:
        yield opened


def run_cli(*args, env_extra=None, stdin=None, check=False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(ADMIN_ENV)
    env.update(env_extra or {})
    result = subprocess.run(APPLIANCE + [str(a) for a in args], capture_output=True, text=True, env=env,
                            input=stdin, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"appliance {' '.join(map(str, args))} failed: {result.stderr}")
    return result


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def add_user(name: str, role: str, password: str, *home_args, env: dict) -> dict:
    """A user added by the admin, who then makes the one-time password their own (as a new officer must
    before approving, revealing or erasing). Returns the environment that acts as them."""
    run_cli("user", "add", name, "--role", role, *home_args,
            env_extra={**env, "APPLIANCE_NEW_USER_PASSWORD": password}, check=True)
    as_user = {**env, "APPLIANCE_USER": name, "APPLIANCE_USER_PASSWORD": password}
    run_cli("user", "passwd", *home_args, env_extra={**as_user, "APPLIANCE_NEW_USER_PASSWORD": password}, check=True)
    return as_user


def key_outside(root: Path) -> Path:
    """A fresh key file in root/keys, beside the home rather than in it."""
    key = root / "keys" / "appliance.key"
    key.parent.mkdir()
    new_key_file(key)
    return key


def install_shipped_models(home_path: Path) -> None:
    from appliance.shipped import install_models

    install_models(home_path / "models")


def ingest_and_score(home, data: Path) -> date:
    """Generated data in, the shipped models installed, the nightly pipeline run the day after the last
    transaction; returns that day."""
    from appliance.jobs import nightly

    home.ingestor(TESTS).ingest(home.mapping("demo"), [data])
    install_shipped_models(home.path)
    as_of = date.fromisoformat(home.store.scalar("SELECT max(booked_at) FROM transactions")[:10]) + timedelta(1)
    nightly(home, as_of, TESTS)
    return as_of


def add_per_day_rows(store, customers, days):
    """A row in each of the nightly's per-day tables (store.BY_DAY) for each customer and day."""
    from appliance.store import BY_DAY

    for table in BY_DAY:
        columns = store.columns(table)
        for customer in customers:
            for day in days:
                values = {c: 1 for c in columns} | {"customer_id": customer, "as_of": day, "tag": "probe",
                                                     "tags": '["probe"]', "target": "probe", "reasons_zh": "[]", "reasons_en": "[]"}
                store.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})",
                              [values[c] for c in columns])
