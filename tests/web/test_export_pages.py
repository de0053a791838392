"""Exports in the console on a scored home: an analyst requests, a compliance officer sees the table as it
would leave with every suppression's reason, approves (never their own, never on a password an admin set) or
rejects with a reason; the downloaded bundle verifies; the budget and ledger show; each step is audited."""

import io
import json
import zipfile

from appliance.audit import load_public_key
from appliance.exports import verify
from appliance.home import EXPORT_PUBLIC_KEY
from tests.web.test_console import HTTPS, SAME_SITE, _english, _sign_in
from tests.web.test_customer_view import _csrf_of


def _request(client, **form):
    page = client.get("/exports", base_url=HTTPS).get_data(as_text=True)
    data = {"csrf_token": _csrf_of(page), "report": "segment_profile", "first": "segment", "second": "region",
            "recipient": "head_office", "purpose": "management_reporting"}
    return client.post("/exports", base_url=HTTPS, headers=SAME_SITE, data=data | form)


def _events(home, event):
    return [(r[0], json.loads(r[1])) for r in home.store.query("SELECT actor, details FROM audit_log WHERE event = ?",
                                                                (event,))]


def test_request_review_approve_and_download_a_bundle_that_verifies(scored, tmp_path):
    home, app = scored
    analyst = _english(app)
    _sign_in(analyst, "ana", "ana-password-1")
    made = _request(analyst)
    assert made.status_code == 302
    request_id = made.headers["Location"].rsplit("/", 1)[1]
    officer = _english(app)
    _sign_in(officer, "cora", "cora-password-1")
    page = officer.get(f"/exports/{request_id}", base_url=HTTPS).get_data(as_text=True)
    stored = home.exports().get(request_id)
    assert stored["result"]["suppressed"] > 0 and 'id="suppression-reasons"' in page
    assert all(r["reason"] in page for r in stored["result"]["reasons"][:5])
    assert _events(home, "export.preview")[-1] == ("cora", {"request": request_id})
    approved = officer.post(f"/exports/{request_id}/approve", base_url=HTTPS, headers=SAME_SITE,
                            data={"csrf_token": _csrf_of(page)})
    assert approved.status_code == 302 and home.exports().get(request_id)["status"] == "approved"
    download = analyst.get(f"/exports/{request_id}/bundle.zip", base_url=HTTPS)
    assert download.status_code == 200 and download.mimetype == "application/zip"
    zipfile.ZipFile(io.BytesIO(download.data)).extractall(tmp_path)
    verdict = verify(tmp_path / request_id, load_public_key((home.path / EXPORT_PUBLIC_KEY).read_bytes()))
    assert verdict.ok, verdict.message
    assert _events(home, "export.download")[-1] == ("ana", {"request": request_id})
    listing = analyst.get("/exports", base_url=HTTPS).get_data(as_text=True)
    assert "head_office" in listing and "Cells in the ledger" in listing


def test_a_rejection_needs_a_reason_and_nobody_approves_their_own_or_on_an_admins_password(scored):
    home, app = scored
    with home.store.transaction():
        home.users().add("olga", "compliance", "set-by-the-admin-1", set_by="admin")
    analyst = _english(app)
    _sign_in(analyst, "ana", "ana-password-1")
    request_id = _request(analyst).headers["Location"].rsplit("/", 1)[1]
    newcomer = _english(app)
    _sign_in(newcomer, "olga", "set-by-the-admin-1")
    page = newcomer.get(f"/exports/{request_id}", base_url=HTTPS).get_data(as_text=True)
    refused = newcomer.post(f"/exports/{request_id}/approve", base_url=HTTPS, headers=SAME_SITE,
                            data={"csrf_token": _csrf_of(page)})
    assert refused.status_code == 400 and "change it first" in refused.get_data(as_text=True)
    assert home.exports().get(request_id)["status"] == "pending"
    own = analyst.get(f"/exports/{request_id}", base_url=HTTPS).get_data(as_text=True)
    assert analyst.post(f"/exports/{request_id}/approve", base_url=HTTPS, headers=SAME_SITE,
                        data={"csrf_token": _csrf_of(own)}).status_code == 403  # an analyst approves nothing
    officer = _english(app)
    _sign_in(officer, "cora", "cora-password-1")
    page = officer.get(f"/exports/{request_id}", base_url=HTTPS).get_data(as_text=True)
    blank = officer.post(f"/exports/{request_id}/reject", base_url=HTTPS, headers=SAME_SITE,
                         data={"csrf_token": _csrf_of(page), "reason": "   "})
    assert blank.status_code == 400 and home.exports().get(request_id)["status"] == "pending"
    officer.post(f"/exports/{request_id}/reject", base_url=HTTPS, headers=SAME_SITE,
                 data={"csrf_token": _csrf_of(page), "reason": "region split too fine for this recipient"})
    assert home.exports().get(request_id)["status"] == "rejected"
    assert _events(home, "export.reject")[-1][1]["reason"] == "region split too fine for this recipient"
    assert analyst.get(f"/exports/{request_id}/bundle.zip", base_url=HTTPS).status_code == 404


def test_a_request_the_policy_refuses_says_why_and_stores_nothing(scored):
    home, app = scored
    analyst = _english(app)
    _sign_in(analyst, "ana", "ana-password-1")
    refused = _request(analyst, first="customer_id")
    assert refused.status_code == 400 and "has no dimension" in refused.get_data(as_text=True)
    assert home.store.scalar("SELECT count(*) FROM export_requests") == 0
