"""Aggregate insight pages: segments (profiles, compare two), tags (counts, overlaps), lifecycle stages and how
customers moved between them, models (cards, metrics, features, drift over time) and jobs (schedule, history,
run now). Every figure is an aggregate read from tables the pipeline precomputes, so a page costs the same at
any number of customers. Charts get their data as JSON in their box's `data-series` attribute (no script in
the page) and are drawn by static/charts.js with ECharts."""

import json
import threading

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from appliance import tagging
from appliance.web.auth import requires, roles, signed_in

blueprint = Blueprint("insights", __name__)
HEATMAP_TAGS = 12


def _zh() -> bool:
    return str(get_locale()).startswith("zh")


def _store():
    return current_app.extensions["home"].store


def _as_of(table: str) -> str | None:
    """The date asked for when the table has it, else its latest."""
    wanted = request.args.get("as_of", "")[:10]
    if wanted and _store().scalar(f"SELECT 1 FROM {table} WHERE as_of = ? LIMIT 1", (wanted,)):
        return wanted
    return _store().scalar(f"SELECT max(as_of) FROM {table}")


def _dates(table: str) -> list[str]:
    return [r[0] for r in _store().query(f"SELECT DISTINCT as_of FROM {table} ORDER BY as_of DESC LIMIT 60")]


def _page(template: str, **context):
    return render_template(template, user=request.user, role=request.role, **context)


def segment_profiles(store, as_of: str | None, zh: bool) -> list[dict]:
    profiles = [json.loads(r[0]) for r in store.query(
        "SELECT profile FROM segment_profiles WHERE as_of = ? ORDER BY segment", (as_of,))] if as_of else []
    for p in profiles:
        p["name"] = p["name_zh"] if zh else p["name_en"]
    return profiles


def tag_counts(store, as_of: str | None) -> list[tuple[str, int]]:
    """(tag, customers), most held first; lifecycle stages apart."""
    return [tuple(r) for r in store.query(
        "SELECT first, customers FROM tag_overlaps WHERE as_of = ? AND first = second AND first NOT LIKE "
        "'lifecycle:%' ORDER BY customers DESC, first", (as_of,))] if as_of else []


def tag_pairs(store, as_of: str, tags: list[str]) -> dict[tuple[str, str], int]:
    """Customers holding both tags, for each pair of these tags (both orders)."""
    if not tags:
        return {}
    marks = ",".join("?" * len(tags))
    pairs = {}
    for a, b, n in store.query(f"SELECT first, second, customers FROM tag_overlaps WHERE as_of = ? AND first IN "
                               f"({marks}) AND second IN ({marks})", (as_of, *tags, *tags)):
        pairs[(a, b)] = pairs[(b, a)] = n
    return pairs


def lifecycle_flows(store, as_of: str | None) -> list[dict]:
    return [dict(r) for r in store.query(
        "SELECT previous_as_of, from_stage, to_stage, customers FROM lifecycle_flows WHERE as_of = ? "
        "ORDER BY customers DESC", (as_of,))] if as_of else []


def job_runs(store, limit: int = 50) -> list[dict]:
    return [dict(r) for r in store.query(
        "SELECT run_id, job, started_at, finished_at, status, rows, error FROM job_runs ORDER BY run_id DESC "
        "LIMIT ?", (limit,))]


@blueprint.route("/segments")
@signed_in
def segments():
    as_of = _as_of("segment_profiles")
    profiles = segment_profiles(_store(), as_of, _zh())
    by_id = {p["segment"]: p for p in profiles}
    first, second = request.args.get("a", type=int), request.args.get("b", type=int)
    compared = [by_id[s] for s in (first, second) if s in by_id] if first != second else []
    chart = {"kind": "bubble", "x": _("Transactions in 365 days (mean)"), "y": _("Median balance"),
             "points": [{"name": p["name"], "x": round(p["frequency_365"], 1), "y": round(p["balance_median"], 2),
                         "size": p["size"]} for p in profiles]}
    return _page("insights/segments.html", as_of=as_of, dates=_dates("segment_profiles"), profiles=profiles,
                 compared=compared if len(compared) == 2 else [], first=first, second=second,
                 highlight=request.args.get("segment", type=int), chart=chart)


def tag_names(zh: bool | None = None) -> dict[str, str]:
    """Tag and stage ids (`lifecycle:<id>`) to their names in the reader's language, from the home's rules."""
    zh = _zh() if zh is None else zh
    home = current_app.extensions["home"]
    rules = home.path / "tags.yaml"
    tags, stages = tagging.load_rules(rules if rules.exists() else tagging.SHIPPED)
    names = {r.id: (r.zh if zh else r.en) for r in tags}
    names |= {f"lifecycle:{r.id}": (r.zh if zh else r.en) for r in stages}
    return names


@blueprint.route("/tags")
@signed_in
def tags():
    as_of = _as_of("tag_overlaps")
    names = tag_names()
    counts = [(tag, names.get(tag, tag), n) for tag, n in tag_counts(_store(), as_of)]
    top = [tag for tag, _name, _n in counts[:HEATMAP_TAGS]]
    pairs = tag_pairs(_store(), as_of, top)
    cells = [[i, j, pairs.get((a, b), 0)] for i, a in enumerate(top) for j, b in enumerate(top)]
    chart = {"kind": "heatmap", "labels": [names.get(t, t) for t in top], "cells": cells}
    return _page("insights/tags.html", as_of=as_of, dates=_dates("tag_overlaps"), counts=counts, chart=chart)


@blueprint.route("/lifecycle")
@signed_in
def lifecycle():
    as_of = _as_of("lifecycle_flows")
    names = tag_names()
    flows = lifecycle_flows(_store(), as_of)
    previous = flows[0]["previous_as_of"] if flows else None
    none = _("not a customer")

    def label(stage, when):
        return f"{names.get('lifecycle:' + stage, none if stage == 'none' else stage)} ({when or '—'})"

    stages = {}
    for f in flows:
        stages[f["to_stage"]] = stages.get(f["to_stage"], 0) + f["customers"] * (f["to_stage"] != "none")
    chart = {"kind": "sankey", "links": [{"source": label(f["from_stage"], previous), "target": label(f["to_stage"], as_of),
                                          "value": f["customers"]} for f in flows]}
    trend = _store().query("SELECT as_of, first, customers FROM tag_overlaps WHERE first = second AND first LIKE "
                           "'lifecycle:%' AND as_of IN (SELECT DISTINCT as_of FROM tag_overlaps ORDER BY as_of DESC "
                           "LIMIT 30) ORDER BY as_of")
    days = sorted({r[0] for r in trend})
    series = {}
    for day, stage, n in trend:
        series.setdefault(names.get(stage, stage), [0] * len(days))[days.index(day)] = n
    return _page("insights/lifecycle.html", as_of=as_of, previous=previous, dates=_dates("lifecycle_flows"),
                 stages=[(names.get(f"lifecycle:{s}", s), n) for s, n in stages.items() if s != "none"],
                 flows=flows, label=label, chart=chart,
                 trend={"kind": "lines", "x": days, "series": [{"name": k, "data": v} for k, v in series.items()]})


def model_cards(models) -> list[dict]:
    """The installed model cards, newest first; one that cannot be read is named as such."""
    cards = []
    for path in sorted(models.glob("*-*.json"), reverse=True):
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cards.append({"file": path.name, "unreadable": True})
            continue
        card["file"] = path.name
        cards.append(card)
    return cards


@blueprint.route("/models")
@requires("insights.read")
def models():
    cards = model_cards(current_app.extensions["home"].path / "models")
    drift = {}
    for row in _store().query("SELECT as_of, model_sha256, flagged, result FROM drift_runs ORDER BY as_of"):
        result = json.loads(row["result"])
        worst = max(result.get("psi", {}).values(), default=0.0)
        drift.setdefault(row["model_sha256"], []).append(
            {"as_of": row["as_of"], "flagged": bool(row["flagged"]), "worst": worst,
             "over": result.get("over_threshold", []), "threshold": result.get("threshold")})
    charts = {}
    for card in cards:
        runs = drift.get(card.get("sha256"), [])
        card["drift_runs"] = runs[-10:]
        card["top_features"] = sorted(card.get("feature_info", []), key=lambda i: -i["importance"])[:12]
        if runs:
            charts[card["sha256"]] = {"kind": "lines", "x": [r["as_of"] for r in runs],
                                      "series": [{"name": _("largest PSI"), "data": [r["worst"] for r in runs]}],
                                      "threshold": runs[-1]["threshold"]}
    return _page("insights/models.html", cards=cards, charts=charts)


@blueprint.route("/jobs")
@requires("insights.read")
def jobs():
    from appliance.jobs import SCHEDULED

    home = current_app.extensions["home"]
    runs = job_runs(_store())
    schedule = [(job, home.settings[setting]) for job, setting in SCHEDULED.items()]
    return _page("insights/jobs.html", runs=runs, schedule=schedule, following=bool(request.args.get("started")),
                 can_run=request.role in roles("jobs.run") and current_app.extensions.get("credentials") is not None)


@blueprint.route("/jobs/run", methods=["POST"])
@requires("jobs.run")
def run_now():
    """Start the nightly pipeline now, in the background, as the signed-in user; the jobs page follows it."""
    from appliance.access import Actor
    from appliance.jobs import run_scheduled

    credentials = current_app.extensions.get("credentials")
    if credentials is None:
        abort(404)
    home = current_app.extensions["home"]
    home.audit.record(request.user, "job.requested", job="nightly", via="console")
    threading.Thread(target=run_scheduled, args=(home.path, credentials, "nightly", Actor(request.user, request.role)),
                     daemon=True, name="nightly-now").start()
    return redirect(url_for("insights.jobs", started=1))


@blueprint.route("/jobs/status")
@requires("insights.read")
def job_status():
    """The latest runs, for the jobs page's live progress (polled by static/jobs.js)."""
    return jsonify([dict(r) for r in _store().query(
        "SELECT run_id, job, started_at, finished_at, status, rows FROM job_runs ORDER BY run_id DESC LIMIT 10")])
