"""Jobs: every run recorded, failures leave the previous results whole, runs never overlap, schedules by cron."""

import fcntl
import shutil
from datetime import date, datetime

import pytest

from appliance import features, jobs
from appliance.access import system
from appliance.errors import ConfigError
from appliance.home import Home
from appliance.keys import Credentials
from tests.conftest import TESTS, ingest_and_score

AS_OF = date(2025, 12, 1)


@pytest.fixture
def loaded(home, demo_dir):
    home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    return home


def _runs(home):
    return [dict(r) for r in home.store.query("SELECT * FROM job_runs ORDER BY run_id")]


def test_a_run_is_recorded_with_its_rows(loaded):
    with jobs.recorded(loaded, "nightly", system("tests")) as outcome:
        outcome["rows"] = jobs.nightly(loaded, AS_OF)
    run = _runs(loaded)[-1]
    assert run["status"] == "ok" and run["rows"] > 0 and run["finished_at"] >= run["started_at"]
    assert loaded.store.scalar("SELECT count(*) FROM customer_tags WHERE as_of = ?", (AS_OF.isoformat(),)) > 0
    events = [e["details"] for e in loaded.audit.entries(event="job.run")]
    assert any('"status":"started"' in e for e in events) and any('"status":"ok"' in e for e in events)


def test_a_failed_run_is_recorded_and_leaves_previous_results(loaded):
    jobs.nightly(loaded, AS_OF)
    before = features.load(loaded.store, AS_OF).drop(columns="computed_at")
    loaded.store.execute("CREATE TRIGGER broken BEFORE INSERT ON customer_features WHEN "
                         "(SELECT count(*) FROM customer_features) >= 5 BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(Exception):
        with jobs.recorded(loaded, "nightly", system("tests")) as outcome:
            outcome["rows"] = jobs.nightly(loaded, AS_OF)
    loaded.store.execute("DROP TRIGGER broken")
    run = _runs(loaded)[-1]
    assert run["status"] == "failed" and run["error"] == "the store refused the operation (IntegrityError)"
    assert features.load(loaded.store, AS_OF).drop(columns="computed_at").equals(before)


def test_runs_never_overlap(loaded):
    with open(loaded.path / jobs.LOCK, "a") as other:  # another process holds the lock
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(jobs.JobBusy, match="another job is running"):
            with jobs.recorded(loaded, "nightly", system("tests")):
                pytest.fail("ran while another job held the lock")
        fcntl.flock(other, fcntl.LOCK_UN)
    assert _runs(loaded)[-1]["status"] == "skipped"


def test_inbox_ingests_and_moves_files(home, demo_dir):
    folder = home.path / "inbox" / "demo"
    folder.mkdir(parents=True)
    shutil.copy(demo_dir / "customers.csv", folder / "customers.csv")
    with jobs.recorded(home, "inbox", system("tests")) as outcome:
        outcome["rows"] = jobs.inbox(home)
    assert outcome["rows"] == 60 and (folder / "done" / "customers.csv").exists()
    assert not (folder / "customers.csv").exists()


def test_schedules_come_from_the_settings(home, home_path, key_file):
    runner = jobs.scheduler(home, Credentials(key_file=key_file))
    triggers = {job.id: job.trigger for job in runner.get_jobs()}
    assert set(triggers) == {"nightly", "inbox", "retention", "checkpoint"}
    frozen = datetime(2026, 3, 2, 0, 30, tzinfo=runner.timezone)  # a Monday, half past midnight
    assert triggers["nightly"].get_next_fire_time(None, frozen) == frozen.replace(hour=1, minute=0)
    assert triggers["inbox"].get_next_fire_time(None, frozen) == frozen.replace(minute=30)
    assert triggers["retention"].get_next_fire_time(None, frozen).weekday() == 6  # Sunday
    home.close()
    (home_path / "config.yaml").write_text('schedule.nightly: "every night please"\n', encoding="utf-8")
    with Home.open(home_path, Credentials(key_file=key_file)) as reopened:
        with pytest.raises(ConfigError, match="'schedule.nightly' is not a cron expression"):
            jobs.scheduler(reopened, Credentials(key_file=key_file))


def test_the_nightly_hands_its_scores_on_and_gets_what_reading_them_back_gives(home, demo_dir):
    """Segments, the risk summary and tags take the day's scores from the scoring run, not from the store;
    run again reading them back, every table they write comes out the same."""
    from appliance.models import Model
    from appliance.scoring import assign_segments, current_card, summarise_risk

    as_of = ingest_and_score(home, demo_dir)
    tables = ("customer_segments", "segment_profiles", "risk_summaries", "risk_ranks", "customer_tags",
              "tag_overlaps", "lifecycle_flows")

    def written():
        found = {}
        for table in tables:
            columns = [c for c in home.store.columns(table) if not c.endswith("_at")]
            found[table] = sorted(home.store.rows(f"SELECT {', '.join(columns)} FROM {table} WHERE as_of = ?",
                                                  (as_of.isoformat(),)))
        return found

    by_the_run = written()
    assert by_the_run["risk_ranks"] and {r[3] for r in by_the_run["risk_ranks"]} >= {"low", "medium"}
    # The ranks as SQL over the stored tables would give them
    assert by_the_run["risk_ranks"] == sorted(home.store.rows(
        "SELECT s.as_of, coalesce(c.branch, ''), coalesce(g.segment, -1), CASE WHEN f.balance_now >= 100000 THEN "
        "'high' WHEN f.balance_now >= 10000 THEN 'medium' ELSE 'low' END, s.probability, s.customer_id "
        "FROM customer_scores s JOIN customers c ON c.customer_id = s.customer_id LEFT JOIN customer_segments g "
        "ON g.customer_id = s.customer_id AND g.as_of = s.as_of LEFT JOIN customer_features f ON f.customer_id = "
        "s.customer_id AND f.as_of = s.as_of WHERE s.as_of = ?", (as_of.isoformat(),)))
    assert len({r[1] for r in by_the_run["risk_summaries"]}) > 1
    assign_segments(home.store, Model(current_card(home.path / "models", "segments")), as_of)
    summarise_risk(home.store, as_of)
    jobs.tag_customers(home, as_of)
    assert written() == by_the_run


def test_a_nightly_whose_tag_rules_are_broken_fails_with_their_line_and_keeps_its_scores(home, demo_dir):
    """Tags are built in a forked process beside the segments: its error comes back as the same one line,
    and what the other stages committed stays."""
    as_of = ingest_and_score(home, demo_dir)
    later = as_of.fromordinal(as_of.toordinal() + 1)
    (home.path / "tags.yaml").write_text("version: 1\ntags:\n  - id: x\n    zh: 甲\n    en: x\n    all: ['no_such_field > 1']\n",
                                         encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tags.yaml line \d+: x: unknown field 'no_such_field'"):
        jobs.nightly(home, later)
    day = (later.isoformat(),)
    assert home.store.scalar("SELECT count(*) FROM customer_scores WHERE as_of = ?", day) > 20
    assert home.store.scalar("SELECT count(*) FROM risk_ranks WHERE as_of = ?", day) > 20
    assert home.store.scalar("SELECT count(*) FROM customer_tags WHERE as_of = ?", day) == 0
