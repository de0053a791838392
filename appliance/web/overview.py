"""The overview, for every signed-in role: aggregate figures only. Customers, those active in the last 90 days,
the latest churn-risk histogram and bands, segment sizes, how the risk bands moved over past runs, and the
last pipeline run. Everything is read from summaries the pipeline wrote (risk_summaries, segment_profiles,
tag_overlaps), so the page costs the same at any number of customers."""

import json

from flask import Blueprint, current_app, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _

from appliance.web.auth import signed_in

blueprint = Blueprint("overview", __name__)
TREND_RUNS = 30


def risk_figures(store) -> tuple[str | None, dict[str, int], list[int]]:
    """(the latest scoring date, customers per risk band, customers per tenth of probability), from the summary
    the scoring wrote; the page and the API read the same."""
    latest = store.scalar("SELECT max(as_of) FROM risk_summaries")
    bands, bins = {}, [0] * 10
    for bin_, band, n in (store.query("SELECT bin, risk_band, customers FROM risk_summaries WHERE as_of = ?",
                                      (latest,)) if latest else []):
        bands[band] = bands.get(band, 0) + n
        bins[bin_] += n
    return latest, bands, bins


@blueprint.route("/")
@signed_in
def index():
    store = current_app.extensions["home"].store
    zh = str(get_locale()).startswith("zh")
    latest, bands, bins = risk_figures(store)
    histogram = {"kind": "histogram", "x": [f"{i / 10:.1f}–{(i + 1) / 10:.1f}" for i in range(10)], "y": bins,
                 "xName": _("Churn probability"), "yName": _("Customers")}
    trend_rows = store.query("SELECT as_of, risk_band, sum(customers) FROM risk_summaries WHERE as_of IN (SELECT "
                             "DISTINCT as_of FROM risk_summaries ORDER BY as_of DESC LIMIT ?) GROUP BY 1, 2 "
                             "ORDER BY 1", (TREND_RUNS,))
    days = sorted({r[0] for r in trend_rows})
    names = {"high": _("high"), "medium": _("medium"), "low": _("low")}
    series = {band: [0] * len(days) for band in names}
    for day, band, n in trend_rows:
        series.setdefault(band, [0] * len(days))[days.index(day)] = n
    trend = {"kind": "lines", "x": days, "series": [{"name": names.get(b, b), "data": v} for b, v in series.items()]}
    segments_as_of = store.scalar("SELECT max(as_of) FROM segment_profiles")
    segments = [json.loads(r[0]) for r in store.query("SELECT profile FROM segment_profiles WHERE as_of = ? "
                                                      "ORDER BY segment", (segments_as_of,))] if segments_as_of else []
    for p in segments:
        p["name"] = p["name_zh"] if zh else p["name_en"]
    tags_as_of = store.scalar("SELECT max(as_of) FROM tag_overlaps")
    tagged, dormant = (store.query(
        "SELECT sum(customers) FILTER (WHERE first LIKE 'lifecycle:%'), sum(customers) FILTER (WHERE first = "
        "'dormant_90') FROM tag_overlaps WHERE as_of = ? AND first = second", (tags_as_of,))[0]
        if tags_as_of else (None, None))
    active = tagged - (dormant or 0) if tagged is not None else None
    last_run = store.query("SELECT job, started_at, finished_at, status, rows, error FROM job_runs WHERE job = "
                           "'nightly' ORDER BY run_id DESC LIMIT 1")
    customers = store.scalar("SELECT count(*) FROM customers")
    return render_template("overview/index.html", user=request.user, role=request.role, customers=customers,
                           active=active, as_of=latest, bands=bands, histogram=histogram,
                           trend=trend, segments=segments, segments_as_of=segments_as_of,
                           last_run=dict(last_run[0]) if last_run else None)
