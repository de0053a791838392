"""Precision, recall and F2 of the engine on a labelled file: our JSON Lines, or a public corpus (appliance.pii.corpora).

A prediction counts as a hit when it has the gold span's type and the two overlap by at least half of their
union (character IoU >= 0.5), each gold span matched at most once. F2 weighs recall twice as much as
precision: a missed ID number costs more than a masked order number.
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from appliance.pii import corpora
from appliance.pii.corpora import KIND_OF
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
    """Our own labelled JSON Lines (types are the engine's entity types)."""
    return corpora.load(Path(path), "jsonl")[0]


def evaluate(engine: PiiEngine, rows: list[dict], language: str = "auto", *, by_kind: bool = False,
             scored: set[str] | None = None) -> tuple[dict[str, Score], list[dict]]:
    """Per-type scores, and the rows with mistakes (for looking into, never logged).

    by_kind: the gold types are a public corpus's kinds (PERSON, PHONE, ...), so predicted types are folded
    to them first. scored: the kinds the corpus labels; predictions of other kinds are neither hits nor
    false alarms (CLUENER labels no phone numbers, so a phone found there proves nothing either way)."""
    scores: dict[str, Score] = {}
    mistakes = []
    found = engine.analyze_many([row["text"] for row in rows], language)
    for row, entities in zip(rows, found):
        predicted = [(KIND_OF.get(e.type, e.type) if by_kind else e.type, (e.start, e.end)) for e in entities]
        if scored is not None:
            predicted = [p for p in predicted if p[0] in scored]
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


def evaluate_file(engine: PiiEngine, path: Path, fmt: str = "auto", language: str = "auto",
                  limit: int | None = None) -> dict[str, Score]:
    rows, by_kind = corpora.load(Path(path), fmt)
    rows = rows[:limit] if limit else rows
    scored = corpora.scored_kinds(Path(path), fmt) if by_kind else None
    scores, _ = evaluate(engine, rows, language, by_kind=by_kind, scored=scored)
    for kind in scored or ():
        scores.setdefault(kind, Score())
    return scores


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
