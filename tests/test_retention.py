"""Retention: rows older than the policy allows go, counts are audited, the audit log is out of reach."""

import shutil
from datetime import date

import pytest

from appliance import retention
from appliance.errors import PolicyError
from appliance.policies import SHIPPED_DIR
from appliance.store import BY_DAY
from tests.conftest import TESTS, add_per_day_rows, run_cli


def test_purges_by_table_and_date(home, demo_dir):
    home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    policy = retention.RetentionPolicy.load(home.path / "policies")
    before = {t: home.store.scalar(f"SELECT count(*) FROM {t}") for t in ("transactions", "digital_events")}
    audit_before = home.store.scalar("SELECT count(*) FROM audit_log")
    # Two years after the data's last month: events (2 years) go, transactions (5 years) stay.
    with home.store.transaction():
        counts = retention.purge(home.store, policy, date(2028, 6, 1))
    assert counts["digital_events"] == before["digital_events"] and counts["transactions"] == 0
    assert home.store.scalar("SELECT count(*) FROM digital_events") == 0
    assert home.store.scalar("SELECT count(*) FROM audit_log") == audit_before
    with home.store.transaction():
        counts = retention.purge(home.store, policy, date(2031, 12, 31))
    assert counts["transactions"] == before["transactions"]


def test_free_text_is_cleared_sooner_than_its_rows(home, demo_dir):
    home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    policy = retention.RetentionPolicy.load(home.path / "policies")
    notes = home.store.scalar("SELECT count(*) FROM interactions WHERE text IS NOT NULL")
    memos = home.store.scalar("SELECT count(*) FROM transactions WHERE memo IS NOT NULL")
    rows = home.store.scalar("SELECT count(*) FROM interactions")
    assert notes and memos
    # Three years after the data: rows (5 years) stay, their free text (2 years) is gone.
    with home.store.transaction():
        counts = retention.purge(home.store, policy, date(2029, 6, 1))
    assert counts["interactions.text"] == notes and counts["transactions.memo"] == memos
    assert home.store.scalar("SELECT count(*) FROM interactions") == rows
    assert home.store.scalar("SELECT count(*) FROM interactions WHERE text IS NOT NULL") == 0


def test_the_nightlys_results_go_by_whole_days_and_the_newest_day_always_stays(home):
    """Tags keep 92 days and scores 400 under the shipped policy; a home whose nightly stopped long ago keeps
    its last results all the same (the console and the next run read them)."""
    policy = retention.RetentionPolicy.load(home.path / "policies")
    days = ["2024-01-31", "2025-01-31", "2025-02-28"]
    with home.store.transaction():
        add_per_day_rows(home.store, ["T-a", "T-b"], days)
        home.store.execute("INSERT INTO risk_ranks VALUES ('2025-01-31', 'B1', 1, 'high', 0.9, 'T-a')")

    def held(table):
        return sorted({r[0] for r in home.store.rows(f"SELECT as_of FROM {table}")})

    with home.store.transaction():
        counts = retention.purge(home.store, policy, date(2025, 3, 1))
    assert held("customer_tags") == days[1:] and counts["customer_tags"] == 2
    assert held("customer_scores") == days and counts["customer_scores"] == 0
    with home.store.transaction():
        counts = retention.purge(home.store, policy, date(2027, 6, 1))
    assert all(held(table) == days[2:] for table in BY_DAY), counts
    assert held("risk_ranks") == ["2025-01-31"]  # its newest (and only) day
    assert counts["customer_scores"] == 4 and counts["customer_tags"] == 2


@pytest.mark.parametrize("change, message", [
    (("customer_tags:       {days: 92,   date: as_of}", "customer_tags: {days: 92, date: tagged_at}"), "must be as_of"),
    (("customer_tags:       {days: 92,   date: as_of}", "customer_tagz: {days: 92, date: as_of}"), "unknown table"),
    (("audit_log_years: 5", "audit_log_years: 2"), "at least 5"),
    (("  quarantine:          {days: 180}", "  audit_log: {days: 30}"), "'audit_log' is not purged"),
    (("{days: 730,  date: occurred_at}", "{days: 730,  date: event_type}"), "date or date-time field"),
    (("  free_text:           {days: 730}", "  C2:                  {days: 730}"), "covers free_text, not 'C2'"),
    (("  interactions:        {days: 1825, date: occurred_at}\n", ""), "'interactions' holds free text"),
])
def test_policy_errors_name_file_and_line(tmp_path, change, message):
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED_DIR, folder)
    text = (folder / "retention.yaml").read_text(encoding="utf-8")
    assert change[0] in text
    (folder / "retention.yaml").write_text(text.replace(change[0], change[1]), encoding="utf-8")
    with pytest.raises(PolicyError, match=rf"retention.yaml line \d+: .*{message}"):
        retention.RetentionPolicy.load(folder)


def test_cli_run_retention_is_audited(tmp_path, key_file, demo_dir):
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    run_cli("ingest", "--home", home, "--source", "demo", demo_dir, env_extra=env, check=True)
    out = run_cli("run", "retention", "--home", home, "--as-of", "2028-06-01", env_extra=env, check=True).stdout
    assert out.startswith("purged: 0 transactions") and "digital_events" in out
