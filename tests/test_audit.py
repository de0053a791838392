"""The tamper-evident audit log: every kind of tampering is named, evidence packs verify elsewhere and fail
after any byte change, concurrent writers keep one chain, no personal value ever enters the log."""

import json
import multiprocessing
import random

import pytest

from appliance.access import system
from appliance.audit import AuditError, GENESIS, entry_hash, read_checkpoint_file, verify_pack
from appliance.home import Home
from appliance.keys import Credentials
from tests.conftest import ADMIN, ADMIN_PASSWORD, TESTS, add_user, assert_one_line_error, run_cli


def _fill(home, n=30) -> int:
    """Append n entries; returns how many the log held before (init writes a few)."""
    base = home.store.scalar("SELECT count(*) FROM audit_log")
    for i in range(n):
        home.audit.record(system("tests"), "job.run", job="fill", number=i)
    return base


def _verdict(home, extra=()):
    return home.audit.verify(list(extra))


def test_an_untouched_log_verifies(home):
    base = _fill(home)
    verdict = _verdict(home)
    assert verdict.ok and verdict.entries == base + 30


def test_a_one_byte_edit_is_named(home):
    seq = _fill(home) + 15  # the entry with number 14
    details = home.store.scalar("SELECT details FROM audit_log WHERE seq = ?", (seq,))
    edited = details.replace('"number":14', '"number":15')  # one byte
    assert edited != details and len(edited) == len(details)
    home.store.execute("UPDATE audit_log SET details = ? WHERE seq = ?", (edited, seq))
    verdict = _verdict(home)
    assert not verdict.ok and verdict.first_bad == seq and "modified" in verdict.message


def test_a_deleted_entry_is_named(home):
    _fill(home)
    home.store.execute("DELETE FROM audit_log WHERE seq = 9")
    verdict = _verdict(home)
    assert not verdict.ok and verdict.first_bad == 9 and "missing" in verdict.message


def test_an_inserted_entry_is_named(home):
    _fill(home)
    # Make room after entry 10 and forge a well-formed entry there; its successors no longer follow it.
    rows = home.store.query("SELECT * FROM audit_log WHERE seq > 10 ORDER BY seq DESC")
    for row in rows:
        home.store.execute("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", (row["seq"],))
    prev = home.store.scalar("SELECT hash FROM audit_log WHERE seq = 10")
    at = "2026-01-01T00:00:00.000000+00:00"
    forged = entry_hash(11, at, "mallory", "job.run", "{}", prev)
    home.store.execute("INSERT INTO audit_log VALUES (11, ?, 'mallory', 'job.run', '{}', ?, ?)", (at, prev, forged))
    verdict = _verdict(home)
    assert not verdict.ok and verdict.first_bad == 12 and "does not follow" in verdict.message


def test_a_swapped_pair_is_named(home):
    _fill(home)
    a = dict(home.store.query("SELECT * FROM audit_log WHERE seq = 20")[0])
    b = dict(home.store.query("SELECT * FROM audit_log WHERE seq = 21")[0])
    for seq, row in ((20, b), (21, a)):
        home.store.execute("UPDATE audit_log SET at=?, actor=?, event=?, details=?, prev_hash=?, hash=? WHERE seq=?",
                           (row["at"], row["actor"], row["event"], row["details"], row["prev_hash"], row["hash"], seq))
    verdict = _verdict(home)
    assert not verdict.ok and verdict.first_bad == 20


def test_truncation_is_caught_by_a_checkpoint_kept_off_the_box(home, tmp_path):
    _fill(home)
    off_box = tmp_path / "checkpoints.jsonl"
    off_box.write_text(json.dumps(home.audit.checkpoint().as_dict()) + "\n")
    # The attacker removes the newest entries and the stored checkpoint: the chain alone looks fine.
    home.store.execute("DELETE FROM audit_log WHERE seq > 25")
    home.store.execute("DELETE FROM audit_checkpoints")
    assert _verdict(home).ok
    verdict = _verdict(home, read_checkpoint_file(off_box))
    assert not verdict.ok and "removed from its end" in verdict.message and verdict.first_bad == 26


def test_a_rewritten_log_fails_its_signed_checkpoint(home):
    _fill(home)
    home.audit.checkpoint()
    # Rewrite entry 5 and re-chain everything after it: a bare chain would accept this.
    rows = [dict(r) for r in home.store.query("SELECT * FROM audit_log ORDER BY seq")]
    prev = GENESIS
    for row in rows:
        if row["seq"] == 5:
            row["details"] = '{"forged":true}'
        row["prev_hash"] = prev
        row["hash"] = entry_hash(row["seq"], row["at"], row["actor"], row["event"], row["details"], prev)
        prev = row["hash"]
        home.store.execute("UPDATE audit_log SET details=?, prev_hash=?, hash=? WHERE seq=?",
                           (row["details"], row["prev_hash"], row["hash"], row["seq"]))
    verdict = _verdict(home)
    assert not verdict.ok and "rewritten" in verdict.message


def test_a_forged_checkpoint_signature_is_refused(home, tmp_path):
    _fill(home)
    checkpoint = home.audit.checkpoint().as_dict()
    checkpoint["count"] = 5
    off_box = tmp_path / "forged.jsonl"
    off_box.write_text(json.dumps(checkpoint) + "\n")
    assert "bad signature" in _verdict(home, read_checkpoint_file(off_box)).message


def test_evidence_pack_verifies_elsewhere_and_fails_after_any_byte_change(home, tmp_path):
    base = _fill(home, 40)
    pack = home.audit.export_pack(None, None)
    assert verify_pack(pack).ok
    assert verify_pack(pack).entries == base + 40
    rng = random.Random(1)
    for position in rng.sample(range(len(pack)), 60) + [0, len(pack) - 1, len(pack) - 5]:
        damaged = bytearray(pack)
        damaged[position] = (damaged[position] + 1) % 256
        assert not verify_pack(bytes(damaged)).ok, position
    assert not verify_pack(pack + b" ").ok
    assert not verify_pack(pack[:-1]).ok


def test_evidence_pack_pins_the_signing_key(home, tmp_path, key_file):
    _fill(home, 3)
    pack = home.audit.export_pack(None, None)
    other = Home.init(tmp_path / "other", Credentials(key_file=key_file), admin=ADMIN, admin_password=ADMIN_PASSWORD)
    assert verify_pack(pack, home.audit.public_key).ok
    assert "another key" in verify_pack(pack, other.audit.public_key).message
    other.close()


def _append_many(home_path, key_file, worker, count):
    with Home.open(home_path, Credentials(key_file=key_file)) as opened:
        for i in range(count):
            opened.audit.record(system(f"writer{worker}"), "job.run", worker=worker, number=i)


def test_two_processes_appending_at_once_keep_one_chain(home, home_path, key_file):
    base = home.store.scalar("SELECT count(*) FROM audit_log")
    home.close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(home_path, key_file, w, 150)) for w in (1, 2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=300)
        assert process.exitcode == 0
    with Home.open(home_path, Credentials(key_file=key_file)) as opened:
        verdict = opened.audit.verify()
        assert verdict.ok and verdict.entries == base + 300
        writers = {row[0] for row in opened.store.query("SELECT actor FROM audit_log")}
        assert {"system:writer1", "system:writer2"} <= writers


def test_it_fails_closed(home):
    home.store.execute("CREATE TRIGGER blocked BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'no'); END")
    with pytest.raises(AuditError, match="nothing was done"):
        home.audit.record(system("tests"), "job.run")
    before = home.store.scalar("SELECT count(*) FROM audit_log")
    with pytest.raises(AuditError):
        home.rotate_data_key(home.users().authenticate(ADMIN, ADMIN_PASSWORD))
    assert home.store.scalar("SELECT count(*) FROM audit_log") == before
    assert home.keyring.pending_data_key is None  # the rotation never started


def test_unknown_events_are_refused(home):
    with pytest.raises(AuditError, match="unknown audit event"):
        home.audit.record(TESTS, "coffee.break")


def test_no_seeded_pii_enters_the_audit_log(tmp_path, key_file, demo_dir):
    import pandas as pd

    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    run_cli("ingest", "--home", home, "--source", "demo", demo_dir, env_extra=env, check=True)
    run_cli("quarantine", "--home", home, env_extra=env, check=True)
    officer = add_user("officer", "compliance", "officer-password", "--home", home, env=env)
    customers = pd.read_csv(demo_dir / "customers.csv", dtype=str, encoding="utf-8-sig")
    phone = customers["手机号"][0]
    found = run_cli("subject", "find", "--home", home, "--by", "phone", "--purpose", "data_subject_request",
                    env_extra=officer, stdin=phone + "\n", check=True).stdout.split()
    report = run_cli("subject", "report", "--home", home, "--customer", found[0], "--reveal", "--purpose",
                     "data_subject_request", "--reason", "art. 45 request", env_extra=officer, check=True).stdout
    assert phone in report  # revealed to the officer on screen, never written to the log
    run_cli("subject", "find", "--home", home, "--by", "phone", "--purpose", "data_subject_request", env_extra=env,
            stdin=phone + "\n")  # refused: the admin is not a compliance officer
    with Home.open(home, Credentials(key_file=key_file)) as opened:
        log = "\n".join(f"{r['actor']} {r['event']} {r['details']}" for r in opened.audit.entries())
    seeded = set(customers["姓名"]) | set(customers["证件号码"]) | set(customers["手机号"]) | set(customers["电子邮箱"])
    assert "subject.find" in log and found[0] in log
    assert [value for value in seeded if value in log] == []


def test_cli_verify_and_checkpoint(tmp_path, key_file):
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    off_box = tmp_path / "off-box.jsonl"
    run_cli("audit", "checkpoint", "--home", home, "--out", off_box, env_extra=env, check=True)
    ok = run_cli("audit", "verify", "--home", home, "--checkpoint", off_box, env_extra=env, check=True)
    assert ok.stdout.startswith("intact:")
    covered = json.loads(off_box.read_text())["count"]
    with Home.open(home, Credentials(key_file=key_file)) as opened:
        opened.store.execute("DELETE FROM audit_log WHERE seq >= ?", (covered - 1,))
        opened.store.execute("DELETE FROM audit_checkpoints")
    assert_one_line_error(run_cli("audit", "verify", "--home", home, "--checkpoint", off_box, env_extra=env),
                          "NOT intact")
    pack = tmp_path / "pack.json"
    run_cli("audit", "export", "--home", home, "--out", pack, env_extra=env)  # admin may not read the log
    assert not pack.exists()


def test_policy_and_config_changes_are_audited_with_hashes(home, home_path, key_file):
    home.protection_policy()
    (home_path / "policies" / "protection.yaml").write_text(
        (home_path / "policies" / "protection.yaml").read_text(encoding="utf-8") + "\n# reviewed\n", encoding="utf-8")
    home.protection_policy()
    home.protection_policy()  # unchanged: nothing new
    changes = home.audit.entries(event="policy.change")
    assert len(changes) == 1 and '"old_sha256":"' in changes[0]["details"]
    home.close()
    (home_path / "config.yaml").write_text("ingest.workers: 1\n", encoding="utf-8")
    with Home.open(home_path, Credentials(key_file=key_file)) as again:
        assert len(again.audit.entries(event="config.change")) == 2  # first seen at open, then changed
