"""Data-subject rights (PIPL art. 44-47): find a person by an identifier staff type in, report what the box
holds about them, erase them everywhere.

The identifier typed in is only hashed to its token, never stored or logged. Erasure removes the customer's
canonical rows, quarantine rows and vault entries, and everything derived later (features, scores, tags)
through the registry below, which later modules join with `register_erasure`. Aggregates already exported
are not recalled. The audit log keeps its entries (tokens and counts only) for the period policy requires.
"""

import importlib
from dataclasses import dataclass, field

from appliance.errors import SubjectError
from appliance.protect import Tokenizer, Vault
from appliance.store import BY_DAY, Store, each_day

FINDABLE = {"id_number": "id_number", "phone": "phone", "email": "email", "name": "name"}
PII_FIELDS = ("name", "id_number", "phone", "email", "address")
MASK_ENTITIES = {"phone": ("CN_MOBILE", "CN_LANDLINE"), "id_number": ("CN_RESIDENT_ID",),
                 "name": ("CN_PERSON", "EN_PERSON"), "email": ("EMAIL",), "address": ("CN_ADDRESS",)}


@dataclass(frozen=True)
class Derived:
    """A table of derived data keyed by customer token (features, scores, tags...)."""

    table: str
    column: str = "customer_id"


_DERIVED: list[Derived] = []
# The modules that register derived tables. A registration runs when its module is imported, and a command
# that erases need not import them (the command line's `subject erase` did not, and left scores and tags):
# the registry loads them itself before it is read. A test checks every register_erasure call is listed.
DERIVING_MODULES = ("appliance.campaigns", "appliance.features", "appliance.scoring", "appliance.tagging")


def _derived() -> list[Derived]:
    for module in DERIVING_MODULES:
        importlib.import_module(module)
    return _DERIVED


def register_erasure(table: str, column: str = "customer_id") -> None:
    """Modules that derive per-customer data join erasure here, so `subject erase` reaches their rows."""
    if not any(d.table == table and d.column == column for d in _DERIVED):
        _DERIVED.append(Derived(table, column))


@dataclass
class Subject:
    customer: str
    accounts: list[str] = field(default_factory=list)
    pii_tokens: dict[str, str] = field(default_factory=dict)  # field -> token


def find(store: Store, tokenizer: Tokenizer, kind: str, value: str, namespace: str | None = None) -> list[str]:
    """Customer tokens whose `kind` (id_number, phone, email, name, or customer_id within a source's
    namespace) equals the typed value."""
    if kind == "customer_id":
        if not namespace:
            raise SubjectError("finding by customer number needs the source it came from (--source)")
        token = tokenizer.token("customer", value, namespace)
        return [r[0] for r in store.query("SELECT customer_id FROM customers WHERE customer_id = ?", (token,))]
    if kind not in FINDABLE:
        raise SubjectError(f"cannot find by '{kind}' (by: {', '.join([*FINDABLE, 'customer_id'])})")
    token = tokenizer.token(FINDABLE[kind], value)
    return [r[0] for r in store.query(f"SELECT customer_id FROM customers WHERE {kind} = ?", (token,))]


def load(store: Store, customer: str) -> Subject:
    row = store.query(f"SELECT customer_id, {', '.join(PII_FIELDS)} FROM customers WHERE customer_id = ?",
                      (customer,))
    accounts = [r[0] for r in store.query("SELECT account_id FROM accounts WHERE customer_id = ?", (customer,))]
    if not row and not accounts:
        raise SubjectError("no customer with that token")
    tokens = {f: row[0][f] for f in PII_FIELDS if row and row[0][f]}
    return Subject(customer, accounts, tokens)


def _related(subject: Subject) -> list[tuple[str, str, list[str]]]:
    """(table, column, values) whose rows belong to the subject."""
    related = [("customers", "customer_id", [subject.customer]), ("accounts", "customer_id", [subject.customer])]
    for table in ("transactions", "product_holdings"):
        related += [(table, "customer_id", [subject.customer]), (table, "account_id", subject.accounts)]
    for table in ("interactions", "digital_events", "campaign_responses"):
        related.append((table, "customer_id", [subject.customer]))
    related += [(d.table, d.column, [subject.customer]) for d in _derived()]
    return [(t, c, v) for t, c, v in related if v]


def _where(table: str, column: str, values: list[str]) -> tuple[str, list[str]]:
    clause = f"{column} IN ({', '.join('?' * len(values))})"
    if table in BY_DAY:  # keyed date first: a lookup per day, not a read of every day's rows
        clause = f"as_of IN (WITH RECURSIVE {each_day(table)} SELECT d FROM days) AND {clause}"
    return clause, values


def report(store: Store, vault: Vault, subject: Subject, *, reveal: frozenset[str] = frozenset()) -> dict:
    """What the box holds: rows per table, masked texts, and the raw values of the vaulted fields named in
    `reveal` (as customers.<field>, what the purpose policy lets the reader reveal)."""
    held: dict = {"customer": subject.customer, "accounts": len(subject.accounts), "rows": {}}
    existing = set(store.tables())
    for table, column, values in _related(subject):
        if table in existing:
            clause, params = _where(table, column, values)
            held["rows"][f"{table}.{column}"] = store.scalar(f"SELECT count(*) FROM {table} WHERE {clause}", params)
    held["quarantine_rows"] = len(_quarantine_ids(store, subject))
    held["notes"] = [r[0] for r in store.query("SELECT text FROM interactions WHERE customer_id = ? AND text IS NOT NULL "
                                               "ORDER BY occurred_at", (subject.customer,))]
    held["vaulted_fields"] = sorted(f for f, t in subject.pii_tokens.items()
                                    if store.scalar("SELECT 1 FROM vault WHERE domain = ? AND token = ?", (f, t)))
    if reveal:
        held["revealed"] = {f: vault.reveal(f, subject.pii_tokens[f]) for f in held["vaulted_fields"]
                            if f"customers.{f}" in reveal}
    return held


def _quarantine_ids(store: Store, subject: Subject) -> list[int]:
    tokens = [subject.customer, *subject.accounts, *subject.pii_tokens.values()]
    ids = set()
    for token in tokens:
        ids |= {r[0] for r in store.query("SELECT quarantine_id FROM quarantine WHERE instr(protected_row, ?) > 0",
                                          (f"tok:{token}",))}
    return sorted(ids)


def erase(store: Store, subject: Subject) -> dict[str, int]:
    """Remove the subject everywhere; the caller holds the write transaction (with its audit entry)."""
    counts: dict[str, int] = {}
    existing = set(store.tables())
    for table, column, values in _related(subject):
        if table not in existing:
            continue
        clause, params = _where(table, column, values)
        removed = store.execute(f"DELETE FROM {table} WHERE {clause}", params).rowcount
        if removed:
            counts[table] = counts.get(table, 0) + removed
    quarantined = _quarantine_ids(store, subject)
    for quarantine_id in quarantined:
        store.execute("DELETE FROM quarantine WHERE quarantine_id = ?", (quarantine_id,))
    counts["quarantine"] = len(quarantined)
    vaulted = 0
    for field_name, token in subject.pii_tokens.items():
        # A name or address token is shared by everyone with the same value: keep it while others hold it.
        if not store.scalar(f"SELECT 1 FROM customers WHERE {field_name} = ? LIMIT 1", (token,)):
            vaulted += store.execute("DELETE FROM vault WHERE domain = ? AND token = ?", (field_name, token)).rowcount
    counts["vault"] = vaulted
    counts["mentions"] = _unlink_mentions(store, subject)
    return counts


def _orphaned(column: str) -> str:
    return f"{column} NOT IN (SELECT customer_id FROM customers)"


def leftovers(store: Store) -> dict[str, int]:
    """Derived rows whose customer is gone, per table: what `subject erase` on the command line left before it
    loaded the modules that register derived tables (releases before schema 15). A customer row leaves the
    store only by erasure, so such rows belong to people who asked to be erased."""
    existing = set(store.tables())
    found = {d.table: store.scalar(f"SELECT count(*) FROM {d.table} WHERE {_orphaned(d.column)}")
             for d in _derived() if d.table in existing}
    return {table: n for table, n in found.items() if n}


def erase_leftovers(store: Store) -> dict[str, int]:
    """Remove the rows `leftovers` counts; the caller holds the write transaction (with its audit entry)."""
    existing = set(store.tables())
    removed = {d.table: store.execute(f"DELETE FROM {d.table} WHERE {_orphaned(d.column)}").rowcount
               for d in _derived() if d.table in existing}
    return {table: n for table, n in removed.items() if n}


def _unlink_mentions(store: Store, subject: Subject) -> int:
    """Other customers' notes may mention the subject by keyed token (`<CN_MOBILE:ab12...>`): those tokens
    become bare placeholders, so nothing left links back to the erased person."""
    from appliance.pii.operators import TOKEN_CHARS

    changed = 0
    for field_name, token in subject.pii_tokens.items():
        for entity in MASK_ENTITIES.get(field_name, ()):
            marker = f"<{entity}:{token[:TOKEN_CHARS]}>"
            for table, column in (("interactions", "text"), ("transactions", "memo")):
                changed += store.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?) "
                                         f"WHERE instr({column}, ?) > 0", (marker, f"<{entity}>", marker)).rowcount
    return changed
