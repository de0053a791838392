"""Tags and lifecycle stages: the shipped rules read, and stored tags match a count made by hand."""

import json
from datetime import date

import pandas as pd
import pytest

from appliance import features, tagging
from appliance.errors import ConfigError
from tests.conftest import TESTS, run_cli

AS_OF = date(2025, 12, 1)


@pytest.fixture
def tagged(home, demo_dir):
    home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    features.build(home.store, AS_OF, chunk_customers=50, horizon_days=90, inactivity_days=90)
    tagging.build(home.store, AS_OF)
    return home


def test_at_least_forty_banking_tags_and_five_stages():
    tags, lifecycle = tagging.load_rules()
    assert len(tags) >= 40
    assert [stage.id for stage in lifecycle] == ["lapsed", "new", "declining", "growing", "mature"]
    assert all(t.zh and t.en for t in tags)


def test_counts_match_a_hand_count_over_the_features(tagged):
    frame = features.load(tagged.store, AS_OF)
    expected = {
        "payroll": int((frame["salary_months_12"] >= 6).sum()),
        "dormant_90": int((frame["recency_days"] > 90).sum()),
        "digital_first": int((frame["digital_share"] >= 0.6).sum()),
        "credit_card_holder": int((frame["has_credit_card"] == 1).sum()),
        "net_outflow": int(((frame["debit_90"] > frame["credit_90"]) & (frame["debit_90"] > 10000)).sum()),
        "affluent": int(((frame["balance_now"] >= 100000) | (frame["crm_balance"] >= 100000)).sum()),
        "good_credit": 0,  # the demo source has no credit score: a missing value makes the condition false
    }
    counts = tagging.counts(tagged.store, AS_OF)
    for tag, count in expected.items():
        assert counts.get(tag, 0) == count, tag
    assert sum(v for k, v in counts.items() if k.startswith("lifecycle:")) == len(frame)  # one stage each
    both = int(((frame["salary_months_12"] >= 6) & (frame["has_credit_card"] == 1)).sum())
    assert tagging.overlap(tagged.store, AS_OF, "payroll", "credit_card_holder") == both


def test_lifecycle_takes_the_first_stage_that_holds():
    _, lifecycle = tagging.load_rules()
    frame = pd.DataFrame({name: [0.0] * 3 for name in features.FEATURE_NAMES}, index=["a", "b", "c"])
    frame["recency_days"] = [200, 5, 5]
    frame["tenure_days"] = [50, 50, 2000]
    frame["activity_decay"] = [1.0, 1.0, 1.0]
    frame["churn_probability"], frame["risk_band"] = None, None
    _, stage = tagging.assign(frame, [], lifecycle)
    assert stage.tolist() == ["lapsed", "new", "mature"]


@pytest.mark.parametrize("line, message", [
    ('  - {id: x, zh: 甲, en: X, all: ["nonsense"]}', "cannot read condition"),
    ('  - {id: x, zh: 甲, en: X, all: ["shoe_size > 3"]}', "unknown field 'shoe_size'"),
    ('  - {id: payroll, zh: 甲, en: X, all: []}', "defined twice"),
    ('  - {id: "a\\x1fb", zh: 甲, en: X, all: []}', "printable"),  # the tag-set separator of reports
    ('  - {id: " ", zh: 甲, en: X, all: []}', "printable"),
])
def test_rule_errors_name_file_and_line(tmp_path, line, message):
    text = tagging.SHIPPED.read_text(encoding="utf-8").replace("lifecycle:", line + "\nlifecycle:", 1)
    path = tmp_path / "tags.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"tags.yaml line \d+: .*{message}"):
        tagging.load_rules(path)


def test_cli_run_tags_and_counts(tmp_path, key_file, demo_dir):
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    run_cli("ingest", "--home", home, "--source", "demo", demo_dir, env_extra=env, check=True)
    run_cli("run", "features", "--home", home, "--as-of", "2025-12-01", env_extra=env, check=True)
    assert "tags and stages given" in run_cli("run", "tags", "--home", home, "--as-of", "2025-12-01",
                                              env_extra=env, check=True).stdout
    counts = run_cli("tags", "counts", "--home", home, "--as-of", "2025-12-01", env_extra=env, check=True).stdout
    assert "lifecycle:" in counts and "payroll" in counts


def test_a_customer_s_tags_are_one_row_in_key_order_and_a_customer_without_a_stage_gets_none(tagged, tmp_path):
    rules = tmp_path / "tags.yaml"
    shipped = tagging.SHIPPED.read_text(encoding="utf-8")
    catch_all = "  - {id: mature, zh: 成熟, en: Mature, all: []}\n"
    assert catch_all in shipped
    rules.write_text(shipped.replace(catch_all, ""), encoding="utf-8")
    given = tagging.build(tagged.store, AS_OF, rules)
    held = {r[0]: json.loads(r[1]) for r in tagged.store.rows(
        "SELECT customer_id, tags FROM customer_tags WHERE as_of = ?", (AS_OF.isoformat(),))}
    assert given == sum(len(tags) for tags in held.values()) > 0
    # What the rules give each customer, counted here from the frame, column by column.
    frame = tagging.customer_frame(tagged.store, AS_OF)
    tagged_frame, stage = tagging.assign(frame, *tagging.load_rules(rules))
    expected = {}
    for customer in frame.index:
        tags = [t for t in tagged_frame.columns if tagged_frame.at[customer, t]]
        tags += [f"lifecycle:{stage[customer]}"] if isinstance(stage[customer], str) else []
        if tags:
            expected[customer] = sorted(tags)
    assert held == expected
    # Written in the order of the table's key (as_of, customer_id): one sweep of its B-tree.
    order = [customer for customer, _ in tagging._tag_sets(tagged_frame, stage)[0]]
    assert order == sorted(order) == sorted(held)
    assert not any(t in ("lifecycle:None", "lifecycle:mature") for tags in held.values() for t in tags)
    staged = {c for c, tags in held.items() if any(t.startswith("lifecycle:") for t in tags)}
    assert 0 < len(staged) < len(held)


def test_lifecycle_flows_start_from_the_latest_earlier_day_with_stages(tagged):
    """Days are walked newest first: a later day with tags but no stages, and a day after the one tagged,
    are passed over."""
    store, day = tagged.store, AS_OF.isoformat()
    someone = store.scalar("SELECT min(customer_id) FROM customer_tags WHERE as_of = ?", (day,))
    with store.transaction():
        store.execute("INSERT INTO customer_tags VALUES ('2025-12-02', ?, '[\"payroll\"]', 'x')", (someone,))
        store.execute("INSERT INTO customer_tags VALUES ('2026-01-01', ?, '[\"lifecycle:new\"]', 'x')", (someone,))
    features.build(store, date(2025, 12, 3), chunk_customers=50, horizon_days=90, inactivity_days=90)
    tagging.build(store, date(2025, 12, 3))
    previous = {r[0] for r in store.rows("SELECT previous_as_of FROM lifecycle_flows WHERE as_of = '2025-12-03'")}
    assert previous == {day}
    moved = dict(store.rows("SELECT from_stage, sum(customers) FROM lifecycle_flows WHERE as_of = '2025-12-03' "
                            "AND from_stage != 'none' GROUP BY from_stage"))
    assert moved and moved == dict(store.rows("SELECT substr(value, 11), count(*) FROM customer_tags t, "
                                              "json_each(t.tags) WHERE as_of = ? AND value LIKE 'lifecycle:%' "
                                              "GROUP BY 1", (day,)))


def test_tags_from_features_the_caller_loaded_equal_tags_read_afresh_and_leave_the_frame_as_it_was(tagged):
    store, day = tagged.store, AS_OF.isoformat()
    afresh = store.rows("SELECT customer_id, tags FROM customer_tags WHERE as_of = ? ORDER BY customer_id", (day,))
    loaded = features.load(store, AS_OF)
    columns = list(loaded.columns)
    tagging.build(store, AS_OF, loaded=loaded)
    assert list(loaded.columns) == columns  # the nightly hands the same frame to scoring first
    assert store.rows("SELECT customer_id, tags FROM customer_tags WHERE as_of = ? ORDER BY customer_id",
                      (day,)) == afresh
    tagging.build(store, AS_OF, loaded=loaded.assign(recency_days=1000.0))  # the frame given is the one read
    assert all("dormant_180" in json.loads(r[0]) for r in store.rows("SELECT tags FROM customer_tags WHERE as_of = ?",
                                                                      (day,)))
