"""Scoring: churn probabilities, risk bands and reasons for every customer's features as of a date."""

import itertools
import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

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
    marks = ",".join("?" * len(model.scope or ()))
    # Most homes hold only the model's sources: asked first (a scan), the frame is not filtered by a million ids.
    if model.scope and store.scalar(f"SELECT EXISTS (SELECT 1 FROM customers WHERE source NOT IN ({marks}))",
                                    model.scope):
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
          drift_threshold: float = 0.2, claimed: set[str] | None = None, first: bool = True, loaded=None,
          scored: list[pd.DataFrame] | None = None) -> int:
    """Score the customers of the model's scope whose features exist for `as_of`; the date's rows are replaced
    (all of them by the first model of a run, `first`; later models add the customers they claim). Drift
    against the training data is measured on the way and written to the model card. Propensity models write
    to propensity_scores, one target each. `scored`: a list to append the churn scores written to (probability
    and risk_band by customer), for the stages after scoring (see `day_scores`)."""
    from appliance.drift import Monitor

    monitor = Monitor(model.card)
    frame = scoped_frame(store, model, as_of, claimed, loaded)
    target = (model.card.get("target") or {}).get("name", "churn")
    churn = (model.card.get("target") or {}).get("kind", "churn") == "churn"
    stamp, day = datetime.now(timezone.utc).isoformat(timespec="seconds"), as_of.isoformat()
    with store.transaction():
        if churn and first:
            store.execute("DELETE FROM customer_scores WHERE as_of = ?", (day,))
        elif not churn:
            store.execute("DELETE FROM propensity_scores WHERE as_of = ? AND target = ?", (day, target))
        for start in range(0, len(frame), batch):
            part = frame.iloc[start:start + batch]
            x = model.matrix(part)
            probabilities = model.probabilities(x)
            for i, name in enumerate(model.features):
                monitor.add(name, x[:, i])
            monitor.add("churn_probability" if "churn_probability" in model.card.get("reference", {}) else
                        "probability", probabilities)
            texts = model.reason_texts(x, probabilities=probabilities, cut_offs=cut_offs)
            customers = part.index.tolist()  # pandas' string arrays are slow to walk an element at a time
            scored_probabilities = probabilities.tolist()
            if churn:
                bands = [band(p, cut_offs) for p in scored_probabilities]
                store.executemany(
                    "INSERT INTO customer_scores VALUES (?,?,?,?,?,?,?,?)",
                    [(customer, day, model.card["sha256"], p, risk, zh, en, stamp)
                     for customer, p, risk, (zh, en) in zip(customers, scored_probabilities, bands, texts)])
                if scored is not None:
                    scored.append(pd.DataFrame({"probability": probabilities.astype("float64"), "risk_band": bands},
                                               index=part.index))
            else:
                store.executemany(
                    "INSERT INTO propensity_scores VALUES (?,?,?,?,?,?,?,?)",
                    [(customer, day, target, model.card["sha256"], p, zh, en, stamp)
                     for customer, p, (zh, en) in zip(customers, scored_probabilities, texts)])
        if claimed is not None:
            claimed.update(frame.index.tolist())
        drift = monitor.result(drift_threshold)
        store.execute("INSERT OR REPLACE INTO drift_runs VALUES (?,?,?,?,?)",
                      (day, model.card["sha256"], stamp, int(drift["flagged"]), json.dumps(drift)))
    model.record_drift({"as_of": day, "at": stamp, "flagged": drift["flagged"],
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


def day_scores(store: Store, as_of: date, scored: list[pd.DataFrame] | None = None) -> pd.DataFrame:
    """The date's churn scores (probability, risk_band) by customer: those a run has just written (`scored`,
    filled by `score`), else read from the store. Each stored score carries its reasons, so reading a
    million probabilities back reads every reason too (7.5 s of tagging's 20 at a million customers).
    `scored` is left holding the one frame returned, so that the stages after scoring share it."""
    if scored is not None:
        if not scored:
            return pd.DataFrame({"probability": pd.Series(dtype="float64"), "risk_band": pd.Series(dtype=object)})
        scored[:] = [pd.concat(scored) if len(scored) > 1 else scored[0]]
        return scored[0]
    rows = store.rows("SELECT customer_id, probability, risk_band FROM customer_scores WHERE as_of = ?",
                      (as_of.isoformat(),))
    return pd.DataFrame.from_records(rows, columns=["customer_id", "probability", "risk_band"]).set_index("customer_id")


def _by_customer(store: Store, sql: str, params: Sequence = ()) -> pd.Series:
    """The second column of the rows, by the first (the customer)."""
    rows = store.rows(sql, params)
    return pd.DataFrame.from_records(rows, columns=["customer_id", "value"]).set_index("customer_id")["value"]


def summarise_risk(store: Store, as_of: date, scores: pd.DataFrame | None = None, loaded=None,
                   segments: pd.Series | None = None) -> None:
    """The date's churn scores counted in tenths of probability and by risk band, for the console's histogram
    and risk figures (one pass here instead of one per page view); and ranked within each branch and segment
    (`risk_ranks`), so that the at-risk list filtered by both is one stretch of an index at any size. Run after
    the segments are assigned. `scores` (from `day_scores`), `loaded` (the day's features) and `segments` (as
    `assign_segments` gives them): when the caller has them, else they are read."""
    day = as_of.isoformat()
    scores = day_scores(store, as_of) if scores is None else scores
    customers = scores.index
    balance = (_by_customer(store, "SELECT customer_id, balance_now FROM customer_features WHERE as_of = ?", (day,))
               if loaded is None else loaded["balance_now"]).reindex(customers).to_numpy(dtype="float64")
    if segments is None:
        segments = _by_customer(store, "SELECT customer_id, segment FROM customer_segments WHERE as_of = ?", (day,))
    segment = segments.reindex(customers).fillna(-1).to_numpy(dtype="int64")
    # Read in the customers table's own order: by its key, each row was a lookup at a random place in it.
    branch = _by_customer(store, "SELECT customer_id, coalesce(branch, '') FROM customers").reindex(customers)
    known = branch.notna().to_numpy()  # a score whose customer has gone is not ranked
    high, medium = VALUE_BANDS["high"][0], VALUE_BANDS["medium"][0]
    value_band = np.where(balance >= high, "high", np.where(balance >= medium, "medium", "low"))
    probability = scores["probability"].to_numpy(dtype="float64")
    # In risk_ranks' key order (branch, segment, probability falling, customer), so that each row lands after
    # the one before in the day's B-tree (unsorted: 56 s of the scoring's 148 at a million customers). Sorted
    # on codes: by the strings themselves, 1.6 s at a million.
    branch_code = pd.factorize(branch.to_numpy(dtype=object), sort=True)[0]
    customer_code = pd.factorize(customers.to_numpy(dtype=object), sort=True)[0]
    order = np.lexsort((customer_code, -probability, segment, branch_code))
    order = order[known[order]]
    ids, branches = customers.to_numpy(dtype=object), branch.to_numpy(dtype=object)
    tenths = np.minimum((probability * 10).astype("int64"), 9)
    counted = pd.DataFrame({"tenth": tenths, "band": scores["risk_band"].to_numpy()}).value_counts()
    with store.transaction():
        for table in ("risk_summaries", "risk_ranks"):
            store.execute(f"DELETE FROM {table} WHERE as_of = ?", (day,))
        store.executemany("INSERT INTO risk_summaries VALUES (?,?,?,?)",
                          [(day, int(tenth), risk, int(n)) for (tenth, risk), n in counted.items()])
        store.executemany("INSERT INTO risk_ranks VALUES (?,?,?,?,?,?)",
                          zip(itertools.repeat(day), branches[order].tolist(), segment[order].tolist(),
                              value_band[order].tolist(), probability[order].tolist(), ids[order].tolist()))


def assign_segments(store: Store, model: Model, as_of: date, loaded=None, scores: pd.DataFrame | None = None,
                    assigned: list[pd.Series] | None = None) -> list[dict]:
    """Each customer's segment as of the date, and the segments' profiles recomputed on today's customers
    (sizes, RFM, products, churn rate from the mapped label or the churn scores, `day_scores`); replaced whole
    per date. `assigned`: a list to append the segments written to (by customer), for the risk summary."""
    from appliance.training import segment_profiles

    frame = features.load(store, as_of) if loaded is None else loaded
    if frame.empty:
        raise ModelError(f"no features as of {as_of}: run `appliance run features --as-of {as_of}` first")
    labels = model.labels(model.matrix(frame))
    scores = day_scores(store, as_of) if scores is None else scores
    churn = frame["churn_label"].fillna(scores["probability"].reindex(frame.index))
    profiles = segment_profiles(frame, labels, churn)
    with store.transaction():
        store.execute("DELETE FROM customer_segments WHERE as_of = ?", (as_of.isoformat(),))
        store.execute("DELETE FROM segment_profiles WHERE as_of = ?", (as_of.isoformat(),))
        store.executemany("INSERT INTO customer_segments VALUES (?,?,?,?)",
                          zip(frame.index.tolist(), itertools.repeat(as_of.isoformat()), labels.tolist(),
                              itertools.repeat(model.card["sha256"])))
        store.executemany("INSERT INTO segment_profiles VALUES (?,?,?)",
                          [(as_of.isoformat(), p["segment"], json.dumps(p, ensure_ascii=False)) for p in profiles])
    if assigned is not None:
        assigned.append(pd.Series(labels, index=frame.index))
    return profiles
