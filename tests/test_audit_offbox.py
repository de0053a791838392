"""Checkpoints that leave the box: a folder (a WORM share) or a remote syslog receiver. With them, a tail
rewritten and re-signed by someone holding the key file is caught; without them, verify says so plainly."""

import json
import socket
from pathlib import Path

from appliance.access import system
from appliance.home import Home
from appliance.jobs import run_scheduled
from appliance.keys import Credentials


def _with_target(home_path: Path, key_file: Path, target: str) -> Home:
    (home_path / "config.yaml").write_text(f"audit.checkpoint_target: '{target}'\n", encoding="utf-8")
    return Home.open(home_path, Credentials(key_file=key_file))


def _fill(home, n: int) -> None:
    for i in range(n):
        home.audit.record(system("tests"), "job.run", job="fill", number=i)


def test_without_a_target_verify_warns_that_truncation_cannot_be_ruled_out(home):
    verdict = home.verify_audit()
    assert verdict.ok and "truncation of the log's newest entries cannot be ruled out" in verdict.message


def test_a_rewritten_and_resigned_tail_is_caught_by_the_off_box_copy(home, home_path, key_file, tmp_path):
    worm = tmp_path / "worm"
    worm.mkdir()
    home.close()
    with _with_target(home_path, key_file, str(worm)) as opened:
        _fill(opened, 20)
        _, where = opened.ship_checkpoint(system("tests"))
        assert where.startswith("folder worm/checkpoint-")
        shipped = sorted(worm.glob("checkpoint-*.json"))
        assert len(shipped) == 1 and oct(shipped[0].stat().st_mode)[-3:] == "444"
        verdict = opened.verify_audit()
        assert verdict.ok and "1 off-box checkpoints" in verdict.message
        # Someone with the key file cuts the last entries off and signs a fresh checkpoint for what is left.
        count = json.loads(shipped[0].read_text())["count"]
        opened.store.execute("DELETE FROM audit_log WHERE seq > ?", (count - 5,))
        opened.store.execute("DELETE FROM audit_checkpoints")
        opened.audit.checkpoint()
        assert opened.audit.verify().ok  # the box alone is fooled
        verdict = opened.verify_audit()
        assert not verdict.ok and "entries were removed from its end" in verdict.message


def test_the_scheduler_ships_checkpoints(home, home_path, key_file, tmp_path):
    worm = tmp_path / "worm"
    worm.mkdir()
    home.close()
    _with_target(home_path, key_file, str(worm)).close()
    run_scheduled(home_path, Credentials(key_file=key_file), "checkpoint")
    run_scheduled(home_path, Credentials(key_file=key_file), "checkpoint")
    assert len(list(worm.glob("checkpoint-*.json"))) == 2
    with Home.open(home_path, Credentials(key_file=key_file)) as opened:
        runs = opened.store.query("SELECT job, status FROM job_runs WHERE job = 'checkpoint'")
        assert [tuple(r) for r in runs] == [("checkpoint", "ok")] * 2
        assert opened.verify_audit().ok


def test_checkpoints_go_to_a_remote_syslog_receiver(home, home_path, key_file):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    port = receiver.getsockname()[1]
    home.close()
    try:
        with _with_target(home_path, key_file, f"syslog://127.0.0.1:{port}") as opened:
            _, where = opened.ship_checkpoint(system("tests"))
            assert where == f"syslog 127.0.0.1:{port}"
            message = receiver.recv(65536).decode("utf-8")
            checkpoint = json.loads(message[message.index("{"):].strip("\x00\n"))
            assert checkpoint["count"] >= 1 and checkpoint["signature"]
            assert "the checkpoint target holds none the appliance can read back" in opened.verify_audit().message
    finally:
        receiver.close()


def test_cli_checkpoint_prints_the_checkpoint_it_sent(tmp_path, key_file):
    from tests.conftest import run_cli

    home_path = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home_path, env_extra=env, check=True)
    worm = tmp_path / "worm"
    worm.mkdir()
    (home_path / "config.yaml").write_text(f"audit.checkpoint_target: '{worm}'\n", encoding="utf-8")
    result = run_cli("audit", "checkpoint", "--home", home_path, env_extra=env, check=True)
    assert result.stderr.startswith("sent to folder worm/checkpoint-")
    [shipped] = worm.glob("checkpoint-*.json")
    assert json.loads(result.stdout) == json.loads(shipped.read_text(encoding="utf-8"))
