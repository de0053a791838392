"""Churn models: trained on the box, ONNX agrees with scikit-learn, tampered files refused, reasons that move."""

import json
from datetime import date

import numpy as np
import pytest

from appliance import features, training
from appliance.models import Model, ModelError, band
from appliance.scoring import score
from tests.conftest import DATA_DIR, SHARED, TESTS, run_cli

AS_OF = date(2019, 1, 1)


@pytest.fixture
def churn_home(home):
    home.ingestor(TESTS).ingest(home.mapping("churn_modelling"), [DATA_DIR / "churn_sample" / "Churn_Modelling.csv"])
    features.build(home.store, AS_OF, chunk_customers=100, horizon_days=90, inactivity_days=90)
    return home


def _in_stable_order(frame):
    """Rows ordered by their own values: `features.load` orders by customer token, and tokens depend on each
    home's random key, so a split by position would train another model in every run."""
    columns = [c for c in (*features.FEATURE_NAMES, "churn_label") if frame[c].notna().any()]
    return frame.sort_values(columns, kind="mergesort")


@pytest.fixture
def trained(churn_home):
    frame = _in_stable_order(features.load(churn_home.store, AS_OF))
    values = features.declared_frame(churn_home.store, frame.index.tolist(), [features.REGION])
    train = training.Candidate(frame.iloc[:150], frame["churn_label"].iloc[:150], [features.REGION], values)
    holdout = training.Candidate(frame.iloc[150:], frame["churn_label"].iloc[150:], [features.REGION], values)
    card = training.train_binary("churn", {"kind": "churn", "name": "churn"}, train, holdout, holdout_kind="random",
                                 window={"as_of": "x"}, folds=3, out_dir=churn_home.path / "models",
                                 scope=["churn_modelling"], min_auc=0.6)
    return churn_home, card


def test_card_says_what_the_model_is(trained):
    _, card_path = trained
    card = json.loads(card_path.read_text())
    assert card["kind"] == "churn" and card["features"][0] in features.FEATURE_NAMES
    assert {"age", "credit_score", "crm_products", "customers.region"} <= set(card["features"])
    assert "region_code" not in card["features"]  # the region is a category, not a hash number
    assert set(card["encodings"]["customers.region"]["codes"]) == {"France", "Germany", "Spain"}
    assert {"roc_auc", "pr_auc", "brier", "calibration", "reliability_by_decile", "cv_roc_auc"} <= set(card["metrics"])
    assert len(card["metrics"]["reliability_by_decile"]) == 10
    assert {i["name"] for i in card["feature_info"]} == set(card["features"]) and card["scope"]["sources"] == [
        "churn_modelling"]
    assert set(card["versions"]) >= {"scikit-learn", "skl2onnx", "onnx", "onnxruntime"}
    assert len(card["training"]["data_sha256"]) == 64 and card["training"]["rows"] == 150


def test_onnx_agrees_with_scikit_learn(churn_home):
    frame = features.load(churn_home.store, AS_OF)
    names = training.usable_features(frame)
    x = frame[names].to_numpy(dtype=np.float32, na_value=np.nan)
    y = frame["churn_label"].to_numpy(dtype=int)
    pipeline = training._pipeline().fit(x, y)
    onnx = training.onnx_probabilities(training.to_onnx(pipeline, len(names)), x)
    assert np.max(np.abs(onnx - pipeline.predict_proba(x)[:, 1])) < 1e-5


def test_a_changed_model_file_is_refused(trained):
    _, card_path = trained
    onnx_path = card_path.with_suffix(".onnx")
    Model(card_path)  # intact: loads
    data = bytearray(onnx_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    onnx_path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its card"):
        Model(card_path)


def test_reasons_move_when_the_feature_moves(trained):
    _, card_path = trained
    model = Model(card_path)
    crafted = {name: model.card["typical"][name] for name in model.features}
    rows = []
    for age in (30, 45, 60):
        rows.append([age if name == "age" else crafted[name] for name in model.features])
    x = np.array(rows, dtype=np.float32)
    probabilities = model.probabilities(x)
    assert probabilities[2] > probabilities[0]  # older customers leave more often in this data
    reasons = model.reasons(x)
    age_part = [next((r.contribution for r in found if r.feature == "age"), 0.0) for found in reasons]
    assert age_part[2] > age_part[1] >= age_part[0] >= 0
    assert reasons[2][0].feature == "age" and reasons[2][0].text("en").startswith("age: 60 (typical: ")
    assert reasons[2][0].text("zh").startswith("年龄：60 岁（常见：")


def test_reasons_probe_only_where_the_typical_value_takes_another_branch(trained):
    """A probe is skipped where the typical value falls between the same split thresholds as the customer's:
    it would score exactly as the customer does. The reasons are those of probing every feature."""
    from appliance.models import Splits
    from appliance.scoring import scoped_frame

    home, card_path = trained
    model = Model(card_path)
    x = model.matrix(scoped_frame(home.store, model, AS_OF))
    x[::7, model.features.index("age")] = np.nan  # missing: the model's imputer fills it
    splits = model._splits
    assert splits.thresholds is not None and splits.fills is not None
    skipped = ~splits.differ(x, model.typical)
    assert 0.1 < skipped.mean() < 0.9
    rows, columns = np.nonzero(skipped)
    probe = x[rows]
    probe[np.arange(len(rows)), columns] = model.typical[columns]
    assert (model.probabilities(probe) == model.probabilities(x)[rows]).all()
    every = Model(card_path)
    every._splits = Splits(None, None)
    assert every._splits.differ(x, model.typical).all()
    assert model.reasons(x) == every.reasons(x) and any(model.reasons(x))


def test_stored_reason_texts_are_the_reasons_in_json_row_by_row(trained):
    """reason_texts joins the arrays for many rows at once; each must be what json.dumps makes of that row's
    own reasons, for rows with none, one, two and three reasons, and repeated or missing values."""
    from appliance.scoring import scoped_frame

    home, card_path = trained
    model = Model(card_path)
    x = model.matrix(scoped_frame(home.store, model, AS_OF))
    x = np.concatenate([x, x[:20]])  # the same feature and value in many rows
    x[::5, model.features.index("age")] = np.nan
    cut_offs = (0.2, 0.5)
    texts = model.reason_texts(x, cut_offs=cut_offs)
    reasons = model.reasons(x, cut_offs=cut_offs)
    assert texts == [(json.dumps([r.text("zh") for r in row], ensure_ascii=False),
                      json.dumps([r.text("en") for r in row])) for row in reasons]
    assert {len(row) for row in reasons} == {0, 1, 2, 3}


def test_scores_bands_and_erasure(trained):
    home, card_path = trained
    assert score(home.store, Model(card_path), AS_OF, (0.3, 0.6)) == 200
    rows = home.store.query("SELECT * FROM customer_scores")
    assert {r["risk_band"] for r in rows} <= {"low", "medium", "high"} and len(rows) == 200
    assert all(r["risk_band"] == band(r["probability"], (0.3, 0.6)) for r in rows)
    assert len(json.loads(rows[0]["reasons_zh"])) <= 3
    explained = [r for r in rows if r["reasons_en"] != "[]"]
    assert explained and all(r["reasons_zh"] == json.dumps(json.loads(r["reasons_zh"]), ensure_ascii=False) and
                             r["reasons_en"] == json.dumps(json.loads(r["reasons_en"])) for r in rows)
    from appliance import subjects

    with home.store.transaction():
        counts = subjects.erase(home.store, subjects.load(home.store, rows[0]["customer_id"]))
    assert counts["customer_scores"] == 1 and counts["customer_features"] == 1


def _cli_home(tmp_path, key_file, source: str, data) -> tuple:
    """A home made and loaded through the command line, as a person would: (home, env)."""
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    run_cli("ingest", "--home", home, "--source", source, data, env_extra=env, check=True)
    return home, env


def test_cli_train_prints_the_card_path_last(tmp_path, key_file):
    home, env = _cli_home(tmp_path, key_file, "churn_modelling", DATA_DIR / "churn_sample")
    out = run_cli("train", "churn", "--home", home, "--source", "churn_modelling", "--cv", "3", env_extra=env,
                  check=True).stdout.strip().splitlines()
    assert out[0].startswith("features (") and any("built-in" in line for line in out)
    card = json.loads(open(out[-1], encoding="utf-8").read())
    assert 0.5 < card["metrics"]["roc_auc"] <= 1 and 0.5 < card["metrics"]["cv_roc_auc"] <= 1
    assert card["metrics"]["holdout"].startswith("random stratified")


@pytest.mark.integration
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent: the full churn set is not here")
def test_full_churn_set_cross_validated_auc(tmp_path, key_file):
    home, env = _cli_home(tmp_path, key_file, "churn_modelling", SHARED / "churn_modelling")
    out = run_cli("train", "churn", "--home", home, "--source", "churn_modelling", "--cv", "5", env_extra=env,
                  check=True).stdout.strip().splitlines()
    card = json.loads(open(out[-1], encoding="utf-8").read())
    assert card["metrics"]["cv_roc_auc"] >= 0.86


def test_segments_profiles_and_onnx_labels(churn_home):
    frame = features.load(churn_home.store, AS_OF)
    card_path = training.train_segments(frame, k=3, window={"as_of": "x"}, out_dir=churn_home.path / "models",
                                        source="churn_modelling")
    card = json.loads(card_path.read_text())
    assert card["kind"] == "segments" and card["k"] == 3
    assert sum(p["size"] for p in card["profiles"]) == len(frame)
    for profile in card["profiles"]:
        assert profile["name_zh"] and profile["name_en"] and profile["churn_rate"] is not None
        assert {"recency_days", "frequency_365", "monetary_365", "products_mean"} <= set(profile)
    assert len({p["name_zh"] for p in card["profiles"]}) == 3  # readable and distinct
    from sklearn.cluster import KMeans
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    model = Model(card_path)
    assert model._splits.thresholds is None  # no tree ensemble: were it to explain, it would probe everything
    x = model.matrix(frame)  # the card's log transform applied, as at scoring time
    assert set(card["transforms"]) <= set(training.SEGMENT_LOG_FEATURES) and card["transforms"]
    reference = Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                          ("scale", MinMaxScaler()), ("kmeans", KMeans(n_clusters=3, n_init=10, random_state=0))])
    reference.fit(x[np.lexsort(x.T[::-1])])  # trained on rows in the order of their values
    assert (model.labels(x) == reference.predict(x)).all()
    stability = card["metrics"]["bootstrap_stability"]
    assert len(stability["chosen"]["refits"]) == 10 and stability["chosen"]["mean_ari"] >= stability["floor"]


def test_segments_do_not_depend_on_the_order_customer_tokens_put_rows_in(churn_home, tmp_path):
    """Tokens come from each bank's own key, so the same customers arrive in another order on another box."""
    frame = features.load(churn_home.store, AS_OF)
    cards = []
    for seed in (1, 2, 3):
        shuffled = frame.sample(frac=1.0, random_state=seed)
        path = training.train_segments(shuffled, k=3, window={"as_of": "x"}, out_dir=tmp_path / str(seed),
                                       source=None)
        card = json.loads(path.read_text())
        cards.append((card["metrics"]["bootstrap_stability"]["chosen"], card["training"]["data_sha256"],
                      sorted(p["size"] for p in card["profiles"])))
    assert cards[0] == cards[1] == cards[2]


def test_segments_that_do_not_hold_are_refused(churn_home):
    frame = features.load(churn_home.store, AS_OF)
    with pytest.raises(training.TrainingError, match="do not hold under resampling"):
        training.train_segments(frame, k=8, window={"as_of": "x"}, out_dir=churn_home.path / "models",
                                source=None, min_stability=0.99)


def test_segment_assignment_and_erasure(churn_home):
    from appliance import subjects
    from appliance.scoring import assign_segments

    frame = features.load(churn_home.store, AS_OF)
    card_path = training.train_segments(frame, k=3, window={"as_of": "x"}, out_dir=churn_home.path / "models",
                                        source=None)
    profiles = assign_segments(churn_home.store, Model(card_path), AS_OF)
    assert sum(p["size"] for p in profiles) == 200
    assert churn_home.store.scalar("SELECT count(*) FROM segment_profiles") == 3
    customer = churn_home.store.scalar("SELECT customer_id FROM customer_segments LIMIT 1")
    with churn_home.store.transaction():
        counts = subjects.erase(churn_home.store, subjects.load(churn_home.store, customer))
    assert counts["customer_segments"] == 1


def test_cli_train_segments_prints_the_card_path_last(tmp_path, key_file):
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    run_cli("ingest", "--home", home, "--source", "churn_modelling", DATA_DIR / "churn_sample", env_extra=env,
            check=True)
    out = run_cli("train", "segments", "--home", home, "--k", "3", env_extra=env, check=True).stdout.strip()
    card = json.loads(open(out.splitlines()[-1], encoding="utf-8").read())
    assert card["kind"] == "segments" and out.count("segment ") == 3


def test_drift_is_measured_flagged_and_written_to_the_card(trained):
    from appliance.drift import counts, psi, reference

    same = np.random.default_rng(0).normal(size=5000)
    ref = reference(same)
    assert psi(ref["shares"], counts(same, ref["edges"])) < 0.01
    assert psi(ref["shares"], counts(same + 1.5, ref["edges"])) > 0.2
    home, card_path = trained
    score(home.store, Model(card_path), AS_OF, (0.3, 0.6), drift_threshold=0.2)
    first = json.loads(card_path.read_text())["drift"][-1]
    assert "age" not in first["over_threshold"]  # the same population it learned from
    home.store.execute("UPDATE customer_features SET age = age + 30")
    score(home.store, Model(card_path), AS_OF, (0.3, 0.6), drift_threshold=0.2)
    card = json.loads(card_path.read_text())
    assert len(card["drift"]) == 2 and card["drift"][-1]["flagged"] and "age" in card["drift"][-1]["over_threshold"]
    stored = json.loads(home.store.scalar("SELECT result FROM drift_runs WHERE as_of = ?", (AS_OF.isoformat(),)))
    assert stored["psi"]["age"] > 0.2 and stored["flagged"]
    Model(card_path)  # the card changed, the model file did not: it still loads


def test_shipped_default_models_load_and_know_their_features():
    from appliance.scoring import current_card

    shipped = DATA_DIR.parent.parent / "models"
    for kind in ("churn", "segments"):
        model = Model(current_card(shipped, kind))  # the hash check passes
        assert set(model.features) <= set(features.FEATURE_NAMES) | {"customers.region"}
    churn = json.loads(current_card(shipped).read_text())
    assert churn["metrics"]["holdout"].startswith("time-based") and churn["metrics"]["cv_roc_auc"] > 0.8
    assert churn["scope"]["sources"] == ["demo"] and churn["training"]["as_of"] == "2025-07-01"
    segments = json.loads(current_card(shipped, "segments").read_text())
    assert segments["metrics"]["bootstrap_stability"]["chosen"]["mean_ari"] >= 0.8


def test_training_without_the_train_extra_says_what_to_install(monkeypatch):
    import importlib.util

    import click

    from appliance.cli.insights import _training

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    with pytest.raises(click.ClickException, match=r"train extra \(sklearn missing\): pip install"):
        _training()


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "bank_churners").exists(), reason="the credit-card churn table lives in ../shared")
def test_full_credit_card_churners_learn_from_the_banks_own_columns(tmp_path, key_file):
    """The product path on BankChurners: its signal is in columns the canonical model does not name, declared
    as features by the shipped mapping (the two leaking columns dropped)."""
    home, env = _cli_home(tmp_path, key_file, "bank_churners", SHARED / "bank_churners")
    out = run_cli("train", "churn", "--home", home, "--source", "bank_churners", env_extra=env,
                  check=True).stdout.strip().splitlines()
    card = json.loads(open(out[-1], encoding="utf-8").read())
    assert card["metrics"]["cv_roc_auc"] >= 0.97 and card["metrics"]["cv_folds"] == 5
    assert not any("Naive_Bayes" in (i["source_column"] or "") for i in card["feature_info"])
    top = max(card["feature_info"], key=lambda i: i["importance"])
    assert top["source_column"] in ("Total_Trans_Ct", "Total_Trans_Amt", "Total_Revolving_Bal", "Total_Ct_Chng_Q4_Q1")


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "churn_modelling").exists(), reason="the churn set lives in ../shared")
def test_full_churn_set_segments_hold_under_resampling(tmp_path, key_file):
    home, env = _cli_home(tmp_path, key_file, "churn_modelling", SHARED / "churn_modelling")
    out = run_cli("train", "segments", "--home", home, env_extra=env, check=True).stdout.strip().splitlines()
    card = json.loads(open(out[-1], encoding="utf-8").read())
    assert card["metrics"]["bootstrap_stability"]["chosen"]["mean_ari"] >= 0.8 and 3 <= card["k"] <= 8


def test_a_binary_model_and_its_card_do_not_depend_on_the_order_customer_tokens_put_rows_in(churn_home, tmp_path):
    """Tokens come from each bank's own key, so the same customers arrive in another order on another box:
    the model, its holdout metrics and its features' importance must come out the same."""
    frame = _in_stable_order(features.load(churn_home.store, AS_OF))
    values = features.declared_frame(churn_home.store, frame.index.tolist(), [features.REGION])
    found = []
    for seed in (1, 2, 3):
        train, holdout = frame.iloc[:150].sample(frac=1.0, random_state=seed), \
            frame.iloc[150:].sample(frac=1.0, random_state=seed)
        path = training.train_binary(
            "churn", {"kind": "churn", "name": "churn"},
            training.Candidate(train, train["churn_label"], [features.REGION], values),
            training.Candidate(holdout, holdout["churn_label"], [features.REGION], values), holdout_kind="random",
            window={"as_of": "x"}, folds=3, out_dir=tmp_path / str(seed), scope=["churn_modelling"], min_auc=0.6)
        card = json.loads(path.read_text())
        found.append((card["sha256"], card["metrics"], card["feature_info"]))
    assert found[0] == found[1] == found[2]
