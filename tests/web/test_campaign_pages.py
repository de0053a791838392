"""Campaign pages on the real app: an analyst creates one from the at-risk list with a 20% control group,
staff record outcomes on the treatment list, the effect shows intervals; permissions, audit, no raw PII."""

import json
import re

from tests.web.test_console import HTTPS, SAME_SITE, _english, _sign_in
from tests.web.test_customer_view import _csrf_of, _raw_values


def _create(client, **form):
    page = client.get("/campaigns", base_url=HTTPS).get_data(as_text=True)
    data = {"csrf_token": _csrf_of(page), "name": "挽留高风险客户", "chosen_from": "at_risk", "control_percent": "20"}
    return client.post("/campaigns", base_url=HTTPS, headers=SAME_SITE, data=data | form)


def test_an_analyst_creates_a_campaign_staff_work_it_and_the_effect_is_shown(scored, demo_dir):
    home, app = scored
    analyst = _english(app)
    _sign_in(analyst, "ana", "ana-password-1")
    made = _create(analyst, seed="77")
    assert made.status_code == 302
    campaign_id = made.headers["Location"].rsplit("/", 1)[1]
    created = json.loads(home.store.query("SELECT details FROM audit_log WHERE event = 'campaign.create'")[0][0])
    assert created["campaign"] == campaign_id and created["seed"] == 77 and created["control_share"] == 0.2
    staff = _english(app)
    _sign_in(staff, "sam", "sam-password-1")
    body = staff.get(f"/campaigns/{campaign_id}", base_url=HTTPS).get_data(as_text=True)
    shown = json.loads(home.store.query("SELECT details FROM audit_log WHERE event = 'customer.read' ORDER BY seq "
                                        "DESC LIMIT 1")[0][0])
    assert shown["page"] == "campaigns.treatment" and shown["customers"]
    arms = dict(home.store.query("SELECT customer_id, arm FROM campaign_members WHERE campaign_id = ?",
                                 (campaign_id,)))
    assert {arms[c] for c in shown["customers"]} == {"treatment"}  # the control group is never handed out
    first = shown["customers"][0]
    recorded = staff.post(f"/campaigns/{campaign_id}/contacts", base_url=HTTPS, headers=SAME_SITE,
                          data={"csrf_token": _csrf_of(body), "customer_id": first, "outcome": "accepted"})
    assert recorded.status_code == 302
    after = staff.get(f"/campaigns/{campaign_id}", base_url=HTTPS).get_data(as_text=True)
    assert re.search(r'id="response-interval">[^<]*95% interval', after)
    control = next(c for c, a in arms.items() if a == "control")
    refused = staff.post(f"/campaigns/{campaign_id}/contacts", base_url=HTTPS, headers=SAME_SITE,
                         data={"csrf_token": _csrf_of(after), "customer_id": control, "outcome": "accepted"})
    assert refused.status_code == 400
    assert not [v for v in _raw_values(demo_dir) if v in body + after]
    from appliance.api_tokens import ApiTokens

    with home.store.transaction():
        token = ApiTokens(home.store).create("sam", "campaign report", 1)[0]
    api = app.test_client()
    listed = api.get("/api/v1/campaigns", base_url=HTTPS, headers={"Authorization": f"Bearer {token}"})
    measured = api.get(f"/api/v1/campaigns/{campaign_id}", base_url=HTTPS,
                       headers={"Authorization": f"Bearer {token}"})
    assert listed.get_json()["campaigns"][0]["campaign_id"] == campaign_id
    assert measured.get_json()["response"]["n_treatment"] == created["treatment"]
    answers = listed.get_data(as_text=True) + measured.get_data(as_text=True)
    assert not [c for c in arms if c in answers]  # aggregates only: no member's token
    assert not [v for v in _raw_values(demo_dir) if v in answers]


def test_who_may_create_work_and_see_campaigns(scored):
    home, app = scored
    staff = _english(app)
    _sign_in(staff, "sam", "sam-password-1")
    assert _create(staff).status_code == 403
    admin = _english(app)
    _sign_in(admin, "admin", "admin-password-1")
    assert admin.get("/campaigns", base_url=HTTPS).status_code == 403
    analyst = _english(app)
    _sign_in(analyst, "ana", "ana-password-1")
    bad = _create(analyst, control_percent="150")
    assert bad.status_code == 400 and "between 0 and 1" in bad.get_data(as_text=True)
    assert _create(analyst, chosen_from="segment").status_code == 400
    assert home.store.scalar("SELECT count(*) FROM retention_campaigns") == 0
