"""Retention campaigns, the action loop: choose customers (the at-risk list with its filters, a segment or a
tag), hold a random control group back, hand the rest to staff, record contacts and outcomes (in the console
or by ingesting campaign_responses), and measure whether acting helped.

Assignment is stratified by risk band and segment: within each stratum, customers in token order are shuffled
by a generator seeded with the campaign's seed and the first round(share x n) are held back. So the groups are
balanced on risk and segment by construction, and the same seed over the same customers gives the same groups
(both recorded: `campaign_members`, `retention_campaigns.seed`).

Effect: churn (features.labels: closing out, or no customer-initiated transaction after being active, within
the window after the start) and response (a positive outcome recorded for the customer) in treatment against
control, the difference with a Newcombe 95% interval (statsmodels), at each 30 days since the start that the
data reaches, and per segment where both groups hold at least MIN_GROUP customers.
"""

import json
import secrets
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd

from appliance.errors import ApplianceError
from appliance.store import Store
from appliance.subjects import register_erasure
from appliance.tagging import holding

register_erasure("campaign_members")
CHOSEN_FROM = ("at_risk", "segment", "tag")
OUTCOMES = ("accepted", "declined", "no_answer", "callback")
POSITIVE = frozenset({"accepted", "responded", "converted", "yes", "retained"})
MIN_GROUP = 30
MAX_MEMBERS = 500_000
STEP_DAYS = 30


class CampaignError(ApplianceError):
    code = "campaign"
    exit_code = 2


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def eligible(store: Store, chosen_from: str, criteria: dict) -> tuple[str | None, pd.DataFrame]:
    """(scores' date, the customers chosen: customer_id, probability, risk band, segment), from the latest
    scoring. At risk: the churn page's filters (band, branch, segment, value); segment: one segment; tag: one
    tag or lifecycle stage."""
    from appliance.scoring import at_risk_filters

    as_of = store.scalar("SELECT max(as_of) FROM customer_scores")
    if not as_of:
        raise CampaignError("no churn scores yet: run the nightly pipeline first")
    clauses, params = ["s.as_of = ?"], [as_of]
    if chosen_from == "at_risk":
        more, values = at_risk_filters(**{k: criteria.get(k) for k in ("band", "branch", "segment", "value")})
        clauses += more
        params += values
    elif chosen_from == "segment":
        clauses.append("g.segment = ?")
        params.append(int(criteria["segment"]))
    elif chosen_from == "tag":
        clauses.append("s.customer_id IN (SELECT customer_id FROM customer_tags t WHERE as_of = (SELECT max(as_of) "
                       f"FROM customer_tags) AND {holding()})")
        params.append(str(criteria["tag"]))
    else:
        raise CampaignError(f"customers are chosen from {', '.join(CHOSEN_FROM)}, not '{chosen_from}'")
    rows = store.query(
        "SELECT s.customer_id, s.probability, s.risk_band, g.segment FROM customer_scores s "
        "JOIN customers c ON c.customer_id = s.customer_id "
        "LEFT JOIN customer_segments g ON g.customer_id = s.customer_id AND g.as_of = s.as_of "
        "LEFT JOIN customer_features f ON f.customer_id = s.customer_id AND f.as_of = s.as_of "
        f"WHERE {' AND '.join(clauses)} ORDER BY s.customer_id LIMIT ?", (*params, MAX_MEMBERS + 1))
    frame = pd.DataFrame([dict(r) for r in rows], columns=["customer_id", "probability", "risk_band", "segment"])
    if len(frame) > MAX_MEMBERS:
        raise CampaignError(f"more than {MAX_MEMBERS:,} customers match: narrow the filters")
    return as_of, frame


def assign(frame: pd.DataFrame, control_share: float, seed: int) -> pd.Series:
    """'control' or 'treatment' per customer_id, stratified by risk band and segment, reproducible from the
    seed."""
    if not 0 < control_share < 1:
        raise CampaignError("the control group's share is between 0 and 1 (say 0.2 for 20%)")
    rng = np.random.default_rng(seed)
    arms = pd.Series("treatment", index=frame["customer_id"], dtype=object)
    strata = frame.reset_index(drop=True).assign(segment=frame["segment"].fillna(-1).to_numpy()).sort_values("customer_id")
    for _key, group in strata.groupby(["risk_band", "segment"], sort=True):
        ids = group["customer_id"].to_numpy()
        held = rng.permutation(len(ids))[:int(round(control_share * len(ids)))]
        arms[ids[held]] = "control"
    return arms


# Consonants without j and m: the PII engine raises a number's score when a context word sits near it, and
# a random suffix could spell one beside the date ("acct" made RC-2026-11-30-wacctk an account number).
# No context word can be spelled from these letters; tests/test_campaigns.py checks that against the engine.
ID_LETTERS = "bcdfghknpqrstvwxz"


def new_id() -> str:
    """RC-<date>-<six letters>: no run of digits, so that the bank's response files carrying it pass the PII
    scan of columns kept as they are (an id like RC-20261130-d4e9b4 reads as a phone number)."""
    return f"RC-{datetime.now(timezone.utc):%Y-%m-%d}-{''.join(secrets.choice(ID_LETTERS) for _ in range(6))}"


def create(store: Store, actor, name: str, chosen_from: str, criteria: dict, control_share: float,
           seed: int | None = None, starts_on: date | None = None) -> dict:
    """Choose, assign and record a campaign; the caller's transaction holds it with its audit entry."""
    name = " ".join("".join(ch for ch in name if ch.isprintable()).split())[:80]
    if not name:
        raise CampaignError("a campaign needs a name")
    as_of, frame = eligible(store, chosen_from, criteria)
    if len(frame) < 2:
        raise CampaignError("fewer than two customers match: nobody to compare")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    arms = assign(frame, control_share, seed)
    campaign_id = new_id()
    starts_on = (starts_on or date.today()).isoformat()
    store.execute("INSERT INTO retention_campaigns VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                  (campaign_id, name, actor.name, _now(), starts_on, chosen_from, json.dumps(criteria, sort_keys=True),
                   as_of, control_share, seed, len(frame)))
    store.executemany("INSERT INTO campaign_members VALUES (?,?,?,?,?)",
                      [(campaign_id, row.customer_id, arms[row.customer_id],
                        f"{row.risk_band}|{'' if pd.isna(row.segment) else int(row.segment)}", float(row.probability))
                       for row in frame.itertuples()])
    # Also a campaign as the bank's data knows them, so ingested responses and the campaign_results report join it.
    store.execute("INSERT OR IGNORE INTO campaigns (campaign_id, name, channel, objective, starts_on, source, "
                  "batch_id) VALUES (?,?,?,?,?,?,0)", (campaign_id, name, "staff", "retention", starts_on, "console"))
    counts = arms.value_counts().to_dict()
    return {"campaign_id": campaign_id, "seed": seed, "members": len(frame), "treatment": counts.get("treatment", 0),
            "control": counts.get("control", 0), "scores_as_of": as_of}


def get(store: Store, campaign_id: str) -> dict:
    rows = store.query("SELECT * FROM retention_campaigns WHERE campaign_id = ?", (campaign_id[:40],))
    if not rows:
        raise CampaignError("no such campaign")
    campaign = dict(rows[0])
    campaign["criteria"] = json.loads(campaign["criteria"])
    return campaign


def listing(store: Store) -> list[dict]:
    return [dict(r) for r in store.query(
        "SELECT c.*, (SELECT count(*) FROM campaign_members m WHERE m.campaign_id = c.campaign_id AND m.arm = "
        "'control') AS control FROM retention_campaigns c ORDER BY created_at DESC")]


def treatment_page(store: Store, campaign_id: str, *, zh: bool, after: tuple[float, str] | None = None,
                   limit: int = 50) -> list[dict]:
    """The treatment group for staff, riskiest first: token, risk, reasons to talk about, the last outcome."""
    reasons = "s.reasons_zh" if zh else "s.reasons_en"
    clauses, params = ["m.campaign_id = ?", "m.arm = 'treatment'"], [campaign_id]
    if after is not None:
        clauses.append("(m.probability < ? OR (m.probability = ? AND m.customer_id > ?))")
        params += [after[0], after[0], after[1]]
    rows = [dict(r) for r in store.query(
        f"SELECT m.customer_id, m.probability, s.risk_band, {reasons} AS reasons, c.branch, "
        "(SELECT outcome FROM campaign_responses r WHERE r.campaign_id = m.campaign_id AND r.customer_id = "
        "m.customer_id ORDER BY coalesce(r.responded_at, r.contacted_at) DESC LIMIT 1) AS outcome "
        "FROM campaign_members m JOIN retention_campaigns k ON k.campaign_id = m.campaign_id "
        "LEFT JOIN customer_scores s ON s.customer_id = m.customer_id AND s.as_of = k.scores_as_of "
        "LEFT JOIN customers c ON c.customer_id = m.customer_id "
        f"WHERE {' AND '.join(clauses)} ORDER BY m.probability DESC, m.customer_id LIMIT ?", (*params, limit))]
    for row in rows:
        row["reasons"] = json.loads(row["reasons"]) if row["reasons"] else []
    return rows


def record_contact(store: Store, campaign_id: str, customer_id: str, outcome: str, actor) -> None:
    """A contact by staff and its outcome, as a campaign response (what ingested responses are too)."""
    if outcome not in OUTCOMES:
        raise CampaignError(f"outcome is one of {', '.join(OUTCOMES)}")
    arm = store.scalar("SELECT arm FROM campaign_members WHERE campaign_id = ? AND customer_id = ?",
                       (campaign_id, customer_id))
    if arm != "treatment":
        raise CampaignError("only customers of the treatment group are contacted (the control group is held back)")
    now = _now()
    store.execute("INSERT INTO campaign_responses (response_id, campaign_id, customer_id, group_name, contacted_at, "
                  "responded_at, outcome, source, batch_id, attributes) VALUES (?,?,?,?,?,?,?,?,0,?)",
                  (f"console-{secrets.token_hex(8)}", campaign_id, customer_id, "treatment", now,
                   now if outcome != "no_answer" else None, outcome,
                   "console", json.dumps({"by": actor.name})))


def _interval(churned_t: int, n_t: int, churned_c: int, n_c: int) -> dict:
    from statsmodels.stats.proportion import confint_proportions_2indep

    rate_t, rate_c = churned_t / n_t, churned_c / n_c
    low, high = confint_proportions_2indep(churned_t, n_t, churned_c, n_c, method="newcomb", compare="diff")
    return {"treatment": round(rate_t, 4), "control": round(rate_c, 4), "difference": round(rate_t - rate_c, 4),
            "low": round(float(low), 4), "high": round(float(high), 4), "n_treatment": n_t, "n_control": n_c}


def effect(store: Store, campaign_id: str, *, horizon_days: int | None = None) -> dict:
    """Churn and response, treatment against control: the difference (treatment minus control) with its 95%
    interval, at each STEP_DAYS the data reaches since the start, and per segment where both groups are large
    enough. A negative churn difference means fewer left in the treatment group."""
    from appliance.features import labels

    campaign = get(store, campaign_id)
    start = date.fromisoformat(campaign["starts_on"])
    members = pd.DataFrame([dict(r) for r in store.query(
        "SELECT customer_id, arm, stratum FROM campaign_members WHERE campaign_id = ?", (campaign_id,))])
    members["segment"] = members["stratum"].str.split("|").str[1]
    positive = {r[0] for r in store.query(
        f"SELECT DISTINCT customer_id FROM campaign_responses WHERE campaign_id = ? AND outcome IN "
        f"({','.join('?' * len(POSITIVE))})", (campaign_id, *sorted(POSITIVE)))}
    members["responded"] = members["customer_id"].isin(positive)
    arms = {arm: members[members["arm"] == arm] for arm in ("treatment", "control")}
    result = {"campaign": campaign, "response": None, "churn": None, "over_time": [], "by_segment": [],
              "members": {arm: len(group) for arm, group in arms.items()}}
    if min(len(g) for g in arms.values()) == 0:
        return result
    result["response"] = _interval(int(arms["treatment"]["responded"].sum()), len(arms["treatment"]),
                                   int(arms["control"]["responded"].sum()), len(arms["control"]))
    latest = store.scalar("SELECT max(booked_at) FROM transactions")
    reach = (date.fromisoformat(latest[:10]) - start).days if latest else 0
    customers = pd.DataFrame([dict(r) for r in store.query(
        "SELECT c.customer_id, c.closed_on, c.churn_label FROM customers c JOIN campaign_members m ON "
        "m.customer_id = c.customer_id WHERE m.campaign_id = ?", (campaign_id,))],
        columns=["customer_id", "closed_on", "churn_label"])
    customers["churn_label"] = np.nan  # the label the bank mapped is from before; here behaviour decides
    days_list = list(range(STEP_DAYS, min(reach, horizon_days or reach) + 1, STEP_DAYS))
    churned = None
    for days in days_list:
        churned = labels(store, start, customers, days, days).reindex(members["customer_id"]).to_numpy()
        known = ~np.isnan(churned)
        by_arm = {arm: (int(np.nansum(churned[(members["arm"] == arm).to_numpy() & known])),
                        int(((members["arm"] == arm).to_numpy() & known).sum())) for arm in arms}
        if min(n for _c, n in by_arm.values()) == 0:
            break
        result["over_time"].append({"days": days, **_interval(*by_arm["treatment"], *by_arm["control"])})
    if result["over_time"]:
        result["churn"] = result["over_time"][-1]
        members["churned"] = churned
        for segment, group in members.dropna(subset=["churned"]).groupby("segment"):
            t, c = group[group["arm"] == "treatment"], group[group["arm"] == "control"]
            if len(t) >= MIN_GROUP and len(c) >= MIN_GROUP:
                result["by_segment"].append({"segment": segment, **_interval(int(t["churned"].sum()), len(t),
                                                                             int(c["churned"].sum()), len(c))})
    return result
