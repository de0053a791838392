"""The OpenAPI 3.0 document of /api/v1, written out by hand so that it says exactly what the API promises
(bounds on every parameter, the errors each call may give)."""

_TOKEN = [{"token": []}]
_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _errors(*codes: int) -> dict:
    words = {400: "bad parameter", 401: "no live token", 403: "the token's role may not do this",
             404: "no such thing"}
    return {str(code): {**_ERROR, "description": words[code]} for code in codes}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_LANG = _query("lang", {"type": "string", "enum": ["zh", "en"], "default": "zh"},
               "Language of reasons and names.")
_AS_OF = _query("as_of", {"type": "string", "format": "date"}, "A past run's date (default: the latest).")


def _operation(summary: str, parameters: list, schema: dict, errors: tuple, operation_id: str) -> dict:
    return {"get": {"summary": summary, "operationId": operation_id, "security": _TOKEN, "parameters": parameters,
                    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}},
                                  **_errors(*errors)}}}


def _object(**properties) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties)}


_NULLABLE_DATE = {"type": "string", "nullable": True}


def document() -> dict:
    row = _object(customer_id={"type": "string"}, probability={"type": "number"},
                  risk_band={"type": "string", "enum": ["high", "medium", "low"]},
                  reasons={"type": "array", "items": {"type": "string"}}, branch={"type": "string", "nullable": True},
                  segment={"type": "integer", "nullable": True}, balance={"type": "number", "nullable": True})
    return {
        "openapi": "3.0.3",
        "info": {"title": "Insight Appliance console API", "version": "1",
                 "description": "Read-only. Tokens are created in the console (Account); each acts with its "
                                "user's role. Calls returning customer-level data are audited. Vaulted values "
                                "are never revealed here."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _object(error={"type": "string"})},
        },
        "paths": {
            "/overview": _operation("Customers and the latest churn-risk bands and histogram", [],
                                    _object(customers={"type": "integer"}, scored_as_of=_NULLABLE_DATE,
                                            risk_bands={"type": "object",
                                                        "additionalProperties": {"type": "integer"}},
                                            risk_histogram={"type": "array", "items": {"type": "integer"}}),
                                    (401,), "overview"),
            "/churn": _operation(
                "The at-risk list, riskiest first, a page at a time (audited with its customers)",
                [_query("band", {"type": "string", "enum": ["high", "medium", "low"]}, "Risk band."),
                 _query("branch", {"type": "string", "maxLength": 64}, "Branch code."),
                 _query("segment", {"type": "integer", "minimum": 0, "maximum": 999}, "Segment."),
                 _query("value", {"type": "string", "enum": ["high", "medium", "low"]},
                        "Value band: balance 100,000 or more, 10,000 to 100,000, under 10,000."),
                 _query("sort", {"type": "string", "enum": ["risk", "value"], "default": "risk"},
                        "Riskiest first, or highest balance first."),
                 _query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "Page size."),
                 _query("after_key", {"type": "number"},
                        "With after_id: the next page starts after this row (both from `next`)."),
                 _query("after_id", {"type": "string", "maxLength": 80}, "With after_key."), _LANG],
                _object(as_of=_NULLABLE_DATE, customers={"type": "array", "items": row},
                        next={"type": "object", "nullable": True}),
                (400, 401, 403), "atRisk"),
            "/customers/{customer_id}": {"get": {
                **_operation("One customer's masked 360 view (audited)", [], {"type": "object"}, (400, 401, 403, 404),
                             "customer")["get"],
                "parameters": [{"name": "customer_id", "in": "path", "required": True,
                                "schema": {"type": "string", "maxLength": 80}}, _LANG]}},
            "/segments": _operation("Segment profiles", [_AS_OF, _LANG],
                                    _object(as_of=_NULLABLE_DATE, segments={"type": "array",
                                                                            "items": {"type": "object"}}),
                                    (400, 401, 404), "segments"),
            "/tags": _operation("Tag counts and overlaps of the most held tags", [_AS_OF, _LANG],
                                _object(as_of=_NULLABLE_DATE, tags={"type": "array", "items": {"type": "object"}},
                                        overlaps={"type": "array", "items": {"type": "object"}}),
                                (400, 401, 404), "tags"),
            "/lifecycle": _operation("How customers moved between lifecycle stages since the run before",
                                     [_AS_OF, _LANG],
                                     _object(as_of=_NULLABLE_DATE, flows={"type": "array",
                                                                          "items": {"type": "object"}}),
                                     (400, 401, 404), "lifecycle"),
            "/models": _operation("Installed model cards: metrics, features, drift", [],
                                  _object(models={"type": "array", "items": {"type": "object"}}), (401, 403),
                                  "models"),
            "/campaigns": _operation("Retention campaigns: who made them, when, how many customers, the control share",
                                     [], _object(campaigns={"type": "array", "items": {"type": "object"}}),
                                     (401, 403), "campaigns"),
            "/campaigns/{campaign_id}": {"get": {
                **_operation("A campaign's effect on churn and response, treatment against control, with 95% "
                             "intervals, over time and per segment (aggregates only)", [], {"type": "object"},
                             (401, 403, 404), "campaign")["get"],
                "parameters": [{"name": "campaign_id", "in": "path", "required": True,
                                "schema": {"type": "string", "maxLength": 40}}]}},
            "/jobs": _operation("Recent job runs",
                                [_query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                                        "How many.")],
                                _object(runs={"type": "array", "items": {"type": "object"}}), (400, 401, 403),
                                "jobs"),
        },
    }
