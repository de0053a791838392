"""Backup and restore as bank IT runs them: with the scheduler writing, a restore brings the data back to
the backup exactly while the audit log keeps everything since; a damaged or another home's backup changes
nothing; a damaged live store is moved aside and replaced; a restore killed halfway leaves the store as it was."""

import hashlib
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from appliance.home import Home
from appliance.keys import Credentials
from tests.conftest import ADMIN, ADMIN_PASSWORD, key_outside
from tests.faults.conftest import assert_clean_failure, cli, flip_a_byte

# Tables the scheduler's nightly run does not rewrite: the data a restore must bring back exactly.
DATA_TABLES = ("customers", "accounts", "transactions", "interactions", "digital_events", "ingest_batches", "quarantine",
               "vault", "users")


def _digest(world) -> dict[str, str]:
    with Home.open(world["home"], Credentials(key_file=world["key"])) as home:
        return _table_digests(home.store)


def _table_digests(store) -> dict[str, str]:
    digests = {}
    for table in DATA_TABLES:
        columns = ", ".join(store.columns(table))
        rows = store.rows(f"SELECT {columns} FROM {table} ORDER BY {columns}")
        digests[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


def _audit(world):
    with Home.open(world["home"], Credentials(key_file=world["key"])) as home:
        verdict = home.verify_audit()
        events = [e for (e,) in home.store.rows("SELECT event FROM audit_log ORDER BY seq")]
        return verdict, events


def _refused(world, backup, reason):
    """A restore that must be refused with `reason`, exit 4, and change none of the data."""
    before = _digest(world)
    result = cli(world, "restore", backup)
    assert_clean_failure(result, 4)
    assert reason in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert _digest(world) == before


@pytest.fixture
def scheduler_running(world, tmp_path):
    """The scheduler's own job function, run back to back in its own process until told to stop."""
    stop = tmp_path / "stop"
    runs = tmp_path / "runs"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from appliance.jobs import run_scheduled
        from appliance.keys import Credentials
        while not Path({str(stop)!r}).exists():
            run_scheduled(Path({str(world['home'])!r}), Credentials(key_file=Path({str(world['key'])!r})), "nightly")
            with open({str(runs)!r}, "a") as done:
                done.write("run\\n")
        """)
    process = subprocess.Popen([sys.executable, "-c", script])

    def runs_done() -> int:
        return len(runs.read_text().splitlines()) if runs.exists() else 0

    yield runs_done
    stop.touch()
    process.wait(timeout=300)


def _wait_for(condition, seconds=240):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the scheduler made no run"
        time.sleep(0.2)


def test_backup_and_restore_round_trip_while_the_scheduler_runs(world, tmp_path, scheduler_running):
    _wait_for(lambda: scheduler_running() >= 1)
    backup = tmp_path / "backups" / "nightly.db"
    backup.parent.mkdir()
    taken = cli(world, "backup", "--out", backup)
    assert taken.returncode == 0, taken.stderr
    at_backup = _digest(world)

    started = scheduler_running()
    changed = cli(world, "ingest", "--source", "demo", world["data2"] / "interactions.csv",
                  world["data2"] / "events.jsonl")
    assert changed.returncode == 0, changed.stderr
    assert _digest(world) != at_backup
    _wait_for(lambda: scheduler_running() > started)  # a nightly run wrote between the backup and the restore

    restored = cli(world, "restore", backup)
    assert restored.returncode == 0, restored.stderr
    assert "entries made since the backup" in restored.stdout
    assert _digest(world) == at_backup  # the data is the backup's, exactly
    _wait_for(lambda: scheduler_running() > started + 1)  # and the scheduler goes on against the restored store
    verdict, events = _audit(world)
    assert verdict.ok, verdict.message
    # Nothing rewound: the ingest after the backup is still in the log, and the restore follows it.
    assert events.count("ingest.batch") >= 2 and "store.restore" in events
    assert events.index("store.restore") > len(events) - events[::-1].index("ingest.batch") - 1
    kept = list((world["home"] / "backups").glob("before-restore-*.db"))
    assert len(kept) == 1


def test_a_corrupted_backup_is_refused_and_changes_nothing(world, tmp_path):
    backup = tmp_path / "copy.db"
    assert cli(world, "backup", "--out", backup).returncode == 0
    flip_a_byte(backup, backup.stat().st_size // 2)
    _refused(world, backup, "integrity check")
    assert not (world["home"] / "backups").exists()  # refused before the safety copy
    assert not list(world["home"].glob(".restore-staging*"))
    verdict, events = _audit(world)
    assert verdict.ok and events[-1] == "store.restore.refused"


def test_another_homes_backup_is_refused_and_changes_nothing(world, tmp_path):
    other = tmp_path / "other"
    other_key = key_outside(tmp_path)
    with Home.init(other / "home", Credentials(key_file=other_key), admin=ADMIN, admin_password=ADMIN_PASSWORD):
        pass
    foreign = tmp_path / "foreign.db"
    made = cli({"env": {"APPLIANCE_KEY_FILE": str(other_key), "APPLIANCE_HOME": str(other / "home")}},
               "backup", "--out", foreign)
    assert made.returncode == 0, made.stderr
    _refused(world, foreign, "does not open with this home's keys")


def test_a_backup_of_another_history_is_refused(world, tmp_path):
    """Same keys, different log: a copy of the home that went its own way (restored elsewhere and used)."""
    twin = tmp_path / "twin"
    shutil.copytree(world["home"], twin)
    twin_env = {"env": {**world["env"], "APPLIANCE_HOME": str(twin)}}
    assert cli(twin_env, "status").returncode == 0
    assert cli(world, "status").returncode == 0
    assert cli(twin_env, "ingest", "--source", "demo", world["data2"] / "events.jsonl").returncode == 0
    backup = tmp_path / "twin.db"
    assert cli(twin_env, "backup", "--out", backup).returncode == 0
    _refused(world, backup, "another history")


def test_a_damaged_store_is_moved_aside_and_replaced(world, tmp_path):
    backup = tmp_path / "copy.db"
    assert cli(world, "backup", "--out", backup).returncode == 0
    at_backup = _digest(world)
    store = world["home"] / "store.db"
    flip_a_byte(store, store.stat().st_size // 2)
    assert cli(world, "doctor").returncode == 1
    result = cli(world, "restore", backup)
    assert result.returncode == 0, result.stderr
    assert "moved aside" in result.stderr
    assert _digest(world) == at_backup
    doctor = cli(world, "doctor")
    assert any(line.split()[:2] == ["ok", "store"] for line in doctor.stdout.splitlines()), doctor.stdout
    with Home.open(world["home"], Credentials(key_file=world["key"])) as home:
        assert home.store.integrity_problems() == []
        restores = home.store.query("SELECT actor, details FROM audit_log WHERE event = 'store.restore'")
    assert [r["actor"] for r in restores] == ["system:key custodian"]
    assert "damaged_kept" in restores[0]["details"]
    aside = list((world["home"] / "backups").glob("damaged-*/store.db"))
    assert len(aside) == 1 and aside[0].read_bytes() != backup.read_bytes()


def test_a_restore_killed_halfway_leaves_the_store_as_it_was(world, tmp_path):
    backup = tmp_path / "copy.db"
    assert cli(world, "backup", "--out", backup).returncode == 0
    assert cli(world, "ingest", "--source", "demo", world["data2"] / "events.jsonl").returncode == 0
    before = _digest(world)
    result = cli(world, "restore", backup, failpoints="restore.replaced=kill")
    assert result.returncode == -9
    assert _digest(world) == before
    verdict, _ = _audit(world)
    assert verdict.ok
    again = cli(world, "restore", backup)
    assert again.returncode == 0, again.stderr
    assert _digest(world) != before


def test_only_an_admin_restores_a_sound_store(world, tmp_path):
    from tests.faults.conftest import ANALYST

    backup = tmp_path / "copy.db"
    assert cli(world, "backup", "--out", backup).returncode == 0
    result = cli(world, "restore", backup, as_user=ANALYST)
    assert_clean_failure(result, 5)
