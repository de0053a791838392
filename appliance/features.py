"""Customer features as of a date: what the models and tags read.

Per customer and as-of date D, from the canonical tables, using only what happened before D (no feature can
see the label). Computed in chunks of customers (memory flat), stored in `customer_features`, reproducible:
the same store and D give the same rows. A run replaces D's rows in one transaction, so a run that fails
leaves the previous results whole.

The churn label comes from the source where it maps one (`customers.churn_label`, e.g. the churn set's
`Exited`); otherwise from behaviour after D: the customer closes out within `features.churn_horizon_days`, or
makes no customer-initiated transaction in the `features.inactivity_days` after D although active before.
Customers who had left before D are not scored.

Besides these built-in features, the models read the bank's own columns that a source's mapping declares
(`feature: numeric|categorical`, see docs/mappings.md) and the customer's region as a category; those are read
from the customer at training and scoring time (`declared_frame`), not stored here.
"""

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from appliance.store import Store
from appliance.subjects import register_erasure

# Bank-initiated postings: they say nothing about whether the customer still uses the bank.
BANK_INITIATED = ("interest", "statement_fee", "penalty_interest", "salary", "pension")
DIGITAL_CHANNELS = ("app", "web")


@dataclass(frozen=True)
class Feature:
    name: str
    help: str


FEATURES: tuple[Feature, ...] = (
    Feature("recency_days", "days since the last transaction before the as-of date (9999 if none)"),
    Feature("tx_count_90", "transactions in the 90 days before"),
    Feature("tx_count_365", "transactions in the 365 days before"),
    Feature("debit_90", "money out in the 90 days before"),
    Feature("debit_365", "money out in the 365 days before"),
    Feature("credit_90", "money in in the 90 days before"),
    Feature("credit_365", "money in in the 365 days before"),
    Feature("balance_now", "sum over accounts of the last balance before the as-of date"),
    Feature("balance_trend_3m", "mean balance of the last 90 days over the 90 before them, minus 1"),
    Feature("balance_trend_6m", "mean balance of the last 180 days over the 180 before them, minus 1"),
    Feature("balance_trend_12m", "mean balance of the last 365 days over the 365 before them, minus 1"),
    Feature("activity_decay", "transactions in the last 90 days over a quarter of the last 365 (1 = steady)"),
    Feature("salary_months_12", "months of the last 12 with a salary or pension inflow"),
    Feature("digital_share", "share of the last 365 days' transactions made in the app or on the web"),
    Feature("branch_share", "share made at a branch or ATM"),
    Feature("events_90", "app and web events in the 90 days before"),
    Feature("days_since_event", "days since the last app or web event (9999 if none)"),
    Feature("products_held", "product holdings open on the as-of date"),
    Feature("accounts_open", "accounts open on the as-of date"),
    Feature("has_credit_card", "1 if a credit card is held (account, holding or CRM flag)"),
    Feature("complaints_365", "complaints in the 365 days before"),
    Feature("days_since_complaint", "days since the last complaint (9999 if none)"),
    Feature("tenure_days", "days since joining (from the join date, else the source's tenure)"),
    Feature("age", "age in years on the as-of date (from the birth year, else the source's age)"),
    Feature("is_female", "1 female, 0 male, empty if unknown"),
    Feature("region_code", "a stable number for the customer's region (older models read it; newer ones read the "
                           "region as a category)"),
    Feature("credit_score", "credit score from the source, where it has one"),
    Feature("income", "income from the source, where it has one"),
    Feature("crm_balance", "balance snapshot from the CRM, where the source has one"),
    Feature("crm_products", "product count snapshot from the CRM, where the source has one"),
    Feature("crm_active", "the CRM's active-member flag, where the source has one"),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
NONE_DAYS = 9999
register_erasure("customer_features")


def _days(later: pd.Series, moment: pd.Timestamp) -> pd.Series:
    return (moment - later).dt.days


def _customers(store: Store, as_of: date) -> pd.DataFrame:
    """Customers still with the bank on the as-of date."""
    rows = store.query("SELECT customer_id, joined_on, closed_on, status, birth_year, age, gender, region, tenure_years, "
                       "credit_score, income, total_balance, product_count, has_credit_card, is_active, churn_label "
                       "FROM customers WHERE (joined_on IS NULL OR joined_on < ?) "
                       "AND (closed_on IS NULL OR closed_on >= ?) ORDER BY customer_id",
                       (as_of.isoformat(), as_of.isoformat()))
    return pd.DataFrame([dict(r) for r in rows])


def _transactions(store: Store, customers: list[str], since: date, until: date) -> pd.DataFrame:
    """Transactions of these customers in [since, until), by customer or through their accounts (Berka's
    transactions know only the account)."""
    marks = ",".join("?" * len(customers))
    window = (since.isoformat(), until.isoformat())
    # Two indexed look-ups, not one OR: SQLite would scan every transaction for the OR.
    rows = store.rows(
        f"SELECT customer_id, account_id, booked_at, amount, direction, balance_after, channel, category "
        f"FROM transactions WHERE customer_id IN ({marks}) AND booked_at >= ? AND booked_at < ? "
        f"UNION ALL "
        f"SELECT a.customer_id, t.account_id, t.booked_at, t.amount, t.direction, t.balance_after, t.channel, "
        f"t.category FROM accounts a JOIN transactions t ON t.account_id = a.account_id "
        f"WHERE a.customer_id IN ({marks}) AND t.customer_id IS NULL AND t.booked_at >= ? AND t.booked_at < ?",
        (*customers, *window, *customers, *window))
    frame = pd.DataFrame(rows, columns=["customer_id", "account_id", "booked_at", "amount",
                                                           "direction", "balance_after", "channel", "category"])
    frame["booked_at"] = pd.to_datetime(frame["booked_at"], format="ISO8601")
    return frame


def _window_sum(frame: pd.DataFrame, mask: pd.Series, column: str | None) -> pd.Series:
    picked = frame[mask]
    grouped = picked.groupby("customer_id")
    return grouped[column].sum() if column else grouped.size()


def compute(store: Store, as_of: date, customers: pd.DataFrame, tx: pd.DataFrame | None = None) -> pd.DataFrame:
    """The feature rows of one chunk of customers, indexed by customer token (`tx`: their transactions of the
    two years before, when already fetched)."""
    moment = pd.Timestamp(as_of)
    ids = customers["customer_id"].tolist()
    out = pd.DataFrame(index=pd.Index(ids, name="customer_id"))
    if tx is None:
        tx = _transactions(store, ids, as_of - timedelta(days=730), as_of)
    age_days = _days(tx["booked_at"], moment)
    debit, credit = tx["direction"] == "debit", tx["direction"] == "credit"
    for days in (90, 365):
        recent = age_days <= days
        out[f"tx_count_{days}"] = _window_sum(tx, recent, None)
        out[f"debit_{days}"] = _window_sum(tx, recent & debit, "amount")
        out[f"credit_{days}"] = _window_sum(tx, recent & credit, "amount")
    last = tx.groupby("customer_id")["booked_at"].max()
    out["recency_days"] = _days(last, moment)
    per_account_last = tx.sort_values("booked_at").groupby(["customer_id", "account_id"])["balance_after"].last()
    out["balance_now"] = per_account_last.groupby(level=0).sum()
    for months, days in ((3, 90), (6, 180), (12, 365)):
        now = tx[age_days <= days].groupby("customer_id")["balance_after"].mean()
        before = tx[(age_days > days) & (age_days <= 2 * days)].groupby("customer_id")["balance_after"].mean()
        out[f"balance_trend_{months}m"] = (now / before.replace(0, np.nan)) - 1
    out = out.fillna({c: 0 for c in ("tx_count_90", "tx_count_365", "debit_90", "debit_365", "credit_90",
                                     "credit_365")})
    out["activity_decay"] = out["tx_count_90"] / (out["tx_count_365"] / 4).replace(0, np.nan)
    year = tx[age_days <= 365]
    salary = year[year["category"].isin(["salary", "pension"]) & (year["direction"] == "credit")]
    months = salary.assign(month=salary["booked_at"].dt.strftime("%Y-%m"))
    out["salary_months_12"] = months.groupby("customer_id")["month"].nunique().astype("float64")
    counted = year.groupby("customer_id").size()
    out["digital_share"] = year[year["channel"].isin(DIGITAL_CHANNELS)].groupby("customer_id").size() / counted
    out["branch_share"] = year[year["channel"].isin(["branch", "atm"])].groupby("customer_id").size() / counted
    _events(store, ids, as_of, out)
    _holdings(store, ids, as_of, out)
    _complaints(store, ids, as_of, out)
    _profile(customers.set_index("customer_id"), as_of, out)
    for name in ("recency_days", "days_since_event", "days_since_complaint"):
        out[name] = out[name].fillna(NONE_DAYS)
    for name in ("salary_months_12", "digital_share", "branch_share", "events_90", "products_held",
                 "accounts_open", "complaints_365"):
        out[name] = out[name].fillna(0)
    return out[list(FEATURE_NAMES)]


def _events(store: Store, ids: list[str], as_of: date, out: pd.DataFrame) -> None:
    marks = ",".join("?" * len(ids))
    rows = store.query(f"SELECT customer_id, max(occurred_at) AS last, "
                       f"sum(occurred_at >= ?) AS recent FROM digital_events WHERE customer_id IN ({marks}) "
                       f"AND occurred_at < ? GROUP BY customer_id",
                       ((as_of - timedelta(days=90)).isoformat(), *ids, as_of.isoformat()))
    frame = pd.DataFrame([dict(r) for r in rows], columns=["customer_id", "last", "recent"]).set_index("customer_id")
    out["events_90"] = frame["recent"]
    out["days_since_event"] = _days(pd.to_datetime(frame["last"], format="ISO8601"), pd.Timestamp(as_of))


def _holdings(store: Store, ids: list[str], as_of: date, out: pd.DataFrame) -> None:
    marks, day = ",".join("?" * len(ids)), as_of.isoformat()
    open_clause = "(opened_on IS NULL OR opened_on < ?) AND (closed_on IS NULL OR closed_on >= ?)"
    held = store.query(f"SELECT customer_id, count(*), sum(category = 'credit_card') FROM product_holdings "
                       f"WHERE customer_id IN ({marks}) AND {open_clause} GROUP BY customer_id", (*ids, day, day))
    accounts = store.query(f"SELECT customer_id, count(*), sum(account_type = 'credit_card') FROM accounts "
                           f"WHERE customer_id IN ({marks}) AND {open_clause} GROUP BY customer_id", (*ids, day, day))
    out["products_held"] = pd.Series({r[0]: r[1] for r in held}, dtype="float64")
    out["accounts_open"] = pd.Series({r[0]: r[1] for r in accounts}, dtype="float64")
    cards = pd.Series({r[0]: r[2] for r in held}, dtype="float64").add(
        pd.Series({r[0]: r[2] for r in accounts}, dtype="float64"), fill_value=0)
    out["has_credit_card"] = (cards.reindex(out.index).fillna(0) > 0).astype(float)


def _complaints(store: Store, ids: list[str], as_of: date, out: pd.DataFrame) -> None:
    marks = ",".join("?" * len(ids))
    rows = store.query(f"SELECT customer_id, max(occurred_at), sum(occurred_at >= ?) FROM interactions "
                       f"WHERE kind = 'complaint' AND customer_id IN ({marks}) AND occurred_at < ? "
                       f"GROUP BY customer_id", ((as_of - timedelta(days=365)).isoformat(), *ids, as_of.isoformat()))
    out["complaints_365"] = pd.Series({r[0]: r[2] for r in rows}, dtype="float64")
    last = pd.to_datetime(pd.Series({r[0]: r[1] for r in rows}, dtype=object), format="ISO8601")
    out["days_since_complaint"] = _days(last, pd.Timestamp(as_of)) if len(last) else np.nan


def _profile(customers: pd.DataFrame, as_of: date, out: pd.DataFrame) -> None:
    joined = pd.to_datetime(customers["joined_on"], format="ISO8601", errors="coerce")
    tenure = _days(joined, pd.Timestamp(as_of)).astype("float64")
    out["tenure_days"] = tenure.fillna(pd.to_numeric(customers["tenure_years"], errors="coerce") * 365)
    born = pd.to_numeric(customers["birth_year"], errors="coerce")
    out["age"] = (as_of.year - born).fillna(pd.to_numeric(customers["age"], errors="coerce"))
    out["is_female"] = customers["gender"].map({"F": 1.0, "M": 0.0})
    out["region_code"] = customers["region"].map(
        lambda r: float(int(hashlib.sha256(r.encode("utf-8")).hexdigest()[:6], 16) % 10_007) if isinstance(r, str) else np.nan)
    out["credit_score"] = pd.to_numeric(customers["credit_score"], errors="coerce")
    out["income"] = pd.to_numeric(customers["income"], errors="coerce")
    out["crm_balance"] = pd.to_numeric(customers["total_balance"], errors="coerce")
    out["crm_products"] = pd.to_numeric(customers["product_count"], errors="coerce")
    out["crm_active"] = pd.to_numeric(customers["is_active"], errors="coerce")
    flag = pd.to_numeric(customers["has_credit_card"], errors="coerce")
    out["has_credit_card"] = np.fmax(out["has_credit_card"], flag.reindex(out.index))


def labels(store: Store, as_of: date, customers: pd.DataFrame, horizon_days: int, inactivity_days: int,
           history: pd.DataFrame | None = None) -> pd.Series:
    """1 = churned, 0 = stayed, NaN = not yet knowable (the window after the as-of date is still open).
    `history`: the customers' transactions before the as-of date, when already fetched."""
    mapped = pd.to_numeric(customers.set_index("customer_id")["churn_label"], errors="coerce")
    ids = customers["customer_id"].tolist()
    horizon_end = as_of + timedelta(days=horizon_days)
    closed = pd.to_datetime(customers.set_index("customer_id")["closed_on"], format="ISO8601", errors="coerce")
    closed_in_horizon = (closed >= pd.Timestamp(as_of)) & (closed < pd.Timestamp(horizon_end))
    after = _transactions(store, ids, as_of, as_of + timedelta(days=inactivity_days))
    own = after[~after["category"].isin(BANK_INITIATED)]
    active_after = pd.Series(True, index=own["customer_id"].unique())
    year_ago = pd.Timestamp(as_of - timedelta(days=365))
    before = history[history["booked_at"] >= year_ago] if history is not None else \
        _transactions(store, ids, as_of - timedelta(days=365), as_of)
    active_before = pd.Series(True, index=before[~before["category"].isin(BANK_INITIATED)]["customer_id"].unique())
    behaviour = pd.Series(0.0, index=pd.Index(ids))
    lapsed = active_before.reindex(behaviour.index).fillna(False).astype(bool) & \
        ~active_after.reindex(behaviour.index).fillna(False).astype(bool)
    behaviour[lapsed | closed_in_horizon.reindex(behaviour.index).fillna(False).astype(bool)] = 1.0
    latest = store.scalar("SELECT max(booked_at) FROM transactions")
    if latest is None or latest < (as_of + timedelta(days=inactivity_days)).isoformat():
        behaviour[:] = np.nan  # the data does not reach the end of the window yet
    return mapped.reindex(behaviour.index).fillna(behaviour)


def build(store: Store, as_of: date, *, chunk_customers: int, horizon_days: int, inactivity_days: int) -> int:
    """Compute and store the features (and labels) of every customer for `as_of`; returns the row count.
    One transaction: the previous rows for this date stay until the new ones replace them whole."""
    everyone = _customers(store, as_of)
    columns = ["customer_id", "as_of", *FEATURE_NAMES, "churn_label", "computed_at"]
    sql = f"INSERT INTO customer_features ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    written = 0
    with store.transaction():
        store.execute("DELETE FROM customer_features WHERE as_of = ?", (as_of.isoformat(),))
        for start in range(0, len(everyone), chunk_customers):
            chunk = everyone.iloc[start:start + chunk_customers]
            history = _transactions(store, chunk["customer_id"].tolist(), as_of - timedelta(days=730), as_of)
            rows = compute(store, as_of, chunk, history)
            rows["churn_label"] = labels(store, as_of, chunk, horizon_days, inactivity_days, history)
            rows = rows.astype(object).where(rows.notna(), None)
            store.executemany(sql, ((cid, as_of.isoformat(), *values, stamp)
                                    for cid, values in zip(rows.index, rows.itertuples(index=False, name=None))))
            written += len(rows)
    return written


def load(store: Store, as_of: date) -> pd.DataFrame:
    rows = store.query("SELECT * FROM customer_features WHERE as_of = ? ORDER BY customer_id", (as_of.isoformat(),))
    return pd.DataFrame([dict(r) for r in rows]).set_index("customer_id") if rows else pd.DataFrame()


# The bank's own columns as features --------------------------------------------------------------------
@dataclass(frozen=True)
class Declared:
    """A feature the source's mapping declares (`feature: numeric|categorical`), read from the customer."""
    name: str  # "customers.<field>" or "attributes.<name>": how the model card names it
    column: str  # the source column it came from, for the card and for people
    kind: str  # numeric | categorical
    unit: str | None = None

    @property
    def label(self) -> str:
        return self.column.replace("_", " ")


# Every source's customers may have a region: a category (its name), never a number.
REGION = Declared("customers.region", "region", "categorical")


def declared_features(mapping) -> list[Declared]:
    found = []
    for column in mapping.declared_features():
        target = column.customer_target
        name = f"attributes.{target.attribute}" if target.attribute else f"customers.{target.field}"
        found.append(Declared(name, column.name, column.feature, column.unit))
    return found


def declared_frame(store: Store, ids: list[str], specs: list[Declared], chunk: int = 5_000) -> pd.DataFrame:
    """The declared features of these customers: numbers as floats, categories as text (missing: NaN)."""
    import json

    fields = sorted({s.name.split(".", 1)[1] for s in specs if s.name.startswith("customers.")})
    parts = []
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        marks = ",".join("?" * len(part))
        rows = store.rows(f"SELECT customer_id, attributes{''.join(', ' + f for f in fields)} FROM customers "
                          f"WHERE customer_id IN ({marks})", part)
        records = []
        for row in rows:
            attributes = json.loads(row[1]) if row[1] else {}
            record = {"customer_id": row[0], **{f"customers.{f}": v for f, v in zip(fields, row[2:])}}
            record.update({f"attributes.{k}": v for k, v in attributes.items()})
            records.append(record)
        parts.append(pd.DataFrame.from_records(records))
    frame = pd.concat(parts) if parts else pd.DataFrame(columns=["customer_id"])
    frame = frame.set_index("customer_id").reindex(pd.Index(ids, name="customer_id"))
    out = pd.DataFrame(index=frame.index)
    for spec in specs:
        values = frame[spec.name] if spec.name in frame else pd.Series(np.nan, index=frame.index)
        if spec.kind == "numeric":
            out[spec.name] = pd.to_numeric(values, errors="coerce").astype("float64")
        else:
            out[spec.name] = values.where(values.notna(), None).map(lambda v: None if v is None else str(v))
    return out
