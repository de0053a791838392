"""The JSON API, /api/v1: the console's data for other tools of the bank, read-only. Each call carries a
per-user token (`Authorization: Bearer iat_...`, see appliance.api_tokens), never a session cookie, so no
other site can make a browser call it; the token acts with its user's current role under the same permission
table as the pages, and every call that returns customer-level data is in the audit log with its customers
and the token's id. Vaulted values are never revealed through the API: a reveal needs a person, a purpose,
a reason and the second factor, in the console. The OpenAPI document is /api/v1/openapi.json."""

import functools

from flask import Blueprint, current_app, jsonify, request

from appliance.access import PERMISSIONS
from appliance.api_tokens import ApiTokens
from appliance import campaigns as retention
from appliance.web import churn, customers, insights

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
BANDS = churn.BANDS
MAX_LIMIT = 200


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@blueprint.errorhandler(ApiError)
def _api_error(error: ApiError):
    response = jsonify({"error": error.message})
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="insight-appliance"'
    return response, error.status


def _holder():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "send an API token: Authorization: Bearer <token>")
    found = ApiTokens(current_app.extensions["home"].store).holder(token.strip())
    if found is None:
        raise ApiError(401, "the token is unknown, expired or revoked, or its user is disabled")
    return found


def permitted(permission: str | None):
    """A call for a live token whose user's role holds the permission (None: any role)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user, role, token_id = _holder()
            if permission is not None and role not in PERMISSIONS[permission]:
                raise ApiError(403, f"role '{role}' may not do this: it needs {permission}")
            request.user, request.role, request.token_id = user, role, token_id
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _language() -> bool:
    """Reasons and names in Chinese unless ?lang=en."""
    lang = request.args.get("lang", "zh")
    if lang not in ("zh", "en"):
        raise ApiError(400, "lang is zh or en")
    return lang == "zh"


def _int(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def _text(name: str, length: int) -> str | None:
    value = request.args.get(name)
    if value is not None and (len(value) > length or not value.isprintable()):
        raise ApiError(400, f"{name}: at most {length} printable characters")
    return value or None


def _date(name: str) -> str | None:
    from datetime import date

    value = _text(name, 10)
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ApiError(400, f"{name} is a date, YYYY-MM-DD") from None
    return value


def _as_of(table: str) -> str | None:
    store = current_app.extensions["home"].store
    wanted = _date("as_of")
    if wanted:
        if not store.scalar(f"SELECT 1 FROM {table} WHERE as_of = ? LIMIT 1", (wanted,)):
            raise ApiError(404, f"nothing as of {wanted}")
        return wanted
    return store.scalar(f"SELECT max(as_of) FROM {table}")


@blueprint.route("/openapi.json")
def openapi():
    from appliance.web.openapi import document

    return jsonify(document())


@blueprint.route("/overview")
@permitted(None)
def overview():
    from appliance.web.overview import risk_figures

    store = current_app.extensions["home"].store
    as_of, bands, bins = risk_figures(store)
    return jsonify({"customers": store.scalar("SELECT count(*) FROM customers"), "scored_as_of": as_of,
                    "risk_bands": bands, "risk_histogram": bins})


@blueprint.route("/churn")
@permitted("customers.read_masked")
def at_risk():
    band = _text("band", 6)
    if band is not None and band not in BANDS:
        raise ApiError(400, f"band is one of {', '.join(BANDS)}")
    value = _text("value", 6)
    if value is not None and value not in churn.VALUE_BANDS:
        raise ApiError(400, f"value is one of {', '.join(churn.VALUE_BANDS)}")
    sort = _text("sort", 5) or "risk"
    if sort not in churn.SORTS:
        raise ApiError(400, f"sort is one of {', '.join(churn.SORTS)}")
    branch, segment = _text("branch", 64), _int("segment", None, 0, 999)
    limit = _int("limit", churn.PAGE, 1, MAX_LIMIT)
    after_id = _text("after_id", 80)
    after_key = request.args.get("after_key")
    after = None
    if after_key is not None or after_id is not None:
        try:
            after = (float(after_key), after_id)
        except (TypeError, ValueError):
            raise ApiError(400, "after_key (a number, from `next`) and after_id go together") from None
        if after_id is None or after[0] != after[0] or abs(after[0]) == float("inf"):
            raise ApiError(400, "after_key (a number, from `next`) and after_id go together")
    home = current_app.extensions["home"]
    as_of, rows = churn.at_risk(home.store, band=band, branch=branch, segment=segment, value=value, sort=sort,
                                after=after, limit=limit, zh=_language())
    home.audit.record(request.user, "customer.read", page="api.churn", token=request.token_id, as_of=as_of,
                      band=band, branch=branch, segment=segment, value=value, sort=sort,
                      customers=[r["customer_id"] for r in rows])
    following = ({"after_key": rows[-1]["probability" if sort == "risk" else "balance"],
                  "after_id": rows[-1]["customer_id"]} if len(rows) == limit else None)
    return jsonify({"as_of": as_of, "customers": rows, "next": following})


@blueprint.route("/customers/<customer_id>")
@permitted("customers.read_masked")
def customer(customer_id):
    home = current_app.extensions["home"]
    zh = _language()
    found = customers.find(home.store, customer_id)
    if found is None:
        raise ApiError(404, "no customer with that token")
    home.audit.record(request.user, "customer.read", page="api.customer", token=request.token_id,
                      customers=[found["customer_id"]])
    return jsonify(customers.record(home, found, zh))


@blueprint.route("/segments")
@permitted(None)
def segments():
    store = current_app.extensions["home"].store
    as_of = _as_of("segment_profiles")
    return jsonify({"as_of": as_of, "segments": insights.segment_profiles(store, as_of, _language())})


@blueprint.route("/tags")
@permitted(None)
def tags():
    store = current_app.extensions["home"].store
    zh = _language()
    as_of = _as_of("tag_overlaps")
    names = insights.tag_names(zh)
    counts = insights.tag_counts(store, as_of)
    top = [tag for tag, _n in counts[:insights.HEATMAP_TAGS]]
    pairs = insights.tag_pairs(store, as_of, top) if as_of else {}
    return jsonify({"as_of": as_of,
                    "tags": [{"tag": t, "name": names.get(t, t), "customers": n} for t, n in counts],
                    "overlaps": [{"first": a, "second": b, "customers": n} for (a, b), n in pairs.items() if a < b]})


@blueprint.route("/lifecycle")
@permitted(None)
def lifecycle():
    store = current_app.extensions["home"].store
    as_of = _as_of("lifecycle_flows")
    _language()
    return jsonify({"as_of": as_of, "flows": insights.lifecycle_flows(store, as_of)})


@blueprint.route("/models")
@permitted("insights.read")
def models():
    cards = insights.model_cards(current_app.extensions["home"].path / "models")
    keep = ("kind", "sha256", "created_at", "target", "scope", "metrics", "feature_info", "drift", "file",
            "unreadable")
    return jsonify({"models": [{k: card[k] for k in keep if k in card} for card in cards]})


@blueprint.route("/jobs")
@permitted("insights.read")
def jobs():
    limit = _int("limit", 50, 1, MAX_LIMIT)
    return jsonify({"runs": insights.job_runs(current_app.extensions["home"].store, limit)})


@blueprint.route("/campaigns")
@permitted("campaign.read")
def campaigns():
    return jsonify({"campaigns": retention.listing(current_app.extensions["home"].store)})


@blueprint.route("/campaigns/<campaign_id>")
@permitted("campaign.read")
def campaign(campaign_id):
    """A campaign's effect: aggregates only (rates, differences, intervals, group sizes), never its members."""
    try:
        return jsonify(retention.effect(current_app.extensions["home"].store, campaign_id[:40]))
    except retention.CampaignError:
        raise ApiError(404, "no such campaign") from None
