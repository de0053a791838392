"""The encrypted store: the only module that imports sqlcipher3 and owns the connection.

Durability: WAL journal with `synchronous=FULL`, so a batch reported committed has been fsynced to the WAL
and survives a power cut (WAL with `synchronous=NORMAL` may lose the last commits). WAL also lets the
console read while a batch is written. SQLCipher encrypts WAL pages like database pages; the `-shm`
index holds page numbers only. Temporary tables and indices stay in memory, because SQLite's temp files
would not be encrypted. The file starts with no SQLite header. Copies go through the backup API only.
"""

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import sqlcipher3

from appliance.errors import StoreError, StoreWriteError, os_reason
from appliance.failpoints import failpoint

DatabaseError = sqlcipher3.Error  # for modules that must tell a database failure apart, without the driver
_WRITES = {sqlcipher3.SQLITE_INSERT, sqlcipher3.SQLITE_UPDATE, sqlcipher3.SQLITE_DELETE, sqlcipher3.SQLITE_CREATE_TABLE,
           sqlcipher3.SQLITE_DROP_TABLE, sqlcipher3.SQLITE_ALTER_TABLE, sqlcipher3.SQLITE_ATTACH,
           sqlcipher3.SQLITE_PRAGMA}

_TEMP_SCHEMA = {sqlcipher3.SQLITE_CREATE_TEMP_TABLE, sqlcipher3.SQLITE_DROP_TEMP_TABLE,
                sqlcipher3.SQLITE_CREATE_TEMP_INDEX, sqlcipher3.SQLITE_DROP_TEMP_INDEX,
                sqlcipher3.SQLITE_CREATE_TEMP_VIEW, sqlcipher3.SQLITE_DROP_TEMP_VIEW,
                sqlcipher3.SQLITE_CREATE_TEMP_TRIGGER, sqlcipher3.SQLITE_DROP_TEMP_TRIGGER}

_MIGRATIONS: list[tuple[int, str, Callable]] = []
MIN_FREE_BYTES = 1 << 20  # below this, an open that fails is put down to the full disk


def store_files(path: Path) -> list[Path]:
    """A store's file and the WAL and shared-memory files SQLite keeps beside it."""
    return [Path(path), Path(f"{path}-wal"), Path(f"{path}-shm")]


def latest_schema() -> int:
    return max((v for v, _, _ in _MIGRATIONS), default=0)


def migration(version: int, name: str):
    """Register a schema migration; `Store.migrate` runs the pending ones in one transaction and records them."""

    def register(func: Callable):
        if any(v == version for v, _, _ in _MIGRATIONS):
            raise RuntimeError(f"duplicate migration {version}")
        _MIGRATIONS.append((version, name, func))
        _MIGRATIONS.sort(key=lambda m: m[0])
        return func

    return register


def translate(exc: Exception) -> StoreError:
    """SQLite's error as an operator reads it: a full disk, a read-only file system and a failing disk are
    write errors (exit 6); a damaged file is a store error (exit 4). The driver's text is matched, not shown."""
    text = str(exc).lower()
    if "disk is full" in text or "database or disk is full" in text:
        return StoreWriteError("the store cannot be written: disk full")
    if "readonly" in text or "read-only" in text:
        return StoreWriteError("the store cannot be written: read-only file system")
    if "disk i/o error" in text:
        return StoreWriteError("the store cannot be written: input/output error on the disk (or the disk is full)")
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return StoreError("the store is damaged (a page failed its check); restore it from a backup")
    if "locked" in text or "busy" in text:
        return StoreError("the store is busy with another writer; try again")
    return StoreError(f"the store refused the operation ({type(exc).__name__})")


def _unwritable(folder: Path) -> str | None:
    """Why nothing can be written in `folder`, when that is so: a read-only mount, or (almost) no space."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return "read-only file system"
    if stats.f_bavail * stats.f_frsize < MIN_FREE_BYTES:
        return "disk full"
    return None


def _key_pragma(key: bytes) -> str:
    # A raw 256-bit key in SQLCipher's blob-literal form: no per-connection KDF.
    return f"PRAGMA key = \"x'{key.hex()}'\""


class Store:
    def __init__(self, path: Path, key: bytes, *, busy_timeout_ms: int = 30_000, cache_mib: int = 64,
                 create: bool = False):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"no store at {self.path}")
        try:
            self.conn = sqlcipher3.connect(str(self.path), isolation_level=None, timeout=busy_timeout_ms / 1000,
                                           check_same_thread=False)
            self.conn.execute("PRAGMA cipher_log_level = NONE")
            self.conn.execute(_key_pragma(key))
            self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            self.conn.execute("PRAGMA journal_mode = WAL").fetchone()
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA temp_store = MEMORY")
            # Tokens are random, so key inserts land all over their B-trees: a larger cache saves re-reads.
            self.conn.execute(f"PRAGMA cache_size = -{int(cache_mib) * 1024}")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        except sqlcipher3.DatabaseError as exc:
            cause = _unwritable(self.path.parent)
            if cause:
                raise StoreWriteError(f"{self.path.name} cannot be opened: {cause}") from None
            translated = translate(exc)
            if isinstance(translated, StoreWriteError):
                raise translated from None
            raise StoreError(f"{self.path.name} cannot be opened with this home's key: "
                             "the store is corrupt or belongs to another home") from None
        self.conn.row_factory = sqlcipher3.Row

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so writers queue instead of failing late.
        A failure inside or at the commit rolls everything back; a full disk, a read-only mount or a damaged
        file is reported as such."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlcipher3.OperationalError as exc:
            translated = translate(exc)
            if type(translated) is StoreError:
                raise StoreError("the store is busy with another writer; try again") from None
            raise translated from None
        try:
            yield self
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlcipher3.DatabaseError:
                    pass  # the transaction is gone already (SQLite rolls back on some I/O errors)
            if isinstance(exc, sqlcipher3.DatabaseError):
                raise translate(exc) from None
            raise

    def execute(self, sql: str, params: Sequence | dict = ()):
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence]):
        return self.conn.executemany(sql, rows)

    def query(self, sql: str, params: Sequence | dict = ()) -> list[sqlcipher3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def rows(self, sql: str, params: Sequence | dict = ()) -> list[tuple]:
        """Plain tuples: cheaper than Row objects for bulk reads into a DataFrame."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Sequence | dict = ()):
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def keyed_rows(self, name: str, columns: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
        """These rows in a temporary table (`temp.<name>`, keyed by its first column) for the block, to join
        in key order where a join to a stored table would look each row up at a random place in it. Emptied
        after the block: temporary tables live in memory (temp_store)."""
        key = columns[0].split()[0]
        self.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({', '.join(columns)}, PRIMARY KEY ({key})) "
                     "WITHOUT ROWID")
        self.execute(f"DELETE FROM temp.{name}")
        self.executemany(f"INSERT INTO temp.{name} VALUES ({', '.join('?' * len(columns))})", rows)
        try:
            yield f"temp.{name}"
        finally:
            self.execute(f"DELETE FROM temp.{name}")

    @contextmanager
    def reading_only(self, tables: Iterable[str], scratch: str | None = None) -> Iterator["Store"]:
        """Within the block this connection may read only `tables` and write nothing (SQLite's authorizer
        refuses the statement), so code that must never see the vault provably cannot. `scratch` names one
        temporary table (in memory: temp_store) the block may create, fill, read and drop."""
        allowed = frozenset(tables)

        def authorize(action, table, column, database, inner):
            if action in _TEMP_SCHEMA:
                return sqlcipher3.SQLITE_OK if scratch and table == scratch else sqlcipher3.SQLITE_DENY
            if scratch and database == "temp" and table in (scratch, "sqlite_temp_master"):
                return sqlcipher3.SQLITE_OK
            if action == sqlcipher3.SQLITE_READ:
                return sqlcipher3.SQLITE_OK if table in allowed else sqlcipher3.SQLITE_DENY
            if action in _WRITES:
                return sqlcipher3.SQLITE_DENY
            return sqlcipher3.SQLITE_OK

        self.conn.set_authorizer(authorize)
        try:
            yield self
        except sqlcipher3.DatabaseError as exc:
            if "not authorized" in str(exc):
                raise StoreError("a read outside this operation's tables was refused") from None
            raise
        finally:
            self.conn.set_authorizer(None)

    def tables(self) -> list[str]:
        return [r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self.query(f"PRAGMA table_info({table})")]

    # Schema -----------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        if "schema_migrations" not in self.tables():
            return 0
        return self.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations")

    def migrate(self, before: Callable[[], object] | None = None) -> list[int]:
        """Apply pending migrations in order, all in one transaction: a failure anywhere leaves the store
        exactly as it was, at its old version, so the release before still opens it. `before` runs first
        when a store that already holds data is about to change (the automatic backup). Returns the
        versions applied."""
        self.conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                          "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
        current = self.schema_version()
        known = latest_schema()
        if current > known:
            raise StoreError(f"the store is at schema version {current}, newer than this appliance ({known})")
        pending = [m for m in _MIGRATIONS if m[0] > current]
        if not pending:
            return []
        if before is not None and current > 0:
            before()
        version, name = current, ""
        try:
            with self.transaction():
                for version, name, func in pending:
                    func(self)
                    self.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, time.time()))
                    failpoint("migrate.applied")
        except StoreWriteError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of any step: report it as one line
            raise StoreError(f"the upgrade failed at migration {version} ({name}: {type(exc).__name__}); the "
                             f"store is unchanged at schema version {current}") from None
        return [m[0] for m in pending]

    # Keys and copies --------------------------------------------------------------------------------
    def rekey(self, new_key: bytes) -> None:
        try:
            self.conn.execute(f"PRAGMA rekey = \"x'{new_key.hex()}'\"")
            # Into the main file at once: until then, pages under the new key live only in the WAL.
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlcipher3.DatabaseError as exc:
            raise translate(exc) from None

    def integrity_problems(self) -> list[str]:
        """What SQLCipher's page check (HMAC of every page) and SQLite's structure check find; empty when
        the store is sound. Messages name pages and tables, never values."""
        try:
            cipher = [str(r[0]) for r in self.conn.execute("PRAGMA cipher_integrity_check").fetchall()]
            structure = [str(r[0]) for r in self.conn.execute("PRAGMA integrity_check").fetchall()]
        except sqlcipher3.DatabaseError as exc:
            return [f"unreadable ({translate(exc).message})"]
        return cipher + [line for line in structure if line != "ok"]

    def backup_to(self, target: Path, key: bytes) -> None:
        """A consistent encrypted copy through SQLite's backup API, never a copy of the live file. The copy is
        checked before it takes its name; a failed or damaged copy leaves nothing behind."""
        target = Path(target)
        if target.exists():
            raise StoreError(f"{target} exists; refusing to overwrite it")
        partial = target.with_name(f".{target.name}.partial")
        for leftover in store_files(partial):
            leftover.unlink(missing_ok=True)
        try:
            copy = Store(partial, key, create=True)
            try:
                self.conn.backup(copy.conn)
                failpoint("backup.copied")
                copy.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                copy.conn.execute("PRAGMA journal_mode = DELETE").fetchall()  # one self-contained file
                problems = copy.integrity_problems()
            finally:
                copy.close()
            if problems:
                raise StoreError(f"the copy failed its integrity check ({len(problems)} problems); nothing kept")
            os.replace(partial, target)
        except sqlcipher3.DatabaseError as exc:
            raise translate(exc) from None
        except OSError as exc:
            raise StoreWriteError(f"the backup cannot be written to {target.parent}: {os_reason(exc)}") from None
        finally:
            for leftover in store_files(partial):
                leftover.unlink(missing_ok=True)


# Migrations ----------------------------------------------------------------------------------------
def _run_script(store: Store, script: str) -> None:
    # Not executescript(): it commits the open transaction first, and a migration must be atomic.
    for statement in script.split(";"):
        if statement.strip():
            store.execute(statement)


_COMMON = "source TEXT NOT NULL, batch_id INTEGER NOT NULL, attributes TEXT"


@migration(1, "canonical bank model, batches, quarantine, vault")
def _canonical_model(store: Store) -> None:
    _run_script(store, f"""
    CREATE TABLE customers (
        customer_id TEXT PRIMARY KEY, name TEXT, id_number TEXT, phone TEXT, email TEXT, address TEXT,
        gender TEXT, birth_year INTEGER, age INTEGER, region TEXT, city TEXT, branch TEXT, segment TEXT,
        joined_on TEXT, status TEXT, closed_on TEXT, tenure_years INTEGER, credit_score INTEGER,
        income REAL, total_balance REAL, product_count INTEGER, has_credit_card INTEGER, is_active INTEGER,
        churn_label INTEGER, {_COMMON});
    CREATE TABLE branches (
        branch_id TEXT PRIMARY KEY, name TEXT, region TEXT, city TEXT, {_COMMON});
    CREATE TABLE accounts (
        account_id TEXT PRIMARY KEY, customer_id TEXT, product TEXT, account_type TEXT, currency TEXT,
        branch TEXT, opened_on TEXT, closed_on TEXT, status TEXT, balance REAL, credit_limit REAL, {_COMMON});
    CREATE INDEX accounts_customer ON accounts(customer_id);
    CREATE TABLE transactions (
        transaction_id TEXT PRIMARY KEY, account_id TEXT, customer_id TEXT, booked_at TEXT, amount REAL,
        direction TEXT, balance_after REAL, currency TEXT, channel TEXT, category TEXT, counterparty TEXT,
        memo TEXT, {_COMMON});
    CREATE INDEX transactions_account ON transactions(account_id, booked_at);
    CREATE INDEX transactions_customer ON transactions(customer_id, booked_at);
    CREATE TABLE product_holdings (
        holding_id TEXT PRIMARY KEY, customer_id TEXT, account_id TEXT, product_code TEXT, product_name TEXT,
        category TEXT, opened_on TEXT, closed_on TEXT, status TEXT, amount REAL, {_COMMON});
    CREATE INDEX product_holdings_customer ON product_holdings(customer_id);
    CREATE TABLE interactions (
        interaction_id TEXT PRIMARY KEY, customer_id TEXT, occurred_at TEXT, kind TEXT, channel TEXT,
        category TEXT, text TEXT, resolved INTEGER, {_COMMON});
    CREATE INDEX interactions_customer ON interactions(customer_id, occurred_at);
    CREATE TABLE digital_events (
        event_id TEXT PRIMARY KEY, customer_id TEXT, occurred_at TEXT, channel TEXT, event_type TEXT,
        device_id TEXT, {_COMMON});
    CREATE INDEX digital_events_customer ON digital_events(customer_id, occurred_at);
    CREATE TABLE campaigns (
        campaign_id TEXT PRIMARY KEY, name TEXT, channel TEXT, objective TEXT, starts_on TEXT, ends_on TEXT,
        {_COMMON});
    CREATE TABLE campaign_responses (
        response_id TEXT PRIMARY KEY, campaign_id TEXT, customer_id TEXT, group_name TEXT, contacted_at TEXT,
        responded_at TEXT, outcome TEXT, {_COMMON});
    CREATE INDEX campaign_responses_customer ON campaign_responses(customer_id);

    CREATE TABLE ingest_batches (
        batch_id INTEGER PRIMARY KEY, source TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, rows_read INTEGER NOT NULL DEFAULT 0, rows_loaded INTEGER NOT NULL DEFAULT 0,
        rows_quarantined INTEGER NOT NULL DEFAULT 0, rows_filtered INTEGER NOT NULL DEFAULT 0,
        table_counts TEXT);
    CREATE TABLE ingest_files (
        batch_id INTEGER NOT NULL REFERENCES ingest_batches(batch_id), source TEXT NOT NULL,
        file_name TEXT NOT NULL, file_sha256 TEXT NOT NULL, encoding TEXT, rows_read INTEGER NOT NULL,
        rows_loaded INTEGER NOT NULL, rows_quarantined INTEGER NOT NULL, rows_filtered INTEGER NOT NULL,
        UNIQUE (source, file_sha256));
    CREATE TABLE quarantine (
        quarantine_id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL REFERENCES ingest_batches(batch_id),
        source TEXT NOT NULL, file_name TEXT NOT NULL, line INTEGER NOT NULL, column_name TEXT,
        reason TEXT NOT NULL, protected_row TEXT);
    CREATE INDEX quarantine_batch ON quarantine(batch_id);
    CREATE TABLE vault (
        domain TEXT NOT NULL, token TEXT NOT NULL, sealed BLOB NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (domain, token));
    """)


@migration(2, "users, audit log and checkpoints, policy state")
def _users_and_audit(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE users (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
        failed_attempts INTEGER NOT NULL DEFAULT 0, locked_until TEXT, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL);
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, event TEXT NOT NULL, details TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE INDEX audit_log_event ON audit_log(event, at);
    CREATE INDEX audit_log_actor ON audit_log(actor, at);
    CREATE TABLE audit_checkpoints (
        count INTEGER PRIMARY KEY, head_hash TEXT NOT NULL, at TEXT NOT NULL, signature TEXT NOT NULL);
    CREATE TABLE policy_state (name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, loaded_at TEXT NOT NULL)
    """)


@migration(3, "customer features, churn scores, segments, tags, drift and job runs")
def _customer_features(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE customer_features (
        customer_id TEXT NOT NULL, as_of TEXT NOT NULL,
        recency_days REAL,
        tx_count_90 REAL,
        tx_count_365 REAL,
        debit_90 REAL,
        debit_365 REAL,
        credit_90 REAL,
        credit_365 REAL,
        balance_now REAL,
        balance_trend_3m REAL,
        balance_trend_6m REAL,
        balance_trend_12m REAL,
        activity_decay REAL,
        salary_months_12 REAL,
        digital_share REAL,
        branch_share REAL,
        events_90 REAL,
        days_since_event REAL,
        products_held REAL,
        accounts_open REAL,
        has_credit_card REAL,
        complaints_365 REAL,
        days_since_complaint REAL,
        tenure_days REAL,
        age REAL,
        is_female REAL,
        region_code REAL,
        credit_score REAL,
        income REAL,
        crm_balance REAL,
        crm_products REAL,
        crm_active REAL,
        churn_label REAL, computed_at TEXT NOT NULL,
        PRIMARY KEY (customer_id, as_of));
    CREATE TABLE customer_scores (
        customer_id TEXT NOT NULL, as_of TEXT NOT NULL, model_sha256 TEXT NOT NULL, probability REAL NOT NULL,
        risk_band TEXT NOT NULL, reasons_zh TEXT NOT NULL, reasons_en TEXT NOT NULL, scored_at TEXT NOT NULL,
        PRIMARY KEY (customer_id, as_of));
    CREATE TABLE customer_tags (
        customer_id TEXT NOT NULL, as_of TEXT NOT NULL, tag TEXT NOT NULL, tagged_at TEXT NOT NULL,
        PRIMARY KEY (customer_id, as_of, tag));
    CREATE INDEX customer_tags_tag ON customer_tags(as_of, tag);
    CREATE TABLE customer_segments (
        customer_id TEXT NOT NULL, as_of TEXT NOT NULL, segment INTEGER NOT NULL, model_sha256 TEXT NOT NULL,
        PRIMARY KEY (customer_id, as_of));
    CREATE TABLE segment_profiles (as_of TEXT NOT NULL, segment INTEGER NOT NULL, profile TEXT NOT NULL,
        PRIMARY KEY (as_of, segment));
    CREATE TABLE drift_runs (as_of TEXT NOT NULL, model_sha256 TEXT NOT NULL, measured_at TEXT NOT NULL,
        flagged INTEGER NOT NULL, result TEXT NOT NULL, PRIMARY KEY (as_of, model_sha256));
    CREATE TABLE job_runs (
        run_id INTEGER PRIMARY KEY, job TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, rows INTEGER, error TEXT)
    """)


@migration(4, "export requests, the published-cell ledger, last good policy versions")
def _exports(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE export_requests (
        request_id TEXT PRIMARY KEY, report TEXT NOT NULL, dimensions TEXT NOT NULL, parameters TEXT NOT NULL,
        recipient TEXT NOT NULL, purpose TEXT NOT NULL, requested_by TEXT NOT NULL, requested_at TEXT NOT NULL,
        status TEXT NOT NULL, result TEXT NOT NULL, basis_sha256 TEXT NOT NULL, policy_sha256 TEXT NOT NULL,
        epsilon REAL NOT NULL, delta REAL NOT NULL, decided_by TEXT, decided_at TEXT, reason TEXT, bundle TEXT);
    CREATE TABLE export_ledger (
        report TEXT NOT NULL, scope TEXT NOT NULL, cell TEXT NOT NULL, request_id TEXT NOT NULL,
        suppressed INTEGER NOT NULL, PRIMARY KEY (report, scope, cell, request_id));
    ALTER TABLE policy_state ADD COLUMN content TEXT;
    ALTER TABLE policy_state ADD COLUMN refused_sha256 TEXT
    """)


@migration(5, "one-time passwords set by an admin; export bundles kept in the store")
def _one_time_passwords_and_bundles(store: Store) -> None:
    _run_script(store, """
    ALTER TABLE users ADD COLUMN password_set_by TEXT;
    CREATE TABLE export_bundles (
        request_id TEXT NOT NULL, name TEXT NOT NULL, content BLOB NOT NULL, PRIMARY KEY (request_id, name))
    """)


@migration(6, "propensity scores for any binary target; duplicate rows counted per file")
def _propensity(store: Store) -> None:
    _run_script(store, """
    ALTER TABLE ingest_files ADD COLUMN duplicate_rows INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE ingest_files ADD COLUMN duplicates TEXT;
    CREATE TABLE propensity_scores (
        customer_id TEXT NOT NULL, as_of TEXT NOT NULL, target TEXT NOT NULL, model_sha256 TEXT NOT NULL,
        probability REAL NOT NULL, reasons_zh TEXT NOT NULL, reasons_en TEXT NOT NULL, scored_at TEXT NOT NULL,
        PRIMARY KEY (customer_id, as_of, target));
    CREATE INDEX propensity_scores_target ON propensity_scores(target, as_of, probability)
    """)


@migration(7, "console sessions, kept server-side; each user's console language")
def _console_sessions(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE web_sessions (
        id_sha256 TEXT PRIMARY KEY, user_name TEXT NOT NULL, role TEXT NOT NULL, csrf TEXT NOT NULL,
        created_at REAL NOT NULL, last_seen REAL NOT NULL);
    CREATE INDEX web_sessions_user ON web_sessions(user_name);
    ALTER TABLE users ADD COLUMN language TEXT
    """)


@migration(8, "aggregates the console reads, precomputed by the pipeline: tag overlaps, lifecycle flows, risk "
              "histograms; churn scores indexed in at-risk order")
def _tag_summaries(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE tag_overlaps (
        as_of TEXT NOT NULL, first TEXT NOT NULL, second TEXT NOT NULL, customers INTEGER NOT NULL,
        PRIMARY KEY (as_of, first, second));
    CREATE TABLE lifecycle_flows (
        as_of TEXT NOT NULL, previous_as_of TEXT, from_stage TEXT NOT NULL, to_stage TEXT NOT NULL,
        customers INTEGER NOT NULL, PRIMARY KEY (as_of, from_stage, to_stage));
    CREATE TABLE risk_summaries (
        as_of TEXT NOT NULL, bin INTEGER NOT NULL, risk_band TEXT NOT NULL, customers INTEGER NOT NULL,
        PRIMARY KEY (as_of, bin, risk_band));
    CREATE INDEX customer_scores_rank ON customer_scores(as_of, probability DESC, customer_id)
    """)


@migration(9, "a second factor (TOTP) for the console: each user's sealed secret, and sessions waiting for it; "
              "API tokens, kept as hashes; customers by branch and features by balance, indexed for the at-risk "
              "list's filter and order")
def _second_factor(store: Store) -> None:
    _run_script(store, """
    ALTER TABLE users ADD COLUMN totp_sealed BLOB;
    ALTER TABLE users ADD COLUMN totp_pending BLOB;
    ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
    ALTER TABLE web_sessions ADD COLUMN pending TEXT;
    CREATE TABLE api_tokens (
        token_sha256 TEXT PRIMARY KEY, token_id TEXT NOT NULL UNIQUE, user_name TEXT NOT NULL, label TEXT NOT NULL,
        created_at TEXT NOT NULL, expires_at TEXT NOT NULL, last_used_at TEXT, revoked_at TEXT);
    CREATE INDEX api_tokens_user ON api_tokens(user_name);
    CREATE INDEX customers_branch ON customers(branch);
    CREATE INDEX customer_features_value ON customer_features(as_of, balance_now DESC, customer_id)
    """)


@migration(10, "retention campaigns made on the box: who was chosen, who was held back, by which seed")
def _retention_campaigns(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE retention_campaigns (
        campaign_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL,
        starts_on TEXT NOT NULL, chosen_from TEXT NOT NULL, criteria TEXT NOT NULL, scores_as_of TEXT,
        control_share REAL NOT NULL, seed INTEGER NOT NULL, members INTEGER NOT NULL);
    CREATE TABLE campaign_members (
        campaign_id TEXT NOT NULL, customer_id TEXT NOT NULL, arm TEXT NOT NULL, stratum TEXT NOT NULL,
        probability REAL, PRIMARY KEY (campaign_id, customer_id));
    CREATE INDEX campaign_members_arm ON campaign_members(campaign_id, arm, probability DESC);
    CREATE INDEX campaign_responses_campaign ON campaign_responses(campaign_id, customer_id)
    """)


@migration(11, "audit search at millions of entries: the customers, requests and campaigns each entry names, "
               "and the log indexed by time, event and actor in entry order")
def _audit_search(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE audit_refs (ref TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (ref, seq)) WITHOUT ROWID;
    INSERT OR IGNORE INTO audit_refs SELECT j.value, a.seq FROM audit_log a, json_each(a.details, '$.customers') j
        WHERE json_valid(a.details) AND json_type(a.details, '$.customers') = 'array' AND j.type = 'text';
    INSERT OR IGNORE INTO audit_refs SELECT json_extract(details, '$.customer'), seq FROM audit_log
        WHERE json_valid(details) AND json_type(details, '$.customer') = 'text';
    INSERT OR IGNORE INTO audit_refs SELECT json_extract(details, '$.request'), seq FROM audit_log
        WHERE json_valid(details) AND json_type(details, '$.request') = 'text';
    INSERT OR IGNORE INTO audit_refs SELECT json_extract(details, '$.campaign'), seq FROM audit_log
        WHERE json_valid(details) AND json_type(details, '$.campaign') = 'text';
    CREATE INDEX audit_log_at ON audit_log(at);
    CREATE INDEX audit_log_event_seq ON audit_log(event);
    CREATE INDEX audit_log_actor_seq ON audit_log(actor)
    """)


@migration(12, "the at-risk list by branch and segment or value band, in risk order, written once per scoring")
def _risk_ranks(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE risk_ranks (
        as_of TEXT NOT NULL, branch TEXT NOT NULL, segment INTEGER NOT NULL, value_band TEXT NOT NULL,
        probability REAL NOT NULL, customer_id TEXT NOT NULL,
        PRIMARY KEY (as_of, branch, segment, probability DESC, customer_id)) WITHOUT ROWID;
    CREATE INDEX risk_ranks_value ON risk_ranks(as_of, branch, value_band, probability DESC, customer_id)
    """)


@migration(13, "incremental features: each run's watermark, and the indexes that find what changed since")
def _feature_runs(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE feature_runs (
        as_of TEXT PRIMARY KEY, mode TEXT NOT NULL, last_batch INTEGER NOT NULL, last_audit INTEGER NOT NULL,
        customers INTEGER NOT NULL, recomputed INTEGER NOT NULL, computed_at TEXT NOT NULL);
    CREATE INDEX customers_batch ON customers(batch_id);
    CREATE INDEX accounts_batch ON accounts(batch_id);
    CREATE INDEX transactions_batch ON transactions(batch_id);
    CREATE INDEX transactions_booked ON transactions(booked_at);
    CREATE INDEX product_holdings_batch ON product_holdings(batch_id);
    CREATE INDEX interactions_batch ON interactions(batch_id);
    CREATE INDEX interactions_occurred ON interactions(occurred_at);
    CREATE INDEX digital_events_batch ON digital_events(batch_id);
    CREATE INDEX digital_events_occurred ON digital_events(occurred_at)
    """)


@migration(14, "report cells precomputed after the nightly run, with the audit entry they were computed at")
def _report_cells(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE report_cells (
        report TEXT NOT NULL, parameters TEXT NOT NULL, top INTEGER NOT NULL, clamp INTEGER NOT NULL,
        audit_seq INTEGER NOT NULL, built_at TEXT NOT NULL, seconds REAL NOT NULL, cells TEXT NOT NULL,
        PRIMARY KEY (report, parameters, top, clamp))
    """)


# The nightly's results, one row per customer (and tag or target) per day: keyed date first, a night's rows
# are appended after the nights before. Keyed customer first, they went among every earlier night's rows, so
# each night rewrote every page the earlier nights had written and cost grew with the days kept (tags at
# 200,000 customers: 4.8 s the first night, 9.2 s the sixth; date first: 2.2 s every night).
_KEYS_BEFORE_15 = {"customer_features": ("customer_id", "as_of"), "customer_scores": ("customer_id", "as_of"),
                   "customer_segments": ("customer_id", "as_of"), "customer_tags": ("customer_id", "as_of", "tag"),
                   "propensity_scores": ("customer_id", "as_of", "target")}
BY_DAY = tuple(_KEYS_BEFORE_15)
_SMALL_ROWS = {"customer_segments", "customer_tags"}  # stored in the key's own B-tree (WITHOUT ROWID)


def _drop_per_day(store: Store, table: str) -> None:
    """Drop a table of per-day rows keyed date first after emptying it a day at a time. Dropped whole, with
    secure_delete on (SQLCipher's default, kept so that deleted rows leave nothing behind), every freed page
    was held in memory until the end of the transaction: 0.9 GB for 4 million tag rows, some 10 GB at a
    million customers. Emptied by days, memory stays flat."""
    days = [r[0] for r in store.rows(f"WITH RECURSIVE {each_day(table)} SELECT d FROM days WHERE d IS NOT NULL")]
    for day in days:
        store.execute(f"DELETE FROM {table} WHERE as_of = ?", (day,))
    store.execute(f"DROP TABLE {table}")


def each_day(table: str) -> str:
    """A recursive CTE `days(d)` naming the distinct dates of a table keyed date first, newest first, one
    seek of the key each: a customer's rows across days are then found by (date, customer) lookups, not by
    reading every day's rows."""
    return (f"days(d) AS (SELECT max(as_of) FROM {table} UNION ALL "
            f"SELECT (SELECT max(as_of) FROM {table} WHERE as_of < d) FROM days WHERE d IS NOT NULL)")


@migration(15, "the nightly's per-day results keyed date first, so a night's rows are appended")
def _results_by_day(store: Store) -> None:
    for table, old_key in _KEYS_BEFORE_15.items():
        create = store.scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        indexes = [r[0] for r in store.rows("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                            "AND sql IS NOT NULL", (table,))]
        new_key = ("as_of", *[c for c in old_key if c != "as_of"])
        rebuilt = create.replace(f"PRIMARY KEY ({', '.join(old_key)})", f"PRIMARY KEY ({', '.join(new_key)})")
        rebuilt = rebuilt.replace(f"CREATE TABLE {table} ", f"CREATE TABLE {table}_by_day ", 1)
        if rebuilt.count(f"PRIMARY KEY ({', '.join(new_key)})") != 1 or f"{table}_by_day" not in rebuilt:
            raise RuntimeError(f"{table}: unexpected definition")
        store.execute(rebuilt + (" WITHOUT ROWID" if table in _SMALL_ROWS else ""))
        store.execute(f"INSERT INTO {table}_by_day SELECT * FROM {table} ORDER BY {', '.join(new_key)}")
        store.execute(f"DROP TABLE {table}")
        store.execute(f"ALTER TABLE {table}_by_day RENAME TO {table}")
        for index in indexes:
            store.execute(index)


# A customer's tags for a day, one row: a night wrote about ten rows a customer (and as many entries in a
# (date, tag) index), 9.4 million at a million customers, a third of the nightly's tagging and most of the
# store's growth. The tags are a JSON array of ids in code-point order, lifecycle stages as `lifecycle:<id>`
# among them; who holds a tag is counted in `tag_overlaps` when tags are built.
@migration(16, "a customer's tags for a day in one row, as a JSON array")
def _tag_sets(store: Store) -> None:
    _run_script(store, """
    CREATE TABLE customer_tag_sets (
        as_of TEXT NOT NULL, customer_id TEXT NOT NULL, tags TEXT NOT NULL, tagged_at TEXT NOT NULL,
        PRIMARY KEY (as_of, customer_id)) WITHOUT ROWID;
    INSERT INTO customer_tag_sets
        SELECT as_of, customer_id, json_group_array(tag ORDER BY tag), max(tagged_at)
        FROM customer_tags GROUP BY as_of, customer_id
    """)
    _drop_per_day(store, "customer_tags")
    store.execute("ALTER TABLE customer_tag_sets RENAME TO customer_tags")
