"""Retention: purge customer-level rows older than `policies/retention.yaml` allows, and audit the counts.
The audit log is out of its reach: no data job deletes audit entries."""

from dataclasses import dataclass
from datetime import date, timedelta

from appliance import model
from appliance.policies import PolicyFile, document
from appliance.store import BY_DAY, Store

MIN_AUDIT_YEARS = 5
_PROTECTED = {"audit_log", "audit_checkpoints", "schema_migrations", "users", "policy_state"}
# The nightly's results, a day's rows per customer each night (about ten tags each): without a rule they grow
# without end. Keyed date first, a purge removes whole days from the front of each table.
PER_DAY = (*BY_DAY, "risk_ranks")


@dataclass(frozen=True)
class Rule:
    table: str
    days: int
    date_column: str | None


@dataclass(frozen=True)
class ClassRule:
    """Values of one data class are cleared once older than `days`, while the rest of their row stays."""
    data_class: str
    days: int
    fields: tuple[tuple[str, str, str], ...]  # (table, field, date column)


CLASSES_WITH_RETENTION = ("free_text",)


@dataclass(frozen=True)
class RetentionPolicy(PolicyFile):
    rules: tuple[Rule, ...]
    audit_log_years: int
    class_rules: tuple[ClassRule, ...] = ()

    FILE = "retention.yaml"

    @classmethod
    def parse(cls, text: str) -> "RetentionPolicy":
        doc, fail = document(text, cls.FILE, ("audit_log_years", "tables", "classes"))
        years = doc.get("audit_log_years", MIN_AUDIT_YEARS)
        if not isinstance(years, int) or years < MIN_AUDIT_YEARS:
            fail(doc.line_of("audit_log_years"), f"audit_log_years must be a whole number of at least {MIN_AUDIT_YEARS}")
        tables = doc.get("tables")
        if not isinstance(tables, dict):
            fail(doc.line_of("tables"), "'tables' must map table names to {days, date}")
        rules = []
        for table, rule in tables.items():
            line = tables.line_of(table)
            if table in _PROTECTED:
                fail(line, f"'{table}' is not purged by retention")
            if table != "quarantine" and table not in model.BY_NAME and table not in PER_DAY:
                fail(line, f"unknown table '{table}'")
            if not isinstance(rule, dict) or not isinstance(rule.get("days"), int) or rule["days"] < 1:
                fail(line, f"{table}: 'days' must be a whole number of at least 1")
            column = rule.get("date")
            if table == "quarantine":
                column = None
            elif table in PER_DAY:
                if column != "as_of":
                    fail(line, f"{table}: 'date' must be as_of (the day the results are for)")
            elif column is None or model.BY_NAME[table].field(column) is None or \
                    model.BY_NAME[table].field(column).type not in ("date", "datetime"):
                fail(line, f"{table}: 'date' must name a date or date-time field of the table")
            rules.append(Rule(table, rule["days"], column))
        classes = doc.get("classes") or {}
        if not isinstance(classes, dict):
            fail(doc.line_of("classes"), "'classes' must map data classes to {days}")
        dated = {r.table: r.date_column for r in rules if r.date_column}
        class_rules = []
        for data_class, rule in classes.items():
            line = classes.line_of(data_class)
            if data_class not in CLASSES_WITH_RETENTION:
                fail(line, f"per-class retention covers {', '.join(CLASSES_WITH_RETENTION)}, not '{data_class}'")
            if not isinstance(rule, dict) or not isinstance(rule.get("days"), int) or rule["days"] < 1:
                fail(line, f"{data_class}: 'days' must be a whole number of at least 1")
            fields = []
            for table in model.TABLES:
                for f in table.fields:
                    if f.free_text:
                        if table.name not in dated:
                            fail(line, f"{data_class}: table '{table.name}' holds free text but has no dated rule "
                                       "under 'tables'")
                        fields.append((table.name, f.name, dated[table.name]))
            class_rules.append(ClassRule(data_class, rule["days"], tuple(fields)))
        return cls(tuple(rules), years, tuple(class_rules))


def purge(store: Store, policy: RetentionPolicy, as_of: date) -> dict[str, int]:
    """Delete rows older than each table rule allows and clear values older than each class rule allows; the
    caller holds the transaction (with its audit entry)."""
    counts = {}
    for rule in policy.rules:
        cutoff = (as_of - timedelta(days=rule.days)).isoformat()
        if rule.table == "quarantine":
            sql = ("DELETE FROM quarantine WHERE batch_id IN "
                   "(SELECT batch_id FROM ingest_batches WHERE finished_at < ?)")
        elif rule.table in PER_DAY:  # the newest day stays, however old: the console and the next run read it
            sql = f"DELETE FROM {rule.table} WHERE as_of < ? AND as_of < (SELECT max(as_of) FROM {rule.table})"
        else:
            sql = f"DELETE FROM {rule.table} WHERE {rule.date_column} < ?"
        counts[rule.table] = store.execute(sql, (cutoff,)).rowcount
    for class_rule in policy.class_rules:
        cutoff = (as_of - timedelta(days=class_rule.days)).isoformat()
        for table, field, column in class_rule.fields:
            counts[f"{table}.{field}"] = store.execute(
                f"UPDATE {table} SET {field} = NULL WHERE {column} < ? AND {field} IS NOT NULL", (cutoff,)).rowcount
    return counts
