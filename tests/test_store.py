"""The encrypted store: schema, pragmas, round trip of every canonical table, no plaintext on disk."""

import csv
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from appliance import model
from appliance.home import Home
from appliance.keys import Credentials
from appliance.store import Store
from tests.conftest import ADMIN, ADMIN_PASSWORD, TESTS


def test_schema_matches_the_canonical_model(home):
    for table in model.TABLES:
        expected = [f.name for f in table.fields] + list(model.COMMON_COLUMNS)
        assert sorted(home.store.columns(table.name)) == sorted(expected), table.name


def test_durability_settings(home):
    assert home.store.scalar("PRAGMA journal_mode") == "wal"
    assert home.store.scalar("PRAGMA synchronous") == 2  # FULL: a reported commit is on disk
    assert home.store.scalar("PRAGMA temp_store") == 2  # MEMORY: no unencrypted temp files


def test_migrations_are_recorded_once(home, home_path, key_file):
    from appliance.store import _MIGRATIONS

    latest = max(version for version, _, _ in _MIGRATIONS)
    assert home.store.schema_version() == latest
    assert home.store.migrate() == []
    home.close()
    with Home.open(home_path, Credentials(key_file=key_file)) as again:
        assert again.store.scalar("SELECT count(*) FROM schema_migrations") == len(_MIGRATIONS)


def _file_rows(path):
    encoding = "gb18030" if path.name == "branches.csv" else "utf-8-sig"
    with open(path, encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle))


def test_round_trip_of_every_canonical_table(home, demo_dir):
    report = home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    assert report.rows_quarantined == 0
    tokens = home.tokenizer()
    expected_counts = {
        "branches": "branches.csv", "customers": "customers.csv", "accounts": "accounts.csv",
        "transactions": "transactions.csv", "product_holdings": "holdings.csv", "interactions": "interactions.csv",
        "campaigns": "campaigns.csv", "campaign_responses": "campaign_responses.csv",
    }
    for table, file_name in expected_counts.items():
        assert home.store.scalar(f"SELECT count(*) FROM {table}") == len(_file_rows(demo_dir / file_name)), table
    events = (demo_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert home.store.scalar("SELECT count(*) FROM digital_events") == len(events)
    assert {t.name for t in model.TABLES} == set(expected_counts) | {"digital_events"}

    customer = _file_rows(demo_dir / "customers.csv")[0]
    row = home.store.query("SELECT * FROM customers WHERE customer_id = ?",
                           (tokens.token("customer", customer["客户号"], "demo"),))[0]
    assert row["name"] == tokens.token("name", customer["姓名"])
    assert row["phone"] == tokens.token("phone", customer["手机号"])
    assert row["birth_year"] == int(customer["证件号码"][6:10])
    assert row["gender"] == ("M" if int(customer["证件号码"][16]) % 2 else "F")
    assert row["joined_on"] == customer["入行日期"]
    assert row["segment"] == {"私行": "private", "财富": "wealth", "大众": "mass"}[customer["客户分层"]]
    assert home.vault().reveal("name", row["name"]) == customer["姓名"]

    txn = _file_rows(demo_dir / "transactions.csv")[5]
    stored = home.store.query("SELECT * FROM transactions WHERE transaction_id = ?",
                              (tokens.token("transaction", txn["txn_id"], "demo"),))[0]
    assert stored["amount"] == pytest.approx(float(txn["amount"]))
    assert stored["booked_at"] == txn["txn_time"].replace(" ", "T")
    assert stored["direction"] == {"D": "debit", "C": "credit"}[txn["dc_flag"]]
    assert stored["account_id"] == tokens.token("account", txn["account_no"], "demo")
    assert stored["memo"] == txn["memo"] or "<CN_PERSON:" in stored["memo"]  # free text arrives masked

    event = json.loads(events[0])
    stored = home.store.query("SELECT * FROM digital_events WHERE event_id = ?",
                              (tokens.token("event", event["event_id"], "demo"),))[0]
    assert stored["occurred_at"] == event["ts"] and stored["event_type"] == event["event"]
    branch = home.store.query("SELECT * FROM branches WHERE branch_id = 'BR001'")[0]
    assert branch["name"].endswith("支行")  # came from a GB18030 file, decoded right


def _printable_runs(data: bytes) -> str:
    if shutil.which("strings"):
        return subprocess.run(["strings", "-n", "4"], input=data, capture_output=True).stdout.decode("latin-1")
    return "\n".join(m.decode("latin-1") for m in re.findall(rb"[\x20-\x7e]{4,}", data))


def test_no_plaintext_on_disk(home, home_path, demo_dir):
    home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    customers = pd.read_csv(demo_dir / "customers.csv", dtype=str, encoding="utf-8-sig")
    accounts = pd.read_csv(demo_dir / "accounts.csv", dtype=str)
    canaries = (list(customers["证件号码"]) + list(customers["手机号"]) + list(customers["电子邮箱"])
                + list(customers["客户号"]) + list(accounts["account_no"]))
    files = [p for p in home_path.iterdir() if p.name.startswith("store.db")]
    assert any(p.name.endswith("-wal") for p in files)  # the WAL is checked too, while it holds data
    for path in files:
        data = path.read_bytes()
        if path.name == "store.db":
            assert not data.startswith(b"SQLite format 3")
        text = _printable_runs(data)
        for value in canaries:
            assert value not in text, f"a canary value is readable in {path.name}"
        for name in customers["姓名"]:  # Chinese names: look for their UTF-8 bytes directly
            assert name.encode("utf-8") not in data


def test_backup_is_an_encrypted_consistent_copy(home, home_path, demo_dir, tmp_path):
    home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    target = tmp_path / "backup.db"
    home.backup(home.users().authenticate(ADMIN, ADMIN_PASSWORD), target)
    assert not target.read_bytes().startswith(b"SQLite format 3")
    copy = Store(target, home.keyring.data_key)
    assert copy.scalar("SELECT count(*) FROM transactions") == home.store.scalar("SELECT count(*) FROM transactions")
    copy.close()
