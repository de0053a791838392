"""Precision, recall and F2 of the engine on a labelled file (JSON Lines: text, spans of {type, start, end}).

A prediction counts as a hit when it has the gold span's type and the two overlap by at least half of their
union (character IoU >= 0.5), each gold span matched at most once. F2 weighs recall twice as much as
precision: a missed ID number costs more than a masked order number.
"""

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ApplianceError
from appliance.pii.engine import PiiEngine


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f2(self) -> float:
        p, r = self.precision, self.recall
        return 5 * p * r / (4 * p + r) if p + r else 0.0


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def load(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text, spans = row["text"], row.get("spans", [])
                for span in spans:
                    if not (isinstance(span["type"], str) and 0 <= span["start"] < span["end"] <= len(text)):
                        raise ValueError
            except (ValueError, KeyError, TypeError):
                raise ApplianceError(f"{Path(path).name} line {line_no}: expected {{text, spans: [{{type, start, end}}]}}"
                                     " with offsets inside the text") from None
            rows.append(row)
    return rows


def evaluate(engine: PiiEngine, rows: list[dict], language: str = "auto") -> tuple[dict[str, Score], list[dict]]:
    """Per-entity scores, and the rows with mistakes (for looking into, never logged)."""
    scores: dict[str, Score] = {}
    mistakes = []
    for row in rows:
        predicted = [(e.type, (e.start, e.end)) for e in engine.analyze(row["text"], language)]
        gold = [(s["type"], (s["start"], s["end"])) for s in row["spans"]]
        unmatched = list(gold)
        wrong = []
        for kind, span in predicted:
            match = next((g for g in unmatched if g[0] == kind and _iou(g[1], span) >= 0.5), None)
            if match:
                unmatched.remove(match)
                scores.setdefault(kind, Score()).tp += 1
            else:
                scores.setdefault(kind, Score()).fp += 1
                wrong.append(("fp", kind, span))
        for kind, span in unmatched:
            scores.setdefault(kind, Score()).fn += 1
            wrong.append(("fn", kind, span))
        if wrong:
            mistakes.append({"text": row["text"], "mistakes": wrong})
    return scores, mistakes


def total(scores: dict[str, Score]) -> Score:
    counts = Counter()
    for s in scores.values():
        counts.update({"tp": s.tp, "fp": s.fp, "fn": s.fn})
    return Score(**counts)


def report(scores: dict[str, Score]) -> str:
    lines = [f"{'entity':<18} {'support':>7} {'precision':>9} {'recall':>7} {'F2':>6}"]
    for kind in sorted(scores):
        s = scores[kind]
        lines.append(f"{kind:<18} {s.tp + s.fn:>7} {s.precision:>9.3f} {s.recall:>7.3f} {s.f2:>6.3f}")
    s = total(scores)
    lines.append(f"{'overall':<18} {s.tp + s.fn:>7} {s.precision:>9.3f} {s.recall:>7.3f} {s.f2:>6.3f}")
    return "\n".join(lines)
