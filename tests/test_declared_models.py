"""Models that learn from the bank's own fields: declared features (a category carrying all the signal), any
binary target, a model at chance refused, readable reasons, and one model per source scoring only its own."""

import json
import shutil
from datetime import date

import pytest

from appliance import training
from appliance.errors import ApplianceError, MappingError
from appliance.jobs import score_customers
from appliance.mapping import load_mapping
from appliance.models import Model
from appliance.policies import SHIPPED_DIR, ProtectionPolicy
from tests.conftest import DATA_DIR, TESTS

DECLARED = DATA_DIR / "declared"


@pytest.fixture
def two_sources(home):
    for name in ("contracts", "noise"):
        shutil.copy(DECLARED / f"{name}.yaml", home.sources_dir / f"{name}.yaml")
        home.ingestor(TESTS).ingest(home.mapping(name), [DECLARED / f"{name}.csv"])
    return home


def test_a_declared_category_carries_the_signal(two_sources):
    card = json.loads(training.churn_for_home(two_sources, "contracts", folds=3).read_text())
    info = {i["name"]: i for i in card["feature_info"]}
    assert info["attributes.contract"]["kind"] == "categorical" and info["attributes.contract"]["source_column"] == "contract"
    assert max(info, key=lambda n: info[n]["importance"]) == "attributes.contract"
    assert card["metrics"]["cv_roc_auc"] > 0.7  # gender alone would sit at 0.5
    assert card["metrics"]["cv_roc_auc"] >= _plain_baseline() - 0.02
    codes = card["encodings"]["attributes.contract"]
    assert codes["version"] == 1 and codes["codes"]["Month-to-month"] > codes["codes"]["Two year"]


def _plain_baseline() -> float:
    """Plain scikit-learn gradient boosting on the same CSV columns (one-hot contract), same folds."""
    import pandas as pd
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    raw = pd.read_csv(DECLARED / "contracts.csv")
    x = pd.get_dummies(raw[["gender", "contract", "monthly_charges", "tenure_months"]], dtype=float)
    y = (raw["churned"] == "Yes").astype(int)
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    return float(cross_val_score(GradientBoostingClassifier(random_state=0), x, y, cv=folds, scoring="roc_auc").mean())


def test_a_model_at_chance_is_refused_unless_forced(two_sources):
    models = two_sources.path / "models"
    with pytest.raises(training.TrainingError, match=r"CV ROC-AUC 0\.\d+, under the floor 0\.6 .*not installed"):
        training.churn_for_home(two_sources, "noise", folds=3)
    assert not models.exists() or not list(models.glob("churn-*"))
    card = json.loads(training.churn_for_home(two_sources, "noise", folds=3, force=True).read_text())
    assert card["metrics"]["forced"] is True and card["metrics"]["cv_roc_auc"] < 0.6


def test_two_sources_models_each_score_only_their_own(two_sources):
    training.churn_for_home(two_sources, "contracts", folds=3)
    training.churn_for_home(two_sources, "noise", folds=3, force=True)
    as_of = date.today()
    scored, drifts, _ = score_customers(two_sources, as_of, TESTS)
    assert scored == 1000 and len(drifts) == 2
    rows = two_sources.store.query(
        "SELECT c.source, s.model_sha256, count(*) FROM customer_scores s JOIN customers c USING (customer_id) "
        "WHERE s.as_of = ? GROUP BY 1, 2", (as_of.isoformat(),))
    by_source = {r[0]: (r[1], r[2]) for r in rows}
    cards = {Model(p).scope[0]: Model(p).card["sha256"] for p in (two_sources.path / "models").glob("churn-*.json")}
    assert by_source == {"contracts": (cards["contracts"], 600), "noise": (cards["noise"], 400)}
    assert all(not d["flagged"] for d in drifts.values())  # scored on the data it learned from: no drift


def test_reasons_read_as_a_person_would_and_low_risk_has_none(two_sources):
    training.churn_for_home(two_sources, "contracts", folds=3)
    as_of = date.today()
    score_customers(two_sources, as_of, TESTS)
    rows = two_sources.store.query("SELECT probability, risk_band, reasons_en, reasons_zh FROM customer_scores "
                                   "WHERE as_of = ?", (as_of.isoformat(),))
    assert all(json.loads(r["reasons_en"]) == [] for r in rows if r["risk_band"] == "low")
    risky = [json.loads(r["reasons_en"]) for r in rows if r["risk_band"] == "high"]
    assert risky and any("contract: Month-to-month (typical: " in reason for found in risky for reason in found)
    zh = [json.loads(r["reasons_zh"]) for r in rows if r["risk_band"] == "high"]
    assert any("contract：Month-to-month（常见：" in reason for found in zh for reason in found)


def test_any_binary_target_trains_a_propensity_model(two_sources):
    card_path = training.propensity_for_home(two_sources, "took_offer", "contracts", folds=3)
    card = json.loads(card_path.read_text())
    assert card["kind"] == "propensity" and card["target"] == {"kind": "propensity", "name": "took_offer"}
    assert card["metrics"]["cv_roc_auc"] > 0.7
    as_of = date.today()
    score_customers(two_sources, as_of, TESTS)
    assert two_sources.store.scalar("SELECT count(*) FROM propensity_scores WHERE target = 'took_offer'") == 600
    with pytest.raises(ApplianceError, match="not a label the mapping declares"):
        training.propensity_for_home(two_sources, "contract", "contracts", folds=3)


def test_a_mapping_declares_features_and_labels_with_checks(tmp_path):
    policy = ProtectionPolicy.load(SHIPPED_DIR)
    mapping = load_mapping(DECLARED / "contracts.yaml", policy)
    assert [c.name for c in mapping.declared_features()] == ["contract", "monthly_charges", "tenure_months"]
    assert list(mapping.declared_labels()) == ["took_offer"]
    text = (DECLARED / "contracts.yaml").read_text(encoding="utf-8")
    for change, message in ((("feature: categorical", "feature: fuzzy"), "'feature' must be one of"),
                            (("type: integer, feature: numeric", "feature: numeric"), "numeric feature needs type"),
                            (("type: boolean, label: true", "label: true"), "a label must be kept on the customer")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text.replace(*change), encoding="utf-8")
        with pytest.raises(MappingError, match=message):
            load_mapping(bad, policy)


def test_next_best_product_and_campaign_response_are_targets_too(home, tmp_path):
    """Propensity from the bank's own records: who comes to hold a product (next best product) and who
    responded to a campaign, on generated data with transactions (a time-based split)."""
    from appliance.demo_data import generate

    generate(tmp_path / "data", 400, seed=5)
    home.ingestor(TESTS).ingest(home.mapping("demo"), [tmp_path / "data"])
    card = json.loads(training.propensity_for_home(home, "product:credit_card", None, folds=3, force=True).read_text())
    assert card["target"]["name"] == "product:credit_card" and card["metrics"]["holdout"].startswith("time-based")
    card = json.loads(training.propensity_for_home(home, "campaign:CMP01", None, folds=3, force=True).read_text())
    assert card["target"]["name"] == "campaign:CMP01" and card["training"]["rows"] < 400  # only those contacted
    with pytest.raises(ApplianceError, match="campaign 'NOPE' has no recorded responses"):
        training.propensity_for_home(home, "campaign:NOPE", None, folds=3)


def test_the_same_data_trains_the_same_model_in_any_home(two_sources, tmp_path):
    """Customer tokens differ with each home's key, so rows read in token order would train another model
    in every home; training orders rows by their own values."""
    from appliance.home import Home
    from appliance.keys import Credentials, new_key_file
    from tests.conftest import ADMIN, ADMIN_PASSWORD

    key = tmp_path / "other.key"
    new_key_file(key)
    with Home.init(tmp_path / "other", Credentials(key_file=key), admin=ADMIN, admin_password=ADMIN_PASSWORD) as other:
        shutil.copy(DECLARED / "contracts.yaml", other.sources_dir / "contracts.yaml")
        other.ingestor(TESTS).ingest(other.mapping("contracts"), [DECLARED / "contracts.csv"])
        theirs = json.loads(training.churn_for_home(other, "contracts", folds=3).read_text())
    ours = json.loads(training.churn_for_home(two_sources, "contracts", folds=3).read_text())
    assert ours["sha256"] == theirs["sha256"] and ours["metrics"]["cv_roc_auc"] == theirs["metrics"]["cv_roc_auc"]
