"""Rekey and backup under faults: a rotation killed or failing at each step leaves a home that opens with
sound pages; a backup never copies damage and never leaves half a file behind."""

import pytest

from appliance.home import Home
from appliance.keys import Credentials
from tests.faults.conftest import assert_clean_failure, cli, flip_a_byte, needs_namespaces, on_small_disk, results


def _sound(world) -> int:
    with Home.open(world["home"], Credentials(key_file=world["key"])) as home:
        assert home.store.integrity_problems() == []
        assert home.verify_audit().ok
        return home.store.scalar("SELECT count(*) FROM transactions")


@pytest.mark.parametrize("failpoint", ["rekey.staged=kill", "rekey.rekeyed=kill", "rekey.staged=enospc",
                                       "rekey.rekeyed=eio"])
def test_a_rotation_cut_at_any_step_leaves_a_home_that_opens(world, failpoint):
    rows = _sound(world)
    result = cli(world, "rekey", failpoints=failpoint)
    assert_clean_failure(result, -9, 6)
    assert _sound(world) == rows  # every page readable under whichever key is live, nothing lost
    again = cli(world, "rekey")
    assert again.returncode == 0, again.stderr
    assert _sound(world) == rows


def test_a_damaged_store_is_not_backed_up(world, tmp_path):
    store = world["home"] / "store.db"
    flip_a_byte(store, store.stat().st_size // 2)
    out = tmp_path / "backups" / "copy.db"
    out.parent.mkdir()
    result = cli(world, "backup", "--out", out)
    assert_clean_failure(result, 4)
    assert "integrity check" in result.stderr and "backup refused" in result.stderr
    assert list(out.parent.iterdir()) == []


def test_a_failed_copy_leaves_nothing(world, tmp_path):
    out = tmp_path / "backups" / "copy.db"
    out.parent.mkdir()
    result = cli(world, "backup", "--out", out, failpoints="backup.copied=eio")
    assert_clean_failure(result, 6)
    assert list(out.parent.iterdir()) == []
    assert cli(world, "backup", "--out", out).returncode == 0
    with Home.open(world["home"], Credentials(key_file=world["key"])) as home:
        copy = type(home.store)(out, home.keyring.data_key)
        try:
            assert copy.integrity_problems() == []
            assert copy.scalar("SELECT count(*) FROM transactions") == home.store.scalar(
                "SELECT count(*) FROM transactions")
        finally:
            copy.close()


@needs_namespaces
def test_a_backup_to_a_full_disk_says_so_and_leaves_nothing(world, tmp_path):
    target = tmp_path / "small"
    script = f"""
APPLIANCE_HOME={world['home']} $APPLIANCE backup --out {target}/copy.db >{tmp_path}/out 2>{tmp_path}/err
code=$?
left=$(ls -A {target} | wc -l)
echo "{{\\"code\\": $code, \\"left\\": $left}}"
"""
    found = results(on_small_disk(target, 256, script, world["env"]))
    error = (tmp_path / "err").read_text()
    assert found == {"code": 6, "left": 0}, error
    assert error.startswith("error: ") and "disk full" in error and "Traceback" not in error


@needs_namespaces
def test_a_home_on_a_read_only_mount_says_read_only(world, tmp_path):
    small = tmp_path / "small"
    script = f"""
cp -a {world['home']} {small}/home
mount -o remount,ro {small}
APPLIANCE_HOME={small}/home $APPLIANCE status >{tmp_path}/out 2>{tmp_path}/err
code=$?
echo "{{\\"code\\": $code}}"
"""
    found = results(on_small_disk(small, 65536, script, world["env"]))
    error = (tmp_path / "err").read_text()
    assert found == {"code": 6}, error
    assert "read-only file system" in error and "corrupt" not in error
