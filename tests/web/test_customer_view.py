"""Customer 360 and reveal on the real app and a scored home: what each role sees, that every view and reveal
is in the audit log (with purpose and reason), that a reveal needs the permission, an allowed purpose, a reason
and a password of one's own, and that nothing but a deliberate reveal ever puts a raw value in a page."""

import json
import re

import pandas as pd
import pytest

from tests.web.test_console import HTTPS, SAME_SITE, _english, _sign_in


def _raw_values(demo_dir) -> set[str]:
    customers = pd.read_csv(demo_dir / "customers.csv", dtype=str, encoding="utf-8-sig")
    return {v for column in ("客户号", "姓名", "证件号码", "手机号", "电子邮箱", "联系地址") for v in customers[column].dropna()}


def _riskiest(home) -> str:
    return home.store.scalar("SELECT customer_id FROM customer_scores ORDER BY probability DESC LIMIT 1")


def _last(home, event: str) -> dict | None:
    rows = home.store.query("SELECT actor, details FROM audit_log WHERE event = ? ORDER BY seq DESC LIMIT 1", (event,))
    return {"actor": rows[0][0], **json.loads(rows[0][1])} if rows else None


def _csrf_of(body: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)


@pytest.fixture
def customer(scored):
    home, app = scored
    return home, app, _riskiest(home)


def test_staff_see_a_masked_customer_and_the_view_is_audited(customer, demo_dir):
    home, app, cid = customer
    client = _english(app)
    _sign_in(client, "sam", "sam-password-1")
    page = client.get(f"/customers/{cid}", base_url=HTTPS)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Recent transactions" in body and "sealed" in body
    reasons = json.loads(home.store.scalar("SELECT reasons_en FROM customer_scores WHERE customer_id = ?", (cid,)))
    assert reasons and all(r in body for r in reasons)
    assert [v for v in _raw_values(demo_dir) if v in body] == []
    read = _last(home, "customer.read")
    assert read["actor"] == "sam" and read["page"] == "customers.view" and read["customers"] == [cid]
    assert "Reveal sealed fields" not in body  # staff may not reveal: no form either


def test_the_at_risk_list_links_to_each_customer(scored):
    home, app = scored
    client = _english(app)
    _sign_in(client, "sam", "sam-password-1")
    body = client.get("/churn", base_url=HTTPS).get_data(as_text=True)
    assert f'href="/customers/{_riskiest(home)}"' in body


def test_unknown_customer_is_a_404_and_a_role_without_customer_access_gets_403(customer):
    home, app, cid = customer
    client = _english(app)
    _sign_in(client, "sam", "sam-password-1")
    assert client.get("/customers/no-such-token", base_url=HTTPS).status_code == 404
    admin = _english(app)
    _sign_in(admin, "admin", "admin-password-1")
    assert admin.get(f"/customers/{cid}", base_url=HTTPS).status_code == 403


def _reveal(client, cid, **form):
    body = client.get(f"/customers/{cid}", base_url=HTTPS).get_data(as_text=True)
    data = {"csrf_token": _csrf_of(body), "field": ["name", "phone"], "purpose": "regulatory_inquiry",
            "reason": "Inquiry CBIRC-2026-118 about this account"} | form
    return client.post(f"/customers/{cid}/reveal", base_url=HTTPS, headers=SAME_SITE, data=data)


def test_compliance_reveals_with_purpose_and_reason_once_and_the_reveal_is_audited(customer, demo_dir):
    home, app, cid = customer
    token = home.store.scalar("SELECT name FROM customers WHERE customer_id = ?", (cid,))
    raw_name = home.vault().reveal("name", token)
    client = _english(app)
    _sign_in(client, "cora", "cora-password-1")
    response = _reveal(client, cid)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and raw_name in body
    assert response.headers["Cache-Control"] == "no-store"
    entry = _last(home, "vault.reveal")
    assert entry["actor"] == "cora" and entry["customer"] == cid and entry["purpose"] == "regulatory_inquiry"
    assert entry["reason"] == "Inquiry CBIRC-2026-118 about this account" and entry["fields"] == ["name", "phone"]
    assert raw_name not in json.dumps(entry, ensure_ascii=False)  # the log says which fields, never the values
    again = client.get(f"/customers/{cid}", base_url=HTTPS).get_data(as_text=True)
    assert raw_name not in again  # shown once: the next view is masked again
    others = _raw_values(demo_dir) - {raw_name, home.vault().reveal("phone", home.store.scalar(
        "SELECT phone FROM customers WHERE customer_id = ?", (cid,)))}
    assert [v for v in others if v in body] == []


@pytest.mark.parametrize("form, words", [
    ({"reason": "because"}, "at least 10 characters"),
    ({"purpose": "complaint_handling"}, "Reveal refused"),
    ({"purpose": "no-such-purpose"}, "Reveal refused"),
    ({"field": ["shoe_size"]}, "Choose at least one field"),
])
def test_a_reveal_without_a_reason_or_an_allowed_purpose_shows_nothing(customer, form, words):
    home, app, cid = customer
    raw_name = home.vault().reveal("name", home.store.scalar("SELECT name FROM customers WHERE customer_id = ?",
                                                             (cid,)))
    client = _english(app)
    _sign_in(client, "cora", "cora-password-1")
    response = _reveal(client, cid, **form)
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and words in body and raw_name not in body
    assert _last(home, "vault.reveal") is None


def test_staff_and_a_one_time_password_may_not_reveal(customer):
    home, app, cid = customer
    staff = _english(app)
    _sign_in(staff, "sam", "sam-password-1")
    page = staff.get("/churn", base_url=HTTPS).get_data(as_text=True)
    refused = staff.post(f"/customers/{cid}/reveal", base_url=HTTPS, headers=SAME_SITE,
                         data={"csrf_token": _csrf_of(page), "field": "name", "purpose": "regulatory_inquiry",
                               "reason": "Inquiry CBIRC-2026-118 about this account"})
    assert refused.status_code == 403
    with home.store.transaction():
        home.users().add("otto", "compliance", "set-by-an-admin-1", set_by="admin")
    officer = _english(app)
    _sign_in(officer, "otto", "set-by-an-admin-1")
    response = _reveal(officer, cid)
    assert response.status_code == 400 and "Reveal refused" in response.get_data(as_text=True)
    assert _last(home, "vault.reveal") is None and _last(home, "vault.reveal.refused")["actor"] == "otto"


def test_a_reveal_without_the_csrf_token_is_refused(customer):
    home, app, cid = customer
    client = _english(app)
    _sign_in(client, "cora", "cora-password-1")
    response = client.post(f"/customers/{cid}/reveal", base_url=HTTPS, headers=SAME_SITE,
                           data={"field": "name", "purpose": "regulatory_inquiry", "reason": "Inquiry 2026-118 x"})
    assert response.status_code == 400 and _last(home, "vault.reveal") is None


def test_the_view_shows_a_customers_own_latest_results_when_later_days_leave_them_out(customer):
    """Per-day results are keyed date first and a customer's are found a day at a time (store.each_day): a
    customer missing from the newest days still shows their own latest score, segment, tags and each
    propensity, and another customer's newer rows are not taken for theirs."""
    from appliance.web.customers import find, record

    home, app, cid = customer
    store = home.store
    with app.app_context():  # the record reads the request's language helpers
        before = record(home, find(store, cid), zh=False)
        other = store.scalar("SELECT customer_id FROM customers WHERE customer_id != ? LIMIT 1", (cid,))
        with store.transaction():
            for day in ("2099-01-31", "2099-02-28"):
                store.execute("INSERT INTO customer_scores SELECT ?, ?, model_sha256, 0.5, 'medium', reasons_zh, "
                              "reasons_en, scored_at FROM customer_scores WHERE customer_id = ? LIMIT 1", (other, day, cid))
                store.execute("INSERT INTO customer_segments VALUES (?, ?, 99, 'x')", (other, day))
                store.execute("INSERT INTO customer_tags VALUES (?, ?, '[\"newer_tag\"]', 'x')", (day, other))
            store.execute("INSERT INTO customer_tags VALUES ('2099-01-31', ?, '[\"own_later_tag\"]', 'x')", (cid,))
            for target, day in (("card", "2098-01-31"), ("card", "2098-02-28"), ("loan", "2098-01-31")):
                store.execute("INSERT INTO propensity_scores VALUES (?, ?, ?, 'x', 0.25, '[]', '[]', 'x')", (cid, day, target))
        after = record(home, find(store, cid), zh=False)
        assert before["churn"] and after["churn"] == before["churn"] and after["segment"] == before["segment"]
        assert after["tags"] == ["own_later_tag"] and before["tags"] and "newer_tag" not in before["tags"]
        assert [(p["target"], p["as_of"]) for p in after["propensities"]] == [("card", "2098-02-28"), ("loan", "2098-01-31")]
        theirs = record(home, find(store, other), zh=False)
        assert theirs["churn"]["as_of"] == "2099-02-28" and theirs["segment"]["segment"] == 99
        assert theirs["tags"] == ["newer_tag"]
