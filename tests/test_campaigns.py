"""Retention campaigns on a scored home: a control group that is random, balanced on risk and segment, and
reproducible from its seed; contacts only for the treatment group; responses ingested from the bank's files
counted; the effect's intervals equal a direct computation from the churn labels."""

import csv
import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from appliance import campaigns
from appliance.access import Actor
from tests.conftest import TESTS
from tests.web.conftest import scored_home

ANALYST = Actor("ana", "analyst")


def _frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.7, 4, n)
    return pd.DataFrame({"customer_id": [f"{i:032x}" for i in range(n)], "probability": p,
                         "risk_band": np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low")),
                         "segment": rng.integers(0, 6, n).astype(float)})


def test_the_control_group_is_reproducible_from_its_seed_and_differs_with_another():
    frame = _frame(5000)
    first, again, other = (campaigns.assign(frame, 0.2, s) for s in (42, 42, 43))
    assert first.equals(again)
    assert (first != other).sum() > 500
    assert first.equals(campaigns.assign(frame.sample(frac=1, random_state=3), 0.2, 42).reindex(first.index))


def test_the_control_group_is_balanced_on_risk_and_segment_within_every_stratum():
    frame = _frame(5000).set_index("customer_id", drop=False)
    arms = campaigns.assign(frame, 0.2, 7)
    frame["arm"] = arms
    for _key, group in frame.groupby(["risk_band", "segment"]):
        assert (group["arm"] == "control").sum() == round(0.2 * len(group))
    control, treatment = frame[frame["arm"] == "control"], frame[frame["arm"] == "treatment"]
    assert abs(len(control) / len(frame) - 0.2) < 0.005
    pooled = np.sqrt((control["probability"].var() + treatment["probability"].var()) / 2)
    assert abs(control["probability"].mean() - treatment["probability"].mean()) / pooled < 0.1  # standardised
    for segment in range(6):
        share = (frame[frame["segment"] == segment]["arm"] == "control").mean()
        assert abs(share - 0.2) < 0.02


def test_a_control_share_outside_0_and_1_is_refused():
    with pytest.raises(campaigns.CampaignError, match="between 0 and 1"):
        campaigns.assign(_frame(10), 1.5, 1)


@pytest.fixture
def scored(home, demo_dir):
    return home, scored_home(home, demo_dir)


def test_a_campaign_from_the_at_risk_list_records_its_groups_and_contacts_only_the_treatment(scored):
    home, as_of = scored
    with home.store.transaction():
        made = campaigns.create(home.store, ANALYST, "Call the at-risk", "at_risk", {}, 0.2, seed=11)
    members = dict(home.store.query("SELECT customer_id, arm FROM campaign_members WHERE campaign_id = ?",
                                    (made["campaign_id"],)))
    scored_ids = {r[0] for r in home.store.query("SELECT customer_id FROM customer_scores WHERE as_of = ?",
                                                 (as_of.isoformat(),))}
    assert set(members) == scored_ids and made["seed"] == 11
    assert made["control"] == list(members.values()).count("control") > 0
    again = campaigns.assign(campaigns.eligible(home.store, "at_risk", {})[1], 0.2, 11)
    assert {c: a for c, a in again.items()} == members  # reproducible from the recorded seed
    control = next(c for c, a in members.items() if a == "control")
    treated = next(c for c, a in members.items() if a == "treatment")
    with pytest.raises(campaigns.CampaignError, match="control group is held back"):
        campaigns.record_contact(home.store, made["campaign_id"], control, "accepted", ANALYST)
    with home.store.transaction():
        campaigns.record_contact(home.store, made["campaign_id"], treated, "accepted", ANALYST)
    page = campaigns.treatment_page(home.store, made["campaign_id"], zh=False, limit=500)
    assert {r["customer_id"] for r in page} == {c for c, a in members.items() if a == "treatment"}
    assert next(r for r in page if r["customer_id"] == treated)["outcome"] == "accepted"
    assert all(r["reasons"] for r in page if r["risk_band"] == "high")


def test_filters_of_the_at_risk_list_choose_the_same_customers_as_the_list(scored):
    home, as_of = scored
    _as_of, chosen = campaigns.eligible(home.store, "at_risk", {"band": "low"})
    assert set(chosen["customer_id"]) == {r[0] for r in home.store.query(
        "SELECT customer_id FROM customer_scores WHERE as_of = ? AND risk_band = 'low'", (as_of.isoformat(),))}
    tagged = campaigns.eligible(home.store, "tag", {"tag": "lifecycle:mature"})[1]
    assert set(tagged["customer_id"]) <= {r[0] for r in home.store.query(
        "SELECT customer_id FROM customer_tags t, json_each(t.tags) WHERE value = 'lifecycle:mature'")}


def ingest_responses(home, folder, campaign_id: str, outcomes: dict[str, str]) -> None:
    """Responses for these customer tokens as the bank's file would carry them (raw customer numbers)."""
    namespace = home.mapping("demo").id_namespace
    customers = pd.read_csv(folder / "customers.csv", dtype=str, encoding="utf-8-sig")
    raw = {home.tokenizer().token("customer", number, namespace): number for number in customers["客户号"]}
    out = folder.parent / f"responses-{campaign_id}"
    out.mkdir()
    with open(out / "campaign_responses.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["response_id", "campaign_code", "customer_no", "group", "contacted_at", "responded_at",
                         "outcome"])
        for i, (token, outcome) in enumerate(sorted(outcomes.items())):
            writer.writerow([f"X{i:08d}", campaign_id, raw[token], "treatment", "2026-01-20 10:00:00",
                             "2026-01-21 10:00:00", outcome])
    report = home.ingestor(TESTS).ingest(home.mapping("demo"), [out])
    assert report.rows_quarantined == 0 and report.rows_loaded == len(outcomes)


def test_the_effect_equals_a_direct_computation_from_the_churn_labels_and_the_responses(scored, demo_dir, tmp_path):
    from appliance.features import labels

    home, as_of = scored
    start = as_of - timedelta(days=200)
    with home.store.transaction():
        made = campaigns.create(home.store, ANALYST, "Back-dated", "at_risk", {}, 0.3, seed=5, starts_on=start)
    members = pd.DataFrame([dict(r) for r in home.store.query(
        "SELECT customer_id, arm FROM campaign_members WHERE campaign_id = ?", (made["campaign_id"],))])
    treated = members[members["arm"] == "treatment"]["customer_id"].tolist()
    folder = tmp_path / "copy" / "data"
    folder.parent.mkdir()
    import shutil

    shutil.copytree(demo_dir, folder)
    ingest_responses(home, folder, made["campaign_id"], {c: "accepted" for c in treated[: len(treated) // 2]})
    measured = campaigns.effect(home.store, made["campaign_id"])
    response = measured["response"]
    assert response["treatment"] == round((len(treated) // 2) / len(treated), 4) and response["control"] == 0
    assert response["low"] > 0  # half the treatment group answered, nobody in control: clearly above zero
    assert measured["over_time"] and measured["churn"]["days"] == measured["over_time"][-1]["days"]
    days = measured["churn"]["days"]
    customers = pd.DataFrame([dict(r) for r in home.store.query(
        "SELECT customer_id, closed_on FROM customers WHERE customer_id IN (SELECT customer_id FROM "
        "campaign_members WHERE campaign_id = ?)", (made["campaign_id"],))])
    customers["churn_label"] = np.nan
    churned = labels(home.store, start, customers, days, days)
    by_arm = members.assign(churned=members["customer_id"].map(churned)).groupby("arm")["churned"].mean()
    assert measured["churn"]["treatment"] == round(by_arm["treatment"], 4)
    assert measured["churn"]["control"] == round(by_arm["control"], 4)
    assert measured["churn"]["low"] <= measured["churn"]["difference"] <= measured["churn"]["high"]
    json.dumps(measured)  # plain data, ready for the page and the API


def test_campaign_ids_do_not_read_as_personal_data_to_the_pii_engine(pii):
    ids = {campaigns.new_id() for _ in range(300)}
    assert len(ids) == 300
    flagged = [i for i in ids if pii.analyze(i)]
    assert flagged == []


def test_no_context_word_of_the_pii_engine_can_be_spelled_by_a_campaign_id(pii):
    # The random suffix sits next to the date; a context word inside it would lift the date to an account
    # number. Checked over every recognizer's words, so it does not depend on which suffixes were drawn.
    words = {word.lower() for recognizer in pii.analyzer.registry.recognizers
             for word in list(recognizer.context or []) + list(getattr(recognizer, "negative_context", ()) or [])}
    assert "acct" in words
    spelled = sorted(w for w in words if set(w) <= set(campaigns.ID_LETTERS))
    assert spelled == []
    assert pii.analyze("RC-2026-11-30-wacctk")  # what happened with the old alphabet
    assert not pii.analyze("RC-2026-11-30-" + "bcdfgh")


def test_the_campaign_results_report_counts_both_groups_of_a_campaign_made_on_the_box(scored):
    from appliance import reports

    home, as_of = scored
    with home.store.transaction():
        made = campaigns.create(home.store, ANALYST, "Both arms", "at_risk", {}, 0.25, seed=3)
        treated = home.store.scalar("SELECT customer_id FROM campaign_members WHERE campaign_id = ? AND arm = "
                                    "'treatment' LIMIT 1", (made["campaign_id"],))
        campaigns.record_contact(home.store, made["campaign_id"], treated, "accepted", ANALYST)
    report = reports.get("campaign_results")
    table = reports.compute(home.store, report, ("campaign", "arm"),
                            reports.resolve_parameters(home.store, report, as_of))
    by_arm = {a.key["arm"]: a.customers for a in table.aggregates
              if a.key.get("campaign") == made["campaign_id"] and "arm" in a.key}
    assert by_arm == {"treatment": made["treatment"], "control": made["control"]}
