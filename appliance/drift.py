"""Drift: the population stability index (PSI) of each feature and of the score, between the training data and
each scoring run. Above `drift.psi_threshold` (0.2 by default, the usual "significant shift") the run is flagged,
and the model card records it.

Reference distributions are deciles of the training data (plus a bucket for missing values), kept in the card;
a scoring run counts its values into the same buckets, batch by batch, so memory stays flat.
"""

import numpy as np

EPSILON = 1e-4


def reference(values: np.ndarray, bins: int = 10) -> dict:
    """Bucket edges (training deciles) and the share of training values in each bucket; the last is missing."""
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else np.array([])
    return {"edges": edges.tolist(), "shares": (counts(values, edges) / max(len(values), 1)).tolist()}


def counts(values: np.ndarray, edges) -> np.ndarray:
    edges = np.asarray(edges, dtype=float)
    missing = np.isnan(values)
    found = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
    return np.append(found, missing.sum()).astype(float)


def psi(expected_shares, actual_counts) -> float:
    expected = np.maximum(np.asarray(expected_shares, dtype=float), EPSILON)
    actual = np.maximum(np.asarray(actual_counts, dtype=float) / max(np.sum(actual_counts), 1), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


class Monitor:
    """Counts a scoring run's values into the training buckets; `result` gives PSI per feature and score."""

    def __init__(self, card: dict):
        self.reference = card.get("reference", {})
        self.totals = {name: np.zeros(len(ref["edges"]) + 2) for name, ref in self.reference.items()}

    def add(self, name: str, values: np.ndarray) -> None:
        if name in self.totals:
            self.totals[name] += counts(values.astype(float), self.reference[name]["edges"])

    def result(self, threshold: float) -> dict:
        scores = {name: round(psi(self.reference[name]["shares"], total), 4) for name, total in self.totals.items()}
        over = sorted(name for name, value in scores.items() if value > threshold)
        return {"psi": scores, "threshold": threshold, "flagged": bool(over), "over_threshold": over}
