"""A batch is all or nothing under faults: killed at named points, a disk that fails or fills (injected, and
a real tmpfs that runs out), each leaves no partial batch, a sound store, and a re-run that loads it all."""

import random

import pytest

from appliance.home import Home
from appliance.keys import Credentials
from tests.faults.conftest import (OFFICER, assert_clean_failure, cli, fill_leaving, needs_namespaces, on_small_disk,
                                   results)

# Several chunks per file, two workers: the points fall between chunks, before and after the commit.
CONFIG = "ingest.workers: 2\ningest.chunk_rows: 700\n"
POINTS = ["ingest.chunk_written=kill@1", "ingest.chunk_written=kill@3", "ingest.before_commit=kill",
          "ingest.chunk_written=enospc@2", "ingest.chunk_written=eio@1", "ingest.before_commit=enospc"]


def _counts(world) -> tuple[int, int, int]:
    with Home.open(world["home"], Credentials(key_file=world["key"])) as home:
        assert home.store.integrity_problems() == []
        return (home.store.scalar("SELECT count(*) FROM ingest_batches"),
                home.store.scalar("SELECT count(*) FROM transactions"),
                home.store.scalar("SELECT count(*) FROM audit_log WHERE event = 'ingest.batch'"))


@pytest.mark.parametrize("failpoint", POINTS + [f"ingest.chunk_written=kill@{random.Random(7).randint(1, 4)}"])
def test_a_batch_cut_anywhere_is_all_or_nothing(world, failpoint):
    (world["home"] / "config.yaml").write_text(CONFIG, encoding="utf-8")
    before = _counts(world)
    transactions = world["data"] / "transactions.csv"
    expected_new = sum(1 for _ in open(transactions, encoding="utf-8")) - 1
    # The prepared home has these rows already; a second copy under other names makes a new batch.
    fresh = world["home"].parent / "fresh"
    fresh.mkdir()
    text = transactions.read_text(encoding="utf-8").splitlines()
    (fresh / "transactions.csv").write_text("\n".join([text[0]] + [line.replace(",", "X,", 1) for line in text[1:]])
                                            + "\n", encoding="utf-8")
    result = cli(world, "ingest", "--source", "demo", fresh / "transactions.csv", failpoints=failpoint)
    assert_clean_failure(result, -9, 6)
    if result.returncode == 6:
        assert "disk full" in result.stderr or "input/output error" in result.stderr
    assert _counts(world) == before  # nothing of the cut batch, not even its audit entry
    rerun = cli(world, "ingest", "--source", "demo", fresh / "transactions.csv")
    assert rerun.returncode == 0, rerun.stderr
    batches, rows, audited = _counts(world)
    assert (batches, rows, audited) == (before[0] + 1, before[1] + expected_new, before[2] + 1)


@needs_namespaces
@pytest.mark.parametrize("free_kib", [0, 64, 512, 2048])
def test_a_real_full_disk_during_ingest_keeps_the_store_sound(world, tmp_path, free_kib):
    home = world["home"]
    small = tmp_path / "small"
    used_kib = sum(p.stat().st_size for p in home.rglob("*") if p.is_file()) // 1024
    data = world["data2"]
    script = f"""
cp -a {home} {small}/home
printf '{CONFIG.replace(chr(10), chr(92) + "n")}' > {small}/home/config.yaml
{fill_leaving(small, free_kib)}
export APPLIANCE_HOME={small}/home
$APPLIANCE ingest --source demo {data}/interactions.csv {data}/events.jsonl >{tmp_path}/ingest.out 2>{tmp_path}/ingest.err
code=$?
rm -f {small}/filler
$APPLIANCE ingest --source demo {data}/interactions.csv {data}/events.jsonl >{tmp_path}/rerun.out 2>&1; rerun=$?
APPLIANCE_USER=olga APPLIANCE_USER_PASSWORD={OFFICER["APPLIANCE_USER_PASSWORD"]} $APPLIANCE audit verify >{tmp_path}/verify.out 2>&1
verify=$?
echo "{{\\"code\\": $code, \\"rerun\\": $rerun, \\"verify\\": $verify}}"
"""
    found = results(on_small_disk(small, used_kib + 3072, script, world["env"]))
    error = (tmp_path / "ingest.err").read_text()
    assert found["code"] in (0, 6), error
    if found["code"] == 6:
        assert "disk full" in error and "internal error" not in error and "Traceback" not in error
    assert found["rerun"] == 0, (tmp_path / "rerun.out").read_text()
    assert found["verify"] == 0, (tmp_path / "verify.out").read_text()
