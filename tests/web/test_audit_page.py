"""The audit log page for compliance officers: search by customer token, request, event, actor and time, newest
first a page at a time; the chain verified now (and a tampered entry named); a signed evidence pack that
verifies anywhere; the search index filled for entries written before it existed."""

import json

from appliance.audit import _refs, verify_pack
from tests.web.test_console import HTTPS, SAME_SITE, _english, _sign_in
from tests.web.test_customer_view import _csrf_of


def _officer(app):
    client = _english(app)
    _sign_in(client, "cora", "cora-password-1")
    return client


def _seqs(body: str) -> list[int]:
    rows = body.split('id="audit-entries"', 1)[1].split("</tbody>", 1)[0].split("<tr><td>")[1:]
    return [int(r.split("<", 1)[0]) for r in rows]


def test_search_by_customer_token_finds_every_entry_naming_the_customer(scored):
    home, app = scored
    client = _officer(app)
    customer = home.store.scalar("SELECT customer_id FROM customer_scores ORDER BY probability DESC LIMIT 1")
    staff = _english(app)
    _sign_in(staff, "sam", "sam-password-1")
    staff.get(f"/customers/{customer}", base_url=HTTPS)
    staff.get("/churn", base_url=HTTPS)
    body = client.get(f"/audit?ref={customer}", base_url=HTTPS).get_data(as_text=True)
    expected = [e["seq"] for e in reversed(home.audit.entries()) if customer in e["details"]
                and e["event"] != "audit.search"]
    found = _seqs(body)
    assert found == expected and len(found) >= 2
    searched = json.loads(home.store.query("SELECT details FROM audit_log WHERE event = 'audit.search' ORDER BY seq "
                                           "DESC LIMIT 1")[0][0])
    assert searched["ref"] == customer  # the search itself is in the log


def test_filters_and_paging_newest_first(scored, monkeypatch):
    from appliance.web import audit_log

    home, app = scored
    monkeypatch.setattr(audit_log, "PAGE", 4)
    for user in ("sam", "ana", "sam", "ana", "sam"):
        _sign_in(_english(app), user, f"{user}-password-1")
    client = _officer(app)
    seen, url = [], "/audit?event=login.success"
    while url:
        body = client.get(url, base_url=HTTPS).get_data(as_text=True)
        seen += _seqs(body)
        marker = 'href="/audit?'
        url = ("/audit?" + body.split(marker)[-1].split('"', 1)[0].replace("&amp;", "&")
               if "Older entries" in body else None)
    assert seen == [e["seq"] for e in reversed(home.audit.entries(event="login.success"))]
    assert len(seen) > 4
    mine = _seqs(client.get("/audit?actor=cora&event=login.success", base_url=HTTPS).get_data(as_text=True))
    assert mine == [e["seq"] for e in reversed(home.audit.entries(actor="cora", event="login.success"))]
    future = _seqs(client.get("/audit?from=2999-01-01", base_url=HTTPS).get_data(as_text=True))
    assert future == []


def test_verify_now_says_intact_and_names_a_tampered_entry(scored):
    home, app = scored
    client = _officer(app)
    page = client.get("/audit", base_url=HTTPS).get_data(as_text=True)
    good = client.post("/audit/verify", base_url=HTTPS, headers=SAME_SITE, data={"csrf_token": _csrf_of(page)})
    assert 'id="verdict" class="ok"' in good.get_data(as_text=True)
    with home.store.transaction():
        home.store.execute("UPDATE audit_log SET details = '{\"user\":\"someone-else\"}' WHERE seq = 3")
    bad = client.post("/audit/verify", base_url=HTTPS, headers=SAME_SITE, data={"csrf_token": _csrf_of(page)})
    text = bad.get_data(as_text=True)
    assert 'id="verdict" class="error"' in text and "NOT intact" in text and "3" in text


def test_an_evidence_pack_for_a_period_verifies(scored):
    home, app = scored
    client = _officer(app)
    response = client.get("/audit/pack?from=2000-01-01&to=2999-01-01", base_url=HTTPS)
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    verdict = verify_pack(response.data, home.audit.public_key)
    assert verdict.ok, verdict.message


def test_only_compliance_reads_the_log(scored):
    _home, app = scored
    for user, password in (("sam", "sam-password-1"), ("ana", "ana-password-1"), ("admin", "admin-password-1")):
        client = _english(app)
        _sign_in(client, user, password)
        assert client.get("/audit", base_url=HTTPS).status_code == 403
        assert client.get("/audit/pack", base_url=HTTPS).status_code == 403


def test_the_search_index_is_filled_for_entries_written_before_it(scored):
    home, app = scored
    staff = _english(app)
    _sign_in(staff, "sam", "sam-password-1")
    staff.get("/churn", base_url=HTTPS)
    staff.get(f"/customers/{home.store.scalar('SELECT min(customer_id) FROM customers')}", base_url=HTTPS)
    expected = {(ref, e["seq"]) for e in home.audit.entries() for ref in _refs(json.loads(e["details"]))}
    assert expected and set(home.store.rows("SELECT ref, seq FROM audit_refs")) == expected
    from appliance.store import _MIGRATIONS

    search_index = next(func for version, _name, func in _MIGRATIONS if version == 11)
    with home.store.transaction():
        for statement in ("DROP TABLE audit_refs", "DROP INDEX audit_log_at", "DROP INDEX audit_log_event_seq",
                          "DROP INDEX audit_log_actor_seq"):
            home.store.execute(statement)
        search_index(home.store)  # as on a home whose log was written before the migration
    assert set(home.store.rows("SELECT ref, seq FROM audit_refs")) == expected
