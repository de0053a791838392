"""The at-risk list on real scores: who may see it, what it shows, that each page is audited with its
customers, filters and keyset paging, and that no raw PII reaches the page."""

import json

import pandas as pd
import pytest

from tests.web.test_console import HTTPS, _english, _sign_in


def test_staff_see_the_list_and_an_admin_gets_403(scored):
    home, app = scored
    staff = _english(app)
    _sign_in(staff, "sam", "sam-password-1")
    page = staff.get("/churn", base_url=HTTPS)
    assert page.status_code == 200 and "Customers at risk" in page.get_data(as_text=True)
    admin = _english(app)
    _sign_in(admin, "admin", "admin-password-1")
    assert admin.get("/churn", base_url=HTTPS).status_code == 403  # the role, not the menu, decides


def test_each_page_shown_is_audited_with_its_customers_and_no_raw_pii_shows(scored, demo_dir):
    home, app = scored
    client = _english(app)
    _sign_in(client, "ana", "ana-password-1")
    body = client.get("/churn?band=high", base_url=HTTPS).get_data(as_text=True)
    entry = home.store.query("SELECT details FROM audit_log WHERE event = 'customer.read' ORDER BY seq DESC LIMIT 1")
    details = json.loads(entry[0][0])
    shown = details["customers"]
    assert details["page"] == "churn.at_risk" and details["band"] == "high"
    bands = {r[0] for r in home.store.query(
        f"SELECT risk_band FROM customer_scores WHERE customer_id IN ({','.join('?' * len(shown))})", shown)}
    assert shown and bands == {"high"}
    customers = pd.read_csv(demo_dir / "customers.csv", dtype=str, encoding="utf-8-sig")
    raw = {v for column in ("客户号", "姓名", "证件号码", "手机号", "电子邮箱", "联系地址") for v in customers[column].dropna()}
    assert [v for v in raw if v in body] == []


def test_paging_goes_on_from_the_last_row_and_never_repeats(scored, monkeypatch):
    from appliance.web import churn

    monkeypatch.setattr(churn, "PAGE", 7)  # several pages of the small fixture
    home, app = scored
    client = _english(app)
    _sign_in(client, "ana", "ana-password-1")
    seen, url = [], "/churn"
    while url:
        body = client.get(url, base_url=HTTPS).get_data(as_text=True)
        details = json.loads(home.store.query(
            "SELECT details FROM audit_log WHERE event = 'customer.read' ORDER BY seq DESC LIMIT 1")[0][0])
        seen += details["customers"]
        marker = 'href="/churn?'
        url = ("/churn?" + body.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")) if marker in body else None
    total = home.store.scalar("SELECT count(*) FROM customer_scores WHERE as_of = (SELECT max(as_of) FROM "
                              "customer_scores)")
    assert len(seen) == len(set(seen)) == total and total > 14


def test_value_band_and_highest_balance_first_page_through_every_match(scored, monkeypatch):
    from appliance.web import churn

    monkeypatch.setattr(churn, "PAGE", 5)
    home, app = scored
    client = _english(app)
    _sign_in(client, "sam", "sam-password-1")
    as_of = home.store.scalar("SELECT max(as_of) FROM customer_scores")
    balances = dict(home.store.query("SELECT s.customer_id, f.balance_now FROM customer_scores s JOIN "
                                     "customer_features f USING (customer_id, as_of) WHERE s.as_of = ?", (as_of,)))
    for value, (low, high) in churn.VALUE_BANDS.items():
        seen, url = [], f"/churn?sort=value&value={value}"
        while url:
            body = client.get(url, base_url=HTTPS).get_data(as_text=True)
            seen += json.loads(home.store.query("SELECT details FROM audit_log WHERE event = 'customer.read' "
                                                "ORDER BY seq DESC LIMIT 1")[0][0])["customers"]
            marker = 'href="/churn?'
            url = ("/churn?" + body.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")) if marker in body \
                else None
        expected = {c for c, b in balances.items() if b is not None and (low is None or b >= low)
                    and (high is None or b < high)}
        assert len(seen) == len(set(seen)) and set(seen) == expected, value
        shown = [balances[c] for c in seen]
        assert shown == sorted(shown, reverse=True)


@pytest.mark.parametrize("small_branch, ranks", [(0, True), (10**9, True), (0, False), (10**9, False)])
def test_a_branch_filter_pages_through_exactly_its_scored_customers_riskiest_first(scored, monkeypatch, small_branch,
                                                                                   ranks):
    """Every way the list is read: the ordered walk, the branch's customers first, risk_ranks for a branch with
    a segment, and without risk_ranks (a run before they existed)."""
    from appliance.web import churn

    monkeypatch.setattr(churn, "SMALL_BRANCH", small_branch)
    home, _app = scored
    if not ranks:
        with home.store.transaction():
            home.store.execute("DELETE FROM risk_ranks")
    as_of = home.store.scalar("SELECT max(as_of) FROM customer_scores")
    branch = home.store.scalar("SELECT branch FROM customers GROUP BY branch ORDER BY count(*) DESC LIMIT 1")
    found = {}
    for extra in ({}, {"segment": home.store.scalar("SELECT min(segment) FROM customer_segments")},
                  {"value": "high"}, {"value": "medium"}, {"value": "low"}):
        seen, after = [], None
        while True:
            _day, rows = churn.at_risk(home.store, branch=branch, after=after, limit=3, **extra)
            seen += rows
            if len(rows) < 3:
                break
            after = (rows[-1]["probability"], rows[-1]["customer_id"])
        low, high = churn.VALUE_BANDS.get(extra.get("value"), (None, None))
        expected = home.store.rows(
            "SELECT s.customer_id FROM customer_scores s JOIN customers c USING (customer_id) LEFT JOIN "
            "customer_segments g ON g.customer_id = s.customer_id AND g.as_of = s.as_of LEFT JOIN customer_features f "
            "ON f.customer_id = s.customer_id AND f.as_of = s.as_of WHERE s.as_of = ? AND c.branch = ? AND "
            "(? IS NULL OR g.segment = ?) AND (? IS NULL OR f.balance_now >= ?) AND "
            "(? IS NULL OR coalesce(f.balance_now, 0) < ?) ORDER BY s.probability DESC, s.customer_id",
            (as_of, branch, extra.get("segment"), extra.get("segment"), low, low, high, high))
        assert [r["customer_id"] for r in seen] == [r[0] for r in expected]
        found[tuple(extra)] = found.get(tuple(extra), 0) + len(expected)
    assert found[()] and found[("segment",)] and found[("value",)]  # every kind of filter had customers to show
