"""The at-risk list: the latest churn scores, riskiest first or most valuable first, filtered by branch, segment,
risk band and value band, a page at a time (keyset pagination: the next page starts after the last row shown,
so a page costs the same at any depth; both orders have their index). Customer-level data: each page shown is
in the audit log with the customers on it. No download."""

import json

from flask import Blueprint, current_app, render_template, request
from flask_babel import get_locale

from appliance.scoring import VALUE_BANDS, at_risk_filters
from appliance.web.auth import requires

blueprint = Blueprint("churn", __name__)
PAGE = 50
BANDS = ("high", "medium", "low")
SORTS = ("risk", "value")
SMALL_BRANCH = 2_000


def at_risk(store, *, band=None, branch=None, segment=None, value=None, sort: str = "risk",
            after: tuple[float, str] | None = None, limit: int = PAGE,
            zh: bool = False) -> tuple[str | None, list[dict]]:
    """(the latest scoring date, a page of its scores, riskiest first or (`sort="value"`) highest balance first,
    after the row `after` (its probability or balance, and its customer)), each row with its reasons in the
    reader's language. The page and the API read the same."""
    as_of = store.scalar("SELECT max(as_of) FROM customer_scores")  # customer_scores_rank answers at once
    if not as_of:
        return None, []
    clauses, params = at_risk_filters(band=band, branch=branch, segment=segment, value=value)
    clauses, params = ["s.as_of = ?", *clauses], [as_of, *params]
    # Each order walks its own index (customer_scores_rank, customer_features_value) and stops at the page's
    # end; the ORDER BY names that index's columns so the planner sees it.
    key, ident = ("s.probability", "s.customer_id") if sort == "risk" else ("f.balance_now", "f.customer_id")
    if after is not None:
        clauses.append(f"({key} < ? OR ({key} = ? AND {ident} > ?))")
        params += [after[0], after[0], after[1]]
    if sort == "value":
        clauses += ["f.balance_now IS NOT NULL", "f.as_of = ?"]
        params.append(as_of)
    if band is not None:
        # The band's probabilities lie within its histogram bins: a bounded stretch of the ordered index, so a
        # band with fewer matches than a page does not walk the whole day.
        bins = store.query("SELECT min(bin), max(bin) FROM risk_summaries WHERE as_of = ? AND risk_band = ?",
                           (as_of, band))[0]
        if bins[0] is not None:
            clauses.append("s.probability >= ? AND s.probability < ?")
            params += [bins[0] / 10, (bins[1] + 1) / 10 if bins[1] < 9 else 2.0]
    reasons = "s.reasons_zh" if zh else "s.reasons_en"
    # CROSS JOIN fixes the loop order (SQLite never reorders around it). Usually the ordered index drives, the
    # other tables are looked up by key, and the walk stops after a page: a branch alone holds a page within a
    # few thousand rows. A branch with a segment or value band reads risk_ranks, where each is already in risk
    # order. A small branch may hold fewer than a page, and the walk would cross the whole day; then (and for a
    # run from before risk_ranks) the branch's customers drive (one branch of a million customers is some ten
    # thousand) and only they are sorted. Left to itself the planner may sort the whole day's scores (seconds at
    # a million customers).
    join_s = "customer_scores s ON s.customer_id = c.customer_id AND s.as_of = ?"
    ranked = (branch is not None and (segment is not None or value is not None) and sort == "risk"
              and store.scalar("SELECT 1 FROM risk_ranks WHERE as_of = ? LIMIT 1", (as_of,)))
    narrow = not ranked and branch is not None and (segment is not None or value is not None or store.scalar(
        "SELECT count(*) FROM customers WHERE branch = ?", (branch,)) < SMALL_BRANCH)
    if ranked:
        # Branch and segment, or branch and value band: one stretch of risk_ranks, already in risk order.
        clauses = [c.replace("s.probability", "r.probability").replace("s.customer_id", "r.customer_id")
                   for c in clauses] + ["r.as_of = ?", "r.branch = ?"]
        params += [as_of, branch]
        for column, wanted in (("r.segment", segment), ("r.value_band", value)):
            if wanted is not None:
                clauses.append(f"{column} = ?")
                params.append(wanted)
        key, ident = "r.probability", "r.customer_id"
        tables = ("risk_ranks r CROSS JOIN customer_scores s ON s.customer_id = r.customer_id AND s.as_of = r.as_of "
                  "CROSS JOIN customer_features f ON f.customer_id = s.customer_id AND f.as_of = s.as_of "
                  "CROSS JOIN customers c ON c.customer_id = s.customer_id")
    elif narrow:
        params.insert(0, as_of)
        tables = (f"customers c CROSS JOIN {join_s} CROSS JOIN customer_features f ON f.customer_id = s.customer_id "
                  "AND f.as_of = s.as_of")
    elif sort == "risk":
        tables = ("customer_scores s CROSS JOIN customer_features f ON f.customer_id = s.customer_id AND f.as_of = "
                  "s.as_of CROSS JOIN customers c ON c.customer_id = s.customer_id")
    else:
        tables = ("customer_features f CROSS JOIN customer_scores s ON s.customer_id = f.customer_id AND s.as_of = "
                  "f.as_of CROSS JOIN customers c ON c.customer_id = s.customer_id")
    rows = [dict(r) for r in store.query(
        f"SELECT s.customer_id, s.probability, s.risk_band, {reasons} AS reasons, c.branch, g.segment, "
        f"f.balance_now AS balance FROM {tables} "
        "LEFT JOIN customer_segments g ON g.customer_id = s.customer_id AND g.as_of = s.as_of "
        f"WHERE {' AND '.join(clauses)} ORDER BY {key} DESC, {ident} LIMIT ?", (*params, limit))]
    for row in rows:
        row["reasons"] = json.loads(row["reasons"])
    return as_of, rows


@blueprint.route("/churn", endpoint="at_risk")
@requires("customers.read_masked")
def at_risk_page():
    home = current_app.extensions["home"]
    store = home.store
    band = request.args.get("band") if request.args.get("band") in BANDS else None
    value = request.args.get("value") if request.args.get("value") in VALUE_BANDS else None
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else "risk"
    branch = request.args.get("branch", "")[:64] or None
    segment = request.args.get("segment", type=int)
    after_key, after_id = request.args.get("after_key", type=float), request.args.get("after_id", "")[:80]
    as_of, rows = at_risk(store, band=band, branch=branch, segment=segment, value=value, sort=sort,
                          after=(after_key, after_id) if after_key is not None and after_id else None,
                          zh=str(get_locale()).startswith("zh"))
    for row in rows:
        row["shown_id"] = row["customer_id"][:10]  # a pseudonymous token, shortened for reading
    home.audit.record(request.user, "customer.read", page="churn.at_risk", as_of=as_of, band=band, branch=branch,
                      segment=segment, value=value, sort=sort, customers=[r["customer_id"] for r in rows])
    # Each branch by a skip through the branch index: as many lookups as branches, not a scan of customers.
    branches = [r[0] for r in store.query(
        "WITH RECURSIVE b(branch) AS (SELECT min(branch) FROM customers UNION ALL SELECT (SELECT min(branch) "
        "FROM customers WHERE branch > b.branch) FROM b WHERE b.branch IS NOT NULL) "
        "SELECT branch FROM b WHERE branch IS NOT NULL")]
    following = ({"after_key": rows[-1]["probability" if sort == "risk" else "balance"],
                  "after_id": rows[-1]["customer_id"]} if len(rows) == PAGE else None)
    return render_template("churn/list.html", user=request.user, role=request.role, rows=rows, as_of=as_of,
                           bands=BANDS, band=band, branches=branches, branch=branch, segment=segment,
                           values=tuple(VALUE_BANDS), value=value, sorts=SORTS, sort=sort, following=following)
