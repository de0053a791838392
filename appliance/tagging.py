"""Rule-based customer tags and lifecycle stages, defined in YAML (appliance/tags.yaml, or the home's own).

Conditions are `name op value` over a customer's features and scores; they are parsed, never evaluated as
code. A missing value (no credit score in this source, say) makes a condition false. A customer's tags (and
stage, as `lifecycle:<id>`) for an as-of date are one row of `customer_tags`, a JSON array (replaced whole per
date); they join erasure. Counts, pairwise overlaps and the lifecycle flow since the previous run are worked
out once when tags are built (`tag_overlaps`, `lifecycle_flows`), so that reading them costs the same at a
million customers as at a thousand.
"""

import json
import operator
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from appliance import yamlfile
from appliance.errors import ConfigError
from appliance.features import FEATURE_NAMES, load as load_features
from appliance.scoring import day_scores
from appliance.store import Store, each_day
from appliance.subjects import register_erasure

SHIPPED = Path(__file__).with_name("tags.yaml")
SCORE_FIELDS = ("churn_probability", "risk_band")
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
        "!=": operator.ne}
_CONDITION = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|==|!=|>|<)\s*('([^']*)'|-?\d+(?:\.\d+)?|([a-z_][a-z_0-9]*))\s*$")
register_erasure("customer_tags")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: float | str
    other_field: str | None = None  # compare with another field instead of a constant

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        column = frame[self.field]
        if self.other_field:
            left, right = pd.to_numeric(column, errors="coerce"), pd.to_numeric(frame[self.other_field], errors="coerce")
            return pd.Series(_OPS[self.op](left, right), index=frame.index).where(left.notna() & right.notna(),
                                                                                  False).astype(bool)
        if isinstance(self.value, str):
            return _OPS[self.op](column.astype(object), self.value).fillna(False).astype(bool)
        values = pd.to_numeric(column, errors="coerce")
        return pd.Series(_OPS[self.op](values, self.value), index=frame.index).where(values.notna(), False).astype(bool)


@dataclass(frozen=True)
class Rule:
    id: str
    zh: str
    en: str
    conditions: tuple[Condition, ...]
    needs_all: bool

    def mask(self, frame: pd.DataFrame) -> pd.Series:
        if not self.conditions:
            return pd.Series(True, index=frame.index)
        masks = [c.mask(frame) for c in self.conditions]
        combined = masks[0]
        for m in masks[1:]:
            combined = (combined & m) if self.needs_all else (combined | m)
        return combined


def load_rules(path: Path = SHIPPED) -> tuple[list[Rule], list[Rule]]:
    doc = yamlfile.load(path, ConfigError)

    def fail(line: int, message: str):
        raise ConfigError(f"{path.name} line {line}: {message}")

    if not isinstance(doc, dict) or doc.get("version") != 1:
        fail(getattr(doc, "line", 1), "expected a mapping with version: 1")
    known = set(FEATURE_NAMES) | set(SCORE_FIELDS)

    def parse(section: str) -> list[Rule]:
        rules, seen = [], set()
        for node in doc.get(section) or []:
            line = getattr(node, "line", 1)
            if not isinstance(node, dict) or not all(isinstance(node.get(k), str) for k in ("id", "zh", "en")):
                fail(line, f"each entry of '{section}' needs id, zh and en")
            if not node["id"].isprintable() or not node["id"].strip():
                fail(line, "an id must be printable text (no control characters)")  # it is shown and exported
            if node["id"] in seen:
                fail(line, f"'{node['id']}' is defined twice")
            seen.add(node["id"])
            kind = "all" if "all" in node else "any"
            conditions = []
            for text in node.get(kind) or []:
                match = _CONDITION.match(str(text))
                if not match:
                    fail(line, f"{node['id']}: cannot read condition '{text}' (write: name op value)")
                for name in (match.group(1), match.group(5)):
                    if name is not None and name not in known:
                        fail(line, f"{node['id']}: unknown field '{name}'")
                if match.group(5):
                    conditions.append(Condition(match.group(1), match.group(2), 0.0, match.group(5)))
                    continue
                value = match.group(4) if match.group(4) is not None else float(match.group(3))
                conditions.append(Condition(match.group(1), match.group(2), value))
            rules.append(Rule(node["id"], node["zh"], node["en"], tuple(conditions), kind == "all"))
        return rules

    return parse("tags"), parse("lifecycle")


def customer_frame(store: Store, as_of: date, loaded: pd.DataFrame | None = None,
                   scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features as of the date (`loaded`, when the caller has them; left as they are), with the customer's
    churn score for that date where there is one (`scores`, from `scoring.day_scores`, when the caller has
    them)."""
    frame = load_features(store, as_of) if loaded is None else loaded.copy(deep=False)
    if frame.empty:
        return frame
    by_customer = day_scores(store, as_of) if scores is None else scores
    frame["churn_probability"] = by_customer["probability"].reindex(frame.index).astype("float64")
    frame["risk_band"] = by_customer["risk_band"].reindex(frame.index)
    return frame


def assign(frame: pd.DataFrame, tags: list[Rule], lifecycle: list[Rule]) -> tuple[pd.DataFrame, pd.Series]:
    """(customer x tag booleans, lifecycle stage per customer)."""
    tagged = pd.DataFrame({rule.id: rule.mask(frame) for rule in tags}, index=frame.index)
    stage = pd.Series(None, index=frame.index, dtype=object)
    for rule in lifecycle:
        stage = stage.where(stage.notna(), pd.Series(np.where(rule.mask(frame), rule.id, None), index=frame.index))
    return tagged, stage


def build(store: Store, as_of: date, rules_path: Path = SHIPPED, loaded: pd.DataFrame | None = None,
          scores: pd.DataFrame | None = None) -> int:
    """Tag every customer with features as of the date (`loaded`, and `scores`, when the caller has them);
    that date's tags are replaced whole. Returns how many tags and stages were given."""
    tags, lifecycle = load_rules(rules_path)
    frame = customer_frame(store, as_of, loaded, scores)
    stamp, day = datetime.now(timezone.utc).isoformat(timespec="seconds"), as_of.isoformat()
    # Worked out before the write transaction, which is then only the writing: the nightly builds tags beside
    # the segments and the risk summary, and each waits for the other's transaction.
    given, sets, overlaps, flows = 0, iter(()), [], []
    if not frame.empty:
        tagged, stage = assign(frame, tags, lifecycle)
        sets, given = _tag_sets(tagged, stage)
        overlaps, flows = _summarise(store, day, tagged, stage)
    with store.transaction():
        for table in ("customer_tags", "tag_overlaps", "lifecycle_flows"):
            store.execute(f"DELETE FROM {table} WHERE as_of = ?", (day,))
        store.executemany("INSERT INTO customer_tags VALUES (?,?,?,?)",
                          ((day, customer, held, stamp) for customer, held in sets))
        store.executemany("INSERT INTO tag_overlaps VALUES (?,?,?,?)", overlaps)
        store.executemany("INSERT INTO lifecycle_flows VALUES (?,?,?,?,?)", flows)
    return given


def _tag_sets(tagged: pd.DataFrame, stage: pd.Series) -> tuple[Iterator[tuple[str, str]], int]:
    """(customer, JSON array of the tags and `lifecycle:<stage>` they hold) for each customer holding any, in
    customer order (the table's key after the date: one sweep of its B-tree); and how many are given in all.
    Each distinct set is written as JSON once, for every customer holding it."""
    names = np.array([*tagged.columns, *(f"lifecycle:{v}" for v in sorted(stage.dropna().unique()))], dtype=object)
    position = {name: i for i, name in enumerate(names)}
    held = np.zeros((len(tagged), len(names)), dtype=bool)
    held[:, :tagged.shape[1]] = tagged.to_numpy(dtype=bool)
    staged = np.flatnonzero(stage.notna().to_numpy())
    held[staged, [position[f"lifecycle:{v}"] for v in stage.to_numpy()[staged]]] = True
    in_order = np.argsort(names.astype(str))  # code-point order, as SQLite sorts text
    held, names = held[:, in_order], names[in_order]
    distinct, which = _distinct_rows(np.packbits(held, axis=1))
    texts = [json.dumps(list(names[np.unpackbits(bits, count=len(names)).astype(bool)]), ensure_ascii=False,
                        separators=(",", ":")) for bits in distinct]
    customers, anything = tagged.index.to_numpy(), held.any(axis=1)
    sets = ((customers[i], texts[which[i]]) for i in np.flatnonzero(anything))  # the frame is in customer order
    return sets, int(held.sum())


def _distinct_rows(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a byte matrix, and which of them each row is. Compared as 64-bit words: as rows
    of bytes, 1.3 s at a million customers, against 0.03 s for up to 64 tags and stages in one word."""
    width = -(-packed.shape[1] // 8) * 8
    words = np.zeros((len(packed), width), dtype=np.uint8)
    words[:, :packed.shape[1]] = packed
    words = words.view(np.uint64)
    if words.shape[1] == 1:
        _, first, which = np.unique(words[:, 0], return_index=True, return_inverse=True)
    else:
        _, first, which = np.unique(words, axis=0, return_index=True, return_inverse=True)
    return packed[first], which.reshape(-1)


_STAGE = "value >= 'lifecycle:' AND value < 'lifecycle;'"  # a stage among a customer's tags


def _summarise(store: Store, as_of: str, tagged: pd.DataFrame, stage: pd.Series) -> tuple[list, list]:
    """The rows of tag_overlaps, every pair of tags' overlap (a tag with itself: its count; stages counted as
    `lifecycle:<id>`), and of lifecycle_flows, how many customers moved from each stage at the previous
    tagging date to each stage now."""
    held = tagged.to_numpy(dtype=np.float64)  # BLAS multiplies floats (exact for counts below 2**53): 0.04 s
    pairs = (held.T @ held).astype(np.int64)  # against 0.9 s for integers at a million customers
    names = list(tagged.columns)
    rows = [(as_of, names[i], names[j], int(pairs[i, j])) for i in range(len(names)) for j in range(i, len(names))
            if pairs[i, j]]
    rows += [(as_of, f"lifecycle:{name}", f"lifecycle:{name}", int(n)) for name, n in stage.value_counts().items()]
    # The latest earlier day with stages, found a day at a time newest first: a max over earlier days read
    # every earlier day's rows (6 s with seven days kept at a million customers, growing with each night).
    previous = store.scalar(f"WITH RECURSIVE {each_day('customer_tags')} SELECT d FROM days WHERE d < ? AND "
                            f"EXISTS (SELECT 1 FROM customer_tags t, json_each(t.tags) WHERE t.as_of = d "
                            f"AND {_STAGE}) LIMIT 1", (as_of,))
    before = pd.Series(dtype=object)
    if previous:
        # Each distinct set of tags read for its stage once: by json_each, every customer's set (1.5 s at a
        # million customers, against 0.9 s).
        held_then = pd.DataFrame.from_records(store.rows("SELECT customer_id, tags FROM customer_tags WHERE as_of = ?",
                                                         (previous,)), columns=["customer_id", "tags"])
        stage_of = {text: next((t[len("lifecycle:"):] for t in json.loads(text) if t.startswith("lifecycle:")), None)
                    for text in held_then["tags"].unique()}
        before = held_then.set_index("customer_id")["tags"].map(stage_of).dropna().astype(object)
    moves = pd.DataFrame({"from": before.reindex(stage.index.union(before.index)).fillna("none"),
                          "to": stage.reindex(stage.index.union(before.index)).fillna("none")})
    flows = moves.groupby(["from", "to"]).size()
    return rows, [(as_of, previous, a, b, int(n)) for (a, b), n in flows.items()]


def holding(alias: str = "t") -> str:
    """SQL: the row `alias` of customer_tags holds the tag given as the one parameter."""
    return f"EXISTS (SELECT 1 FROM json_each({alias}.tags) WHERE value = ?)"


def counts(store: Store, as_of: date) -> dict[str, int]:
    """Customers holding each tag and stage (counted when tags are built)."""
    return {r[0]: r[1] for r in store.query("SELECT first, customers FROM tag_overlaps WHERE as_of = ? "
                                            "AND first = second ORDER BY customers DESC, first",
                                            (as_of.isoformat(),))}


def overlap(store: Store, as_of: date, first: str, second: str) -> int:
    """Customers holding both (tags or stages)."""
    return store.scalar(f"SELECT count(*) FROM customer_tags t WHERE t.as_of = ? AND {holding()} AND {holding()}",
                        (as_of.isoformat(), first, second))
