"""Ingestion: encodings, delimiters, formats, quarantine with reasons, refusals, idempotence, kills."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import openpyxl
import pytest

from appliance.errors import IngestError
from appliance.ingest import Ingestor
from appliance.home import Home
from appliance.keys import Credentials
from tests.conftest import ADMIN, ADMIN_ENV, ADMIN_PASSWORD, APPLIANCE, TESTS, assert_one_line_error, run_cli

DATA = Path(__file__).parent / "data"
HEADER = "cust_id,name,id_no,mobile,card_cvv,joined,balance,products,vip,tier,note"
GOOD = [
    "K001,张伟,110101199003071234,13812345678,123,2020/01/05,1200.50,2,是,金,客户张伟来电",
    "K002,李娜,310101198512120021,13987654321,456,2019/11/30,\"3,400.00\",1,false,普通,",
    "K003,王芳,440305197701010045,15000000000,789,2021/02/28,0,3,Y,银,note",
]


@pytest.fixture
def bankx(home):
    shutil.copy(DATA / "sources" / "bankx.yaml", home.sources_dir / "bankx.yaml")
    return home


def _write(path: Path, lines, encoding="utf-8", sep=","):
    path.write_text("\n".join(line.replace(",", sep) if sep != "," else line for line in lines) + "\n",
                    encoding=encoding)
    return path


def _ingest(home, *paths):
    return home.ingestor(TESTS).ingest(home.mapping("bankx"), list(paths))


def _count(home, table="customers"):
    return home.store.scalar(f"SELECT count(*) FROM {table}")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_encodings_give_the_same_tokens(bankx, tmp_path, encoding):
    report = _ingest(bankx, _write(tmp_path / "customers.csv", [HEADER, *GOOD], encoding=encoding))
    assert report.files[0].encoding == ("utf-8" if encoding == "utf-8" else encoding)
    assert report.rows_loaded == 3 and report.rows_quarantined == 0
    name = bankx.store.scalar("SELECT name FROM customers WHERE segment = 'gold'")
    assert name == bankx.tokenizer().token("name", "张伟")
    assert bankx.store.scalar("SELECT total_balance FROM customers WHERE segment = 'mass'") == 3400.0


def test_semicolon_separated(bankx, tmp_path):
    lines = [HEADER] + [g.replace('"3,400.00"', "3400.00") for g in GOOD]
    report = _ingest(bankx, _write(tmp_path / "customers.csv", lines, sep=";"))
    assert report.rows_loaded == 3


def test_typed_values_and_derivations(bankx, tmp_path):
    _ingest(bankx, _write(tmp_path / "customers.csv", [HEADER, *GOOD]))
    row = bankx.store.query("SELECT * FROM customers WHERE segment = 'gold'")[0]
    assert row["joined_on"] == "2020-01-05" and row["birth_year"] == 1990 and row["product_count"] == 2
    assert json.loads(row["attributes"]) == {"vip": 1}
    assert row["customer_id"] == bankx.tokenizer().token("customer", "K001", "bankx")


def test_malformed_rows_are_quarantined_with_reasons(bankx, tmp_path):
    bad = [
        "K010,赵六,110101199003071234,13800000000,1,2020-01-05,10,1,true,金,",    # line 5: date format
        "K011,钱七,110101199003071234,13800000000,1,2020/01/05,abc,1,true,金,",   # line 6: balance
        "K012,孙八,110101199003071234,13800000000,1,2020/01/05,10,1,true,铜,",    # line 7: tier not mapped
        "K013,周九,110101199003071234,13800000000,1,2020/01/05,10,1,maybe,金,",   # line 8: boolean
        ",吴十,110101199003071234,13800000000,1,2020/01/05,10,1,true,金,",        # line 9: missing key
        "K015,郑一,110101199003071234,13800000000,1,2020/01/05,-5,1,true,金,",    # line 10: below min
        "K016,冯二,110101199003071234",                                          # line 11: short row
        "K017,陈三,110101199003071234,13800000000,1,2020/01/05,10,99,true,金,",   # line 12: above max
        "K018,褚四,110101199003071234,13800000000,1,2020/01/05,10,1,true,,",      # line 13: tier required
    ]
    more_good = [g.replace("K00", f"K2{i}") for i in range(4) for g in GOOD]  # keep bad rows under the share limit
    report = _ingest(bankx, _write(tmp_path / "customers.csv", [HEADER, *GOOD, *bad, *more_good]))
    assert report.rows_loaded == 15 and report.rows_quarantined == 9
    rows = bankx.store.query("SELECT line, column_name, reason, protected_row FROM quarantine ORDER BY line")
    found = [(r["line"], r["column_name"], r["reason"]) for r in rows]
    assert found == [
        (5, "joined", "not a date in format %Y/%m/%d"),
        (6, "balance", "not a number"),
        (7, "tier", "value not among the mapping's values"),
        (8, "vip", "not a true/false value"),
        (9, "cust_id", "missing required value"),
        (10, "balance", "below minimum 0"),
        (11, None, "3 fields where the header has 11"),
        (12, "products", "above maximum 50"),
        (13, "tier", "missing required value"),
    ]
    for row in rows:  # a quarantined row keeps tokens, never the raw PII, C3 data or free text
        text = row["protected_row"] or ""
        for raw in ("赵六", "钱七", "110101199003071234", "13800000000"):
            assert raw not in text
    kept = json.loads(rows[0]["protected_row"])["columns"]
    # Not even a C1 value is kept as it is: a bad row may hold anything in any column; its shape is shown.
    assert kept["card_cvv"] == "<withheld>" and kept["name"].startswith("tok:") and kept["tier"] == "<1 letters>"


def test_unmapped_and_missing_columns_stop_the_batch(bankx, tmp_path):
    extra = _write(tmp_path / "customers.csv", [HEADER + ",secret", *(g + ",x" for g in GOOD)])
    with pytest.raises(IngestError, match="column 'secret' is not in the mapping"):
        _ingest(bankx, extra)
    missing = _write(tmp_path / "customers2.csv", [HEADER.replace(",mobile", ""), "K1,a,b,1,2020/01/01,1,1,1,金,"])
    with pytest.raises(IngestError, match="mapped column 'mobile' is missing"):
        _ingest(bankx, missing)
    assert _count(bankx) == 0 and bankx.store.scalar("SELECT count(*) FROM ingest_batches") == 0


def test_a_file_no_entry_matches_is_refused(bankx, tmp_path):
    with pytest.raises(IngestError, match="no file entry"):
        _ingest(bankx, _write(tmp_path / "accounts.csv", ["a,b", "1,2"]))


def test_same_file_twice_and_overlapping_files_add_nothing(bankx, tmp_path):
    first = _write(tmp_path / "customers.csv", [HEADER, *GOOD])
    _ingest(bankx, first)
    again = _ingest(bankx, first)
    assert again.batch_id is None and again.files[0].duplicate_of_batch == 1
    overlap = _write(tmp_path / "customers_b.csv", [HEADER, GOOD[0], GOOD[1].replace("普通", "金")])
    _ingest(bankx, overlap)
    assert _count(bankx) == 3
    assert bankx.store.scalar("SELECT count(*) FROM customers WHERE segment = 'gold'") == 2


def test_a_mostly_bad_file_refuses_the_whole_batch(bankx, tmp_path):
    good = _write(tmp_path / "customers_a.csv", [HEADER, *GOOD])
    bad = _write(tmp_path / "customers_b.csv", [HEADER] + [g.replace("2020/01/05", "05.01.2020")
                                                           .replace("2019/11/30", "x").replace("2021/02/28", "y")
                                                           for g in GOOD])
    with pytest.raises(IngestError, match=r"customers_b.csv: 3 of 3 rows failed .*column 'joined'"):
        _ingest(bankx, good, bad)
    assert _count(bankx) == 0 and bankx.store.scalar("SELECT count(*) FROM quarantine") == 0


def test_xlsx(bankx, tmp_path):
    import datetime as dt

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["cust_id", "name", "joined", "balance"])
    sheet.append(["X1", "张三", dt.datetime(2022, 3, 4), 1500.25])
    sheet.append(["X2", "李四", "not a date", 10])
    book.save(tmp_path / "customers.xlsx")
    report = _ingest(bankx, tmp_path / "customers.xlsx")
    assert report.rows_loaded == 1 and report.rows_quarantined == 1
    assert bankx.store.scalar("SELECT joined_on FROM customers") == "2022-03-04"
    assert bankx.store.scalar("SELECT line FROM quarantine") == 3
    (tmp_path / "customers_broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(IngestError, match="not a readable XLSX"):
        _ingest(bankx, tmp_path / "customers_broken.xlsx")


def test_json_lines(bankx, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "e1", "cust": "K001", "at": "2025-01-01T10:00:00", "kind": "login"}),
        "{not json",
        json.dumps({"id": "e2", "cust": "K001", "at": "2025-01-02T10:00:00", "kind": {"nested": 1}}),
        json.dumps({"id": "e3", "cust": "K002", "at": "2025-01-03T11:00:00", "kind": "transfer"}),
    ]) + "\n", encoding="utf-8")
    report = _ingest(bankx, path)
    assert report.rows_loaded == 2
    reasons = [r["reason"] for r in bankx.store.query("SELECT reason FROM quarantine ORDER BY line")]
    assert reasons == ["not valid JSON", "column 'kind' holds a nested value"]
    path.write_text(json.dumps({"id": "e9", "cust": "K1", "surprise": 1}) + "\n")
    with pytest.raises(IngestError, match="key 'surprise' is not in the mapping"):
        _ingest(bankx, path)


def _mask_notes(home):
    text = (DATA / "sources" / "bankx.yaml").read_text(encoding="utf-8")
    masked = text.replace("note: {to: customers.attributes.note_dropped, class: free_text, protect: drop}",
                          "note: {to: customers.attributes.note, class: free_text}")
    (home.sources_dir / "bankx.yaml").write_text(masked, encoding="utf-8")


def test_free_text_to_mask_needs_a_masker(bankx, tmp_path):
    _mask_notes(bankx)
    bare = Ingestor(bankx.store, bankx.tokenizer(), bankx.vault(), bankx.protection_policy(), chunk_rows=1000,
                    max_bad_row_share=0.5)
    with pytest.raises(IngestError, match="column 'note' is free text to be masked, but no PII engine"):
        bare.ingest(bankx.mapping("bankx"), [_write(tmp_path / "customers.csv", [HEADER, *GOOD])])


def test_free_text_is_masked_on_the_way_in(bankx, tmp_path):
    _mask_notes(bankx)
    _ingest(bankx, _write(tmp_path / "customers.csv", [HEADER, *GOOD]))
    notes = [json.loads(r[0]).get("note") for r in bankx.store.query("SELECT attributes FROM customers")]
    assert "客户<CN_PERSON:" in " ".join(n for n in notes if n)
    assert not any("张伟" in (n or "") for n in notes)


def test_pii_in_a_column_kept_as_is_stops_the_batch(bankx, tmp_path):
    lines = [HEADER] + [g.replace(",金,", ",金,").replace(",1,是,", ",1,是,") for g in GOOD]
    text = (DATA / "sources" / "bankx.yaml").read_text(encoding="utf-8")
    # A mapping that wrongly calls the mobile column not personal and keeps it.
    wrong = text.replace("mobile: {to: customers.phone, class: C2}",
                         "mobile: {to: customers.attributes.contact, class: not_personal}")
    (bankx.sources_dir / "bankx.yaml").write_text(wrong, encoding="utf-8")
    with pytest.raises(IngestError, match=r"column 'mobile' is stored as it is \(class not_personal\) but holds "
                                          r"CN_MOBILE \(3 of 3 sampled values\)"):
        _ingest(bankx, _write(tmp_path / "customers.csv", lines))
    assert _count(bankx) == 0
    message = ""
    try:
        _ingest(bankx, _write(tmp_path / "customers2.csv", lines))
    except IngestError as exc:
        message = str(exc)
    assert "13812345678" not in message and "13987654321" not in message


def test_sigkill_mid_batch_leaves_a_consistent_store_and_no_worker_alive(tmp_path, key_file):
    """Killed at a named point (after the second chunk is written, by a failpoint, not a race with the clock):
    nothing of the batch is kept, the workers holding a copy of the keys die with the ingest, and a re-run
    loads everything once."""
    import psutil

    from appliance.demo_data import generate

    data = tmp_path / "data"
    generate(data, 300, seed=3, months=14)
    home = tmp_path / "home"
    Home.init(home, Credentials(key_file=key_file), admin=ADMIN, admin_password=ADMIN_PASSWORD).close()
    (home / "config.yaml").write_text("ingest.workers: 2\ningest.chunk_rows: 2000\n", encoding="utf-8")
    env = {**os.environ, **ADMIN_ENV, "APPLIANCE_KEY_FILE": str(key_file)}
    args = APPLIANCE + ["ingest", "--home", str(home), "--source", "demo", str(data / "transactions.csv")]
    process = subprocess.Popen(args, env={**env, "APPLIANCE_FAILPOINTS": "ingest.chunk_written=stop@2"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ingest = psutil.Process(process.pid)
    for _ in range(2400):  # the process stops itself at the failpoint; wait for that, up to two minutes
        if process.poll() is not None or ingest.status() == psutil.STATUS_STOPPED:
            break
        time.sleep(0.05)
    assert process.poll() is None and ingest.status() == psutil.STATUS_STOPPED
    workers = ingest.children()
    assert len(workers) == 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    gone, alive = psutil.wait_procs(workers, timeout=30)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], "ingest workers outlived the killed ingest"
    with Home.open(home, Credentials(key_file=key_file)) as opened:
        assert opened.store.scalar("SELECT count(*) FROM transactions") == 0
        assert opened.store.scalar("SELECT count(*) FROM ingest_batches") == 0
        assert opened.store.integrity_problems() == []
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    expected = sum(1 for _ in open(data / "transactions.csv", encoding="utf-8")) - 1
    with Home.open(home, Credentials(key_file=key_file)) as opened:
        assert opened.store.scalar("SELECT count(*) FROM transactions") == expected
        assert opened.store.scalar("SELECT count(DISTINCT transaction_id) FROM transactions") == expected


def test_cli_ingest_reports_and_lists_quarantine(tmp_path, key_file):
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    shutil.copy(DATA / "sources" / "bankx.yaml", home / "sources" / "bankx.yaml")
    path = _write(tmp_path / "customers.csv", [HEADER, *GOOD, "K9,x,1,1,1,bad,1,1,1,金,"])
    out = run_cli("ingest", "--home", home, "--source", "bankx", path, env_extra=env, check=True).stdout
    assert "3 loaded, 1 quarantined" in out and "column 'joined': not a date" in out
    listing = run_cli("quarantine", "--home", home, env_extra=env, check=True).stdout
    assert "customers.csv line 5 column joined: not a date in format %Y/%m/%d" in listing
    assert_one_line_error(run_cli("ingest", "--home", home, "--source", "nosuch", path, env_extra=env),
                          "no source mapping named 'nosuch'")


@pytest.mark.parametrize("choice, customers", [("keep", 5), ("merge", 3)])
def test_rows_without_a_key_are_never_merged_silently(home, tmp_path, choice, customers):
    """A table with no customer number: identical rows are counted, reported and recorded, and the mapping
    says whether each is kept or the repeats merged."""
    mapping = f"""source: keyless
description: a marketing table without customer numbers
id_namespace: keyless
files:
  - match: "leads*.csv"
    duplicates: {choice}
    columns:
      age: {{to: customers.age, class: C1, type: integer}}
      job: {{to: customers.attributes.job, class: C1}}
"""
    (home.sources_dir / "keyless.yaml").write_text(mapping, encoding="utf-8")
    path = _write(tmp_path / "leads.csv", ["age,job", "30,admin", "30,admin", "41,nurse", "30,admin", "52,retired"])
    report = home.ingestor(TESTS).ingest(home.mapping("keyless"), [path])
    assert report.files[0].duplicate_rows == 2 and report.rows_loaded == 5
    assert home.store.scalar("SELECT count(*) FROM customers WHERE source = 'keyless'") == customers
    recorded = home.store.query("SELECT duplicate_rows, duplicates FROM ingest_files WHERE source = 'keyless'")
    assert tuple(recorded[0]) == (2, choice)
    again = tmp_path / "again"
    again.mkdir()
    _write(again / "leads2.csv", ["age,job", "30,admin", "30,admin", "41,nurse", "30,admin", "52,retired", ""])
    home.ingestor(TESTS).ingest(home.mapping("keyless"), [again / "leads2.csv"])  # the same rows again
    assert home.store.scalar("SELECT count(*) FROM customers WHERE source = 'keyless'") == customers


def _indexes(store) -> list[tuple]:
    return store.rows("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name")


def _bulk_ingestor(home, bulk_rows: int) -> Ingestor:
    ingestor = home.ingestor(TESTS)
    ingestor.bulk_rows, ingestor.chunk_rows = bulk_rows, 500
    return ingestor


def test_a_bulk_batch_builds_its_indexes_again_and_ends_as_a_row_by_row_one(home, demo_dir, tmp_path):
    """A first load drops the large tables' secondary indexes part way and builds them before the commit:
    the same indexes, each matching its table (integrity_check), the same rows as a batch that kept them."""
    before = _indexes(home.store)
    report = _bulk_ingestor(home, 1000).ingest(home.mapping("demo"), [demo_dir])
    assert report.indexes_rebuilt == ["transactions"]
    assert _indexes(home.store) == before
    assert home.store.scalar("PRAGMA integrity_check") == "ok"
    with Home.init(tmp_path / "row-by-row", Credentials(key_file=home.path.parent / "keys" / "appliance.key"),
                   admin=ADMIN, admin_password=ADMIN_PASSWORD) as other:
        assert _bulk_ingestor(other, 0).ingest(other.mapping("demo"), [demo_dir]).indexes_rebuilt == []
        for table in ("customers", "accounts", "transactions", "digital_events"):
            query = f"SELECT count(*), count(DISTINCT customer_id), min(rowid), max(rowid) FROM {table}"
            assert home.store.rows(query) == other.store.rows(query)
        # Each home has its own token key, so customers are compared by what they hold, not by their tokens.
        by_customer = ("SELECT count(*), round(sum(amount), 2), min(booked_at) FROM transactions "
                       "INDEXED BY transactions_customer GROUP BY customer_id ORDER BY 1, 2, 3")
        assert home.store.rows(by_customer) == other.store.rows(by_customer)


def test_a_bulk_batch_refused_after_dropping_its_indexes_leaves_them_as_they_were(home, demo_dir, tmp_path):
    """The refusal comes at the file's end, after the indexes were dropped: the rollback brings them back."""
    lines = (demo_dir / "transactions.csv").read_text(encoding="utf-8").splitlines()
    good, bad = lines[1:1500], [line.replace(",D,", ",?,").replace(",C,", ",?,") for line in lines[1500:4500]]
    data = tmp_path / "bad"
    data.mkdir()
    (data / "transactions.csv").write_text("\n".join([lines[0], *good, *bad]) + "\n", encoding="utf-8")
    before = _indexes(home.store)
    with pytest.raises(IngestError, match="rows failed validation"):
        _bulk_ingestor(home, 1000).ingest(home.mapping("demo"), [data / "transactions.csv"])
    assert _indexes(home.store) == before
    assert _count(home, "transactions") == 0
    assert home.store.scalar("PRAGMA integrity_check") == "ok"
