"""Models at run time: ONNX files with JSON model cards, checked by hash, scored with onnxruntime.

A model's card names its features in order, the training data's fingerprint and window, holdout metrics,
library versions and the sha256 of the .onnx file; a file that does not match its card is refused. Churn
scores come with the three features that raise that customer's risk most, found by perturbation: each
feature in turn is set to its typical (training median) value and the drop in probability is that feature's
contribution for this customer. They move when the feature moves, and need nothing but the model.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from appliance.errors import ApplianceError

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
    "credit_score": ("信用评分", "credit score"),
    "income": ("收入", "income"),
    "crm_balance": ("资产余额", "balance held"),
    "crm_products": ("持有产品数（CRM）", "products held (CRM)"),
    "crm_active": ("是否活跃客户", "active member"),
}


class ModelError(ApplianceError):
    code = "model"
    exit_code = 7


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class Reason:
    feature: str
    value: float
    typical: float
    contribution: float

    def text(self, language: str) -> str:
        zh, en = REASON_LABELS.get(self.feature, (self.feature, self.feature))
        higher = self.value > self.typical
        value, typical = _readable(self.value), _readable(self.typical)
        if language == "zh":
            return f"{zh}{'高于' if higher else '低于'}常见水平（{value}，常见 {typical}）"
        return f"{en} {'above' if higher else 'below'} typical ({value} vs {typical})"


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
            self.session = onnxruntime.InferenceSession(onnx_path.read_bytes(), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - onnxruntime raises its own untyped errors for a corrupt file
            raise ModelError(f"{onnx_path.name}: onnxruntime cannot load it") from None
        self.card_path = card_path
        self.features: list[str] = self.card["features"]
        self.typical = np.array([self.card["typical"][f] for f in self.features], dtype=np.float32)
        self._input = self.session.get_inputs()[0].name

    def record_drift(self, entry: dict) -> None:
        """Append a scoring run's drift summary to the card (the .onnx file and its hash are untouched)."""
        self.card.setdefault("drift", []).append(entry)
        temporary = self.card_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.card, indent=2, ensure_ascii=False), encoding="utf-8")
        temporary.replace(self.card_path)

    def matrix(self, frame) -> np.ndarray:
        return frame[self.features].to_numpy(dtype=np.float32, na_value=np.nan)

    def labels(self, x: np.ndarray, batch: int = 50_000) -> np.ndarray:
        """Class or cluster labels (the first output), for segment models."""
        parts = [self.session.run(None, {self._input: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
        return np.concatenate(parts).astype(int) if parts else np.zeros(0, dtype=int)

    def probabilities(self, x: np.ndarray, batch: int = 50_000) -> np.ndarray:
        parts = [self.session.run(None, {self._input: x[i:i + batch]})[1][:, 1] for i in range(0, len(x), batch)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def reasons(self, x: np.ndarray, top: int = 3) -> list[list[Reason]]:
        """Per row: the features whose typical value would lower the risk most, largest first."""
        base = self.probabilities(x)
        n, width = x.shape
        probe = np.repeat(x, width, axis=0)
        columns = np.tile(np.arange(width), n)
        probe[np.arange(n * width), columns] = self.typical[columns]
        contributions = (base.repeat(width) - self.probabilities(probe)).reshape(n, width)
        found = []
        for row in range(n):
            order = np.argsort(-contributions[row])[:top]
            found.append([Reason(self.features[j], float(x[row, j]), float(self.typical[j]),
                                 float(contributions[row, j])) for j in order if contributions[row, j] > 0])
        return found


def band(probability: float, cut_offs: tuple[float, float]) -> str:
    low, high = cut_offs
    return "high" if probability >= high else ("medium" if probability >= low else "low")
