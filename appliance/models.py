"""Models at run time: ONNX files with JSON model cards, checked by hash, scored with onnxruntime.

A model's card names its features in order, the training data's fingerprint and window, holdout metrics,
library versions and the sha256 of the .onnx file; a file that does not match its card is refused. Churn
scores come with the three features that raise that customer's risk most, found by perturbation: each
feature in turn is set to its typical (training median) value and the drop in probability is that feature's
contribution for this customer. They move when the feature moves, and need nothing but the model.
"""

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd

from appliance.errors import ApplianceError
from appliance.features import NONE_DAYS

REASON_LABELS = {  # feature -> (中文, English)
    "recency_days": ("距上次交易天数", "days since the last transaction"),
    "tx_count_90": ("近90天交易笔数", "transactions in the last 90 days"),
    "tx_count_365": ("近一年交易笔数", "transactions in the last year"),
    "debit_90": ("近90天支出", "spending in the last 90 days"),
    "debit_365": ("近一年支出", "spending in the last year"),
    "credit_90": ("近90天入账", "money in over the last 90 days"),
    "credit_365": ("近一年入账", "money in over the last year"),
    "balance_now": ("当前余额", "current balance"),
    "balance_trend_3m": ("近3个月余额变化", "balance change over 3 months"),
    "balance_trend_6m": ("近6个月余额变化", "balance change over 6 months"),
    "balance_trend_12m": ("近12个月余额变化", "balance change over 12 months"),
    "activity_decay": ("近期活跃度变化", "recent activity against the year's pace"),
    "salary_months_12": ("近一年代发工资月数", "months with a salary inflow"),
    "digital_share": ("手机银行/网银交易占比", "share of app and web transactions"),
    "branch_share": ("网点/ATM交易占比", "share of branch and ATM transactions"),
    "events_90": ("近90天APP访问次数", "app and web visits in 90 days"),
    "days_since_event": ("距上次APP访问天数", "days since the last app or web visit"),
    "products_held": ("持有产品数", "products held"),
    "accounts_open": ("有效账户数", "open accounts"),
    "has_credit_card": ("是否持有信用卡", "holds a credit card"),
    "complaints_365": ("近一年投诉次数", "complaints in the last year"),
    "days_since_complaint": ("距上次投诉天数", "days since the last complaint"),
    "tenure_days": ("在行时长（天）", "days as a customer"),
    "age": ("年龄", "age"),
    "is_female": ("性别", "gender"),
    "region_code": ("所在地区", "region"),
    "customers.region": ("所在地区", "region"),
    "credit_score": ("信用评分", "credit score"),
    "income": ("收入", "income"),
    "crm_balance": ("资产余额", "balance held"),
    "crm_products": ("持有产品数（CRM）", "products held (CRM)"),
    "crm_active": ("是否活跃客户", "active member"),
}


def design(frame, names: list[str], encodings: dict, transforms: dict | None = None) -> np.ndarray:
    """The model's input matrix: numbers as they are, categories through the card's encoding (version 1:
    the code a category had in training; a category the model never saw is missing, which the model's
    imputer fills)."""
    columns = []
    for name in names:
        values = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)
        if name in encodings:
            codes = encodings[name]["codes"]
            columns.append(values.map(lambda v: codes.get(str(v), np.nan) if v is not None and v == v else np.nan)
                           .astype("float64").to_numpy())
        else:
            numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
            if (transforms or {}).get(name) == "signed_log1p":
                numbers = np.sign(numbers) * np.log1p(np.abs(numbers))
            columns.append(numbers)
    if not columns:
        return np.zeros((len(frame), 0), dtype=np.float32)
    return np.column_stack(columns).astype(np.float32)


class ModelError(ApplianceError):
    code = "model"
    exit_code = 7


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


_DAYS = {"recency_days", "days_since_event", "days_since_complaint"}
_COUNTS = {"tx_count_90", "tx_count_365", "products_held", "accounts_open", "complaints_365", "events_90",
           "salary_months_12", "crm_products", "credit_score"}
_MONEY = {"debit_90", "debit_365", "credit_90", "credit_365", "balance_now", "crm_balance", "income"}
_SHARES = {"digital_share", "branch_share"}
_CHANGES = {"balance_trend_3m", "balance_trend_6m", "balance_trend_12m"}
_FLAGS = {"has_credit_card": (("否", "no"), ("是", "yes")), "crm_active": (("不活跃", "inactive"), ("活跃", "active")),
          "is_female": (("男", "male"), ("女", "female"))}


def words(feature: str, value: float, *, categories: dict[float, str] | None = None,
          unit: str | None = None) -> tuple[str, str]:
    """A value as a person reads it, in Chinese and English: 女, "3", "94 days", "2.1 years", "12%"."""
    if value != value:  # NaN
        return "未知", "unknown"
    if categories is not None:
        shown = categories.get(float(value), "?")
        return shown, shown
    if feature in _FLAGS:
        return _FLAGS[feature][1 if value >= 0.5 else 0]
    if feature in _DAYS:
        return ("无记录", "none on record") if value >= NONE_DAYS else (f"{value:.0f} 天", f"{value:.0f} days")
    if feature == "tenure_days":
        return f"{value / 365:.1f} 年", f"{value / 365:.1f} years"
    if feature == "age":
        return f"{value:.0f} 岁", f"{value:.0f}"
    if feature in _COUNTS:
        return f"{value:.0f}", f"{value:.0f}"
    if feature in _MONEY:
        return f"{value:,.0f}", f"{value:,.0f}"
    if feature in _SHARES:
        return f"{value:.0%}", f"{value:.0%}"
    if feature in _CHANGES:
        return f"{value:+.0%}", f"{value:+.0%}"
    text = _readable(value) + (f" {unit}" if unit else "")
    return text, text


@dataclass
class Reason:
    feature: str
    value: float
    typical: float
    contribution: float
    label: tuple[str, str]  # what the feature is, in Chinese and English
    shown: tuple[str, str]  # the customer's value, as words
    usual: tuple[str, str]  # the typical value, as words

    def text(self, language: str) -> str:
        if language == "zh":
            return f"{self.label[0]}：{self.shown[0]}（常见：{self.usual[0]}）"
        return f"{self.label[1]}: {self.shown[1]} (typical: {self.usual[1]})"


def _readable(number: float) -> str:
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:.2f}".rstrip("0").rstrip(".")


class Model:
    """An ONNX model and its card, loaded only when the file's hash matches the card."""

    def __init__(self, card_path: Path):
        card_path = Path(card_path)
        try:
            self.card = json.loads(card_path.read_text(encoding="utf-8"))
            onnx_path = card_path.parent / self.card["onnx_file"]
            expected = self.card["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ModelError(f"{card_path.name}: not a readable model card") from None
        if not onnx_path.exists():
            raise ModelError(f"{card_path.name}: its model file {onnx_path.name} is missing")
        if sha256_file(onnx_path) != expected:
            raise ModelError(f"{onnx_path.name} does not match its card's sha256: refusing a changed model")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 2
        try:
            self.onnx_bytes = onnx_path.read_bytes()
            self.session = onnxruntime.InferenceSession(self.onnx_bytes, options, providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - onnxruntime raises its own untyped errors for a corrupt file
            raise ModelError(f"{onnx_path.name}: onnxruntime cannot load it") from None
        self.card_path = card_path
        self.features: list[str] = self.card["features"]
        self.encodings: dict = self.card.get("encodings", {})
        self._info = {i["name"]: i for i in self.card.get("feature_info", [])}
        # Code -> category per encoded feature, for naming a reason's value without rebuilding it per customer.
        self._categories = {name: {float(code): category for category, code in encoding["codes"].items()}
                            for name, encoding in self.encodings.items() if encoding.get("codes")}
        # The sources whose customers it was trained for (cards before scopes: every customer).
        self.scope: list[str] | None = (self.card.get("scope") or {}).get("sources")
        self.typical = np.array([self.card["typical"][f] for f in self.features], dtype=np.float32)
        self._input = self.session.get_inputs()[0].name

    def record_drift(self, entry: dict) -> None:
        """Append a scoring run's drift summary to the card (the .onnx file and its hash are untouched)."""
        self.card.setdefault("drift", []).append(entry)
        temporary = self.card_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.card, indent=2, ensure_ascii=False), encoding="utf-8")
        temporary.replace(self.card_path)

    @property
    def declared(self) -> list:
        """The declared features (the bank's own columns) this model reads, to join onto the built-in ones."""
        from appliance.features import Declared

        return [Declared(i["name"], i["source_column"], i["kind"], i.get("unit"))
                for i in self.card.get("feature_info", []) if i.get("source_column") or i["name"] == "customers.region"]

    def matrix(self, frame) -> np.ndarray:
        return design(frame, self.features, self.encodings, self.card.get("transforms"))

    def labels(self, x: np.ndarray, batch: int = 50_000) -> np.ndarray:
        """Class or cluster labels (the first output), for segment models."""
        parts = [self.session.run(None, {self._input: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
        return np.concatenate(parts).astype(int) if parts else np.zeros(0, dtype=int)

    def probabilities(self, x: np.ndarray, batch: int = 50_000) -> np.ndarray:
        parts = [self.session.run(None, {self._input: x[i:i + batch]})[1][:, 1] for i in range(0, len(x), batch)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def _describe(self, j: int, value: float) -> tuple[tuple[str, str], tuple[str, str]]:
        name = self.features[j]
        info = self._info.get(name, {})
        label = REASON_LABELS.get(name) or (info.get("source_column") or name,) * 2
        if name == "region_code":  # older models kept the region as a number: name the feature, not the number
            return label, ("", "")
        return label, words(name, value, categories=self._categories.get(name), unit=info.get("unit"))

    def _explanation(self, x: np.ndarray, top: int, probabilities: np.ndarray | None,
                     cut_offs: tuple[float, float] | None) -> tuple[np.ndarray, ...]:
        """The rows explained, and for each of them the `top` features whose typical value would lower the
        probability most (largest first, as arrays: feature indices, the row's values, contributions) and how
        many of those count: contributions fall along a row, so those over the row's floor come first."""
        base = self.probabilities(x) if probabilities is None else probabilities
        n, width = x.shape
        explain = np.ones(n, dtype=bool) if cut_offs is None else base >= cut_offs[0]
        rows = np.flatnonzero(explain) if width else np.zeros(0, dtype=np.int64)
        contributions = np.zeros((len(rows), width), dtype=np.float32)
        # A probe only where the typical value would take another branch somewhere in the model: elsewhere it
        # scores exactly as the customer does (a third of all probes at a million customers).
        probed_row, probed_feature = np.nonzero(self._splits.differ(x[rows], self.typical))
        if len(probed_row):
            probe = x[rows[probed_row]]
            probe[np.arange(len(probe)), probed_feature] = self.typical[probed_feature]
            contributions[probed_row, probed_feature] = base[rows[probed_row]] - self.probabilities(probe)
        chosen = np.argsort(-contributions, axis=1, kind="stable")[:, :top]
        largest = np.take_along_axis(contributions, chosen, axis=1)
        values = np.take_along_axis(x[rows], chosen, axis=1)
        floors = np.maximum(0.01, 0.05 * base[rows].astype(np.float64))
        return rows, chosen, values, largest, (largest >= floors[:, None]).sum(axis=1)

    def explained(self, x: np.ndarray, top: int = 3, probabilities: np.ndarray | None = None,
                  cut_offs: tuple[float, float] | None = None) -> list[list[tuple[int, float, float]]]:
        """Per row: (feature index, the row's value, contribution) for the features whose typical value would
        lower the probability most, largest first. Only contributions that matter are given (at least 0.01
        and 5% of the probability), and a customer in the low band gets none: there is nothing to explain."""
        found = [[] for _ in range(len(x))]
        rows, chosen, values, largest, counted = self._explanation(x, top, probabilities, cut_offs)
        for row, features, row_values, contributions, count in zip(
                rows.tolist(), chosen.tolist(), values.tolist(), largest.tolist(), counted.tolist()):
            found[row] = list(zip(features[:count], row_values[:count], contributions[:count]))
        return found

    @functools.cached_property
    def _usual(self) -> list[tuple[str, str]]:
        """Each feature's typical value, in words (the same for every reason that names it)."""
        return [self._describe(j, value)[1] for j, value in enumerate(self.typical.tolist())]

    def _reason(self, j: int, value: float, contribution: float) -> Reason:
        return Reason(self.features[j], value, float(self.typical[j]), contribution, *self._describe(j, value),
                      self._usual[j])

    def reasons(self, x: np.ndarray, top: int = 3, probabilities: np.ndarray | None = None,
                cut_offs: tuple[float, float] | None = None) -> list[list[Reason]]:
        """Per row: what `explained` finds, in words."""
        return [[self._reason(*found) for found in row] for row in self.explained(x, top, probabilities, cut_offs)]

    def reason_texts(self, x: np.ndarray, top: int = 3, probabilities: np.ndarray | None = None,
                     cut_offs: tuple[float, float] | None = None) -> list[tuple[str, str]]:
        """Per row: the reasons as JSON arrays of sentences, in Chinese and in English, as json.dumps writes
        them (what customer_scores stores). Each distinct feature and value is put in words and encoded once,
        and the arrays are joined for all rows with as many reasons at once: a Reason and two json.dumps per
        customer took 5 s at a million, and walking the rows one at a time 3 s."""
        zh, en = np.full(len(x), "[]", dtype=object), np.full(len(x), "[]", dtype=object)
        rows, chosen, values, largest, counted = self._explanation(x, top, probabilities, cut_offs)
        if len(rows):
            # One key per feature and value (the value's 32 bits), for the positions that count.
            keys = (chosen.astype(np.int64) << 32) | values.astype(np.float32).view(np.uint32).astype(np.int64)
            counts = np.arange(chosen.shape[1]) < counted[:, None]
            codes = np.full(keys.shape, -1, dtype=np.int64)
            codes[counts], distinct = pd.factorize(keys[counts])
            sentences_zh, sentences_en = np.empty(len(distinct), dtype=object), np.empty(len(distinct), dtype=object)
            features = (distinct >> 32).tolist()
            values_of = (distinct & 0xFFFFFFFF).astype(np.uint32).view(np.float32).tolist()
            for code, (j, value) in enumerate(zip(features, values_of)):
                reason = self._reason(j, value, 0.0)
                sentences_zh[code] = json.dumps(reason.text("zh"), ensure_ascii=False)
                sentences_en[code] = json.dumps(reason.text("en"))
            for count in range(1, chosen.shape[1] + 1):
                these = counted == count
                if not these.any():
                    continue
                for texts, sentences in ((zh, sentences_zh), (en, sentences_en)):
                    joined = sentences[codes[these, 0]]
                    for position in range(1, count):
                        joined = joined + ", " + sentences[codes[these, position]]
                    texts[rows[these]] = "[" + joined + "]"
        return list(zip(zh.tolist(), en.tolist()))

    @functools.cached_property
    def _splits(self) -> "Splits":
        return Splits.of(self.onnx_bytes, len(self.features))


class Splits:
    """Where a tree-ensemble model branches on each input: two rows that fall between the same thresholds of
    every feature reach the same leaves, so they score alike. Read from the ONNX graph when it is a tree
    ensemble on the raw input (after an imputer, whose fill values stand in for missing ones); any other model
    is treated as branching everywhere."""

    def __init__(self, thresholds: list[np.ndarray] | None, fills: np.ndarray | None):
        self.thresholds, self.fills = thresholds, fills

    @classmethod
    def of(cls, onnx_bytes: bytes, width: int) -> "Splits":
        import onnx
        from onnx import helper

        graph = onnx.load_from_string(onnx_bytes).graph
        produced = {name: node for node in graph.node for name in node.output}
        trees = [n for n in graph.node if n.op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor")]
        if len(trees) != 1:
            return cls(None, None)
        attributes = {a.name: helper.get_attribute_value(a) for a in trees[0].attribute}
        fills, feed = None, trees[0].input[0]
        imputer = produced.get(feed)
        if imputer is not None and imputer.op_type == "Imputer":
            imputing = {a.name: helper.get_attribute_value(a) for a in imputer.attribute}
            replaced = imputing.get("replaced_value_float", 0.0)
            if len(imputing.get("imputed_value_floats", ())) != width or replaced == replaced:
                return cls(None, None)  # not one fill per feature, for missing values only
            fills, feed = np.array(imputing["imputed_value_floats"], dtype=np.float32), imputer.input[0]
        if feed != graph.input[0].name:
            return cls(None, None)  # something else between the input and the trees
        modes = attributes.get("nodes_modes", [])
        if set(modes) - {b"LEAF", b"BRANCH_LEQ", b"BRANCH_LT", b"BRANCH_GTE", b"BRANCH_GT"} or \
                "nodes_values" not in attributes:
            return cls(None, None)
        by_feature = [set() for _ in range(width)]
        for feature, value, mode in zip(attributes["nodes_featureids"], attributes["nodes_values"], modes):
            if mode != b"LEAF":
                by_feature[feature].add(np.float32(value))
        return cls([np.array(sorted(t), dtype=np.float32) for t in by_feature], fills)

    def differ(self, x: np.ndarray, other: np.ndarray) -> np.ndarray:
        """(rows x features) True where a row's value and `other`'s fall on different sides of a threshold
        (for every comparison the trees may make: below, at or above it)."""
        if self.thresholds is None:
            return np.ones(x.shape, dtype=bool)
        if self.fills is not None:
            x = np.where(np.isnan(x), self.fills, x)
            other = np.where(np.isnan(other), self.fills, other)
        differ = np.zeros(x.shape, dtype=bool)
        for j, thresholds in enumerate(self.thresholds):
            if not len(thresholds):
                continue
            for side in ("left", "right"):
                differ[:, j] |= (np.searchsorted(thresholds, x[:, j], side) !=
                                 np.searchsorted(thresholds, other[j], side))
            differ[:, j] |= np.isnan(x[:, j]) != np.isnan(other[j])
        return differ


def band(probability: float, cut_offs: tuple[float, float]) -> str:
    low, high = cut_offs
    return "high" if probability >= high else ("medium" if probability >= low else "low")
