"""The canary test: ingest demo data whose complaints, call notes and memos carry seeded PII, then search the
decrypted store (every table, the quarantine included) and everything the command printed for every seeded
value. Zero hits."""

import pandas as pd

from appliance.home import Home
from appliance.keys import Credentials
from tests.conftest import run_cli


def ingest_command(home, data, env):
    """The real command, in its own process (a test can swap this for an in-process run)."""
    return run_cli("ingest", "--home", home, "--source", "demo", data, env_extra=env, check=True)


def _seeded_values(data) -> set[str]:
    customers = pd.read_csv(data / "customers.csv", dtype=str, encoding="utf-8-sig")
    accounts = pd.read_csv(data / "accounts.csv", dtype=str)
    values = set()
    for column in ("姓名", "证件号码", "手机号", "电子邮箱", "联系地址"):
        values |= set(customers[column])
    values |= set(accounts["account_no"])  # card numbers, which the complaints quote too
    return values


def test_no_seeded_value_survives_ingestion(tmp_path, key_file, demo_dir):
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    # One malformed complaint row, so the quarantine holds something to search too.
    data = tmp_path / "data"
    data.mkdir()
    for path in demo_dir.iterdir():
        if path.is_file():  # not truth/, the generator's record of what happens next
            (data / path.name).write_bytes(path.read_bytes())
    customers = pd.read_csv(data / "customers.csv", dtype=str, encoding="utf-8-sig")
    seeded_line = (f"I9999999999,{customers['客户号'][0]},not-a-time,complaint,phone,投诉,"
                   f"客户{customers['姓名'][0]}来电，手机{customers['手机号'][0]},Y\n")
    with open(data / "interactions.csv", "a", encoding="utf-8") as handle:
        handle.write(seeded_line)
    result = ingest_command(home, data, env)
    assert "1 quarantined" in result.stdout
    seeded = _seeded_values(data)
    masked_notes = 0
    with Home.open(home, Credentials(key_file=key_file)) as opened:
        dump = []
        for table in opened.store.tables():
            for row in opened.store.query(f"SELECT * FROM {table}"):
                dump.extend(str(value) for value in row if value is not None and not isinstance(value, bytes))
        masked_notes = opened.store.scalar("SELECT count(*) FROM interactions WHERE text LIKE '%<CN_PERSON:%'")
    everything = "\n".join(dump) + result.stdout + result.stderr
    leaked = sorted(value for value in seeded if value in everything)
    assert leaked == [], f"{len(leaked)} seeded values readable after ingestion"
    assert masked_notes > 10  # the notes were there, and masked
