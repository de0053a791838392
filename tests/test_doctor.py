"""`appliance doctor` on a real home: healthy, then each fault the issue names reported by name with a
non-zero exit: a flipped byte in the store, a missing model file, a stale off-box checkpoint; and a failed
last job run."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from appliance.access import system
from appliance.home import STORE, Home
from appliance.keys import Credentials
from tests.conftest import run_cli, install_shipped_models


@pytest.fixture
def healthy(home, home_path, key_file, tmp_path):
    install_shipped_models(home.path)
    worm = tmp_path / "worm"
    worm.mkdir()
    config = home_path / "config.yaml"
    config.write_text(config.read_text() + f"audit.checkpoint_target: {worm}\n")
    home.close()
    with Home.open(home_path, Credentials(key_file=key_file)) as reopened:
        reopened.ship_checkpoint(system("tests"))
    return home_path, {"APPLIANCE_HOME": str(home_path), "APPLIANCE_KEY_FILE": str(key_file)}, worm


def _doctor(env):
    return run_cli("doctor", env_extra=env)


def test_a_healthy_home_passes(healthy):
    _path, env, _worm = healthy
    result = _doctor(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout and "store" in result.stdout and "checkpoint" in result.stdout


def test_a_missing_model_file_is_named(healthy):
    path, env, _worm = healthy
    model = next((path / "models").glob("churn-*.onnx"))
    model.unlink()
    result = _doctor(env)
    assert result.returncode == 1 and f"its model file {model.name} is missing" in result.stdout


def test_a_stale_checkpoint_is_named(healthy):
    path, env, worm = healthy
    for shipped in worm.glob("checkpoint-*.json"):
        data = json.loads(shipped.read_text())
        data["at"] = (datetime.now(timezone.utc) - timedelta(hours=5)).isoformat()
        shipped.write_text(json.dumps(data))
    result = _doctor(env)
    assert result.returncode == 1 and "checkpoint" in result.stdout and "stale" in result.stdout


def test_a_flipped_byte_in_the_store_is_named(healthy):
    path, env, _worm = healthy
    store = path / STORE
    with Home.open(path, Credentials(key_file=env["APPLIANCE_KEY_FILE"])) as home:
        # A page of rows that opening the home does not read (the schema's pages would stop it opening).
        page = home.store.scalar("SELECT rootpage FROM sqlite_master WHERE name = 'transactions'")
        page_size = int(home.store.scalar("PRAGMA page_size"))
    with open(store, "r+b") as handle:  # a byte in the middle of the page
        handle.seek((page - 1) * page_size + 1000)
        byte = handle.read(1)
        handle.seek((page - 1) * page_size + 1000)
        handle.write(bytes([byte[0] ^ 0x40]))
    result = _doctor(env)
    assert result.returncode != 0
    assert "integrity" in (result.stdout + result.stderr)


def test_a_failed_last_run_is_named(healthy):
    path, env, _worm = healthy
    with Home.open(path, Credentials(key_file=env["APPLIANCE_KEY_FILE"])) as home:
        with home.store.transaction():
            home.store.execute("INSERT INTO job_runs (job, started_at, finished_at, status, error) VALUES "
                               "('nightly', ?, ?, 'failed', 'no features as of 2026-11-30')",
                               (datetime.now(timezone.utc).isoformat(), datetime.now(timezone.utc).isoformat()))
    result = _doctor(env)
    assert result.returncode == 1 and "the last nightly run failed" in result.stdout


def _files(path):
    # The operating log gains a line for the command, as for every command: that is not a change to the home.
    return {p.name: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file() and p.suffix != ".db"
            and "-wal" not in p.name and "-shm" not in p.name and p.parent.name != "logs"}


def test_doctor_changes_nothing(healthy):
    path, env, _worm = healthy
    before = _files(path)
    _doctor(env)
    assert _files(path) == before
