"""The JSON API on the real app and a scored home: tokens (hashed at rest, revocable, expiring, dead with a
disabled user), the same permissions and audit as the pages, no session cookie accepted, no raw PII in any
answer, and schemathesis over /api/v1/openapi.json with 1,000 examples per operation and no 5xx."""

import json

from hypothesis import HealthCheck, given, settings

from appliance.api_tokens import ApiTokens
from tests.web.test_console import HTTPS, SAME_SITE, _english, _sign_in
from tests.web.test_customer_view import _csrf_of, _raw_values


def _token(home, user: str, days: int = 90) -> str:
    with home.store.transaction():
        return ApiTokens(home.store).create(user, f"{user}'s reporting tool", days)[0]


def _get(app, path, token=None, client=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return (client or app.test_client()).get(path, base_url=HTTPS, headers=headers)


def test_the_openapi_document_is_served_without_a_token(scored):
    _home, app = scored
    document = _get(app, "/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.") and "/churn" in document["paths"]


def test_calls_need_a_live_token_and_a_session_cookie_is_not_one(scored):
    home, app = scored
    assert _get(app, "/api/v1/overview").status_code == 401
    assert _get(app, "/api/v1/overview", token="iat_not-a-token").status_code == 401
    browser = _english(app)
    _sign_in(browser, "sam", "sam-password-1")
    assert browser.get("/api/v1/churn", base_url=HTTPS).status_code == 401  # only a token opens the API
    token = _token(home, "sam")
    assert _get(app, "/api/v1/overview", token).status_code == 200
    stored = json.dumps([dict(r) for r in home.store.query("SELECT * FROM api_tokens")])
    assert token not in stored and token[4:] not in stored  # only its hash is kept


def test_a_token_has_its_users_permissions_and_customer_reads_are_audited(scored):
    home, app = scored
    staff, admin = _token(home, "sam"), _token(home, "admin")
    page = _get(app, "/api/v1/churn?band=high&limit=5&lang=en", staff)
    assert page.status_code == 200
    rows = page.get_json()["customers"]
    assert rows and {r["risk_band"] for r in rows} == {"high"} and all(r["reasons"] for r in rows)
    entry = home.store.query("SELECT actor, details FROM audit_log WHERE event = 'customer.read' ORDER BY seq "
                             "DESC LIMIT 1")[0]
    details = json.loads(entry[1])
    assert entry[0] == "sam" and details["page"] == "api.churn" and details["customers"] == [r["customer_id"]
                                                                                            for r in rows]
    assert details["token"] == ApiTokens(home.store).list("sam")[0]["token_id"]
    assert _get(app, "/api/v1/models", staff).status_code == 403
    assert _get(app, "/api/v1/churn", admin).status_code == 403
    assert _get(app, "/api/v1/models", admin).status_code == 200
    one = _get(app, f"/api/v1/customers/{rows[0]['customer_id']}", staff).get_json()
    assert one["customer_id"] == rows[0]["customer_id"] and "name" in one["sealed"]
    assert _get(app, "/api/v1/customers/nobody", staff).status_code == 404


def test_paging_through_the_api_sees_every_scored_customer_once(scored):
    home, app = scored
    token = _token(home, "ana")
    seen, url = [], "/api/v1/churn?limit=7"
    while url:
        body = _get(app, url, token).get_json()
        seen += [r["customer_id"] for r in body["customers"]]
        url = (f"/api/v1/churn?limit=7&after_key={body['next']['after_key']!r}&after_id={body['next']['after_id']}"
               if body["next"] else None)
    total = home.store.scalar("SELECT count(*) FROM customer_scores WHERE as_of = (SELECT max(as_of) FROM "
                              "customer_scores)")
    assert len(seen) == len(set(seen)) == total


def test_revoked_expired_and_disabled_users_tokens_stop_at_once(scored):
    home, app = scored
    revoked, expired, disabled = _token(home, "ana"), _token(home, "ana"), _token(home, "sam")
    tokens = ApiTokens(home.store)
    with home.store.transaction():
        assert tokens.revoke(tokens.list("ana")[-1]["token_id"], user="ana")
        home.store.execute("UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00+00:00' WHERE token_id = ?",
                           (tokens.list("ana")[0]["token_id"],))
        home.users().disable("sam")
    for token in (revoked, expired, disabled):
        assert _get(app, "/api/v1/overview", token).status_code == 401


def test_tokens_are_made_and_revoked_in_the_console_after_the_full_sign_in(scored):
    home, app = scored
    client = _english(app)
    _sign_in(client, "ana", "ana-password-1")
    page = client.get("/account", base_url=HTTPS).get_data(as_text=True)
    made = client.post("/account/tokens", base_url=HTTPS, headers=SAME_SITE,
                       data={"csrf_token": _csrf_of(page), "label": "BI dashboard", "days": "30"})
    body = made.get_data(as_text=True)
    token = body.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert _get(app, "/api/v1/overview", token).status_code == 200
    token_id = ApiTokens(home.store).list("ana")[0]["token_id"]
    client.post(f"/account/tokens/{token_id}/revoke", base_url=HTTPS, headers=SAME_SITE,
                data={"csrf_token": _csrf_of(body)})
    assert _get(app, "/api/v1/overview", token).status_code == 401
    events = [r[0] for r in home.store.query("SELECT event FROM audit_log WHERE event LIKE 'api_token.%'")]
    assert events == ["api_token.create", "api_token.revoke"]
    assert token not in client.get("/account", base_url=HTTPS).get_data(as_text=True)  # shown once only


def test_schemathesis_finds_no_server_error_and_no_raw_pii_in_1000_examples_per_operation(scored, demo_dir):
    import schemathesis

    home, app = scored
    token = _token(home, "cora")  # compliance: every operation is open to it
    raw = _raw_values(demo_dir)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 10
    calls = {}
    for operation in operations:
        @settings(max_examples=1000, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def no_server_error(case):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            calls[operation.label] = calls.get(operation.label, 0) + 1
            assert response.status_code < 500, (case.path, case.query, response.text[:200])
            content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
            assert str(content_type[0] if isinstance(content_type, list) else content_type).startswith(
                "application/json")
            assert not [v for v in raw if v in response.text]

        no_server_error()
    assert len(calls) == 10 and min(calls.values()) >= 1000, calls
