"""Customer features: right values, nothing from after the as-of date, reproducible, whole or not at all."""

from datetime import date

import pandas as pd
import pytest

from appliance import features, subjects
from tests.conftest import DATA_DIR, TESTS, run_cli

AS_OF = date(2025, 12, 1)


def _build(home, as_of=AS_OF):
    return features.build(home.store, as_of, chunk_customers=7, horizon_days=90, inactivity_days=90)


@pytest.fixture
def loaded(home, demo_dir):
    home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    return home


def _expected(demo_dir, customer_no: str) -> dict:
    """The same features computed straight from the source files, independently of the store."""
    tx = pd.read_csv(demo_dir / "transactions.csv", dtype={"customer_no": str})
    tx = tx[tx["customer_no"] == customer_no]
    tx["when"] = pd.to_datetime(tx["txn_time"])
    age = (pd.Timestamp(AS_OF) - tx["when"]).dt.days
    before = tx[tx["when"] < pd.Timestamp(AS_OF)]
    expected = {}
    for days in (90, 365):
        window = tx[(tx["when"] < pd.Timestamp(AS_OF)) & (age <= days)]
        expected[f"tx_count_{days}"] = len(window)
        expected[f"debit_{days}"] = window.loc[window["dc_flag"] == "D", "amount"].sum()
        expected[f"credit_{days}"] = window.loc[window["dc_flag"] == "C", "amount"].sum()
    expected["recency_days"] = (pd.Timestamp(AS_OF) - before["when"].max()).days
    expected["balance_now"] = before.sort_values("when")["balance_after"].iloc[-1]
    notes = pd.read_csv(demo_dir / "interactions.csv", dtype={"customer_no": str})
    notes = notes[(notes["customer_no"] == customer_no) & (notes["type"] == "complaint")]
    notes = notes[pd.to_datetime(notes["occurred_at"]) < pd.Timestamp(AS_OF)]
    expected["complaints_365"] = int((pd.Timestamp(AS_OF) - pd.to_datetime(notes["occurred_at"])).dt.days.le(365).sum())
    return expected


def test_features_match_a_computation_from_the_source_files(loaded, demo_dir):
    assert _build(loaded) > 0
    stored = features.load(loaded.store, AS_OF)
    customers = pd.read_csv(demo_dir / "customers.csv", dtype=str, encoding="utf-8-sig")
    checked = 0
    for customer_no in customers["客户号"][:12]:
        token = loaded.tokenizer().token("customer", customer_no, "demo")
        if token not in stored.index:
            continue  # left before the as-of date
        row = stored.loc[token]
        for name, value in _expected(demo_dir, customer_no).items():
            assert row[name] == pytest.approx(value, rel=1e-9, abs=1e-6), (customer_no, name)
        checked += 1
    assert checked >= 8


def test_nothing_after_the_as_of_date_reaches_a_feature(loaded):
    _build(loaded)
    first = features.load(loaded.store, AS_OF)[list(features.FEATURE_NAMES)]
    customer = first.index[0]
    loaded.store.execute("INSERT INTO transactions (transaction_id, customer_id, booked_at, amount, direction, "
                         "channel, category, source, batch_id) VALUES ('late', ?, ?, 99999, 'debit', 'app', "
                         "'online_shopping', 'test', 0)", (customer, AS_OF.isoformat() + "T00:00:00"))
    loaded.store.execute("INSERT INTO interactions (interaction_id, customer_id, occurred_at, kind, source, batch_id) "
                         "VALUES ('late', ?, ?, 'complaint', 'test', 0)", (customer, AS_OF.isoformat() + "T09:00:00"))
    _build(loaded)
    again = features.load(loaded.store, AS_OF)[list(features.FEATURE_NAMES)]
    pd.testing.assert_frame_equal(first, again)


def test_reproducible_and_replaced_whole(loaded):
    _build(loaded)
    first = features.load(loaded.store, AS_OF).drop(columns="computed_at")
    _build(loaded)
    pd.testing.assert_frame_equal(first, features.load(loaded.store, AS_OF).drop(columns="computed_at"))
    # A run that fails half way (here: the store refuses the 10th row) leaves the previous rows whole.
    loaded.store.execute("CREATE TRIGGER half BEFORE INSERT ON customer_features WHEN "
                         "(SELECT count(*) FROM customer_features) >= 9 BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(Exception):
        _build(loaded)
    loaded.store.execute("DROP TRIGGER half")
    pd.testing.assert_frame_equal(first, features.load(loaded.store, AS_OF).drop(columns="computed_at"))


def test_erasure_reaches_features(loaded):
    _build(loaded)
    customer = features.load(loaded.store, AS_OF).index[0]
    with loaded.store.transaction():
        counts = subjects.erase(loaded.store, subjects.load(loaded.store, customer))
    assert counts["customer_features"] == 1
    assert customer not in features.load(loaded.store, AS_OF).index


def test_mapped_label_and_snapshot_fields(home):
    home.ingestor(TESTS).ingest(home.mapping("churn_modelling"), [DATA_DIR / "churn_sample" / "Churn_Modelling.csv"])
    _build(home, date(2019, 1, 1))
    stored = features.load(home.store, date(2019, 1, 1))
    source = pd.read_csv(DATA_DIR / "churn_sample" / "Churn_Modelling.csv")
    assert len(stored) == len(source)
    row = stored.loc[home.tokenizer().token("customer", "15634602", "churn_modelling")]
    assert (row["churn_label"], row["credit_score"], row["age"], row["crm_products"], row["is_female"]) == \
        (1, 619, 42, 1, 1)
    assert stored["churn_label"].sum() == source["Exited"].sum()


def test_cli_run_features(tmp_path, key_file, demo_dir):
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    run_cli("ingest", "--home", home, "--source", "demo", demo_dir, env_extra=env, check=True)
    out = run_cli("run", "features", "--home", home, "--as-of", "2025-12-01", env_extra=env, check=True).stdout
    assert out.startswith("features of ") and "as of 2025-12-01" in out
