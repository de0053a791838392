"""Scoring: churn probabilities, risk bands and reasons for every customer's features as of a date."""

import json
from datetime import date, datetime, timezone
from pathlib import Path

from appliance import features
from appliance.models import Model, ModelError, band
from appliance.store import Store
from appliance.subjects import register_erasure

register_erasure("customer_scores")
register_erasure("risk_ranks")
register_erasure("customer_segments")
register_erasure("propensity_scores")


def current_card(models_dir: Path, kind: str = "churn") -> Path:
    cards = sorted(Path(models_dir).glob(f"{kind}-*.json"))
    if not cards:
        raise ModelError(f"no {kind} model in {models_dir}: run `appliance train {kind}` first")
    return cards[-1]  # names carry their creation time


def current_cards(models_dir: Path, kind: str) -> list[Path]:
    """The newest model of this kind for each scope (sources, and target for propensity): one home may hold
    a churn model per source and a propensity model per target."""
    newest: dict[tuple, Path] = {}
    for path in sorted(Path(models_dir).glob(f"{kind}-*.json")):
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ModelError(f"{path.name}: not a readable model card") from None
        scope = tuple((card.get("scope") or {}).get("sources") or ("*",))
        newest[(scope, (card.get("target") or {}).get("name"))] = path
    return list(newest.values())


def scoped_frame(store: Store, model: Model, as_of: date, claimed: set[str] | None = None, loaded=None):
    """The features as of the date of the customers this model was trained for (its sources), with the
    declared features it reads joined on; customers another, narrower model has claimed are left to it.
    `loaded`: the day's features, when the caller has them already (16 s a load at a million customers)."""
    frame = features.load(store, as_of) if loaded is None else loaded
    if frame.empty:
        raise ModelError(f"no features as of {as_of}: run `appliance run features --as-of {as_of}` first")
    if model.scope:
        marks = ",".join("?" * len(model.scope))
        mine = {r[0] for r in store.query(f"SELECT customer_id FROM customers WHERE source IN ({marks})", model.scope)}
        frame = frame[frame.index.isin(mine)]
    if claimed:
        frame = frame[~frame.index.isin(claimed)]
    declared = model.declared
    if declared and not frame.empty:
        frame = frame.join(features.declared_frame(store, frame.index.tolist(), declared), how="left")
    return frame


def by_narrowest_scope(models: list[Model]) -> list[Model]:
    """Models in the order they claim customers: a model for one source before a model for all."""
    return sorted(models, key=lambda m: (len(m.scope) if m.scope else 10 ** 6))


def score(store: Store, model: Model, as_of: date, cut_offs: tuple[float, float], batch: int = 20_000,
          drift_threshold: float = 0.2, claimed: set[str] | None = None, first: bool = True, loaded=None) -> int:
    """Score the customers of the model's scope whose features exist for `as_of`; the date's rows are replaced
    (all of them by the first model of a run, `first`; later models add the customers they claim). Drift
    against the training data is measured on the way and written to the model card. Propensity models write
    to propensity_scores, one target each."""
    from appliance.drift import Monitor

    monitor = Monitor(model.card)
    frame = scoped_frame(store, model, as_of, claimed, loaded)
    target = (model.card.get("target") or {}).get("name", "churn")
    churn = (model.card.get("target") or {}).get("kind", "churn") == "churn"
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with store.transaction():
        if churn and first:
            store.execute("DELETE FROM customer_scores WHERE as_of = ?", (as_of.isoformat(),))
        elif not churn:
            store.execute("DELETE FROM propensity_scores WHERE as_of = ? AND target = ?", (as_of.isoformat(), target))
        for start in range(0, len(frame), batch):
            part = frame.iloc[start:start + batch]
            x = model.matrix(part)
            probabilities = model.probabilities(x)
            for i, name in enumerate(model.features):
                monitor.add(name, x[:, i])
            monitor.add("churn_probability" if "churn_probability" in model.card.get("reference", {}) else
                        "probability", probabilities)
            reasons = model.reasons(x, probabilities=probabilities, cut_offs=cut_offs)
            # Most customers are in the low band and given no reasons: "[]" without encoding it (1.8 million
            # json.dumps calls, 4.7 s, at a million customers).
            texts = [(json.dumps([r.text("zh") for r in rs], ensure_ascii=False), json.dumps([r.text("en") for r in rs]))
                     if rs else ("[]", "[]") for rs in reasons]
            if churn:
                store.executemany(
                    "INSERT INTO customer_scores VALUES (?,?,?,?,?,?,?,?)",
                    [(customer, as_of.isoformat(), model.card["sha256"], float(p), band(float(p), cut_offs), zh, en,
                      stamp) for customer, p, (zh, en) in zip(part.index, probabilities, texts)])
            else:
                store.executemany(
                    "INSERT INTO propensity_scores VALUES (?,?,?,?,?,?,?,?)",
                    [(customer, as_of.isoformat(), target, model.card["sha256"], float(p), zh, en, stamp)
                     for customer, p, (zh, en) in zip(part.index, probabilities, texts)])
        if claimed is not None:
            claimed.update(frame.index)
        drift = monitor.result(drift_threshold)
        store.execute("INSERT OR REPLACE INTO drift_runs VALUES (?,?,?,?,?)",
                      (as_of.isoformat(), model.card["sha256"], stamp, int(drift["flagged"]), json.dumps(drift)))
    model.record_drift({"as_of": as_of.isoformat(), "at": stamp, "flagged": drift["flagged"],
                        "over_threshold": drift["over_threshold"],
                        "max_psi": max(drift["psi"].values(), default=0.0)})
    return len(frame)


# Value bands on the customer's balance (the feature balance_now as of the scoring date): the tags' own
# threshold for affluent (100,000) and 10,000, a branch's everyday cut. (low, high) bounds; None is open.
VALUE_BANDS = {"high": (100_000, None), "medium": (10_000, 100_000), "low": (None, 10_000)}


def at_risk_filters(*, band=None, branch=None, segment=None, value=None) -> tuple[list[str], list]:
    """SQL conditions (over customer_scores s, customers c, customer_segments g, customer_features f) and their
    parameters for the at-risk list's filters: what the list shows and what a campaign chooses are the same."""
    clauses, params = [], []
    for clause, wanted in (("s.risk_band = ?", band), ("c.branch = ?", branch), ("g.segment = ?", segment)):
        if wanted is not None:
            clauses.append(clause)
            params.append(wanted)
    if value is not None:
        low, high = VALUE_BANDS[value]
        if low is not None:
            clauses.append("f.balance_now >= ?")
            params.append(low)
        if high is not None:
            clauses.append("coalesce(f.balance_now, 0) < ?")
            params.append(high)
    return clauses, params


def summarise_risk(store: Store, as_of: date) -> None:
    """The date's churn scores counted in tenths of probability and by risk band, for the console's histogram
    and risk figures (one pass here instead of one per page view); and ranked within each branch and segment
    (`risk_ranks`), so that the at-risk list filtered by both is one stretch of an index at any size. Run after
    the segments are assigned."""
    day = as_of.isoformat()
    with store.transaction():
        for table in ("risk_summaries", "risk_ranks"):
            store.execute(f"DELETE FROM {table} WHERE as_of = ?", (day,))
        store.execute("INSERT INTO risk_summaries SELECT as_of, min(CAST(probability * 10 AS INTEGER), 9), risk_band, "
                      "count(*) FROM customer_scores WHERE as_of = ? GROUP BY 2, 3", (day,))
        high, medium = VALUE_BANDS["high"][0], VALUE_BANDS["medium"][0]
        # Each customer's branch, read in the table's own order and handed over in customer order: joined to
        # customers, each score looked its customer up at a random place in the table (7 s of 10 at a million).
        branches = sorted(store.rows("SELECT customer_id, coalesce(branch, '') FROM customers"))
        with store.keyed_rows("branch_of", ("customer_id TEXT", "branch TEXT NOT NULL"), branches) as table:
            del branches
            store.execute("INSERT INTO risk_ranks SELECT s.as_of, c.branch, coalesce(g.segment, -1), "
                          "CASE WHEN f.balance_now >= ? THEN 'high' WHEN f.balance_now >= ? THEN 'medium' ELSE 'low' "
                          # The day's scores in their key's order (date, customer), not the planner's choice of
                          # the covering risk-order index: the segment and feature lookups then walk their
                          # tables in the same order (1.3 s against 17.5 s at a million customers).
                          "END, s.probability, s.customer_id FROM customer_scores s "
                          f"INDEXED BY sqlite_autoindex_customer_scores_1 CROSS JOIN {table} c ON c.customer_id = "
                          "s.customer_id LEFT JOIN customer_segments g ON g.customer_id = s.customer_id AND g.as_of = "
                          "s.as_of LEFT JOIN customer_features f ON f.customer_id = s.customer_id "
                          "AND f.as_of = s.as_of "
                          # Sorted into risk_ranks' key order: unsorted, every row landed at a random place in the
                          # day's B-tree (56 s of the scoring's 148 at a million customers).
                          "WHERE s.as_of = ? ORDER BY 1, 2, 3, 5 DESC, 6", (high, medium, day))


def assign_segments(store: Store, model: Model, as_of: date, loaded=None) -> list[dict]:
    """Each customer's segment as of the date, and the segments' profiles recomputed on today's customers
    (sizes, RFM, products, churn rate from the mapped label or the churn scores); replaced whole per date."""
    from appliance.training import segment_profiles

    frame = features.load(store, as_of) if loaded is None else loaded
    if frame.empty:
        raise ModelError(f"no features as of {as_of}: run `appliance run features --as-of {as_of}` first")
    labels = model.labels(model.matrix(frame))
    scores = {r[0]: r[1] for r in store.query("SELECT customer_id, probability FROM customer_scores WHERE as_of = ?",
                                              (as_of.isoformat(),))}
    churn = frame["churn_label"].fillna(frame.index.to_series().map(scores))
    profiles = segment_profiles(frame, labels, churn)
    with store.transaction():
        store.execute("DELETE FROM customer_segments WHERE as_of = ?", (as_of.isoformat(),))
        store.execute("DELETE FROM segment_profiles WHERE as_of = ?", (as_of.isoformat(),))
        store.executemany("INSERT INTO customer_segments VALUES (?,?,?,?)",
                          [(c, as_of.isoformat(), int(s), model.card["sha256"]) for c, s in zip(frame.index, labels)])
        store.executemany("INSERT INTO segment_profiles VALUES (?,?,?)",
                          [(as_of.isoformat(), p["segment"], json.dumps(p, ensure_ascii=False)) for p in profiles])
    return profiles
