"""Restore a home's store from one of its backups, and the safety copies taken before a restore or an upgrade.

A backup is checked on a private copy before anything is replaced: it must open with this home's data key,
pass SQLCipher's page check and SQLite's structure check, and carry an audit log that this home signed and
that the live log continues. Then:

- a sound live store has its contents replaced in one write transaction (other writers, the scheduler
  among them, wait or fail cleanly and retry; nothing half-restored is ever visible). The audit log is not
  rewound: every entry made since the backup stays, and the restore itself is the newest;
- a damaged live store cannot be read, so its files are moved aside (kept, never deleted) and the checked
  copy takes their place; its audit log ends where the backup's did, and the restore entry says where the
  damaged store's files are. Stop the console and the scheduler first: their open files are the old ones.
"""

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.audit import AuditLog
from appliance.errors import StoreError
from appliance.failpoints import failpoint
from appliance.store import Store, latest_schema, store_files

BACKUPS = "backups"
STAGING = ".restore-staging.db"
# Never replaced by a restore: the log is append-only, and a restore must not hide what happened since.
AUDIT_TABLES = ("audit_log", "audit_refs", "audit_checkpoints")
KEPT_TABLES = AUDIT_TABLES + ("schema_migrations",)


@dataclass(frozen=True)
class Restored:
    backup_entries: int  # audit entries the backup held
    carried_entries: int  # entries made after the backup, kept (0 when the live store was damaged)
    kept: Path  # the replaced store: a checked backup, or the damaged files moved aside


def stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime())


def safety_backup(store: Store, key: bytes, home_path: Path, reason: str) -> Path:
    """A checked copy of the live store in `<home>/backups/`, taken before an operation that replaces or
    reshapes it; the operation does not start without it."""
    folder = home_path / BACKUPS
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"{reason}-{stamp()}.db"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{reason}-{stamp()}-{n}.db"
    store.backup_to(target, key)
    return target


def _remove(path: Path) -> None:
    for leftover in store_files(path):
        leftover.unlink(missing_ok=True)


def remove_staging(home_path: Path) -> None:
    _remove(home_path / STAGING)


def stage(home_path: Path, backup: Path, data_key: bytes, audit_seed: bytes) -> Path:
    """Copy the backup into the home and check the copy (the backup file itself is only read). Refuses, with
    one line naming the reason, a backup that is missing, foreign, damaged or from a newer release."""
    backup = Path(backup)
    if not backup.is_file():
        raise StoreError(f"no backup at {backup}")
    staging = home_path / STAGING
    _remove(staging)
    try:
        shutil.copyfile(backup, staging)
    except OSError as exc:
        _remove(staging)
        raise StoreError(f"{backup.name} cannot be copied into the home ({exc.strerror})") from None
    try:
        try:
            copy = Store(staging, data_key)
        except StoreError:
            raise StoreError(f"{backup.name} does not open with this home's keys: it is another home's backup, "
                             "one taken before the data key was rotated, or its first page is damaged; "
                             "nothing was changed") from None
        try:
            problems = copy.integrity_problems()
            if problems:
                raise StoreError(f"{backup.name} failed its integrity check ({len(problems)} problems: "
                                 f"{problems[0]}); nothing was changed")
            version = copy.schema_version()
            if version > latest_schema():
                raise StoreError(f"{backup.name} is at schema version {version}, newer than this appliance "
                                 f"({latest_schema()}); nothing was changed")
            verdict = AuditLog(copy, audit_seed).verify()
            if not verdict.ok:
                raise StoreError(f"{backup.name}: its audit log does not verify under this home's key "
                                 f"({verdict.message}); nothing was changed")
            copy.migrate()  # an older backup is brought to this release's schema on the copy
        finally:
            copy.close()
    except BaseException:
        _remove(staging)
        raise
    return staging


def replace_contents(store: Store, staging: Path, key: bytes) -> tuple[int, int]:
    """Replace every table but the audit log's with the staged copy's, in one transaction. The staged log
    must be a beginning of the live one (same entry hash where it ends): this home's history, not another's.
    Returns (entries in the backup's log, entries made since)."""
    store.execute(f"ATTACH DATABASE ? AS restored KEY \"x'{key.hex()}'\"", (str(staging),))
    try:
        last = store.rows("SELECT seq, hash FROM restored.audit_log ORDER BY seq DESC LIMIT 1")
        backup_entries = last[0][0] if last else 0
        if last and store.scalar("SELECT hash FROM main.audit_log WHERE seq = ?", (last[0][0],)) != last[0][1]:
            raise StoreError("the backup's audit log is not a beginning of this home's log: it belongs to "
                             "another history; nothing was changed")
        tables = [name for (name,) in store.rows(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            if name not in KEPT_TABLES]
        with store.transaction():
            store.execute("PRAGMA defer_foreign_keys = ON")
            for table in tables:
                columns = ", ".join(f'"{c}"' for c in store.columns(table))
                store.execute(f'DELETE FROM main."{table}"')
                store.execute(f'INSERT INTO main."{table}" ({columns}) SELECT {columns} FROM restored."{table}"')
            failpoint("restore.replaced")
            problems = [r[0] for r in store.rows("PRAGMA main.integrity_check") if r[0] != "ok"]
            if problems:
                raise StoreError(f"the restored store failed its check ({problems[0]}); the store is as it was")
            total = store.scalar("SELECT coalesce(max(seq), 0) FROM main.audit_log")
    finally:
        store.execute("DETACH DATABASE restored")
    return backup_entries, total - backup_entries


def swap_files(home_path: Path, store_name: str, staging: Path) -> Path:
    """Move a damaged store's files aside (kept) and put the checked copy in their place."""
    aside = home_path / BACKUPS / f"damaged-{stamp()}"
    aside.mkdir(mode=0o700, parents=True, exist_ok=True)
    live = home_path / store_name
    moved = []
    try:
        for path in store_files(live):
            if path.exists():
                os.replace(path, aside / path.name)
                moved.append(path)
        failpoint("restore.moved")
        os.replace(staging, live)
    except BaseException:
        for path in moved:  # put the damaged files back: a half swap would be worse than none
            if (aside / path.name).exists():
                os.replace(aside / path.name, path)
        raise
    return aside
