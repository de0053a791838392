"""Segments, tags, lifecycle, models, jobs and the overview on a scored home: who may see which page, that the
precomputed aggregates equal what the customer-level tables say, and that "run now" runs the nightly pipeline
in the background as the person who asked."""

import json
import time
from datetime import date, timedelta

import pytest

from appliance import tagging
from appliance.jobs import nightly
from tests.conftest import TESTS
from tests.web.test_console import HTTPS, SAME_SITE, _english, _sign_in
from tests.web.test_customer_view import _csrf_of

PAGES = ("/", "/churn", "/campaigns", "/segments", "/tags", "/lifecycle", "/models", "/jobs", "/exports", "/audit",
         "/users", "/policies", "/data")
ALLOWED = {
    "staff": {"/", "/churn", "/campaigns", "/segments", "/tags", "/lifecycle"},
    "compliance": set(PAGES) - {"/users", "/data"},
    "analyst": set(PAGES) - {"/audit", "/users", "/policies"},
    "admin": {"/", "/segments", "/tags", "/lifecycle", "/models", "/jobs", "/exports", "/users", "/policies",
              "/data"},
}
PASSWORDS = {"staff": ("sam", "sam-password-1"), "analyst": ("ana", "ana-password-1"),
             "compliance": ("cora", "cora-password-1"), "admin": ("admin", "admin-password-1")}


def _series(body: str, chart: str):
    """The data a page gives one of its charts (the box's data-series attribute)."""
    import html

    return json.loads(html.unescape(body.split(f'data-chart="{chart}" data-series=\'', 1)[1].split("'", 1)[0]))


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_sees_its_pages_and_gets_403_for_the_rest(scored, role):
    _home, app = scored
    client = _english(app)
    _sign_in(client, *PASSWORDS[role])
    for page in PAGES:
        status = client.get(page, base_url=HTTPS).status_code
        assert status == (200 if page in ALLOWED[role] else 403), (role, page, status)
    nav = client.get("/", base_url=HTTPS).get_data(as_text=True)
    assert ('href="/models"' in nav) == ("/models" in ALLOWED[role])  # the menu follows the permissions


def test_tag_summaries_equal_the_customer_level_tags(scored):
    home, _app = scored
    as_of = home.store.scalar("SELECT max(as_of) FROM customer_tags")
    stored = {(a, b): n for a, b, n in home.store.query("SELECT first, second, customers FROM tag_overlaps "
                                                         "WHERE as_of = ?", (as_of,))}
    counts = tagging.counts(home.store, date.fromisoformat(as_of))
    held = dict(home.store.query("SELECT value, count(*) FROM customer_tags t, json_each(t.tags) WHERE as_of = ? "
                                 "GROUP BY value", (as_of,)))
    assert {a: n for (a, b), n in stored.items() if a == b} == counts == held
    pairs = [(a, b) for (a, b) in stored if a != b and not a.startswith("lifecycle:")][:20]
    assert pairs
    for a, b in pairs:
        assert stored[(a, b)] == tagging.overlap(home.store, date.fromisoformat(as_of), a, b)


def test_risk_summary_counts_every_scored_customer_in_its_band(scored):
    home, _app = scored
    as_of = home.store.scalar("SELECT max(as_of) FROM customer_scores")
    summary = dict(home.store.query("SELECT risk_band, sum(customers) FROM risk_summaries WHERE as_of = ? "
                                    "GROUP BY 1", (as_of,)))
    assert summary == dict(home.store.query("SELECT risk_band, count(*) FROM customer_scores WHERE as_of = ? "
                                            "GROUP BY 1", (as_of,)))


def test_lifecycle_flow_accounts_for_every_customer_between_two_runs(scored):
    home, app = scored
    first = date.fromisoformat(home.store.scalar("SELECT max(as_of) FROM customer_tags"))
    second = first + timedelta(30)
    nightly(home, second, TESTS)
    flows = home.store.query("SELECT previous_as_of, from_stage, to_stage, customers FROM lifecycle_flows "
                             "WHERE as_of = ?", (second.isoformat(),))
    assert {r[0] for r in flows} == {first.isoformat()}
    stages, before = ({r[0]: r[1] for r in home.store.query(
        "SELECT customer_id, value FROM customer_tags t, json_each(t.tags) WHERE as_of = ? AND value LIKE "
        "'lifecycle:%'", (day.isoformat(),))} for day in (second, first))
    expected = {}
    for customer in set(stages) | set(before):
        key = (before.get(customer, "lifecycle:none")[10:], stages.get(customer, "lifecycle:none")[10:])
        expected[key] = expected.get(key, 0) + 1
    assert {(r[1], r[2]): r[3] for r in flows} == expected
    client = _english(app)
    _sign_in(client, "sam", "sam-password-1")
    body = client.get("/lifecycle", base_url=HTTPS).get_data(as_text=True)
    assert f"How customers moved since {first.isoformat()}" in body and 'data-chart="chart-flow"' in body


def test_segments_compare_two_and_pages_carry_their_chart_data(scored):
    home, app = scored
    as_of = home.store.scalar("SELECT max(as_of) FROM segment_profiles")
    profiles = [json.loads(r[0]) for r in home.store.query("SELECT profile FROM segment_profiles WHERE as_of = ? "
                                                            "ORDER BY segment", (as_of,))]
    assert len(profiles) >= 2
    client = _english(app)
    _sign_in(client, "sam", "sam-password-1")
    a, b = profiles[0], profiles[1]
    body = client.get(f"/segments?a={a['segment']}&b={b['segment']}", base_url=HTTPS).get_data(as_text=True)
    assert a["name_en"] in body and b["name_en"] in body and "Difference" in body
    chart = _series(body, "chart-segments")
    assert sorted(p["size"] for p in chart["points"]) == sorted(p["size"] for p in profiles)
    zh = app.test_client()
    _sign_in(zh, "sam", "sam-password-1")
    assert a["name_zh"] in zh.get("/segments", base_url=HTTPS).get_data(as_text=True)
    tags = client.get("/tags", base_url=HTTPS).get_data(as_text=True)
    assert "Payroll customer" in tags or "Dormant 90 days" in tags
    heat = _series(tags, "chart-overlap")
    assert heat["labels"] and len(heat["cells"]) == len(heat["labels"]) ** 2
    overview = client.get("/", base_url=HTTPS).get_data(as_text=True)
    histogram = _series(overview, "chart-risk")
    assert sum(histogram["y"]) == home.store.scalar("SELECT count(*) FROM customer_scores WHERE as_of = ?",
                                                    (home.store.scalar("SELECT max(as_of) FROM customer_scores"),))


def test_models_page_shows_the_installed_cards_with_their_drift(scored):
    home, app = scored
    client = _english(app)
    _sign_in(client, "ana", "ana-password-1")
    body = client.get("/models", base_url=HTTPS).get_data(as_text=True)
    for card in (home.path / "models").glob("*.json"):
        assert json.loads(card.read_text())["sha256"][:12] in body
    assert "Holdout ROC-AUC" in body and "Largest PSI" in body
    (home.path / "models" / "churn-19990101T000000000000.json").write_text("{not json")
    broken = client.get("/models", base_url=HTTPS)
    assert broken.status_code == 200 and "cannot be read" in broken.get_data(as_text=True)


def test_run_now_runs_the_nightly_in_the_background_as_the_person_who_asked(scored):
    home, app = scored
    client = _english(app)
    _sign_in(client, "ana", "ana-password-1")
    before = home.store.scalar("SELECT count(*) FROM job_runs")
    page = client.get("/jobs", base_url=HTTPS).get_data(as_text=True)
    response = client.post("/jobs/run", base_url=HTTPS, headers=SAME_SITE, data={"csrf_token": _csrf_of(page)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/jobs?started=1")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = client.get("/jobs/status", base_url=HTTPS).get_json()
        if len(runs) > before and (runs[0]["status"] == "failed" or runs[0]["job"] == "report_cells"
                                   and runs[0]["status"] != "running"):
            break
        time.sleep(0.5)
    assert [(r["job"], r["status"]) for r in runs[:2]] == [("report_cells", "ok"), ("nightly", "ok")], runs[:2]
    actors = {r[0] for r in home.store.query("SELECT actor FROM audit_log WHERE event IN ('job.run', "
                                             "'job.requested', 'model.score') AND seq > (SELECT max(seq) - 40 "
                                             "FROM audit_log)")}
    assert "ana" in actors
    staff = _english(app)
    _sign_in(staff, "sam", "sam-password-1")
    assert staff.post("/jobs/run", base_url=HTTPS, headers=SAME_SITE,
                      data={"csrf_token": _csrf_of(staff.get("/", base_url=HTTPS).get_data(as_text=True))}
                      ).status_code == 403


def test_no_page_or_api_answer_of_any_role_shows_a_raw_value_seeded_into_the_data(scored, demo_dir):
    from appliance.api_tokens import ApiTokens
    from tests.web.test_customer_view import _raw_values

    home, app = scored
    raw = _raw_values(demo_dir)
    customers = [r[0] for r in home.store.query("SELECT customer_id FROM customers ORDER BY customer_id LIMIT 8")]
    pages = [*PAGES, "/account", "/jobs/status", "/segments?a=0&b=1", "/churn?band=high",
             *[f"/customers/{c}" for c in customers]]
    api = ["/api/v1/overview", "/api/v1/churn?limit=200", "/api/v1/segments", "/api/v1/tags", "/api/v1/lifecycle",
           "/api/v1/models", "/api/v1/jobs", *[f"/api/v1/customers/{c}?lang=en" for c in customers]]
    for role, (user, password) in PASSWORDS.items():
        client = _english(app)
        _sign_in(client, user, password)
        with home.store.transaction():
            token = ApiTokens(home.store).create(user, "crawl", 1)[0]
        for path in pages:
            body = client.get(path, base_url=HTTPS).get_data(as_text=True)
            assert not [v for v in raw if v in body], (role, path)
        for path in api:
            body = app.test_client().get(path, base_url=HTTPS,
                                         headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
            assert not [v for v in raw if v in body], (role, path)
