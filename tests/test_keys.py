"""Key material: wrapping, KEK sources, rotation and recovery from a rotation cut off half way."""

import json
import os

import pytest

from appliance.errors import KeyMaterialError, StoreError
from appliance.home import Home
from appliance.keys import Credentials, new_key_file
from appliance.store import Store
from tests.conftest import ADMIN, ADMIN_PASSWORD, TESTS, assert_one_line_error, run_cli


def _row_counts(home):
    return {t: home.store.scalar(f"SELECT count(*) FROM {t}") for t in ("customers", "transactions", "vault")}


def test_keyring_holds_only_wrapped_keys(home, home_path):
    document = json.loads((home_path / "keyring.json").read_text())
    raw_keys = [home.keyring.data_key, home.keyring.token_key, home.keyring.vault_key]
    text = (home_path / "keyring.json").read_bytes()
    for key in raw_keys:
        assert key.hex().encode() not in text and key not in text
    assert document["kek"] == {"kind": "key-file"}
    assert oct((home_path / "keyring.json").stat().st_mode & 0o777) == "0o600"


def test_passphrase_kdf_parameters_are_recorded(tmp_path):
    Home.init(tmp_path / "h", Credentials(passphrase=lambda: "correct horse"), admin=ADMIN,
              admin_password=ADMIN_PASSWORD).close()
    spec = json.loads((tmp_path / "h" / "keyring.json").read_text())["kek"]
    assert spec["kdf"] == "argon2id" and spec["memory_kib"] >= 8192 and spec["iterations"] >= 1
    with pytest.raises(KeyMaterialError, match="wrong key"):
        Home.open(tmp_path / "h", Credentials(passphrase=lambda: "wrong horse"))
    Home.open(tmp_path / "h", Credentials(passphrase=lambda: "correct horse")).close()


def test_wrong_key_file(home, home_path, tmp_path):
    other = tmp_path / "other.key"
    new_key_file(other)
    with pytest.raises(KeyMaterialError, match="wrong key"):
        Home.open(home_path, Credentials(key_file=other))


def test_missing_and_unsafe_key_files(home, home_path, key_file, tmp_path):
    with pytest.raises(KeyMaterialError, match="not found"):
        Home.open(home_path, Credentials(key_file=tmp_path / "nope.key"))
    with pytest.raises(KeyMaterialError, match="locked with a key file"):
        Home.open(home_path, Credentials(passphrase=lambda: "x"))
    os.chmod(key_file, 0o644)
    with pytest.raises(KeyMaterialError, match="chmod 600"):
        Home.open(home_path, Credentials(key_file=key_file))
    inside = home_path / "inside.key"
    new_key_file(inside)
    with pytest.raises(KeyMaterialError, match="inside the home"):
        Home.open(home_path, Credentials(key_file=inside))
    os.chmod(key_file, 0o600)
    os.chmod(key_file.parent, 0o777)  # anyone could swap the key file
    with pytest.raises(KeyMaterialError, match="writable by others"):
        Home.open(home_path, Credentials(key_file=key_file))
    os.chmod(key_file.parent, 0o700)
    if os.geteuid() == 0:  # only root can give a file away
        os.chown(key_file, 4242, -1)
        with pytest.raises(KeyMaterialError, match="belongs to another user"):
            Home.open(home_path, Credentials(key_file=key_file))
        os.chown(key_file, 0, -1)
    Home.open(home_path, Credentials(key_file=key_file)).close()


def test_corrupt_keyring_and_store(home, home_path, key_file):
    home.close()
    store = home_path / "store.db"
    data = bytearray(store.read_bytes())
    data[100:200] = b"\x00" * 100  # damage the first page
    store.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt"):
        Home.open(home_path, Credentials(key_file=key_file))
    (home_path / "keyring.json").write_text("{not json")
    with pytest.raises(KeyMaterialError, match="corrupt"):
        Home.open(home_path, Credentials(key_file=key_file))


def test_rekey_and_passwd_keep_every_row(home, home_path, key_file, demo_dir, tmp_path):
    home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    before = _row_counts(home)
    old_data_key = home.keyring.data_key
    home.rotate_data_key(home.users().authenticate(ADMIN, ADMIN_PASSWORD))
    assert home.keyring.data_key != old_data_key
    home.close()
    with pytest.raises(StoreError):  # the old key no longer opens the store
        Store(home_path / "store.db", old_data_key)
    with Home.open(home_path, Credentials(key_file=key_file)) as reopened:
        assert _row_counts(reopened) == before
        reopened.change_kek(reopened.users().authenticate(ADMIN, ADMIN_PASSWORD),
                            Credentials(passphrase=lambda: "new passphrase"))
    with pytest.raises(KeyMaterialError):
        Home.open(home_path, Credentials(key_file=key_file))
    with Home.open(home_path, Credentials(passphrase=lambda: "new passphrase")) as reopened:
        assert _row_counts(reopened) == before


def test_rotation_cut_off_before_rekey_recovers(home, home_path, key_file):
    home.keyring.stage_new_data_key()  # crash here: the store still has the old key
    home.close()
    with Home.open(home_path, Credentials(key_file=key_file)) as reopened:
        assert reopened.keyring.pending_data_key is None
        assert "pending_data" not in json.loads((home_path / "keyring.json").read_text())


def test_rotation_cut_off_after_rekey_recovers(home, home_path, key_file):
    new_key = home.keyring.stage_new_data_key()
    home.store.rekey(new_key)  # crash here: the store has the new key, the keyring still calls it pending
    home.close()
    with Home.open(home_path, Credentials(key_file=key_file)) as reopened:
        assert reopened.keyring.data_key == new_key
        assert reopened.store.schema_version() >= 1


def test_cli_key_errors_are_one_line(tmp_path):
    home = tmp_path / "h"
    run_cli("init", "--home", home, env_extra={"APPLIANCE_PASSPHRASE": "right"}, check=True)
    assert_one_line_error(run_cli("status", "--home", home, env_extra={"APPLIANCE_PASSPHRASE": "wrong"}),
                          "wrong key")
    assert_one_line_error(run_cli("status", "--home", home, stdin=""), "APPLIANCE_PASSPHRASE")
    assert_one_line_error(run_cli("status", "--home", home, "--key-file", tmp_path / "missing.key"),
                          "locked with a passphrase")
    assert_one_line_error(run_cli("status", "--home", tmp_path / "nowhere", env_extra={"APPLIANCE_PASSPHRASE": "x"}),
                          "no appliance home")
    (home / "store.db").write_bytes(b"garbage" * 1000)
    assert_one_line_error(run_cli("status", "--home", home, env_extra={"APPLIANCE_PASSPHRASE": "right"}),
                          "corrupt")


def test_cli_rekey_and_passwd(tmp_path):
    home = tmp_path / "h"
    env = {"APPLIANCE_PASSPHRASE": "one"}
    run_cli("init", "--home", home, env_extra=env, check=True)
    assert "rotated" in run_cli("rekey", "--home", home, env_extra=env, check=True).stdout
    run_cli("passwd", "--home", home, env_extra={**env, "APPLIANCE_NEW_PASSPHRASE": "two"}, check=True)
    assert_one_line_error(run_cli("status", "--home", home, env_extra=env), "wrong key")
    run_cli("status", "--home", home, env_extra={"APPLIANCE_PASSPHRASE": "two"}, check=True)
