"""The operating log: JSON lines in <home>/logs, rotated, with what bank IT needs to see why a night failed
(commands, batches, jobs, refusals, incidents) and never a value from the data."""

import csv
import json
import logging
import sys

from appliance import oplog
from tests.faults.conftest import cli

PII_COLUMNS = ("姓名", "证件号码", "手机号", "电子邮箱", "联系地址")


def _raw_values(customers_csv) -> set[str]:
    with open(customers_csv, encoding="utf-8-sig", newline="") as handle:
        return {row[c] for row in csv.DictReader(handle) for c in PII_COLUMNS if row[c]}


def _lines(home):
    return [json.loads(line) for line in (home / "logs" / oplog.FILE).read_text(encoding="utf-8").splitlines()]


def test_the_log_says_what_happened_and_never_a_value(world, tmp_path):
    source = world["data2"] / "customers.csv"
    raw = _raw_values(source)
    with open(source, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    quarantined, refused = tmp_path / "customers.csv", tmp_path / "refused" / "customers.csv"
    refused.parent.mkdir()
    for row in rows[1:6]:  # bad dates: these rows are quarantined with a reason
        row[8] = "2015-13-45"
    with open(quarantined, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    for row in rows[1:]:  # every row bad: the batch is refused, naming the column
        row[8] = row[3]
    with open(refused, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    loaded = cli(world, "ingest", "--source", "demo", quarantined)
    assert loaded.returncode == 0, loaded.stderr
    assert cli(world, "ingest", "--source", "demo", refused).returncode != 0
    assert cli(world, "run", "nightly").returncode == 0
    assert cli(world, "restore", tmp_path / "no-such-backup.db").returncode != 0

    lines = _lines(world["home"])
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    messages = [(line["message"], line.get("command")) for line in lines]
    assert ("ingest batch committed", None) in messages
    assert ("command finished", "ingest") in messages and ("command finished", "run nightly") in messages
    assert any(line["message"] == "ingest batch committed" and line["rows_quarantined"] >= 5 for line in lines)
    assert any(line["message"] == "refused" and "'入行日期'" in line["error"] for line in lines)
    assert any(line["message"] == "ingest batch rolled back" for line in lines)
    assert any(line["message"] == "restore refused" or line.get("command") == "restore" for line in lines)
    assert any(line["message"] == "job finished" and line["job"] == "nightly" for line in lines)
    text = (world["home"] / "logs" / oplog.FILE).read_text(encoding="utf-8")
    leaked = [value for value in raw if value in text]
    assert leaked == [], f"{len(leaked)} raw values in the log"


def test_an_exception_is_logged_by_its_type_and_place_never_its_text(tmp_path):
    target = oplog.configure(tmp_path / "home", 1, 2)
    try:
        raise ValueError("could not parse 320102199406210512 for 邵浩丽")
    except ValueError:
        logging.getLogger("appliance.tests").error("internal error", exc_info=True, extra={"incident": "x1"})
    entry = json.loads(target.read_text(encoding="utf-8").splitlines()[-1])
    assert entry["incident"] == "x1" and entry["exc_info"].startswith("ValueError at test_oplog.py:")
    assert "320102199406210512" not in target.read_text(encoding="utf-8")
    assert "邵浩丽" not in target.read_text(encoding="utf-8")


def test_the_log_is_rotated_and_bounded(tmp_path):
    target = oplog.configure(tmp_path / "home", 1, 2)
    writer = logging.getLogger("appliance.tests")
    for n in range(12_000):
        writer.info("filler", extra={"n": n, "pad": "x" * 200})
    kept = sorted(p.name for p in target.parent.iterdir())
    assert kept == [oplog.FILE, f"{oplog.FILE}.1", f"{oplog.FILE}.2"]
    assert all(p.stat().st_size <= (1 << 20) + 512 for p in target.parent.iterdir())
    assert json.loads(target.read_text(encoding="utf-8").splitlines()[-1])["n"] == 11_999


def test_without_a_home_nothing_reaches_the_terminal(capfd):
    """Before a home is open the log has nowhere to go: never Python's fallback to stderr."""
    import subprocess

    result = subprocess.run([sys.executable, "-c", "import logging, appliance; "
                             "logging.getLogger('appliance.x').error('should go nowhere')"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""
