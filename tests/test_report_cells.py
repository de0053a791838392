"""Report cells precomputed after the nightly run: the same tables as computing afresh, to the last bit, and
never used once an audited change may have moved what a report reads."""

import csv
import json
import shutil
from itertools import combinations, permutations

import pytest

from appliance import report_cells, reports
from appliance.access import Actor
from appliance.audit import EVENTS
from appliance.demo_data import generate
from appliance.errors import PolicyError
from appliance.home import Home
from appliance.jobs import precompute_reports
from appliance.keys import Credentials, new_key_file
from tests.conftest import ADMIN, ADMIN_PASSWORD, TESTS, assert_one_line_error, ingest_and_score, run_cli

ANALYST, OFFICER = Actor("ana", "analyst"), Actor("olga", "compliance")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cells")
    data, key = root / "data", root / "k.key"
    generate(data, 400, seed=11, months=14)
    new_key_file(key)
    with Home.init(root / "home", Credentials(key_file=key), admin=ADMIN, admin_password=ADMIN_PASSWORD) as home:
        as_of = ingest_and_score(home, data)
    return {"root": root, "data": data, "key": key, "home": root / "home", "as_of": as_of}


@pytest.fixture
def home(world, tmp_path):
    """A copy of the world's home with fresh cells, so each test may change it."""
    shutil.copytree(world["home"], tmp_path / "home")
    with Home.open(tmp_path / "home", Credentials(key_file=world["key"])) as opened:
        precompute_reports(opened, world["as_of"])
        yield opened


def _every_export(report):
    for size in range(1, reports.MAX_DIMENSIONS + 1):
        for dims in combinations(report.dimensions, size):
            for ordered in permutations(dims):
                try:
                    reports.check_dimensions(report, ordered)
                except PolicyError:
                    continue
                yield ordered


def _both(home, name, dims, **options):
    report = reports.get(name)
    params = reports.resolve_parameters(home.store, report, None)
    policy = home.export_policy()
    options = {"top": policy.dominance_top, "clamp": policy.privacy.enabled} | options
    return (report_cells.compute(home.store, report, dims, params, **options),
            reports.compute(home.store, report, dims, params, **options))


def test_precomputed_cells_give_every_export_the_table_computing_afresh_gives(home):
    checked = 0
    for name, report in reports.REPORTS.items():
        for dims in _every_export(report):
            stored, fresh = _both(home, name, dims)
            assert stored.precomputed_at is not None and fresh.precomputed_at is None, (name, dims)
            assert stored.aggregates == fresh.aggregates, (name, dims)  # floats compared exactly
            assert stored.labels == fresh.labels
            assert stored.max_units_per_customer == fresh.max_units_per_customer
            assert fresh.aggregates, (name, dims)
            checked += 1
    assert checked >= 60


def test_reads_and_exports_leave_the_cells_in_use_and_approval_matches_the_request(home):
    home.audit.record(ANALYST, "customer.read", customer="T-not-a-customer")
    exports = home.exports()
    request = exports.request(ANALYST, "segment_profile", ("segment", "region"), recipient="head_office",
                              purpose="management_reporting")
    assert _both(home, "segment_profile", ("segment",))[0].precomputed_at is not None
    bundle = exports.approve(OFFICER, request["request_id"])
    assert (bundle / "manifest.json").exists()
    assert _both(home, "tag_counts", ("tag",))[0].precomputed_at is not None


def test_an_audited_change_of_the_data_sends_exports_back_to_computing_afresh(home, world, tmp_path):
    before, _ = _both(home, "segment_profile", ("region",))
    request = home.exports().request(ANALYST, "segment_profile", ("region",), recipient="head_office",
                                     purpose="management_reporting")
    # A batch moves customers to another branch (so another region).
    with open(world["data"] / "customers.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header, branch = rows[0], rows[0].index("开户网点")
    target = rows[1][branch]
    moved = [row for row in rows[1:] if row[branch] != target][:40]
    for row in moved:
        row[branch] = target
    (tmp_path / "batch").mkdir()
    with open(tmp_path / "batch" / "customers.csv", "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header] + moved)
    home.ingestor(TESTS).ingest(home.mapping("demo"), [tmp_path / "batch"])

    after, fresh = _both(home, "segment_profile", ("region",))
    assert after.precomputed_at is None
    assert after.aggregates == fresh.aggregates
    assert after.aggregates != before.aggregates  # the stored cells would have published old figures
    with pytest.raises(Exception, match="changed since the request"):
        home.exports().approve(OFFICER, request["request_id"])


def test_cells_are_used_only_under_the_dominance_rule_and_clamping_they_were_computed_with(home):
    policy = home.export_policy()
    assert _both(home, "product_holdings", ("product",))[0].precomputed_at is not None
    other_top, _ = _both(home, "product_holdings", ("product",), top=policy.dominance_top + 1)
    clamped, fresh = _both(home, "product_holdings", ("product",), clamp=not policy.privacy.enabled)
    assert other_top.precomputed_at is None and clamped.precomputed_at is None
    assert clamped.aggregates == fresh.aggregates
    months = reports.resolve_parameters(home.store, reports.get("churn_risk"), None, months=3)
    three = report_cells.compute(home.store, reports.get("churn_risk"), ("risk_band",), months,
                                 top=policy.dominance_top, clamp=policy.privacy.enabled)
    assert three.precomputed_at is None  # only the one-month window is precomputed


def test_only_events_that_change_nothing_reports_read_keep_the_cells(home):
    assert report_cells.UNCHANGING < set(EVENTS)
    for event in ("ingest.batch", "subject.erase", "retention.purge", "model.score", "campaign.create",
                  "campaign.contact", "store.restore", "keys.rotate", "config.change"):
        assert event not in report_cells.UNCHANGING
    seen = home.store.scalar("SELECT max(seq) FROM audit_log")
    home.audit.record(TESTS, "job.run", job=report_cells.JOB, status="ok")
    assert not report_cells.stale(home.store, seen)
    home.audit.record(TESTS, "job.run", job="tags", status="started")
    assert report_cells.stale(home.store, seen)


def test_the_nightly_command_precomputes_the_cells_and_exports_read_them(world, tmp_path):
    shutil.copytree(world["home"], tmp_path / "home")
    env = {"APPLIANCE_HOME": str(tmp_path / "home"), "APPLIANCE_KEY_FILE": str(world["key"])}
    done = run_cli("run", "nightly", "--as-of", world["as_of"].isoformat(), "--user", ADMIN,
                   env_extra=env | {"APPLIANCE_USER_PASSWORD": ADMIN_PASSWORD})
    assert done.returncode == 0, done.stderr
    assert "report cells as of" in done.stdout and "tag_overlap" in done.stdout
    with Home.open(tmp_path / "home", Credentials(key_file=world["key"])) as home:
        runs = home.store.query("SELECT job, status FROM job_runs ORDER BY run_id DESC LIMIT 2")
        assert [tuple(r) for r in runs] == [("report_cells", "ok"), ("nightly", "ok")]
        stored = home.store.query("SELECT report, parameters FROM report_cells ORDER BY report")
        assert [r["report"] for r in stored] == sorted(reports.REPORTS)
        assert all(json.loads(r["parameters"])["as_of"] == world["as_of"].isoformat() for r in stored)
        assert _both(home, "churn_risk", ("segment", "risk_band"))[0].precomputed_at is not None


def test_tag_and_segment_cells_match_counts_made_another_way(home, world):
    """The units joins against what the tagging run counted itself (numpy over its own frame) and plain
    counts of the stored rows."""
    as_of = world["as_of"].isoformat()
    by_tag, _ = _both(home, "tag_counts", ("tag",))
    cells = {a.key["tag"]: a.customers for a in by_tag.aggregates if a.level == 1}
    assert cells == dict(home.store.rows("SELECT value, count(*) FROM customer_tags t, json_each(t.tags) "
                                         "WHERE as_of = ? GROUP BY value", (as_of,)))
    pairs, _ = _both(home, "tag_overlap", ("tag_a", "tag_b"))
    cells = {(a.key["tag_a"], a.key["tag_b"]): a.customers for a in pairs.aggregates if a.level == 2}
    counted = {tuple(sorted((first, second))): n for first, second, n in home.store.rows(
        "SELECT first, second, customers FROM tag_overlaps WHERE as_of = ? AND first != second", (as_of,))}
    assert counted and {pair: cells.get(pair, 0) for pair in counted} == counted
    segments, _ = _both(home, "segment_profile", ("segment",))
    cells = {a.key["segment"]: a.customers for a in segments.aggregates if a.level == 1}
    assert cells == {str(s): n for s, n in home.store.rows(
        "SELECT segment, count(*) FROM customer_segments WHERE as_of = ? GROUP BY segment", (as_of,))}


def test_a_report_leaves_the_connection_with_the_page_cache_it_had(home):
    before = home.store.scalar("PRAGMA cache_size")
    report = reports.get("segment_profile")
    params = reports.resolve_parameters(home.store, report, None)
    reports.compute(home.store, report, ("segment",), params, cache_mib=256)
    assert home.store.scalar("PRAGMA cache_size") == before != -256 * 1024


def test_the_shortcuts_for_one_unit_a_customer_and_the_largest_contributor_change_no_figure(home):
    """Where a customer has one unit per cell (units one per customer, or a grouping by the report's unit
    key) the grouping by customer is skipped; with top = 1 the largest contribution is a max, not a ranking.
    Both against the general form for every report and grouping, and the dominance shares against pandas."""
    import pandas as pd

    store, shortcuts = home.store, 0
    for report in reports.REPORTS.values():
        if report.rows_by_grouping:
            continue  # tag pairs: the next test
        params = reports.resolve_parameters(store, report, None) | {"window": "-0 months"}
        with store.reading_only(report.tables, scratch=reports.UNITS):
            store.execute(f"CREATE TEMP TABLE {reports.UNITS} AS {report.units_sql}", params)
            try:
                unique = store.scalar(f"SELECT count(*) = count(DISTINCT customer_id) FROM temp.{reports.UNITS}")
                for group in report_cells.all_groupings(report):
                    if not (unique or reports.one_unit_each(report, group)):
                        continue
                    shortcuts += 1
                    for top in (1, 2):
                        for clamp in (False, True):
                            general = store.rows(reports._aggregate_sql(report, group, top, clamp, False))
                            assert store.rows(reports._aggregate_sql(report, group, top, clamp, True)) == general, \
                                (report.name, group)
                if report.name == "segment_profile":
                    assert unique
                    units = pd.DataFrame(store.rows(f"SELECT segment, balance FROM temp.{reports.UNITS}"),
                                         columns=["segment", "balance"])
                    by_segment = store.rows(reports._aggregate_sql(report, ("segment",), 1, False, True))
            finally:
                store.execute(f"DROP TABLE temp.{reports.UNITS}")
    assert shortcuts >= 20
    largest = units.assign(size=units["balance"].abs()).groupby("segment")["size"].agg(["max", "sum"])
    balance = [m.name for m in reports.get("segment_profile").measures].index("balance")
    for row in by_segment:
        top_abs, all_abs = row[3 + 4 * balance + 2], row[3 + 4 * balance + 3]
        assert (top_abs, all_abs) == pytest.approx((largest.loc[row[0], "max"], largest.loc[row[0], "sum"]))


# The units joined in SQL, a row per tag (or pair of tags) a customer holds, as the tag reports had them
# before they were counted from tag sets.
_JOINED_UNITS = {
    "tag_counts": f"""
        SELECT c.rowid AS customer_id, j.value AS tag,
               coalesce(c.region, b.region, '{reports.UNKNOWN}') AS region,
               coalesce(CAST(sg.segment AS TEXT), '{reports.UNKNOWN}') AS segment
        FROM customers c JOIN customer_tags t ON t.customer_id = c.customer_id AND t.as_of = :as_of
        JOIN json_each(t.tags) j
        LEFT JOIN branches b ON b.branch_id = c.branch
        LEFT JOIN customer_segments sg ON sg.customer_id = c.customer_id AND sg.as_of = :as_of""",
    "tag_overlap": """
        SELECT c.rowid AS customer_id, a.value AS tag_a, b.value AS tag_b
        FROM customers c JOIN customer_tags t ON t.customer_id = c.customer_id AND t.as_of = :as_of
        JOIN json_each(t.tags) a JOIN json_each(t.tags) b ON b.value > a.value""",
}


def _give_tags(store, as_of: str, customer: str, tags) -> None:
    """Add these tags to the customer's set for the day (a new row if they have none)."""
    held = json.loads(store.scalar("SELECT tags FROM customer_tags WHERE as_of = ? AND customer_id = ?",
                                   (as_of, customer)) or "[]")
    store.execute("INSERT OR REPLACE INTO customer_tags VALUES (?, ?, ?, 't')",
                  (as_of, customer, json.dumps(sorted(set(held) | set(tags)), ensure_ascii=False)))


@pytest.mark.parametrize("sets_per_chunk", [3, reports.TAG_SETS_PER_CHUNK])
@pytest.mark.parametrize("name", sorted(_JOINED_UNITS))
def test_tag_reports_counted_from_tag_sets_equal_the_units_joined_in_sql(home, world, monkeypatch, name,
                                                                         sets_per_chunk):
    """Every grouping a tag report stores, and other orders of them, against the general SQL over the
    joined units; with tags that sort around each other in byte order (Chinese, upper case, punctuation), a
    customer with one tag, one with every tag, one without a segment, and tags of a customer no longer in
    `customers`."""
    store, as_of = home.store, world["as_of"].isoformat()
    people = [r[0] for r in store.rows("SELECT customer_id FROM customer_tags WHERE as_of = ? "
                                       "ORDER BY customer_id LIMIT 4", (as_of,))]
    odd = ["高价值", "Zeta", "a,b", "it's", 'say "hi"', "zz 客户", "region"]
    catalogue = odd + [r[0] for r in store.rows("SELECT DISTINCT value FROM customer_tags t, json_each(t.tags) "
                                                "WHERE as_of = ?", (as_of,))]
    with store.transaction():
        store.execute("UPDATE customer_tags SET tags = '[\"高价值\"]' WHERE customer_id = ? AND as_of = ?",
                      (people[0], as_of))
        store.execute("DELETE FROM customer_segments WHERE customer_id = ? AND as_of = ?", (people[3], as_of))
        for i, who in enumerate(people[1:]):
            _give_tags(store, as_of, who, catalogue[:2 + 2 * i])
        for who in (people[2], "T-not-a-customer"):
            _give_tags(store, as_of, who, catalogue)
    monkeypatch.setattr(reports, "TAG_SETS_PER_CHUNK", sets_per_chunk)
    report = reports.get(name)
    wanted = report_cells.all_groupings(report)
    wanted += [tuple(reversed(group)) for group in wanted if len(group) == 2]
    counted = reports.aggregate_rows(store, report, wanted, {"as_of": as_of})
    with store.reading_only(report.tables | {"branches", "customer_segments", "json_each"}, scratch=reports.UNITS):
        store.execute(f"CREATE TEMP TABLE {reports.UNITS} AS {_JOINED_UNITS[name]}", {"as_of": as_of})
        try:
            for group in wanted:
                joined = store.rows(reports._aggregate_sql(report, group, 1, False, False))
                assert sorted(counted[group], key=repr) == sorted(joined, key=repr), group
        finally:
            store.execute(f"DROP TABLE temp.{reports.UNITS}")
    assert all(type(n) is int for rows in counted.values() for row in rows for n in row[-2:])
    if name == "tag_overlap":
        pairs = {tuple(row[:2]): row[2] for row in counted[("tag_a", "tag_b")]}
        assert pairs[("Zeta", "高价值")] >= 2
    else:
        assert {row[0] for row in counted[("tag",)]} >= set(odd)
        assert any(row[1] == reports.UNKNOWN for row in counted[("tag", "segment")])


def test_cells_without_a_grouping_an_export_needs_are_passed_over(home):
    """Cells stored by a release whose report had fewer dimensions."""
    stored = json.loads(home.store.scalar("SELECT cells FROM report_cells WHERE report = 'segment_profile'"))
    del stored["groupings"]["segment,region"]
    with home.store.transaction():
        home.store.execute("UPDATE report_cells SET cells = ? WHERE report = 'segment_profile'", (json.dumps(stored),))
    assert _both(home, "segment_profile", ("segment",))[0].precomputed_at is not None
    missing, fresh = _both(home, "segment_profile", ("region", "segment"))
    assert missing.precomputed_at is None and missing.aggregates == fresh.aggregates


def test_run_reports_takes_each_reports_latest_results_and_refuses_a_home_without_any(world, tmp_path):
    shutil.copytree(world["home"], tmp_path / "home")
    env = {"APPLIANCE_HOME": str(tmp_path / "home"), "APPLIANCE_KEY_FILE": str(world["key"]),
           "APPLIANCE_USER": ADMIN, "APPLIANCE_USER_PASSWORD": ADMIN_PASSWORD}
    done = run_cli("run", "reports", env_extra=env)
    assert done.returncode == 0 and "report cells as of the latest results" in done.stdout, done.stderr
    with Home.open(tmp_path / "home", Credentials(key_file=world["key"])) as home:
        stored = {json.loads(r[0])["as_of"] for r in home.store.rows("SELECT parameters FROM report_cells")}
        assert stored == {world["as_of"].isoformat()}
    with Home.init(tmp_path / "empty", Credentials(key_file=world["key"]), admin=ADMIN, admin_password=ADMIN_PASSWORD):
        pass
    refused = run_cli("run", "reports", env_extra=env | {"APPLIANCE_HOME": str(tmp_path / "empty")})
    assert_one_line_error(refused, "no data yet", "run nightly")


def test_churn_risk_over_months_counts_each_months_latest_day_of_scores(home, world):
    """Score days earlier in a month (all marked high) must not be counted; the window's months each take
    their latest day, found by walking the days (store.each_day)."""
    from datetime import timedelta

    store, as_of = home.store, world["as_of"]
    first = as_of.replace(day=1)
    last_month_end = first - timedelta(days=1)
    two_back = (last_month_end.replace(day=1) - timedelta(days=1)).replace(day=10)
    copies = {two_back: False, two_back + timedelta(days=5): True, last_month_end.replace(day=3): False,
              last_month_end: True, as_of - timedelta(days=1) if as_of.day > 1 else as_of: as_of.day == 1}
    with store.transaction():
        for day, latest in copies.items():
            if day == as_of:
                continue
            band = "risk_band" if latest else "'high'"
            store.execute(f"INSERT INTO customer_scores SELECT customer_id, ?, model_sha256, probability, {band}, "
                          "reasons_zh, reasons_en, scored_at FROM customer_scores WHERE as_of = ?",
                          (day.isoformat(), as_of.isoformat()))
    report = reports.get("churn_risk")
    params = reports.resolve_parameters(store, report, as_of, months=3)
    table = reports.compute(store, report, ("month", "risk_band"), params)
    cells = {(a.key["month"], a.key["risk_band"]): a.customers for a in table.aggregates if a.level == 2}
    expected = {}
    for month in {d.isoformat()[:7] for d in [*copies, as_of]}:
        day = store.scalar("SELECT max(as_of) FROM customer_scores WHERE substr(as_of, 1, 7) = ? AND as_of <= ?",
                           (month, as_of.isoformat()))
        for band, n in store.rows("SELECT s.risk_band, count(*) FROM customer_scores s JOIN customers c "
                                  "ON c.customer_id = s.customer_id WHERE s.as_of = ? GROUP BY 1", (day,)):
            expected[(month, band)] = n
    assert cells == expected and len({m for m, _ in cells}) == 3
