"""The canonical bank model: what every source is mapped onto.

Field types drive validation on ingest. A field with a token domain holds keyed pseudonymous tokens; fields
of one domain join across tables and sources (within a mapping's `id_namespace`). Each table also has
`source`, `batch_id` and `attributes` (JSON of source-specific extras), added by ingestion.
The store's migrations create these tables; a test checks that the two agree.
"""

from dataclasses import dataclass

TYPES = ("text", "integer", "decimal", "date", "datetime", "boolean")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    token_domain: str | None = None
    free_text: bool = False
    help: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    fields: tuple[Field, ...]
    help: str = ""

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


def _token(name: str, domain: str, help: str = "") -> Field:
    return Field(name, "text", token_domain=domain, help=help)


CUSTOMER = _token("customer_id", "customer", "the bank's customer number, tokenised")
ACCOUNT = _token("account_id", "account", "account number, tokenised")

TABLES: tuple[Table, ...] = (
    Table("customers", "customer_id", (
        CUSTOMER,
        _token("name", "name"), _token("id_number", "id_number"), _token("phone", "phone"),
        _token("email", "email"), _token("address", "address"),
        Field("gender", "text", help="F, M or U"),
        Field("birth_year", "integer"),
        Field("age", "integer", help="age as reported by the source at export time, when no birth date"),
        Field("region", "text"), Field("city", "text"), Field("branch", "text"),
        Field("segment", "text", help="the bank's own customer segment"),
        Field("joined_on", "date"), Field("status", "text"), Field("closed_on", "date"),
        Field("tenure_years", "integer", help="tenure as reported by the source, when no join date"),
        Field("credit_score", "integer"), Field("income", "decimal"),
        Field("total_balance", "decimal", help="CRM snapshot of balances held"),
        Field("product_count", "integer", help="CRM snapshot of products held"),
        Field("has_credit_card", "boolean"), Field("is_active", "boolean"),
        Field("churn_label", "boolean", help="1 if the source marks the customer as having left"),
    ), "one row per customer"),
    Table("branches", "branch_id", (
        Field("branch_id", "text"), Field("name", "text"), Field("region", "text"), Field("city", "text"),
    ), "branch or district reference data"),
    Table("accounts", "account_id", (
        ACCOUNT, CUSTOMER,
        Field("product", "text"), Field("account_type", "text"), Field("currency", "text"),
        Field("branch", "text"), Field("opened_on", "date"), Field("closed_on", "date"),
        Field("status", "text"), Field("balance", "decimal"), Field("credit_limit", "decimal"),
    )),
    Table("transactions", "transaction_id", (
        _token("transaction_id", "transaction"), ACCOUNT, CUSTOMER,
        Field("booked_at", "datetime"), Field("amount", "decimal"),
        Field("direction", "text", help="credit or debit"),
        Field("balance_after", "decimal"), Field("currency", "text"),
        Field("channel", "text", help="branch, atm, pos, app, web, transfer, other"),
        Field("category", "text"),
        _token("counterparty", "counterparty", "counterparty account, tokenised"),
        Field("memo", "text", free_text=True),
    )),
    Table("product_holdings", "holding_id", (
        _token("holding_id", "holding"), CUSTOMER, ACCOUNT,
        Field("product_code", "text"), Field("product_name", "text"), Field("category", "text"),
        Field("opened_on", "date"), Field("closed_on", "date"), Field("status", "text"),
        Field("amount", "decimal"),
    )),
    Table("interactions", "interaction_id", (
        _token("interaction_id", "interaction"), CUSTOMER,
        Field("occurred_at", "datetime"),
        Field("kind", "text", help="complaint, call_note, feedback or chat"),
        Field("channel", "text"), Field("category", "text"),
        Field("text", "text", free_text=True), Field("resolved", "boolean"),
    )),
    Table("digital_events", "event_id", (
        _token("event_id", "event"), CUSTOMER,
        Field("occurred_at", "datetime"), Field("channel", "text", help="app or web"),
        Field("event_type", "text"), _token("device_id", "device"),
    )),
    Table("campaigns", "campaign_id", (
        Field("campaign_id", "text"), Field("name", "text"), Field("channel", "text"),
        Field("objective", "text"), Field("starts_on", "date"), Field("ends_on", "date"),
    )),
    Table("campaign_responses", "response_id", (
        _token("response_id", "response"), Field("campaign_id", "text"), CUSTOMER,
        Field("group_name", "text", help="treatment or control"),
        Field("contacted_at", "datetime"), Field("responded_at", "datetime"), Field("outcome", "text"),
    )),
)

BY_NAME = {t.name: t for t in TABLES}
COMMON_COLUMNS = ("source", "batch_id", "attributes")
