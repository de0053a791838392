"""Shipped source mappings: they validate, and real data loads through them with every bad row explained.

The samples in tests/data always run; the full sets in ../shared run when present (integration)."""

from pathlib import Path

import pytest

from appliance.mapping import SHIPPED_DIR, available_mappings, load_mapping
from appliance.policies import SHIPPED_DIR as POLICIES, ProtectionPolicy
from tests.conftest import SHARED, TESTS

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["demo", "berka", "churn_modelling"])
def test_shipped_mappings_validate(name):
    mapping = load_mapping(SHIPPED_DIR / f"{name}.yaml", ProtectionPolicy.load(POLICIES))
    assert mapping.name == name and mapping.files
    assert set(available_mappings()) >= {"demo", "berka", "churn_modelling"}


def _quarantine(home):
    return [(r["file_name"], r["line"], r["column_name"], r["reason"])
            for r in home.store.query("SELECT * FROM quarantine ORDER BY quarantine_id")]


def test_berka_sample(home):
    report = home.ingestor(TESTS).ingest(home.mapping("berka"), [DATA / "berka_sample"])
    by_file = {f.name: f for f in report.files}
    assert by_file["trans.asc.gz"].rows_loaded == 299
    assert _quarantine(home) == [("trans.asc.gz", 301, None, "4 fields where the header has 10")]
    owners = by_file["disp.asc"].rows_loaded
    assert owners + by_file["disp.asc"].rows_filtered == 60
    # A Berka birth number becomes a birth year and a gender; women have 50 added to the month.
    row = home.store.query("SELECT birth_year, gender FROM customers WHERE customer_id = ?",
                           (home.tokenizer().token("customer", "1", "berka"),))[0]
    assert (row["birth_year"], row["gender"]) == (1970, "F")  # birth_number 706213
    assert home.store.scalar("SELECT count(*) FROM transactions WHERE booked_at = '1993-01-01'") > 0


def test_churn_sample(home):
    report = home.ingestor(TESTS).ingest(home.mapping("churn_modelling"), [DATA / "churn_sample" / "Churn_Modelling.csv"])
    assert report.rows_loaded == 200 and report.rows_quarantined == 0
    row = home.store.query("SELECT * FROM customers WHERE customer_id = ?",
                           (home.tokenizer().token("customer", "15634602", "churn_modelling"),))[0]
    assert (row["credit_score"], row["region"], row["gender"], row["age"], row["churn_label"]) == \
        (619, "France", "F", 42, 1)
    assert row["name"] == home.tokenizer().token("name", "Hargrave")


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent: full data sets not here")


@pytest.mark.integration
@needs_shared
def test_full_berka(home):
    report = home.ingestor(TESTS).ingest(home.mapping("berka"), [SHARED / "berka"])
    counts = {f.name: f for f in report.files}
    assert report.unmatched == ["SOURCE.md"]
    assert counts["trans.asc.gz"].rows_loaded == 49_102  # SOURCE.md: 49,102 complete rows + 1 cut row
    assert counts["client.asc"].rows_loaded == 5_369 and counts["account.asc"].rows_loaded == 4_500
    assert counts["disp.asc"].rows_loaded == 4_500 and counts["disp.asc"].rows_filtered == 869
    assert counts["loan.asc"].rows_loaded == 682 and counts["card.asc"].rows_loaded == 892
    assert _quarantine(home) == [("trans.asc.gz", 49_104, None, "4 fields where the header has 10")]
    assert home.store.scalar("SELECT count(DISTINCT account_id) FROM transactions") == 1_229
    unowned = home.store.scalar("SELECT count(*) FROM accounts WHERE customer_id IS NULL")
    assert unowned == 0  # every account has exactly one owner


@pytest.mark.integration
@needs_shared
def test_full_churn(home):
    report = home.ingestor(TESTS).ingest(home.mapping("churn_modelling"), [SHARED / "churn_modelling"])
    assert report.rows_loaded == 10_000 and report.rows_quarantined == 0
    assert home.store.scalar("SELECT sum(churn_label) FROM customers") == 2_037
    assert home.store.scalar("SELECT count(*) FROM customers WHERE region = 'Germany'") == 2_509
