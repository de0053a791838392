"""Uploads in the console: a file sent in chunks (CSRF on each) goes to the home's inbox, is ingested as the
uploader into one batch, and is removed; its quarantined row shows file, line, column and reason, never the
value; sizes, sources and names outside the rules are refused before anything is written."""

import json
import time

import pandas as pd

from appliance.web.data import CHUNK
from tests.web.test_console import HTTPS, _english, _sign_in
from tests.web.test_customer_view import _csrf_of

BAD_DATE = "2021-13-45"


def upload_file(demo_dir, tmp_path, rows: int = 40):
    """A customers file of the demo source: some real rows, new customers, and one with an impossible date."""
    customers = pd.read_csv(demo_dir / "customers.csv", dtype=str, encoding="utf-8-sig").head(rows)
    customers["客户号"] = [f"U{i:09d}" for i in range(len(customers))]
    customers.loc[3, "入行日期"] = BAD_DATE
    path = tmp_path / "customers.csv"
    customers.to_csv(path, index=False, encoding="utf-8")
    return path, customers


def _send(client, path, source="demo", name=None):
    token = _csrf_of(client.get("/data", base_url=HTTPS).get_data(as_text=True))
    headers = {"X-CSRFToken": token, "Referer": "https://localhost/data"}
    data = path.read_bytes()
    started = client.post("/data/uploads", base_url=HTTPS, headers=headers,
                          json={"source": source, "name": name or path.name, "size": len(data)})
    if started.status_code != 200:
        return started
    upload = started.get_json()["id"]
    for offset in range(0, len(data), CHUNK):
        sent = client.post(f"/data/uploads/{upload}/chunk?offset={offset}", base_url=HTTPS, headers=headers,
                           data=data[offset:offset + CHUNK], content_type="application/octet-stream")
        assert sent.status_code == 200, sent.get_json()
    assert client.post(f"/data/uploads/{upload}/finish", base_url=HTTPS, headers=headers).status_code == 200
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.get(f"/data/uploads/{upload}", base_url=HTTPS).get_json()
        if state["state"] in ("committed", "failed"):
            return state
        time.sleep(0.3)
    raise AssertionError("the upload did not finish")


def test_an_upload_is_ingested_as_its_uploader_and_the_file_is_gone(scored, demo_dir, tmp_path):
    home, app = scored
    path, customers = upload_file(demo_dir, tmp_path)
    analyst = _english(app)
    _sign_in(analyst, "ana", "ana-password-1")
    state = _send(analyst, path)
    assert state["state"] == "committed", state
    assert state["loaded"] == len(customers) - 1 and state["quarantined"] == 1
    batch = home.store.query("SELECT * FROM ingest_batches WHERE batch_id = ?", (state["batch"],))[0]
    assert batch["status"] == "committed" and batch["rows_loaded"] == len(customers) - 1
    entry = home.store.query("SELECT actor FROM audit_log WHERE event = 'ingest.batch' ORDER BY seq DESC LIMIT 1")
    assert entry[0][0] == "ana"
    assert [p for p in (home.path / "inbox").rglob("*") if p.is_file()] == []  # nothing left behind
    page = analyst.get(f"/data/batches/{state['batch']}", base_url=HTTPS).get_data(as_text=True)
    quarantined = home.store.query("SELECT line, column_name, reason FROM quarantine WHERE batch_id = ?",
                                   (state["batch"],))[0]
    assert quarantined["column_name"] in page and quarantined["reason"] in page
    raw = {v for column in customers.columns for v in customers[column].dropna()}
    assert BAD_DATE not in page and not [v for v in raw if len(v) > 5 and v in page]
    assert json.loads(home.store.query("SELECT details FROM audit_log WHERE event = 'quarantine.read' ORDER BY seq "
                                       "DESC LIMIT 1")[0][0])["batch"] == state["batch"]


def test_uploads_outside_the_rules_are_refused_before_anything_is_written(scored, demo_dir, tmp_path):
    home, app = scored
    path, _customers = upload_file(demo_dir, tmp_path, rows=5)
    admin = _english(app)
    _sign_in(admin, "admin", "admin-password-1")
    for kwargs, words in (({"source": "nowhere"}, "no source mapping"), ({"name": "../../etc/passwd"}, "no file entry"),
                          ({"name": "notes.exe"}, "no file entry")):
        refused = _send(admin, path, **kwargs)
        assert refused.status_code == 400 and words in refused.get_json()["error"]
    token = _csrf_of(admin.get("/data", base_url=HTTPS).get_data(as_text=True))
    big = admin.post("/data/uploads", base_url=HTTPS, headers={"X-CSRFToken": token, "Referer": "https://localhost/"},
                     json={"source": "demo", "name": "customers.csv", "size": 10**12})
    assert big.status_code == 400 and "console.upload_mib" in big.get_json()["error"]
    no_token = admin.post("/data/uploads", base_url=HTTPS, json={"source": "demo", "name": "customers.csv", "size": 9})
    assert no_token.status_code == 400
    assert [p for p in (home.path / "inbox").rglob("*") if p.is_file()] == []
    staff = _english(app)
    _sign_in(staff, "sam", "sam-password-1")
    assert staff.get("/data", base_url=HTTPS).status_code == 403


def test_a_cut_off_upload_is_swept_from_the_inbox_after_a_day_and_a_fresh_one_is_kept(scored, demo_dir, tmp_path):
    import os

    home, app = scored
    folder = home.path / "inbox" / "demo"
    folder.mkdir(parents=True)
    stale, fresh = folder / ".upload-aaaa.partial", folder / ".upload-bbbb.partial"
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"still arriving")
    os.utime(stale, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    path, _customers = upload_file(demo_dir, tmp_path, rows=5)
    analyst = _english(app)
    _sign_in(analyst, "ana", "ana-password-1")
    assert _send(analyst, path)["state"] == "committed"
    assert not stale.exists() and fresh.exists()
