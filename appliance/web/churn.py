"""The at-risk list: the latest churn scores, riskiest first, filtered by branch, segment and risk band, a
page at a time (keyset pagination: the next page starts after the last row shown, so a page costs the same at
any depth). Customer-level data: each page shown is in the audit log with the customers on it. No download."""

import json

from flask import Blueprint, current_app, render_template, request
from flask_babel import get_locale

from appliance.web.auth import requires

blueprint = Blueprint("churn", __name__)
PAGE = 50
BANDS = ("high", "medium", "low")


def at_risk(store, *, band=None, branch=None, segment=None, after: tuple[float, str] | None = None,
            limit: int = PAGE, zh: bool = False) -> tuple[str | None, list[dict]]:
    """(the latest scoring date, a page of its scores riskiest first, after the row `after`), each row with its
    reasons in the reader's language. The page and the API read the same."""
    as_of = store.scalar("SELECT max(as_of) FROM customer_scores")  # customer_scores_rank answers at once
    if not as_of:
        return None, []
    clauses, params = ["s.as_of = ?"], [as_of]
    for clause, value in (("s.risk_band = ?", band), ("c.branch = ?", branch), ("g.segment = ?", segment)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if after is not None:
        clauses.append("(s.probability < ? OR (s.probability = ? AND s.customer_id > ?))")
        params += [after[0], after[0], after[1]]
    reasons = "s.reasons_zh" if zh else "s.reasons_en"
    rows = [dict(r) for r in store.query(
        f"SELECT s.customer_id, s.probability, s.risk_band, {reasons} AS reasons, c.branch, g.segment "
        "FROM customer_scores s JOIN customers c ON c.customer_id = s.customer_id "
        "LEFT JOIN customer_segments g ON g.customer_id = s.customer_id AND g.as_of = s.as_of "
        f"WHERE {' AND '.join(clauses)} ORDER BY s.probability DESC, s.customer_id LIMIT ?", (*params, limit))]
    for row in rows:
        row["reasons"] = json.loads(row["reasons"])
    return as_of, rows


@blueprint.route("/churn", endpoint="at_risk")
@requires("customers.read_masked")
def at_risk_page():
    home = current_app.extensions["home"]
    store = home.store
    band = request.args.get("band") if request.args.get("band") in BANDS else None
    branch = request.args.get("branch", "")[:64] or None
    segment = request.args.get("segment", type=int)
    after_p, after_id = request.args.get("after_p", type=float), request.args.get("after_id", "")[:80]
    as_of, rows = at_risk(store, band=band, branch=branch, segment=segment,
                          after=(after_p, after_id) if after_p is not None and after_id else None,
                          zh=str(get_locale()).startswith("zh"))
    for row in rows:
        row["shown_id"] = row["customer_id"][:10]  # a pseudonymous token, shortened for reading
    home.audit.record(request.user, "customer.read", page="churn.at_risk", as_of=as_of, band=band, branch=branch,
                      segment=segment, customers=[r["customer_id"] for r in rows])
    # Each branch by a skip through the branch index: as many lookups as branches, not a scan of customers.
    branches = [r[0] for r in store.query(
        "WITH RECURSIVE b(branch) AS (SELECT min(branch) FROM customers UNION ALL SELECT (SELECT min(branch) "
        "FROM customers WHERE branch > b.branch) FROM b WHERE b.branch IS NOT NULL) "
        "SELECT branch FROM b WHERE branch IS NOT NULL")]
    following = ({"after_p": rows[-1]["probability"], "after_id": rows[-1]["customer_id"]}
                 if len(rows) == PAGE else None)
    return render_template("churn/list.html", user=request.user, role=request.role, rows=rows, as_of=as_of,
                           bands=BANDS, band=band, branches=branches, branch=branch, segment=segment,
                           following=following)
