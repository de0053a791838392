"""Rule-based customer tags and lifecycle stages, defined in YAML (appliance/tags.yaml, or the home's own).

Conditions are `name op value` over a customer's features and scores; they are parsed, never evaluated as
code. A missing value (no credit score in this source, say) makes a condition false. Tags per customer and
as-of date are stored in `customer_tags` (replaced whole per date) and join erasure. Counts, pairwise overlaps
and the lifecycle flow since the previous run are worked out once when tags are built (`tag_overlaps`,
`lifecycle_flows`), so that reading them costs the same at a million customers as at a thousand.
"""

import operator
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from appliance import yamlfile
from appliance.errors import ConfigError
from appliance.features import FEATURE_NAMES, load as load_features
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
                fail(line, "an id must be printable text (no control characters)")  # reports split on one
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


def customer_frame(store: Store, as_of: date) -> pd.DataFrame:
    """Features as of the date, with the customer's churn score for that date where there is one."""
    frame = load_features(store, as_of)
    if frame.empty:
        return frame
    scores = store.rows("SELECT customer_id, probability, risk_band FROM customer_scores WHERE as_of = ?",
                        (as_of.isoformat(),))
    by_customer = pd.DataFrame.from_records(scores, columns=["customer_id", "probability", "risk_band"])
    by_customer = by_customer.set_index("customer_id")
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


def build(store: Store, as_of: date, rules_path: Path = SHIPPED) -> int:
    """Tag every customer with features as of the date; that date's tags are replaced whole."""
    tags, lifecycle = load_rules(rules_path)
    frame = customer_frame(store, as_of)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with store.transaction():
        for table in ("customer_tags", "tag_overlaps", "lifecycle_flows"):
            store.execute(f"DELETE FROM {table} WHERE as_of = ?", (as_of.isoformat(),))
        if frame.empty:
            return 0
        tagged, stage = assign(frame, tags, lifecycle)
        written = store.executemany("INSERT INTO customer_tags VALUES (?,?,?,?)",
                                    _rows_in_key_order(tagged, stage, as_of.isoformat(), stamp)).rowcount
        _summarise(store, as_of.isoformat(), tagged, stage)
    return written


def _rows_in_key_order(tagged: pd.DataFrame, stage: pd.Series, as_of: str, stamp: str):
    """(customer, date, tag, stamp) rows in the order of the table's key, one at a time: the key's index is
    then written in one sweep, not at a random place for each of ten million rows a night at a million
    customers, and no list of them is held."""
    labelled = stage.notna().to_numpy()
    names = sorted(set(tagged.columns) | {f"lifecycle:{v}" for v in stage[labelled].unique()})
    code = {name: i for i, name in enumerate(names)}
    who, which = np.nonzero(tagged.to_numpy(dtype=bool))
    tag_codes = np.array([code[t] for t in tagged.columns], dtype=np.int64)[which]
    staged = np.flatnonzero(labelled)
    stage_codes = np.array([code[f"lifecycle:{v}"] for v in stage.to_numpy()[staged]], dtype=np.int64)
    who, codes = np.concatenate([who, staged]), np.concatenate([tag_codes, stage_codes])
    order = np.lexsort((codes, who))  # the frame is in customer order already (features load so)
    customers = tagged.index.to_numpy()
    for position in order:
        yield customers[who[position]], as_of, names[codes[position]], stamp


def _summarise(store: Store, as_of: str, tagged: pd.DataFrame, stage: pd.Series) -> None:
    """Every pair of tags' overlap (a tag with itself: its count; stages counted as `lifecycle:<id>`), and how
    many customers moved from each stage at the previous tagging date to each stage now."""
    held = tagged.to_numpy(dtype=np.int64)
    pairs = held.T @ held
    names = list(tagged.columns)
    rows = [(as_of, names[i], names[j], int(pairs[i, j])) for i in range(len(names)) for j in range(i, len(names))
            if pairs[i, j]]
    rows += [(as_of, f"lifecycle:{name}", f"lifecycle:{name}", int(n)) for name, n in stage.value_counts().items()]
    store.executemany("INSERT INTO tag_overlaps VALUES (?,?,?,?)", rows)
    # The latest earlier day with stages, found a day at a time newest first: max(as_of) under the tag
    # condition read every earlier day's index entries (6 s with seven days kept at a million customers,
    # growing with each night).
    previous = store.scalar(f"WITH RECURSIVE {each_day('customer_tags')} SELECT d FROM days WHERE d < ? AND "
                            "EXISTS (SELECT 1 FROM customer_tags WHERE as_of = d AND tag >= 'lifecycle:' "
                            "AND tag < 'lifecycle;') LIMIT 1", (as_of,))
    before = pd.Series(dtype=object)
    if previous:
        before = pd.Series(dict(store.query(
            "SELECT customer_id, substr(tag, 11) FROM customer_tags WHERE as_of = ? AND tag >= 'lifecycle:' "
            "AND tag < 'lifecycle;'", (previous,))), dtype=object)
    moves = pd.DataFrame({"from": before.reindex(stage.index.union(before.index)).fillna("none"),
                          "to": stage.reindex(stage.index.union(before.index)).fillna("none")})
    flows = moves.groupby(["from", "to"]).size()
    store.executemany("INSERT INTO lifecycle_flows VALUES (?,?,?,?,?)",
                      [(as_of, previous, a, b, int(n)) for (a, b), n in flows.items()])


def counts(store: Store, as_of: date) -> dict[str, int]:
    return {r[0]: r[1] for r in store.query("SELECT tag, count(*) FROM customer_tags WHERE as_of = ? GROUP BY tag "
                                            "ORDER BY count(*) DESC", (as_of.isoformat(),))}


def overlap(store: Store, as_of: date, first: str, second: str) -> int:
    return store.scalar("SELECT count(*) FROM customer_tags a JOIN customer_tags b ON a.customer_id = b.customer_id "
                        "AND a.as_of = b.as_of WHERE a.as_of = ? AND a.tag = ? AND b.tag = ?",
                        (as_of.isoformat(), first, second))
