"""Data-subject rights: find by a typed identifier, report, erase everywhere."""

from pathlib import Path

import pandas as pd
import pytest

from appliance import subjects
from appliance.errors import ApplianceError, PolicyError
from appliance.home import Home
from appliance.keys import Credentials
from appliance.policies import SHIPPED_DIR, PurposePolicy
from appliance.store import BY_DAY
from tests.conftest import TESTS, add_per_day_rows, add_user, run_cli


@pytest.fixture
def loaded(home, demo_dir):
    home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    return home


def _person(demo_dir, index=0):
    return pd.read_csv(demo_dir / "customers.csv", dtype=str, encoding="utf-8-sig").iloc[index]


def test_find_by_each_identifier(loaded, demo_dir):
    person = _person(demo_dir)
    token = loaded.tokenizer().token("customer", person["客户号"], "demo")
    for kind, value in (("phone", person["手机号"]), ("id_number", person["证件号码"]), ("email", person["电子邮箱"])):
        assert subjects.find(loaded.store, loaded.tokenizer(), kind, value) == [token]
    assert subjects.find(loaded.store, loaded.tokenizer(), "phone", "+86 " + person["手机号"]) == [token]
    assert subjects.find(loaded.store, loaded.tokenizer(), "customer_id", person["客户号"], "demo") == [token]
    assert subjects.find(loaded.store, loaded.tokenizer(), "phone", "13000000000") == []


def test_report_reveals_only_when_asked_and_only_what_the_purpose_allows(loaded, demo_dir):
    person = _person(demo_dir)
    subject = subjects.load(loaded.store, loaded.tokenizer().token("customer", person["客户号"], "demo"))
    masked = subjects.report(loaded.store, loaded.vault(), subject)
    assert "revealed" not in masked and masked["rows"]["transactions.customer_id"] > 0
    assert person["姓名"] not in str(masked)
    purposes = loaded.purpose_policy()
    fields = purposes.revealable("compliance", "data_subject_request")
    revealed = subjects.report(loaded.store, loaded.vault(), subject, reveal=fields)
    assert revealed["revealed"]["phone"] == person["手机号"] and revealed["revealed"]["name"] == person["姓名"]
    phone_only = subjects.report(loaded.store, loaded.vault(), subject, reveal=frozenset({"customers.phone"}))
    assert set(phone_only["revealed"]) == {"phone"} and person["姓名"] not in str(phone_only)
    for role, purpose in (("compliance", "complaint_handling"), ("staff", "data_subject_request"),
                          ("compliance", "management_reporting"), ("compliance", "curiosity")):
        with pytest.raises(PolicyError):
            purposes.revealable(role, purpose)


@pytest.mark.parametrize("old, new, message", [
    ("reveal:\n  compliance:", "reveal:\n  auditor:", "unknown role 'auditor'"),
    ("purposes: [data_subject_request,", "purposes: [gossip,", "'compliance.purposes' must list purposes"),
    ("purposes: [data_subject_request,", "purposes: [regulatory_reporting,", "an export purpose never reveals"),
    ("  complaint_handling:   {zh: 投诉处理, ", "  complaint_handling:   {", "needs zh and en titles"),
])
def test_a_malformed_purpose_policy_names_its_line(old, new, message):
    text = (SHIPPED_DIR / PurposePolicy.FILE).read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(PolicyError, match=rf"purposes.yaml line \d+: .*{message}"):
        PurposePolicy.parse(text.replace(old, new))


def _tables_holding(home, tokens):
    hits = {}
    for table in home.store.tables():
        if table in ("audit_log", "audit_checkpoints"):  # kept as policy requires; tokens and counts only
            continue
        for row in home.store.query(f"SELECT * FROM {table}"):
            text = " ".join(str(v) for v in row if v is not None and not isinstance(v, bytes))
            for token in tokens:
                if token in text or token[:12] in text:
                    hits[table] = hits.get(table, 0) + 1
    return hits


def test_a_subjects_rows_in_per_day_tables_are_found_by_lookups_per_day_not_by_reading_every_row(loaded):
    for table in BY_DAY:
        clause, params = subjects._where(table, "customer_id", ["T-someone"])
        plan = " ".join(r[3] for r in loaded.store.rows(f"EXPLAIN QUERY PLAN DELETE FROM {table} WHERE {clause}",
                                                        params))
        assert f"SCAN {table}" not in plan and f"SEARCH {table}" in plan and "(as_of=? AND customer_id=?)" in plan


def test_erasure_leaves_no_row_holding_the_customers_tokens(loaded, demo_dir):
    subjects.register_erasure("derived_example")  # a derived table, as later modules will add
    loaded.store.execute("CREATE TABLE derived_example (customer_id TEXT, score REAL)")
    person = _person(demo_dir, 3)
    customer = loaded.tokenizer().token("customer", person["客户号"], "demo")
    loaded.store.execute("INSERT INTO derived_example VALUES (?, 0.9)", (customer,))
    add_per_day_rows(loaded.store, [customer, "T-another-customer"], ["2025-01-31", "2025-02-28"])
    subject = subjects.load(loaded.store, customer)
    tokens = [customer, *subject.accounts, *subject.pii_tokens.values()]
    assert _tables_holding(loaded, tokens)
    with loaded.store.transaction():
        counts = subjects.erase(loaded.store, subject)
    assert counts["customers"] == 1 and counts["derived_example"] == 1 and counts["vault"] >= 3
    assert all(counts[table] == 2 for table in BY_DAY), counts
    assert _tables_holding(loaded, tokens) == {}
    assert all(loaded.store.scalar(f"SELECT count(*) FROM {table}") == 2 for table in BY_DAY)  # the other's
    with pytest.raises(ApplianceError, match="no customer"):
        subjects.load(loaded.store, customer)


def test_cli_erase_is_audited_with_counts_and_reaches_the_nightlys_results(tmp_path, key_file, demo_dir):
    """The command line imports none of the modules that register derived tables; erasure must reach their
    rows all the same (it once left a customer's features, scores and tags)."""
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    run_cli("ingest", "--home", home, "--source", "demo", demo_dir, env_extra=env, check=True)
    officer = add_user("officer", "compliance", "officer-password", "--home", home, env=env)
    person = _person(demo_dir, 5)
    customer = run_cli("subject", "find", "--home", home, "--by", "id_number", "--purpose", "data_subject_request",
                       env_extra=officer, stdin=person["证件号码"] + "\n", check=True).stdout.strip()
    with Home.open(home, Credentials(key_file=key_file)) as opened, opened.store.transaction():
        add_per_day_rows(opened.store, [customer], ["2025-01-31", "2025-02-28"])
        opened.store.execute("INSERT INTO risk_ranks VALUES ('2025-02-28', 'B1', 1, 'high', 0.9, ?)", (customer,))
    out = run_cli("subject", "erase", "--home", home, "--customer", customer, "--reason", "PIPL art. 47 request",
                  env_extra=officer, check=True).stdout
    assert out.startswith("erased: 1 customers")
    assert all(f"2 {table}" in out for table in BY_DAY) and "1 risk_ranks" in out, out
    log = run_cli("audit", "list", "--home", home, "--event", "subject.erase", env_extra=officer, check=True).stdout
    assert customer in log and '"customers":1' in log


def test_every_module_that_registers_derived_data_is_loaded_by_erasure():
    package = Path(__file__).resolve().parent.parent / "appliance"
    registering = {"appliance." + path.relative_to(package).with_suffix("").as_posix().replace("/", ".")
                   for path in package.rglob("*.py") if "register_erasure(\"" in path.read_text(encoding="utf-8")}
    assert registering and registering == set(subjects.DERIVING_MODULES)


def test_erasure_finds_a_shifted_quarantined_row_that_keeps_no_raw_value(home, demo_dir, tmp_path):
    """A row shifted by one column ends up in the quarantine with the customer number under dc_flag and an
    account number under amount: it keeps neither in clear, and erasing the customer removes it."""
    data = tmp_path / "data"
    data.mkdir()
    for path in demo_dir.iterdir():
        if path.is_file():  # not truth/, the generator's record of what happens next
            (data / path.name).write_bytes(path.read_bytes())
    lines = (data / "transactions.csv").read_text(encoding="utf-8").splitlines()
    txn, account, customer, when, amount, *rest = lines[1].split(",")
    shifted = ",".join([txn + "X", "", account, customer, when, amount, *rest])  # one column to the right
    with open(data / "transactions.csv", "a", encoding="utf-8") as handle:
        handle.write(",".join(shifted.split(",")[:10]) + "\n")
    home.ingestor(TESTS).ingest(home.mapping("demo"), [data])
    kept = [row[0] for row in home.store.query("SELECT protected_row FROM quarantine")]
    assert len(kept) == 1 and account not in kept[0] and customer not in kept[0] and when not in kept[0]
    subject = subjects.load(home.store, home.tokenizer().token("customer", customer, "demo"))
    with home.store.transaction():
        counts = subjects.erase(home.store, subject)
    assert counts["quarantine"] == 1
    assert home.store.scalar("SELECT count(*) FROM quarantine") == 0


def test_cli_erases_the_leftovers_of_customers_erased_before_and_only_theirs(tmp_path, key_file, demo_dir):
    """Derived rows of a customer erased by an earlier release (whose `subject erase` left them) go, counted
    first with --dry-run and audited; a customer who is still here keeps every row."""
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    run_cli("ingest", "--home", home, "--source", "demo", demo_dir, env_extra=env, check=True)
    officer = add_user("officer", "compliance", "officer-password", "--home", home, env=env)
    with Home.open(home, Credentials(key_file=key_file)) as opened, opened.store.transaction():
        present = opened.store.scalar("SELECT min(customer_id) FROM customers")
        add_per_day_rows(opened.store, [present, "T-erased-earlier"], ["2025-01-31", "2025-02-28"])
    counted = run_cli("subject", "erase-leftovers", "--home", home, "--reason", "cleanup after upgrade", "--dry-run",
                      env_extra=officer, check=True).stdout
    assert counted.startswith("would erase: ") and all(f"2 {table}" in counted for table in BY_DAY), counted
    erased = run_cli("subject", "erase-leftovers", "--home", home, "--reason", "cleanup after upgrade",
                     env_extra=officer, check=True).stdout
    assert erased.startswith("erased: ") and all(f"2 {table}" in erased for table in BY_DAY), erased
    with Home.open(home, Credentials(key_file=key_file)) as opened:
        assert subjects.leftovers(opened.store) == {}
        for table in BY_DAY:
            assert {r[0] for r in opened.store.rows(f"SELECT customer_id FROM {table}")} == {present}
        entry = opened.store.query("SELECT details FROM audit_log WHERE event = 'subject.erase.leftovers'")
        assert len(entry) == 1 and '"customer_features":2' in entry[0][0].replace(" ", "")
    again = run_cli("subject", "erase-leftovers", "--home", home, "--reason", "again", env_extra=officer, check=True)
    assert again.stdout.strip() == "erased: nothing"
    staff = add_user("sam", "staff", "sam-password-1", "--home", home, env=env)
    refused = run_cli("subject", "erase-leftovers", "--home", home, "--reason", "x", env_extra=staff)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
