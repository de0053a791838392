"""Training on the box: scikit-learn models fitted to the bank's own features, converted to ONNX with a card.

Needs the `train` extra (scikit-learn, skl2onnx, onnx); scoring needs only onnxruntime. Churn uses
GradientBoostingClassifier behind a median imputer: skl2onnx 1.20 fails to convert HistGradientBoosting
with onnx 1.23 ("Expected an int, got a boolean"), while GradientBoosting converts cleanly and scores the same
within 1e-5 under onnxruntime (tested).
"""

import hashlib
import json
import platform
from datetime import datetime, timedelta, timezone
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


def usable_features(frame: pd.DataFrame, names=FEATURE_NAMES) -> list[str]:
    """Features that carry information in this training data (not all empty, not constant)."""
    return [f for f in names if f in frame and frame[f].notna().any() and frame[f].nunique(dropna=True) > 1]


def reliability(labels: np.ndarray, probabilities: np.ndarray, groups: int = 10) -> list[dict]:
    """Calibration by decile of the predicted probability: mean predicted against the observed rate."""
    order = np.argsort(probabilities, kind="mergesort")
    table = []
    for number, part in enumerate(np.array_split(order, groups), 1):
        if len(part):
            table.append({"decile": number, "count": int(len(part)),
                          "mean_predicted": float(probabilities[part].mean()),
                          "observed_rate": float(labels[part].mean())})
    return table


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
            "reliability_by_decile": reliability(labels, probabilities),
            "base_rate": float(labels.mean()),
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


ENCODING_VERSION = 1


def ordered_codes(values: pd.Series, labels: np.ndarray, smoothing: float = 20.0) -> dict[str, int]:
    """Category -> code, the categories ranked by their label rate in the training data (shrunk towards the
    overall rate by `smoothing` customers, so a rare category does not jump to an end). Trees then split
    categories into low and high rates with one cut. Version 1 of the encoding; stored in the card."""
    frame = pd.DataFrame({"value": values.to_numpy(), "label": labels}).dropna(subset=["value"])
    prior = float(labels.mean())
    stats = frame.groupby("value")["label"].agg(["sum", "count"])
    rate = (stats["sum"] + smoothing * prior) / (stats["count"] + smoothing)
    return {str(category): code for code, category in enumerate(rate.sort_values(kind="mergesort").index)}


class Candidate:
    """One target to learn: who, what they did next, and what the model may read about them."""

    def __init__(self, frame: pd.DataFrame, label: pd.Series, declared: list, declared_values: pd.DataFrame | None):
        keep = label.notna()
        self.frame = frame[keep]
        self.label = label[keep].astype(int)
        self.declared = [d for d in declared if declared_values is not None and d.name in declared_values]
        if self.declared:
            self.frame = self.frame.join(declared_values[[d.name for d in self.declared]], how="left")


def _in_value_order(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows in an order of their own values, not of customer tokens (which differ with each home's key): the
    same data trains the same model, and measures it the same, in every home."""
    order = np.lexsort(np.vstack([np.nan_to_num(x, nan=-np.inf).T[::-1], y[None, :]]))
    return x[order], y[order]


def train_binary(kind: str, target: dict, train: Candidate, holdout: Candidate, *, holdout_kind: str, window: dict,
                 folds: int, out_dir: Path, scope: list[str], min_auc: float, force: bool = False) -> Path:
    """Fit, measure (holdout and K-fold CV of the ONNX model), refuse a model no better than chance (under
    `min_auc`, unless forced), write the .onnx and its card; returns the card's path."""
    if len(train.frame) < 50 or train.label.nunique() < 2:
        raise TrainingError("too few labelled customers to train on (need at least 50, both outcomes)")
    builtin = [f for f in usable_features(train.frame) if not (f == "region_code" and any(
        d.name == "customers.region" for d in train.declared))]
    declared = [d for d in train.declared if d.name in usable_features(train.frame, [d.name for d in train.declared])]
    names = builtin + [d.name for d in declared]
    y = train.label.to_numpy(dtype=int)
    encodings = {d.name: {"version": ENCODING_VERSION, "kind": "ordered_by_label_rate",
                          "codes": ordered_codes(train.frame[d.name], y)}
                 for d in declared if d.kind == "categorical"}
    from appliance.models import design

    x, y = _in_value_order(design(train.frame, names, encodings), y)
    fold_scores = cross_validated_auc(x, y, folds)
    cv_auc = float(np.mean(fold_scores))
    if cv_auc < min_auc and not force:
        raise TrainingError(f"the model reached {folds}-fold CV ROC-AUC {cv_auc:.3f}, under the floor {min_auc:g} "
                            f"(setting models.min_auc): no better than chance, not installed. It read {len(names)} "
                            f"features: {', '.join(names)}. Declare the bank's own columns as features in the "
                            "mapping, or pass --force to install it anyway")
    pipeline = _pipeline().fit(x, y)
    onnx_bytes = to_onnx(pipeline, len(names))
    from appliance.drift import reference

    train_scores = onnx_probabilities(onnx_bytes, x)
    references = {n: reference(x[:, i].astype(float)) for i, n in enumerate(names)}
    references["probability"] = reference(train_scores.astype(float))
    hx, hy = _in_value_order(design(holdout.frame.reindex(columns=train.frame.columns), names, encodings),
                             holdout.label.to_numpy(dtype=int))
    measured = metrics(hy, onnx_probabilities(onnx_bytes, hx))
    measured.update({"holdout": holdout_kind, "cv_roc_auc": cv_auc, "cv_fold_roc_auc": fold_scores,
                     "cv_folds": folds, "min_auc": min_auc, "forced": bool(force and cv_auc < min_auc)})
    # Permutation importance on the holdout (the ROC-AUC lost when a feature is shuffled): unlike the trees'
    # impurity importance, it does not favour continuous noise over a category that carries the signal.
    from sklearn.inspection import permutation_importance

    importance = np.clip(permutation_importance(pipeline, hx, hy, scoring="roc_auc", n_repeats=5,
                                                random_state=0).importances_mean, 0, None)
    by_name = {d.name: d for d in declared}
    info = [{"name": n, "source_column": by_name[n].column if n in by_name else None,
             "kind": by_name[n].kind if n in by_name else "built-in", "unit": by_name[n].unit if n in by_name else None,
             "importance": round(float(importance[i]), 6)} for i, n in enumerate(names)]
    typical = {}
    for i, n in enumerate(names):
        column = x[:, i][~np.isnan(x[:, i])]
        if n in encodings:  # the most common category's code
            values, counts = np.unique(column, return_counts=True)
            typical[n] = float(values[np.argmax(counts)]) if len(values) else 0.0
        else:
            typical[n] = float(np.median(column)) if len(column) else 0.0
    return _write_model(kind, onnx_bytes, {
        "target": target, "scope": {"sources": scope}, "features": names, "feature_info": info,
        "encodings": encodings, "typical": typical,
        "training": {"sources": scope, "rows": int(len(y)), "positives": int(y.sum()), **window,
                     "data_sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes() + y.tobytes()).hexdigest()},
        "model": "SimpleImputer(median) + GradientBoostingClassifier(200 trees, depth 3, rate 0.05, subsample 0.8)",
        "metrics": measured, "reference": references, "drift": [],
    }, out_dir)


def _scope(home, source: str | None) -> tuple[set[str], list[str]]:
    """The customers to learn from and the sources they come from."""
    where, params = ("WHERE source = ?", (source,)) if source else ("", ())
    rows = home.store.query(f"SELECT customer_id, source FROM customers {where}", params)
    if not rows:
        raise TrainingError(f"no customers{' from source ' + repr(source) if source else ''} to train on")
    return {r[0] for r in rows}, sorted({r[1] for r in rows})


def _declared_for(home, sources: list[str]):
    """The features the sources' mappings declare, and the region (a category wherever it is known)."""
    from appliance.features import REGION, declared_features

    found = {REGION.name: REGION}
    for name in sources:
        try:
            mapping = home.mapping(name)
        except ApplianceError:
            continue  # a source whose mapping is gone: its built-in features still serve
        found.update({d.name: d for d in declared_features(mapping)})
    return list(found.values())


def _frames(home, scope: tuple[set[str], list[str]], label_of, mapped_label: bool = False, as_of=None):
    """Training and holdout candidates for the customers in `scope` (from `_scope`): a time-based split where
    labels come from behaviour after a date, a stratified random 20% where the source has no dates.
    `label_of(frame, as_of)` gives each customer's outcome (NaN where not knowable)."""
    from datetime import date, timedelta

    from appliance import features
    from appliance.jobs import build_features

    chosen, sources = scope
    declared = _declared_for(home, sources)
    settings = home.settings
    latest = home.store.scalar("SELECT max(booked_at) FROM transactions")
    if mapped_label or latest is None or not source_has_activity(home, chosen):
        as_of = date.today()
        build_features(home, as_of)
        frame = features.load(home.store, as_of)
        frame = frame[frame.index.isin(chosen)]
        values = features.declared_frame(home.store, frame.index.tolist(), declared)
        label = label_of(frame, as_of)
        from sklearn.model_selection import train_test_split

        # Split in an order of the rows' own values (customer tokens differ with each home's key), so the
        # same data gives the same split, and the same model, in every home.
        combined = frame[[c for c in frame.columns if c in FEATURE_NAMES]].join(values, how="left")
        combined["label"] = label
        content = pd.Series(["|".join(map(str, row)) for row in combined.itertuples(index=False)], index=combined.index)
        stable = content.sort_values(kind="mergesort").index
        known = label.reindex(stable).dropna()
        train_ids, holdout_ids = train_test_split(known.index, test_size=0.2, random_state=0, stratify=known)
        return (Candidate(frame.loc[train_ids], label.loc[train_ids], declared, values),
                Candidate(frame.loc[holdout_ids], label.loc[holdout_ids], declared, values),
                {"as_of": as_of.isoformat()}, "random stratified 20% (the source has no activity dates)")
    if as_of is not None:  # learn at this point of the year, as a bank that knows its seasons would
        train_as_of = as_of
        holdout_as_of = as_of + timedelta(days=settings["features.churn_horizon_days"])
        if (holdout_as_of + timedelta(days=settings["features.inactivity_days"])).isoformat() > latest:
            raise TrainingError(f"the data ends {latest[:10]}: too early to see what followed a holdout "
                                f"as of {holdout_as_of}; train as of an earlier date")
    else:
        holdout_as_of = date.fromisoformat(latest[:10]) - timedelta(days=settings["features.inactivity_days"])
        train_as_of = holdout_as_of - timedelta(days=settings["features.churn_horizon_days"])
    candidates = []
    for day in (train_as_of, holdout_as_of):
        build_features(home, day)
        frame = features.load(home.store, day)
        frame = frame[frame.index.isin(chosen)]
        values = features.declared_frame(home.store, frame.index.tolist(), declared)
        candidates.append(Candidate(frame, label_of(frame, day), declared, values))
    return (candidates[0], candidates[1], {"as_of": train_as_of.isoformat(), "holdout_as_of": holdout_as_of.isoformat()},
            f"time-based: customers as of {holdout_as_of}, after the training date {train_as_of}")


def source_has_activity(home, chosen: set[str]) -> bool:
    """Whether these customers have dated activity to learn behaviour from (a CRM snapshot has none)."""
    sample = list(chosen)[:500]
    marks = ",".join("?" * len(sample))
    return bool(home.store.scalar(f"SELECT count(*) FROM transactions WHERE customer_id IN ({marks})", sample) or
                home.store.scalar(f"SELECT count(*) FROM accounts a JOIN transactions t ON t.account_id = a.account_id "
                                  f"WHERE a.customer_id IN ({marks})", sample))


def churn_for_home(home, source: str | None, folds: int | None, force: bool = False, as_of=None) -> Path:
    """Churn: the label mapped by the source, else behaviour after the as-of date (closing out, or going
    quiet). Trained on the built-in features and the features the source's mapping declares."""
    chosen, sources = _scope(home, source)
    marks = ",".join("?" * min(len(chosen), 500))
    mapped = bool(home.store.scalar(f"SELECT count(churn_label) FROM customers WHERE customer_id IN ({marks})",
                                    list(chosen)[:500]))
    train, holdout, window, kind = _frames(home, (chosen, sources), lambda frame, day: frame["churn_label"], mapped,
                                           as_of)
    window["label"] = "churn: mapped by the source, else behaviour after the as-of date"
    return train_binary("churn", {"kind": "churn", "name": "churn"}, train, holdout, holdout_kind=kind,
                        window=window, folds=folds or 5, out_dir=home.path / "models", scope=sources,
                        min_auc=home.settings["models.min_auc"], force=force)


def propensity_for_home(home, target: str, source: str | None, folds: int | None, force: bool = False) -> Path:
    """A propensity model for any binary target: a label the source's mapping declares (`label: true`), a
    campaign's responses (`campaign:<id>`), or holding a product (`product:<category>`, next-best-product)."""
    from appliance import features

    kind, _, name = target.partition(":")
    scope = None  # the customers to learn from, read once: here for a declared label, else just before training
    if kind == "campaign":
        responded = {r[0]: float(r[1]) for r in home.store.query(
            "SELECT customer_id, max(responded_at IS NOT NULL) FROM campaign_responses WHERE campaign_id = ? "
            "GROUP BY customer_id", (name,))}
        if not responded:
            raise TrainingError(f"campaign '{name}' has no recorded responses to learn from")

        def label_of(frame, day):
            return frame.index.to_series().map(responded)
    elif kind == "product":
        def label_of(frame, day):
            held = {r[0] for r in home.store.query(
                "SELECT DISTINCT customer_id FROM product_holdings WHERE category = ? AND (opened_on IS NULL OR "
                "opened_on < ?)", (name, (day + timedelta(days=home.settings["features.churn_horizon_days"])).isoformat()))}
            if not held:
                raise TrainingError(f"no customer holds product '{name}'")
            return frame.index.to_series().map(lambda c: 1.0 if c in held else 0.0)
    else:
        name = target
        scope = _scope(home, source)
        known = {}
        for source_name in scope[1]:
            try:
                known.update(home.mapping(source_name).declared_labels())
            except ApplianceError:
                continue
        if name not in known:
            raise TrainingError(f"'{name}' is not a label the mapping declares (label: true on a column); "
                                f"declared: {', '.join(sorted(known)) or 'none'}; or use campaign:<id> or product:<category>")
        column = known[name]
        attribute = column.customer_target.attribute
        spec = features.Declared(f"attributes.{attribute}" if attribute else f"customers.{column.customer_target.field}",
                                 column.name, "numeric")

        def label_of(frame, day):
            values = features.declared_frame(home.store, frame.index.tolist(), [spec])[spec.name]
            return values.where(values.isin([0.0, 1.0]))
    scope = scope or _scope(home, source)
    train, holdout, window, holdout_kind = _frames(home, scope, label_of,
                                                   mapped_label=kind not in ("campaign", "product"))
    window["label"] = f"{target}"
    return train_binary("propensity", {"kind": "propensity", "name": target}, train, holdout, holdout_kind=holdout_kind,
                        window=window, folds=folds or 5, out_dir=home.path / "models", scope=scope[1],
                        min_auc=home.settings["models.min_auc"], force=force)


# Value, activity, channel and life stage: few features, each with structure, so that segments hold under
# resampling. Measured on the demo data, adding tenure (spread evenly over 12 years) or recency and spending
# (which track frequency) dropped the bootstrap stability from 0.90 to 0.80 at 4 segments.
SEGMENT_FEATURES = ("tx_count_365", "balance_now", "digital_share", "age", "crm_balance", "crm_products", "crm_active")


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


# Money and counts are heavy-tailed: on a log scale one millionaire does not make a segment of their own,
# and refits on resamples agree. Applied by the model at scoring time too (the card lists it).
SEGMENT_LOG_FEATURES = ("recency_days", "tx_count_365", "debit_365", "balance_now", "crm_balance", "products_held",
                        "crm_products")
STABILITY_REFITS = 10
STABILITY_SAMPLE = 20_000  # customers the stability check refits on, at most


def _segment_pipeline(k: int, seed: int = 0):
    """Min-max scaling after the log transform: measured on the churn set, robust scaling of discrete features
    (products 1-4, a 0/1 flag) split customers one way in one resample and another in the next (mean ARI
    0.38-0.77); min-max held at 0.95-1.0 for 2 to 6 segments."""
    from sklearn.cluster import KMeans
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                     ("scale", MinMaxScaler()), ("kmeans", KMeans(n_clusters=k, n_init=10, random_state=seed))])


def bootstrap_stability(x: np.ndarray, k: int, labels: np.ndarray, refits: int = STABILITY_REFITS) -> list[float]:
    """Adjusted Rand index between the full fit's segments and those of refits on bootstrap resamples (each
    refit assigns every customer): near 1 when the segments are a property of the data, not of the sample."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(0)
    if len(x) > STABILITY_SAMPLE:
        keep = rng.choice(len(x), STABILITY_SAMPLE, replace=False)
        x, labels = x[keep], labels[keep]
    scores = []
    for refit in range(refits):
        sample = rng.integers(0, len(x), len(x))
        pipeline = _segment_pipeline(k, seed=refit + 1).fit(x[sample])
        scores.append(float(adjusted_rand_score(labels, pipeline.predict(x))))
    return scores


def train_segments(frame: pd.DataFrame, *, k: int | None, window: dict, out_dir: Path, source: str | None,
                   min_stability: float = 0.8, force: bool = False) -> Path:
    """KMeans segments on log-scaled, min-max-scaled behaviour features. Without k, the most segments (3 to
    8) whose mean bootstrap ARI is at least `min_stability` and within 0.05 of the most stable choice; a k
    asked for that does not hold is refused unless forced. The card records every candidate's stability."""
    from skl2onnx import to_onnx as convert

    from appliance.models import design

    names = [f for f in SEGMENT_FEATURES if f in usable_features(frame)]
    transforms = {n: "signed_log1p" for n in names if n in SEGMENT_LOG_FEATURES}
    if len(names) < 2:
        raise TrainingError("too few features with information to form segments")
    by_customer = design(frame, names, {}, transforms)
    # Rows in the order of their values, not of their keyed customer ids: KMeans and the resamples depend on
    # row order, so the same customers under another bank's key would get other segments and another
    # stability (measured on 200 churn customers: mean ARI 0.72 to 1.0 at 3 segments, by key).
    x = np.ascontiguousarray(by_customer[np.lexsort(by_customer.T[::-1])])
    tried = {}
    for candidate in ([k] if k else range(3, 9)):
        if len(frame) < 10 * candidate:
            continue
        labels = _segment_pipeline(candidate).fit_predict(x)
        scores = bootstrap_stability(x, candidate, labels)
        tried[candidate] = {"mean_ari": float(np.mean(scores)), "min_ari": float(np.min(scores)), "refits": scores}
    if not tried:
        raise TrainingError(f"too few customers to form {k or 3} segments")
    # The most segments that are (nearly) as stable as the most stable choice: with room above the floor,
    # not just over it, so that segments still hold on next month's customers.
    best = max(t["mean_ari"] for t in tried.values())
    steady = [c for c, t in tried.items() if t["mean_ari"] >= max(min_stability, best - 0.05)]
    chosen = k if k else (max(steady) if steady else max(tried, key=lambda c: tried[c]["mean_ari"]))
    stability = tried[chosen]
    if stability["mean_ari"] < min_stability and not force:
        raise TrainingError(f"{chosen} segments do not hold under resampling: mean bootstrap ARI "
                            f"{stability['mean_ari']:.2f} over {STABILITY_REFITS} refits, under the floor "
                            f"{min_stability:g} (setting segments.min_stability); ask for fewer, or --force")
    pipeline = _segment_pipeline(chosen).fit(x)
    labels = pipeline.predict(by_customer)
    onnx_bytes = convert(pipeline, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}).SerializeToString()
    return _write_model("segments", onnx_bytes, {
        "features": names, "transforms": transforms, "k": chosen, "typical": _typical(frame, names),
        "training": {"source": source, "rows": int(len(frame)), **window,
                     "data_sha256": hashlib.sha256(x.tobytes()).hexdigest()},
        "model": f"signed log1p on money and counts + SimpleImputer(median) + MinMaxScaler + KMeans(k={chosen}, "
                 "n_init=10)",
        "profiles": segment_profiles(frame, labels),
        "metrics": {"inertia": float(pipeline.steps[-1][1].inertia_),
                    "bootstrap_stability": {"chosen": stability, "floor": min_stability,
                                            "forced": bool(force and stability["mean_ari"] < min_stability),
                                            "candidates": {str(c): {"mean_ari": t["mean_ari"], "min_ari": t["min_ari"]}
                                                           for c, t in tried.items()}}},
    }, out_dir)


def segments_for_home(home, source: str | None, k: int | None, force: bool = False) -> Path:
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
                          source=source, min_stability=home.settings["segments.min_stability"], force=force)
