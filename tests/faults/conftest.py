"""Fault injection: a home prepared once (demo data ingested, an analyst, an officer who owns their
password, a pending export request), copied for each test, then broken at named points (failpoints), by a
real full disk (a small tmpfs in a private mount namespace) or by kill -9."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.demo_data import generate
from appliance.home import Home
from appliance.keys import Credentials
from tests.conftest import ADMIN, ADMIN_ENV, ADMIN_PASSWORD, APPLIANCE, add_user, key_outside, run_cli, ingest_and_score

ANALYST = {"APPLIANCE_USER": "ana", "APPLIANCE_USER_PASSWORD": "analyst-password-1"}
OFFICER = {"APPLIANCE_USER": "olga", "APPLIANCE_USER_PASSWORD": "officer-password-1"}


def namespaces_available() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_namespaces = pytest.mark.skipif(not namespaces_available(),
                                      reason="the kernel refuses unprivileged mount namespaces (no small tmpfs)")


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    key = key_outside(root)
    data = root / "data"
    generate(data, 200, seed=21, months=14)
    home = root / "home"
    env = {"APPLIANCE_KEY_FILE": str(key), "APPLIANCE_HOME": str(home)}
    with Home.init(home, Credentials(key_file=key), admin=ADMIN, admin_password=ADMIN_PASSWORD) as opened:
        ingest_and_score(opened, data)
    add_user("ana", "analyst", ANALYST["APPLIANCE_USER_PASSWORD"], env=env)
    add_user("olga", "compliance", OFFICER["APPLIANCE_USER_PASSWORD"], env=env)
    requested = run_cli("export", "request", "segment_profile", "--by", "segment", "--recipient", "head_office",
                        "--purpose", "management_reporting", env_extra={**env, **ANALYST}, check=True)
    data2 = root / "data2"  # other customers' notes and events, for a second batch that really writes
    generate(data2, 120, seed=22, months=14)
    return {"home": home, "key": key, "data": data, "data2": data2,
            "request": requested.stdout.strip().splitlines()[-1]}


@pytest.fixture
def world(prepared, tmp_path):
    """A private copy of the prepared home (the key file stays outside it)."""
    home = tmp_path / "home"
    shutil.copytree(prepared["home"], home)
    return {**prepared, "home": home, "env": {"APPLIANCE_KEY_FILE": str(prepared["key"]), "APPLIANCE_HOME": str(home)}}


def flip_a_byte(path, offset):
    """Damage a file the way a failing disk does: one bit of one byte."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def cli(world, *args, as_user=None, failpoints=None):
    extra = dict(world["env"], **(as_user or {}))
    if failpoints:
        extra["APPLIANCE_FAILPOINTS"] = failpoints
    return run_cli(*args, env_extra=extra)


def assert_clean_failure(result, *codes):
    """A failure a person can read: one line, no traceback, no internal error, an exit code as documented."""
    assert result.returncode in codes, (result.returncode, result.stderr)
    if result.returncode in (0, -9):
        return
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def audit_events(world, event):
    out = cli(world, "audit", "list", "--event", event, "--limit", "100000", as_user=OFFICER)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def on_small_disk(mount: Path, size_kib: int, script: str, env: dict) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace with a tmpfs of `size_kib` at `mount`: a real disk
    that fills up. The tmpfs (and what is on it) vanishes with the namespace, so the script does its own
    checks and prints them."""
    mount.mkdir(parents=True, exist_ok=True)
    appliance = " ".join(APPLIANCE)
    full = f"set -u\nmount -t tmpfs -o size={size_kib}k tmpfs {mount}\nAPPLIANCE='{appliance}'\n{script}"
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    run_env.update(ADMIN_ENV)
    run_env.update(env)
    return subprocess.run(["unshare", "-rm", "sh", "-c", full], capture_output=True, text=True, env=run_env,
                          timeout=600)


def fill_leaving(mount: Path, free_kib: int) -> str:
    """Shell lines that fill the tmpfs at `mount` until about `free_kib` are left."""
    return (f"avail=$(df -k --output=avail {mount} | tail -1)\n"
            f"fill=$((avail - {free_kib}))\n"
            f"[ $fill -gt 0 ] && dd if=/dev/zero of={mount}/filler bs=1k count=$fill 2>/dev/null\n"
            "true\n")


def results(completed: subprocess.CompletedProcess) -> dict:
    """The JSON the script printed on its last line."""
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


PY = sys.executable
