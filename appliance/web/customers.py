"""Customer 360: one customer's masked profile, accounts, recent transactions, interactions (their text masked
at ingest), tags, segment, scores and reasons. Every view is in the audit log with the customer.

"Reveal" shows a vaulted raw value once: it needs the vault.reveal permission, a password of one's own, a
purpose that policies/purposes.yaml lets the role reveal for, and a typed reason; the value goes into that one
response (never cached, never stored) and the reveal, its purpose and reason into the audit log.
"""

import json

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _

from appliance.errors import AccessError, PolicyError
from appliance.store import each_day
from appliance.subjects import PII_FIELDS
from appliance.web.auth import requires

blueprint = Blueprint("customers", __name__)
PROFILE = ("gender", "age", "region", "city", "branch", "segment", "joined_on", "status", "tenure_years",
           "credit_score", "income", "total_balance", "product_count", "has_credit_card", "is_active")
RECENT = 20
REASON_LENGTH = (10, 500)


def _printable(text: str) -> str:
    """A typed reason as one line of printable text, for the audit log."""
    return " ".join("".join(ch for ch in text if ch.isprintable()).split())


def _customer(store, customer_id: str) -> dict:
    return find(store, customer_id) or abort(404)


def record(home, customer: dict, zh: bool) -> dict:
    """Everything the 360 view shows of one customer, masked (the page and the API read the same)."""
    from appliance.web.insights import tag_names

    store, cid = home.store, customer["customer_id"]
    reasons = "reasons_zh" if zh else "reasons_en"
    # The per-day tables are keyed date first: a customer's latest rows are found a day at a time, newest
    # first, by (date, customer) lookups (store.each_day).
    score = store.query(f"WITH RECURSIVE {each_day('customer_scores')} SELECT s.as_of, probability, risk_band, "
                        f"{reasons} AS reasons FROM days CROSS JOIN customer_scores s ON s.as_of = days.d "
                        "AND s.customer_id = ? ORDER BY s.as_of DESC LIMIT 1", (cid,))
    score = dict(score[0]) | {"reasons": json.loads(score[0]["reasons"])} if score else None
    propensities = [dict(r) | {"reasons": json.loads(r["reasons"])} for r in store.query(
        f"WITH RECURSIVE {each_day('propensity_scores')}, held AS (SELECT p.* FROM days CROSS JOIN "
        "propensity_scores p ON p.as_of = days.d AND p.customer_id = ?) "
        f"SELECT target, as_of, probability, {reasons} AS reasons FROM held h "
        "WHERE as_of = (SELECT max(as_of) FROM held WHERE target = h.target) ORDER BY target", (cid,))]
    segment = store.query(f"WITH RECURSIVE {each_day('customer_segments')} SELECT segment, g.as_of FROM days "
                          "CROSS JOIN customer_segments g ON g.as_of = days.d AND g.customer_id = ? "
                          "ORDER BY g.as_of DESC LIMIT 1", (cid,))
    names = tag_names(zh)
    tags = [names.get(r[0], r[0]) for r in store.query(
        f"WITH RECURSIVE {each_day('customer_tags')} SELECT value FROM (SELECT t.tags FROM days CROSS JOIN "
        "customer_tags t ON t.as_of = days.d AND t.customer_id = ? ORDER BY t.as_of DESC LIMIT 1), "
        "json_each(tags) ORDER BY value", (cid,))]
    return {
        "customer_id": cid,
        "profile": {field: customer[field] for field in PROFILE if customer[field] is not None},
        "sealed": [f for f in PII_FIELDS if customer[f] and store.scalar(
            "SELECT 1 FROM vault WHERE domain = ? AND token = ?", (f, customer[f]))],
        "pseudonymised": [f for f in PII_FIELDS if customer[f]],
        "churn": score, "propensities": propensities, "segment": dict(segment[0]) if segment else None,
        "tags": tags,
        "accounts": [dict(r) for r in store.query(
            "SELECT account_id, product, account_type, currency, branch, opened_on, closed_on, status, balance "
            "FROM accounts WHERE customer_id = ? ORDER BY opened_on", (cid,))],
        "transactions": [dict(r) for r in store.query(
            "SELECT booked_at, account_id, amount, direction, currency, channel, category, memo FROM transactions "
            "WHERE customer_id = ? ORDER BY booked_at DESC LIMIT ?", (cid, RECENT))],
        "interactions": [dict(r) for r in store.query(
            "SELECT occurred_at, kind, channel, category, text, resolved FROM interactions WHERE customer_id = ? "
            "ORDER BY occurred_at DESC LIMIT ?", (cid, RECENT))],
    }


def _view(home, customer: dict, revealed: dict | None = None, reveal_error: str | None = None):
    zh = str(get_locale()).startswith("zh")
    held = record(home, customer, zh)
    policy = home.purpose_policy()
    purposes = [(name, titles[0] if zh else titles[1]) for name, titles in policy.titles.items()
                if name in policy.reveal.get(request.role, (frozenset(), frozenset()))[1]]
    return render_template("customers/view.html", user=request.user, role=request.role, customer=customer,
                           shown_id=customer["customer_id"][:10], profile=PROFILE, pii_fields=PII_FIELDS,
                           vaulted=held["sealed"], score=held["churn"], propensities=held["propensities"],
                           segment=held["segment"], tags=held["tags"], accounts=held["accounts"],
                           transactions=held["transactions"], interactions=held["interactions"],
                           purposes=purposes, revealed=revealed or {}, reveal_error=reveal_error,
                           reason_length=REASON_LENGTH), (400 if reveal_error else 200)


def find(store, customer_id: str) -> dict | None:
    rows = store.query(f"SELECT customer_id, {', '.join(PII_FIELDS)}, {', '.join(PROFILE)} FROM customers "
                       "WHERE customer_id = ?", (customer_id[:80],))
    return dict(rows[0]) if rows else None


@blueprint.route("/customers/<customer_id>")
@requires("customers.read_masked")
def view(customer_id):
    home = current_app.extensions["home"]
    customer = _customer(home.store, customer_id)
    home.audit.record(request.user, "customer.read", page="customers.view", customers=[customer["customer_id"]])
    return _view(home, customer)


@blueprint.route("/customers/<customer_id>/reveal", methods=["POST"])
@requires("vault.reveal")
def reveal(customer_id):
    home = current_app.extensions["home"]
    customer = _customer(home.store, customer_id)
    cid = customer["customer_id"]
    home.audit.record(request.user, "customer.read", page="customers.reveal", customers=[cid])
    purpose = request.form.get("purpose", "")[:64]
    reason = _printable(request.form.get("reason", ""))[:REASON_LENGTH[1]]
    wanted = set(request.form.getlist("field")) & set(PII_FIELDS)
    try:
        home.users().actor(request.user).require("vault.reveal")
        allowed = home.purpose_policy().revealable(request.role, purpose)
    except (AccessError, PolicyError) as refused:
        home.audit.record(request.user, "vault.reveal.refused", customer=cid, purpose=purpose,
                          why=type(refused).__name__)
        return _view(home, customer, reveal_error=_(
            "Reveal refused: your role may not reveal data for that purpose, or your password was set by an "
            "admin and must be changed first."))
    if len(reason) < REASON_LENGTH[0]:
        return _view(home, customer, reveal_error=_("Say why you reveal it: at least %(n)s characters.",
                                                    n=REASON_LENGTH[0]))
    fields = sorted(f for f in wanted if f"customers.{f}" in allowed and customer[f])
    if not fields:
        return _view(home, customer, reveal_error=_("Choose at least one field your role may reveal."))
    vault = home.vault()
    revealed = {f: vault.reveal(f, customer[f]) for f in fields}
    home.audit.record(request.user, "vault.reveal", customer=cid, purpose=purpose, reason=reason,
                      fields=[f for f in fields if revealed[f] is not None], via="console")
    return _view(home, customer, revealed=revealed)
