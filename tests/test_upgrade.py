"""Upgrades: a newer release opening a home takes a checked backup, then migrates the schema forward in one
transaction; a migration that fails, or a process killed halfway, leaves the home exactly as it was, and the
release before still opens it."""

import json
import subprocess
import sys
import textwrap

import pytest

from appliance import store as store_module
from appliance.errors import StoreError
from appliance.home import Home
from appliance.keys import Credentials
from appliance.store import BY_DAY, Store, latest_schema
from tests.conftest import ADMIN, ADMIN_PASSWORD, add_per_day_rows, key_outside

CURRENT = latest_schema()


@pytest.fixture
def home(tmp_path):
    key = key_outside(tmp_path)
    with Home.init(tmp_path / "home", Credentials(key_file=key), admin=ADMIN, admin_password=ADMIN_PASSWORD):
        pass
    return tmp_path / "home", Credentials(key_file=key)


def _newer_release(monkeypatch, *steps):
    """This release plus the migrations a newer one would bring."""
    monkeypatch.setattr(store_module, "_MIGRATIONS", list(store_module._MIGRATIONS))
    for offset, step in enumerate(steps, start=1):
        store_module.migration(CURRENT + offset, f"step {offset}")(step)


def _add_table(store):
    store.execute("CREATE TABLE upgrade_probe (n INTEGER)")
    store.execute("INSERT INTO upgrade_probe VALUES (1)")
    store.execute("ALTER TABLE customers ADD COLUMN upgrade_probe TEXT")


def _fail_halfway(store):
    store.execute("UPDATE customers SET segment = 'changed'")
    raise ValueError("a step that cannot finish")


def _state(path, credentials):
    with Home.open(path, credentials) as opened:
        return (opened.store.schema_version(), "upgrade_probe" in opened.store.tables(),
                "upgrade_probe" in opened.store.columns("customers"),
                opened.store.scalar("SELECT count(*) FROM audit_log"))


def test_an_upgrade_backs_up_first_then_migrates(home, monkeypatch):
    path, credentials = home
    _newer_release(monkeypatch, _add_table)
    with Home.open(path, credentials) as opened:
        assert opened.store.schema_version() == CURRENT + 1
        assert opened.store.scalar("SELECT n FROM upgrade_probe") == 1
        key = opened.keyring.data_key
    backups = list((path / "backups").glob("before-upgrade-*.db"))
    assert len(backups) == 1
    with Store(backups[0], key) as copy:
        assert copy.schema_version() == CURRENT and copy.integrity_problems() == []
    with Home.open(path, credentials):  # nothing pending: no second backup
        pass
    assert len(list((path / "backups").glob("*.db"))) == 1


def test_a_failed_migration_leaves_the_home_as_it_was(home, monkeypatch):
    path, credentials = home
    before = _state(path, credentials)
    with monkeypatch.context() as newer:
        _newer_release(newer, _add_table, _fail_halfway)
        with pytest.raises(StoreError) as refused:
            Home.open(path, credentials)
    message = refused.value.message
    assert f"migration {CURRENT + 2}" in message and f"unchanged at schema version {CURRENT}" in message
    assert "\n" not in message and "cannot finish" not in message
    # This release (the one before the failed upgrade) opens the home as it was.
    assert _state(path, credentials) == before
    with Home.open(path, credentials) as opened:
        assert opened.store.scalar("SELECT count(*) FROM customers WHERE segment = 'changed'") == 0


def test_an_upgrade_killed_halfway_leaves_the_home_as_it_was(home):
    path, credentials = home
    before = _state(path, credentials)
    script = textwrap.dedent(f"""
        from pathlib import Path
        from appliance import store
        from appliance.home import Home
        from appliance.keys import Credentials
        from tests.test_upgrade import _add_table, CURRENT
        store.migration(CURRENT + 1, "probe")(_add_table)
        store.migration(CURRENT + 2, "probe again")(lambda s: s.execute("CREATE TABLE probe_two (n)"))
        Home.open(Path({str(path)!r}), Credentials(key_file=Path({str(credentials.key_file)!r})))
        """)
    killed = subprocess.run([sys.executable, "-c", script], env={"APPLIANCE_FAILPOINTS": "migrate.applied=kill@1",
                                                                  "PATH": "/usr/bin:/bin"},
                            cwd=store_module.Path(__file__).parent.parent, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert _state(path, credentials) == before


def _key_of(store, table):
    return [r[1] for r in sorted((r for r in store.query(f"PRAGMA table_info({table})") if r[5]), key=lambda r: r[5])]


def test_every_per_day_result_is_keyed_date_first_so_a_night_appends(home):
    """Any table of per-customer results by date (today's and any added later) is keyed by the date first."""
    path, credentials = home
    with Home.open(path, credentials) as opened:
        per_day = [t for t in opened.store.tables() if {"as_of", "customer_id"} <= set(opened.store.columns(t))]
        assert set(BY_DAY) <= set(per_day)
        for table in per_day:
            assert _key_of(opened.store, table)[0] == "as_of", table


def test_the_upgrade_to_date_first_keys_keeps_every_row_and_index(tmp_path, monkeypatch):
    key = key_outside(tmp_path)
    with monkeypatch.context() as older:  # a home made by the release before migration 15
        older.setattr(store_module, "_MIGRATIONS", [m for m in store_module._MIGRATIONS if m[0] < 15])
        with Home.init(tmp_path / "home", Credentials(key_file=key), admin=ADMIN,
                       admin_password=ADMIN_PASSWORD) as opened:
            store = opened.store
            assert store.schema_version() == 14 and _key_of(store, "customer_tags")[0] == "customer_id"
            with store.transaction():
                add_per_day_rows(store, ["T-b", "T-a", "T-c"], ["2025-02-28", "2025-01-31"])
            before = {t: sorted(map(tuple, store.rows(f"SELECT * FROM {t}"))) for t in BY_DAY}
            indexes = set(store.rows("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"))
    with monkeypatch.context() as upgrade:  # to migration 15 alone: 16 regroups the tags (tested below)
        upgrade.setattr(store_module, "_MIGRATIONS", [m for m in store_module._MIGRATIONS if m[0] <= 15])
        with Home.open(tmp_path / "home", Credentials(key_file=key)) as opened:
            store = opened.store
            assert store.schema_version() == 15 and store.integrity_problems() == []
            for table in BY_DAY:
                assert sorted(map(tuple, store.rows(f"SELECT * FROM {table}"))) == before[table]
                assert _key_of(store, table)[0] == "as_of"
            assert set(store.rows("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'")) >= {
                i for i in indexes if not i[0].startswith("sqlite_autoindex")}
            small = store.rows("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%WITHOUT ROWID'")
            assert {"customer_tags", "customer_segments"} <= {r[0] for r in small}


def test_the_upgrade_to_one_row_of_tags_a_customer_keeps_every_tag(tmp_path, monkeypatch):
    key = key_outside(tmp_path)
    with monkeypatch.context() as older:  # a home made by the release before migration 16: a row per tag
        older.setattr(store_module, "_MIGRATIONS", [m for m in store_module._MIGRATIONS if m[0] < 16])
        with Home.init(tmp_path / "home", Credentials(key_file=key), admin=ADMIN,
                       admin_password=ADMIN_PASSWORD) as opened:
            store = opened.store
            with store.transaction():
                add_per_day_rows(store, ["T-b", "T-a"], ["2025-02-28", "2025-01-31"])
                store.executemany("INSERT INTO customer_tags VALUES (?, '2025-01-31', ?, 's')",
                                  [("T-a", tag) for tag in ("高价值", "lifecycle:new", 'says "hi"', "a\\b", "Zeta")])
            before = sorted(store.rows("SELECT as_of, customer_id, tag FROM customer_tags"))
    with Home.open(tmp_path / "home", Credentials(key_file=key)) as opened:
        store = opened.store
        assert store.schema_version() == CURRENT and store.integrity_problems() == []
        rows = store.rows("SELECT as_of, customer_id, tags FROM customer_tags")
        assert len(rows) == 4 and _key_of(store, "customer_tags") == ["as_of", "customer_id"]
        held = {(day, customer): json.loads(tags) for day, customer, tags in rows}
        assert all(tags == sorted(tags) for tags in held.values())  # code-point order, as tagging writes them
        assert sorted((day, customer, tag) for (day, customer), tags in held.items() for tag in tags) == before
        assert store.scalar("SELECT count(*) FROM sqlite_master WHERE tbl_name = 'customer_tags' AND type = 'index' "
                            "AND sql IS NOT NULL") == 0  # the (date, tag) index went with the rows per tag
