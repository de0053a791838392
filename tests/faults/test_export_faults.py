"""An export is written, recorded and audited together or not at all: a bundle never appears before its
record, and a failed write removes what it started (or `export write` finishes it)."""


import pytest

from tests.faults.conftest import (OFFICER, assert_clean_failure, audit_events, cli, fill_leaving, needs_namespaces,
                                   on_small_disk, results)


def _state(world) -> dict:
    shown = cli(world, "export", "show", world["request"], as_user=OFFICER)
    assert shown.returncode == 0, shown.stderr
    outbox = world["home"] / "outbox"
    entries = sorted(p.name for p in outbox.iterdir()) if outbox.exists() else []
    return {"status": shown.stdout.split()[1], "outbox": entries,
            "approvals": [line for line in audit_events(world, "export.approve") if world["request"] in line]}


def _assert_intact(world):
    verified = cli(world, "audit", "verify", as_user=OFFICER)
    assert verified.returncode == 0, verified.stderr


@pytest.mark.parametrize("failpoint", ["export.before_commit=enospc", "export.before_commit=eio",
                                       "export.before_commit=kill"])
def test_a_failure_before_the_commit_leaves_nothing(world, failpoint):
    result = cli(world, "export", "approve", world["request"], as_user=OFFICER, failpoints=failpoint)
    assert_clean_failure(result, -9, 6)
    if result.returncode == 6:
        assert "disk full" in result.stderr or "input/output error" in result.stderr
    state = _state(world)
    assert state == {"status": "pending", "outbox": [], "approvals": []}
    _assert_intact(world)
    retry = cli(world, "export", "approve", world["request"], as_user=OFFICER)  # and the home still works
    assert retry.returncode == 0, retry.stderr


@pytest.mark.parametrize("failpoint", ["export.after_commit=kill", "export.file_written=enospc@2",
                                       "export.file_written=eio@1", "export.file_written=kill@3"])
def test_a_failure_after_the_record_leaves_it_recorded_and_export_write_finishes(world, failpoint):
    result = cli(world, "export", "approve", world["request"], as_user=OFFICER, failpoints=failpoint)
    assert_clean_failure(result, -9, 9)
    if result.returncode == 9:
        assert "is approved and recorded, but its bundle could not be written" in result.stderr
        assert "export write" in result.stderr
    state = _state(world)
    assert state["status"] == "approved" and len(state["approvals"]) == 1
    assert world["request"] not in state["outbox"]  # no bundle without its record; no half bundle under its name
    if result.returncode == 9:
        assert state["outbox"] == []  # a failed write removed what it started
    written = cli(world, "export", "write", world["request"], as_user=OFFICER)
    assert written.returncode == 0, written.stderr
    bundle = written.stdout.strip().splitlines()[-1]
    verified = cli(world, "export", "verify", bundle, "--public-key", world["home"] / "export-public-key.pem")
    assert verified.returncode == 0, verified.stderr
    assert _state(world)["outbox"] == [world["request"]]  # a leftover .partial from a kill is gone too
    _assert_intact(world)


@needs_namespaces
@pytest.mark.parametrize("free_kib", [0, 8, 32, 96, 256])
def test_a_real_full_disk_at_approve_never_leaves_a_bundle_without_its_record(world, tmp_path, free_kib):
    """The home on a tmpfs that is almost full: whatever the free space, either the export is done and
    recorded, or it is not done at all, or it is recorded and `export write` finishes it once there is room."""
    home = world["home"]
    small = tmp_path / "small"
    used_kib = sum(p.stat().st_size for p in home.rglob("*") if p.is_file()) // 1024
    script = f"""
cp -a {home} {small}/home
{fill_leaving(small, free_kib)}
export APPLIANCE_HOME={small}/home APPLIANCE_USER=olga APPLIANCE_USER_PASSWORD={OFFICER['APPLIANCE_USER_PASSWORD']}
$APPLIANCE export approve {world['request']} >{small}/../approve.out 2>{small}/../approve.err
code=$?
rm -f {small}/filler
$APPLIANCE export show {world['request']} >{small}/../show.out 2>&1
ls -A {small}/home/outbox 2>/dev/null >{small}/../outbox.out
$APPLIANCE audit list --event export.approve >{small}/../audit.out 2>&1
$APPLIANCE audit verify >{small}/../verify.out 2>&1; verify=$?
{{ $APPLIANCE export approve {world['request']} || $APPLIANCE export write {world['request']}; }} >{small}/../write.out 2>&1
write=$?
bundle={small}/home/outbox/{world['request']}
$APPLIANCE export verify $bundle --public-key {small}/home/export-public-key.pem >{small}/../bundle.out 2>&1
bundle_ok=$?
{json_line("code", "verify", "write", "bundle_ok")}
"""
    out = on_small_disk(small, used_kib + 4096, script, world["env"])
    found = results(out)
    read = {name: (tmp_path / f"{name}.out").read_text() for name in ("show", "outbox", "audit")}
    error = (tmp_path / "approve.err").read_text()
    status = read["show"].split()[1]
    approvals = [line for line in read["audit"].splitlines() if world["request"] in line]
    if found["code"] == 0:
        assert status == "approved" and len(approvals) == 1
        assert read["outbox"].split() == [world["request"]]
    else:
        assert found["code"] in (6, 9), error
        assert "internal error" not in error and "Traceback" not in error
        assert "disk full" in error or "cannot be written" in error or "input/output" in error, error
        if status == "pending":
            assert approvals == [] and read["outbox"].split() == []
        elif world["request"] in read["outbox"].split():  # written; only the entry for writing it was missed
            assert status == "approved" and len(approvals) == 1 and "its approval is recorded" in error
        else:
            assert status == "approved" and len(approvals) == 1 and read["outbox"].split() == []
    assert found["verify"] == 0 and found["write"] == 0 and found["bundle_ok"] == 0


def json_line(*names: str) -> str:
    """A shell line printing the named shell variables as one JSON object."""
    fields = ",".join(f'\\"{n}\\": ${n}' for n in names)
    return f'echo "{{{fields}}}"'
