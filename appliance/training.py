"""Training on the box: scikit-learn models fitted to the bank's own features, converted to ONNX with a card.

Needs the `train` extra (scikit-learn, skl2onnx, onnx); scoring needs only onnxruntime. Churn uses
GradientBoostingClassifier behind a median imputer: skl2onnx 1.20 fails to convert HistGradientBoosting
with onnx 1.23 ("Expected an int, got a boolean"), while GradientBoosting converts cleanly and scores the same
within 1e-5 under onnxruntime (tested).
"""

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from appliance.errors import ApplianceError
from appliance.features import FEATURE_NAMES, NONE_DAYS


class TrainingError(ApplianceError):
    code = "training"


def _pipeline(seed: int = 0):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                     ("gbm", GradientBoostingClassifier(n_estimators=200, max_depth=3, learning_rate=0.05,
                                                        subsample=0.8, random_state=seed))])


def to_onnx(pipeline, width: int) -> bytes:
    from skl2onnx import to_onnx as convert

    model = convert(pipeline, np.zeros((1, width), dtype=np.float32),
                    options={id(pipeline.steps[-1][1]): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    return model.SerializeToString()


def onnx_probabilities(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[1][:, 1]


def _typical(frame: pd.DataFrame, names: list[str]) -> dict[str, float]:
    """Training medians: the reference point for reasons."""
    return {n: float(np.nanmedian(frame[n])) if frame[n].notna().any() else 0.0 for n in names}


def _write_model(kind: str, onnx_bytes: bytes, card: dict, out_dir: Path) -> Path:
    """Write `<kind>-<time>.onnx` and its card (with the file's sha256 and every library's version)."""
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn

    stamp = datetime.now(timezone.utc)
    onnx_name = f"{kind}-{stamp:%Y%m%dT%H%M%S%f}.onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / onnx_name).write_bytes(onnx_bytes)
    card = {"kind": kind, "onnx_file": onnx_name, "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
            "created_at": stamp.isoformat(timespec="seconds"), **card,
            "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                         "skl2onnx": skl2onnx.__version__, "onnx": onnx.__version__,
                         "onnxruntime": onnxruntime.__version__}}
    card_path = out_dir / onnx_name.replace(".onnx", ".json")
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")
    return card_path


def usable_features(frame: pd.DataFrame) -> list[str]:
    """Features that carry information in this training data (not all empty, not constant)."""
    return [f for f in FEATURE_NAMES if frame[f].notna().any() and frame[f].nunique(dropna=True) > 1]


def metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    bins = np.linspace(0, 1, 11)
    table = []
    for low, high in zip(bins[:-1], bins[1:]):
        inside = (probabilities >= low) & ((probabilities < high) if high < 1 else (probabilities <= high))
        if inside.any():
            table.append({"from": round(low, 2), "to": round(high, 2), "count": int(inside.sum()),
                          "mean_predicted": float(probabilities[inside].mean()),
                          "observed_rate": float(labels[inside].mean())})
    return {"roc_auc": float(roc_auc_score(labels, probabilities)),
            "pr_auc": float(average_precision_score(labels, probabilities)),
            "brier": float(brier_score_loss(labels, probabilities)), "calibration": table,
            "holdout_rows": int(len(labels)), "holdout_positives": int(labels.sum())}


def cross_validated_auc(x: np.ndarray, y: np.ndarray, folds: int) -> list[float]:
    """ROC-AUC of the ONNX model on each held-out fold (fit, convert, score with onnxruntime)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    scores = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        pipeline = _pipeline().fit(x[train], y[train])
        scores.append(float(roc_auc_score(y[test], onnx_probabilities(to_onnx(pipeline, x.shape[1]), x[test]))))
    return scores


def train_churn(train: pd.DataFrame, holdout: pd.DataFrame, *, holdout_kind: str, window: dict, folds: int | None,
                out_dir: Path, source: str | None) -> Path:
    """Fit on `train`, measure on `holdout`, write the .onnx and its card; returns the card's path."""
    train, holdout = train[train["churn_label"].notna()], holdout[holdout["churn_label"].notna()]
    if len(train) < 50 or train["churn_label"].nunique() < 2:
        raise TrainingError("too few labelled customers to train on (need at least 50, both churned and not)")
    names = usable_features(train)
    x, y = train[names].to_numpy(dtype=np.float32, na_value=np.nan), train["churn_label"].to_numpy(dtype=int)
    pipeline = _pipeline().fit(x, y)
    onnx_bytes = to_onnx(pipeline, len(names))
    from appliance.drift import reference

    train_scores = onnx_probabilities(onnx_bytes, x)
    references = {n: reference(x[:, i].astype(float)) for i, n in enumerate(names)}
    references["churn_probability"] = reference(train_scores.astype(float))
    hx = holdout[names].to_numpy(dtype=np.float32, na_value=np.nan)
    measured = metrics(holdout["churn_label"].to_numpy(dtype=int), onnx_probabilities(onnx_bytes, hx))
    measured["holdout"] = holdout_kind
    if folds:
        fold_scores = cross_validated_auc(x, y, folds)
        measured["cv_roc_auc"] = float(np.mean(fold_scores))
        measured["cv_fold_roc_auc"] = fold_scores
    return _write_model("churn", onnx_bytes, {
        "features": names, "typical": _typical(train, names),
        "training": {"source": source, "rows": int(len(train)), "positives": int(y.sum()), **window,
                     "data_sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes() + y.tobytes()).hexdigest()},
        "model": "SimpleImputer(median) + GradientBoostingClassifier(200 trees, depth 3, rate 0.05, subsample 0.8)",
        "metrics": measured, "reference": references, "drift": [],
    }, out_dir)


def churn_for_home(home, source: str | None, folds: int | None) -> Path:
    """Pick the training and holdout windows, build their features, train; returns the card's path.

    With behaviour labels the holdout is later in time than the training window (a time-based holdout: the
    model is judged on customers as of a date after the one it learned from). A source that maps its own
    label and has no dates (the churn set) gets a stratified random 20% holdout instead, and the card says so.
    """
    from datetime import date, timedelta

    from appliance import features
    from appliance.jobs import build_features

    settings = home.settings
    where, params = ("WHERE source = ?", (source,)) if source else ("", ())
    chosen = {r[0] for r in home.store.query(f"SELECT customer_id FROM customers {where}", params)}
    if not chosen:
        raise TrainingError(f"no customers{' from source ' + repr(source) if source else ''} to train on")
    mapped = home.store.scalar(f"SELECT count(churn_label) FROM customers {where}", params)
    latest = home.store.scalar("SELECT max(booked_at) FROM transactions")
    if mapped:
        as_of = date.today()
        build_features(home, as_of)
        frame = features.load(home.store, as_of)
        frame = frame[frame.index.isin(chosen)]
        from sklearn.model_selection import train_test_split

        labelled = frame[frame["churn_label"].notna()]
        train, holdout = train_test_split(labelled, test_size=0.2, random_state=0, stratify=labelled["churn_label"])
        window = {"as_of": as_of.isoformat(), "label": "mapped by the source"}
        kind = "random stratified 20% (the source has a label but no dates)"
    else:
        if latest is None:
            raise TrainingError("no transactions to learn churn from, and the source maps no churn label")
        holdout_as_of = date.fromisoformat(latest[:10]) - timedelta(days=settings["features.inactivity_days"])
        train_as_of = holdout_as_of - timedelta(days=settings["features.churn_horizon_days"])
        for day in (train_as_of, holdout_as_of):
            build_features(home, day)
        train = features.load(home.store, train_as_of)
        holdout = features.load(home.store, holdout_as_of)
        train, holdout = train[train.index.isin(chosen)], holdout[holdout.index.isin(chosen)]
        window = {"as_of": train_as_of.isoformat(), "holdout_as_of": holdout_as_of.isoformat(),
                  "label": "behaviour after the as-of date"}
        kind = f"time-based: customers as of {holdout_as_of}, after the training date {train_as_of}"
    return train_churn(train, holdout, holdout_kind=kind, window=window, folds=folds, out_dir=home.path / "models",
                       source=source)


SEGMENT_FEATURES = ("recency_days", "tx_count_365", "debit_365", "balance_now", "products_held", "digital_share",
                    "tenure_days", "age", "crm_balance", "crm_products", "crm_active")


_TRAITS = (  # feature, (higher than most: zh, en), (lower than most: zh, en)
    ("digital_share", ("数字化", "digital"), ("依赖网点", "branch-reliant")),
    ("products_held", ("多产品", "multi-product"), ("单一产品", "single-product")),
    ("tenure_days", ("老客户", "long-standing"), ("新客户", "new")),
    ("age", ("银发", "senior"), ("年轻", "young")),
    ("tx_count_365", ("高频", "frequent"), ("低频", "infrequent")),
)


def _distinctive_trait(frame: pd.DataFrame, inside: np.ndarray) -> tuple[str, str]:
    """The trait on which this segment's median stands furthest from everyone's (in spreads)."""
    best, chosen = -1.0, ("其他", "other")
    for feature, higher, lower in _TRAITS:
        column = frame[feature]
        if column.notna().sum() < 2:
            continue
        spread = float(column.quantile(0.75) - column.quantile(0.25)) or float(column.std() or 1.0)
        shift = (float(column[inside].median()) - float(column.median())) / spread
        if abs(shift) > best:
            best, chosen = abs(shift), (higher if shift > 0 else lower)
    return chosen


def segment_profiles(frame: pd.DataFrame, labels: np.ndarray, churn: pd.Series | None = None) -> list[dict]:
    """Per segment: size, RFM means, typical products, churn rate and a readable name in Chinese and English.
    The name compares the segment with everyone: value from balances, activity from recency and frequency."""
    balance = frame["balance_now"].where(frame["balance_now"].fillna(0) > 0, frame["crm_balance"]).fillna(0)
    products = frame["products_held"].where(frame["products_held"].fillna(0) > 0, frame["crm_products"]).fillna(0)
    overall_balance = max(float(balance.median()), 1.0)
    overall_frequency = float(frame["tx_count_365"].median())
    churn = churn if churn is not None else frame["churn_label"]
    overall_churn = float(churn.mean()) if churn.notna().any() else None
    profiles, used = [], set()
    for segment in sorted(set(int(v) for v in labels)):
        inside = labels == segment
        ratio = float(balance[inside].median()) / overall_balance
        value = ("高价值", "high-value") if ratio >= 1.5 else (("低价值", "low-value") if ratio <= 0.5 else
                                                              ("中等价值", "mid-value"))
        recency = float(frame["recency_days"][inside].median())
        frequency = float(frame["tx_count_365"][inside].median())
        active = frame["crm_active"][inside].mean() if frame["crm_active"].notna().any() else None
        if recency >= NONE_DAYS and active is not None:  # no transactions in this source: the CRM's flag says
            activity = ("活跃", "active") if active >= 0.7 else (("沉睡", "dormant") if active < 0.3 else
                                                                 ("一般活跃", "occasional"))
        elif recency > 90:
            activity = ("沉睡", "dormant")
        elif recency <= 30 and frequency >= overall_frequency:
            activity = ("活跃", "active")
        else:
            activity = ("一般活跃", "occasional")
        rate = float(churn[inside].mean()) if churn[inside].notna().any() else None
        name_zh, name_en = value[0] + activity[0], f"{value[1]} {activity[1]}"
        if rate is not None and overall_churn and rate >= 2 * overall_churn:
            name_zh, name_en = name_zh + "·流失风险", name_en + ", at risk"
        if name_zh in used:  # say how this one differs instead of numbering it
            trait = _distinctive_trait(frame, inside)
            name_zh, name_en = f"{name_zh}·{trait[0]}", f"{name_en}, {trait[1]}"
        suffix = 2
        while name_zh in used:
            name_zh, name_en = f"{name_zh}{suffix}", f"{name_en} {suffix}"
            suffix += 1
        used.add(name_zh)
        profiles.append({"segment": segment, "name_zh": name_zh, "name_en": name_en, "size": int(inside.sum()),
                         "recency_days": recency, "frequency_365": float(frame["tx_count_365"][inside].mean()),
                         "monetary_365": float(frame["debit_365"][inside].mean()),
                         "balance_median": float(balance[inside].median()),
                         "products_mean": float(products[inside].mean()), "churn_rate": rate})
    return profiles


def train_segments(frame: pd.DataFrame, *, k: int, window: dict, out_dir: Path, source: str | None) -> Path:
    from skl2onnx import to_onnx as convert
    from sklearn.cluster import KMeans
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import RobustScaler

    names = [f for f in SEGMENT_FEATURES if f in usable_features(frame)]
    if len(frame) < 10 * k or len(names) < 2:
        raise TrainingError(f"too few customers or features to form {k} segments")
    x = frame[names].to_numpy(dtype=np.float32, na_value=np.nan)
    pipeline = Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                         ("scale", RobustScaler()), ("kmeans", KMeans(n_clusters=k, n_init=10, random_state=0))])
    labels = pipeline.fit_predict(x)
    onnx_bytes = convert(pipeline, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}).SerializeToString()
    return _write_model("segments", onnx_bytes, {
        "features": names, "k": k, "typical": _typical(frame, names),
        "training": {"source": source, "rows": int(len(frame)), **window,
                     "data_sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()},
        "model": f"SimpleImputer(median) + RobustScaler + KMeans(k={k}, n_init=10)",
        "profiles": segment_profiles(frame, labels), "metrics": {"inertia": float(pipeline.steps[-1][1].inertia_)},
    }, out_dir)


def segments_for_home(home, source: str | None, k: int) -> Path:
    from datetime import date, timedelta

    from appliance import features
    from appliance.jobs import build_features

    latest = home.store.scalar("SELECT max(booked_at) FROM transactions")
    as_of = date.fromisoformat(latest[:10]) + timedelta(days=1) if latest else date.today()
    build_features(home, as_of)
    frame = features.load(home.store, as_of)
    if source:
        chosen = {r[0] for r in home.store.query("SELECT customer_id FROM customers WHERE source = ?", (source,))}
        frame = frame[frame.index.isin(chosen)]
    return train_segments(frame, k=k, window={"as_of": as_of.isoformat()}, out_dir=home.path / "models",
                          source=source)
