"""Scoring: churn probabilities, risk bands and reasons for every customer's features as of a date."""

import json
from datetime import date, datetime, timezone
from pathlib import Path

from appliance import features
from appliance.models import Model, ModelError, band
from appliance.store import Store
from appliance.subjects import register_erasure

register_erasure("customer_scores")
register_erasure("customer_segments")


def current_card(models_dir: Path, kind: str = "churn") -> Path:
    cards = sorted(Path(models_dir).glob(f"{kind}-*.json"))
    if not cards:
        raise ModelError(f"no {kind} model in {models_dir}: run `appliance train {kind}` first")
    return cards[-1]  # names carry their creation time


def score(store: Store, model: Model, as_of: date, cut_offs: tuple[float, float], batch: int = 20_000,
          drift_threshold: float = 0.2) -> int:
    """Score the customers whose features exist for `as_of`; their rows for that date are replaced whole.
    Drift against the training data is measured on the way and written to the model card."""
    from appliance.drift import Monitor

    monitor = Monitor(model.card)
    frame = features.load(store, as_of)
    if frame.empty:
        raise ModelError(f"no features as of {as_of}: run `appliance run features --as-of {as_of}` first")
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with store.transaction():
        store.execute("DELETE FROM customer_scores WHERE as_of = ?", (as_of.isoformat(),))
        for start in range(0, len(frame), batch):
            part = frame.iloc[start:start + batch]
            x = model.matrix(part)
            probabilities = model.probabilities(x)
            for i, name in enumerate(model.features):
                monitor.add(name, x[:, i])
            monitor.add("churn_probability", probabilities)
            reasons = model.reasons(x)
            store.executemany(
                "INSERT INTO customer_scores VALUES (?,?,?,?,?,?,?,?)",
                [(customer, as_of.isoformat(), model.card["sha256"], float(p), band(float(p), cut_offs),
                  json.dumps([r.text("zh") for r in rs], ensure_ascii=False),
                  json.dumps([r.text("en") for r in rs]), stamp)
                 for customer, p, rs in zip(part.index, probabilities, reasons)])
        drift = monitor.result(drift_threshold)
        store.execute("INSERT OR REPLACE INTO drift_runs VALUES (?,?,?,?,?)",
                      (as_of.isoformat(), model.card["sha256"], stamp, int(drift["flagged"]), json.dumps(drift)))
    model.record_drift({"as_of": as_of.isoformat(), "at": stamp, "flagged": drift["flagged"],
                        "over_threshold": drift["over_threshold"],
                        "max_psi": max(drift["psi"].values(), default=0.0)})
    return len(frame)


def assign_segments(store: Store, model: Model, as_of: date) -> list[dict]:
    """Each customer's segment as of the date, and the segments' profiles recomputed on today's customers
    (sizes, RFM, products, churn rate from the mapped label or the churn scores); replaced whole per date."""
    from appliance.training import segment_profiles

    frame = features.load(store, as_of)
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
