"""An appliance home: settings, the keyring and the encrypted store, opened together.

Layout: `config.yaml`, `keyring.json` (wrapped keys only), `store.db` (+ its WAL), `policies/` (the
policies in force, copied from the shipped defaults at init), `sources/` for the bank's own mappings,
`cache/` for library caches, `outbox/` for approved export bundles. Nothing in the home opens without the KEK.
"""

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import offline, oplog
from appliance.errors import AuditError, ConfigError, PolicyError, StoreError
from appliance.failpoints import failpoint
from appliance.access import Actor, SignInRefused, Users, check_new_user, system
from appliance.audit import AuditLog, Checkpoint, public_key_pem
from appliance.ingest import Ingestor
from appliance.keys import Credentials, Keyring
from appliance.mapping import SourceMapping, find_mapping
from appliance.policies import (SHIPPED_DIR as SHIPPED_POLICIES, ExportPolicy, MaskingPolicy, ProtectionPolicy,
                                PurposePolicy, read_text, text_sha256)
from appliance.protect import Tokenizer, Vault
from appliance.settings import Settings, usable_cores
from appliance import recovery
from appliance.recovery import Restored
from appliance.store import Store

CONFIG = "config.yaml"
KEYRING = "keyring.json"
STORE = "store.db"
POLICIES = "policies"
AUDIT_PUBLIC_KEY = "audit-public-key.pem"
EXPORT_PUBLIC_KEY = "export-public-key.pem"
T = TypeVar("T")
log = logging.getLogger("appliance")


def policy_parsers() -> dict[str, Callable[[str], object]]:
    """Each policy file and how to parse it."""
    from appliance.pii.recognizers import ENTITIES
    from appliance.retention import RetentionPolicy

    return {ProtectionPolicy.FILE: ProtectionPolicy.parse,
            MaskingPolicy.FILE: lambda text: MaskingPolicy.parse(text, ENTITIES),
            RetentionPolicy.FILE: RetentionPolicy.parse, ExportPolicy.FILE: ExportPolicy.parse,
            PurposePolicy.FILE: PurposePolicy.parse}


def check_policy_files(directory: Path) -> list[tuple[str, str | None, str | None]]:
    """Validate the policy files in a folder: (name, error or None, sha256 when valid)."""
    results = []
    for name, parse in policy_parsers().items():
        try:
            text = read_text(directory, name)
            parse(text)
            results.append((name, None, text_sha256(text)))
        except PolicyError as exc:
            results.append((name, exc.message, None))
    return results


def resolve_home(path: str | os.PathLike | None) -> Path:
    chosen = path or os.environ.get("APPLIANCE_HOME")
    if not chosen:
        raise ConfigError("no home given: pass --home DIR or set APPLIANCE_HOME")
    return Path(chosen).expanduser().absolute()


class Home:
    def __init__(self, path: Path, settings: Settings, keyring: Keyring, store: Store):
        self.path = path
        self.settings = settings
        self.keyring = keyring
        self.store = store
        self.audit = AuditLog(store, keyring.audit_seed)
        public_key = path / AUDIT_PUBLIC_KEY
        if not public_key.exists():  # public: for verifying checkpoints and evidence packs elsewhere
            public_key.write_text(public_key_pem(self.audit.public_key), encoding="utf-8")
        export_key = path / EXPORT_PUBLIC_KEY
        if not export_key.exists():  # public: receivers of exports pin it
            export_key.write_text(public_key_pem(self.export_signing_key().public_key()), encoding="utf-8")

    @property
    def sources_dir(self) -> Path:
        return self.path / self.settings["sources.dir"]

    @classmethod
    def init(cls, path: Path, credentials: Credentials, *, admin: str, admin_password: str) -> "Home":
        path = Path(path)
        if (path / KEYRING).exists() or (path / STORE).exists():
            raise ConfigError(f"{path} is already an appliance home")
        check_new_user(admin, "admin", admin_password)  # before anything exists: no half-made home
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        settings = Settings()
        keyring = Keyring.create(path / KEYRING, credentials,
                                 argon2_memory_kib=settings["keys.argon2_memory_kib"],
                                 argon2_iterations=settings["keys.argon2_iterations"])
        (path / CONFIG).write_text(settings.as_yaml(), encoding="utf-8")
        oplog.configure(path, settings["logs.max_mib"], settings["logs.keep"])
        (path / settings["sources.dir"]).mkdir(mode=0o700, exist_ok=True)
        shutil.copytree(SHIPPED_POLICIES, path / POLICIES, dirs_exist_ok=True)
        offline.point_caches_at(str(path))
        store = Store(path / STORE, keyring.data_key, busy_timeout_ms=settings["store.busy_timeout_ms"],
                      create=True)
        store.migrate()
        home = cls(path, settings, keyring, store)
        with store.transaction():
            actor = home.users().add(admin, "admin", admin_password)
            home.audit.record(system("init"), "init", schema=store.schema_version(), kek=keyring.kek_kind)
            home.audit.record(system("init"), "user.add", user=actor.name, role=actor.role)
        home._policy_loaded(CONFIG, hashlib.sha256((path / CONFIG).read_bytes()).hexdigest())
        return home

    @classmethod
    def open(cls, path: Path, credentials: Credentials) -> "Home":
        path = Path(path)
        if not path.is_dir():
            raise ConfigError(f"no appliance home at {path}")
        settings = Settings.load(path / CONFIG)
        offline.point_caches_at(str(path))
        oplog.configure(path, settings["logs.max_mib"], settings["logs.keep"])
        keyring = Keyring.open(path / KEYRING, credentials)
        store = cls._open_store(path, keyring, settings)
        try:
            applied = store.migrate(before=lambda: recovery.safety_backup(store, keyring.data_key, path,
                                                                           "before-upgrade"))
        except BaseException:
            store.close()
            raise
        if applied:
            log.info("store upgraded", extra={"migrations": applied})
        home = cls(path, settings, keyring, store)
        cls._add_new_policies(path / POLICIES)
        config = path / CONFIG
        if config.exists():
            home._policy_loaded(CONFIG, hashlib.sha256(config.read_bytes()).hexdigest())
        return home

    @staticmethod
    def _add_new_policies(directory: Path) -> None:
        """A policy file that a newer release brings is copied in once; the home's own files are never touched."""
        directory.mkdir(mode=0o700, exist_ok=True)
        for shipped in SHIPPED_POLICIES.glob("*.yaml"):
            if not (directory / shipped.name).exists():
                shutil.copy(shipped, directory / shipped.name)

    @staticmethod
    def _open_store(path: Path, keyring: Keyring, settings: Settings) -> Store:
        timeout = settings["store.busy_timeout_ms"]
        try:
            store = Store(path / STORE, keyring.data_key, busy_timeout_ms=timeout)
        except StoreError:
            if keyring.pending_data_key is None:
                raise
            # A rotation was cut off after the store was re-keyed: the pending key is the live one.
            store = Store(path / STORE, keyring.pending_data_key, busy_timeout_ms=timeout)
            keyring.promote_pending_data_key()
            return store
        if keyring.pending_data_key is not None:
            keyring.drop_pending_data_key()  # cut off before the store was re-keyed
        return store

    def close(self) -> None:
        self.store.close()

    def sign_in(self, name: str, password: str, *, second_factor_due: bool = False) -> Actor:
        """Authenticate a person; success and failure both go to the audit log."""
        failure = None
        with self.store.transaction():
            try:
                actor = self.users().authenticate(name, password, final=not second_factor_due)
            except SignInRefused as exc:
                failure = exc
                self.audit.record(f"unauthenticated:{name}", "login.failure", user=name, reason=exc.reason)
            else:
                self.audit.record(actor, "login.success", user=name, role=actor.role)
        if failure is not None:
            raise failure
        return actor

    def users(self) -> Users:
        return Users(self.store, max_failures=self.settings["users.max_failures"],
                     lockout_minutes=self.settings["users.lockout_minutes"])

    def _policy_loaded(self, name: str, sha256: str, content: str | None = None) -> None:
        """Audit the first load of a policy or the settings, and every change of them (old and new hash);
        keep the policy's text as the last good version."""
        state = self.store.query("SELECT sha256, refused_sha256 FROM policy_state WHERE name = ?", (name,))
        old = state[0]["sha256"] if state else None
        if old == sha256 and state[0]["refused_sha256"] is None:
            return
        event = "config.change" if name == CONFIG else ("policy.load" if old is None else "policy.change")
        with self.store.transaction():
            if old != sha256:
                self.audit.record(system("policy"), event, file=name, old_sha256=old, new_sha256=sha256)
            self.store.execute("INSERT OR REPLACE INTO policy_state (name, sha256, loaded_at, content, refused_sha256) "
                               "VALUES (?, ?, datetime('now'), ?, NULL)", (name, sha256, content))

    def policy(self, name: str, parse: Callable[[str], T]) -> T:
        """A policy from the home's `policies/`. A malformed version is refused (file, line and reason in the
        audit log, once per version) and the last good one, kept in the store, stays in force; with no good
        version yet, the error stands."""
        text = None
        try:
            text = read_text(self.path / POLICIES, name)
            policy = parse(text)
        except PolicyError as refused:
            refusal = refused
        else:
            self._policy_loaded(name, text_sha256(text), text)
            return policy
        return self._last_good(name, parse, refusal, "unreadable" if text is None else text_sha256(text))

    def _last_good(self, name: str, parse: Callable[[str], T], refused: PolicyError, bad_sha: str) -> T:
        state = self.store.query("SELECT sha256, content, refused_sha256 FROM policy_state WHERE name = ?", (name,))
        if not state or state[0]["content"] is None:
            raise refused
        if state[0]["refused_sha256"] != bad_sha:
            with self.store.transaction():
                self.audit.record(system("policy"), "policy.refuse", file=name, refused_sha256=bad_sha,
                                  kept_sha256=state[0]["sha256"], reason=refused.message)
                self.store.execute("UPDATE policy_state SET refused_sha256 = ? WHERE name = ?", (bad_sha, name))
        try:
            kept = parse(state[0]["content"])
        except PolicyError:
            raise refused from None  # the kept version no longer fits this release either
        log.warning("%s; the last good version (%s) stays in force", refused.message, state[0]["sha256"][:12])
        return kept

    def protection_policy(self) -> ProtectionPolicy:
        return self.policy(ProtectionPolicy.FILE, ProtectionPolicy.parse)

    def export_policy(self) -> ExportPolicy:
        return self.policy(ExportPolicy.FILE, ExportPolicy.parse)

    def purpose_policy(self) -> PurposePolicy:
        return self.policy(PurposePolicy.FILE, PurposePolicy.parse)

    def retention_policy(self):
        from appliance.retention import RetentionPolicy

        return self.policy(RetentionPolicy.FILE, RetentionPolicy.parse)

    def check_policies(self) -> list[tuple[str, str | None, str | None]]:
        """Each policy file: (name, error or None, sha256 of the version in force). Loads, changes and
        refusals are recorded as for any use."""
        results = []
        for name, error, _ in check_policy_files(self.path / POLICIES):
            try:
                self.policy(name, policy_parsers()[name])
            except PolicyError:
                pass  # no good version to fall back on: the error is in the results
            results.append((name, error, self.store.scalar("SELECT sha256 FROM policy_state WHERE name = ?", (name,))))
        return results

    def exports(self):
        from appliance.exports import Exports

        return Exports(self.store, self.audit, self.export_policy(), self.purpose_policy(), self.export_signing_key(),
                       self.path / self.settings["exports.outbox"], cache_mib=self.settings["reports.cache_mib"])

    def export_signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.keyring.export_seed)

    def mapping(self, source: str) -> SourceMapping:
        return find_mapping(source, self.protection_policy(), self.sources_dir)

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.keyring.token_key)

    def second_factor(self):
        from appliance.second_factor import SecondFactor

        return SecondFactor(self.store, self.keyring.vault_key)

    def vault(self) -> Vault:
        return Vault(self.store, self.keyring.vault_key)

    def masking_policy(self) -> MaskingPolicy:
        from appliance.pii.recognizers import ENTITIES

        return self.policy(MaskingPolicy.FILE, lambda text: MaskingPolicy.parse(text, ENTITIES))

    def pii_engine(self):
        """The process's PII engine, for this home's phone regions (loads it the first time)."""
        from appliance.pii.engine import engine
        from appliance.pii.recognizers.phone_number import parse_regions

        return engine(parse_regions(self.settings["pii.phone_regions"]))

    def masker(self, operator: str | None = None):
        """The PII engine's masker with this home's masking policy and token key (loads the engine)."""
        from appliance.pii.operators import Masker

        return Masker(self.pii_engine(), self.masking_policy(), operator=operator, tokenizer=self.tokenizer())

    def pull_definition(self, name: str):
        from appliance.pulls import load_pull, pull_path

        path = pull_path(self.sources_dir, name)
        if not path.is_file():
            raise ConfigError(f"no pull named '{name}': write {path.name} in {self.sources_dir}")
        return load_pull(path)

    def set_pull_password(self, actor: Actor, name: str, password: str) -> None:
        actor.require("keys.manage")
        definition = self.pull_definition(name)
        self.keyring.set_secret(definition.secret_name, password)
        self.audit.record(actor, "pull.password", pull=name)

    def pull(self, actor: Actor, name: str):
        """One batch from the bank's database: the pull's queries, read-only, through its source mapping."""
        from appliance import pulls

        definition = self.pull_definition(name)
        ingestor = self.ingestor(actor)
        mapping = self.mapping(definition.mapping)
        password = self.keyring.secret(definition.secret_name)
        with pulls.opened(definition, mapping, password, self.settings["ingest.chunk_rows"]) as (tables, fingerprint):
            return ingestor.pull(mapping, tables, fingerprint.sha256)

    def ingestor(self, actor: Actor) -> Ingestor:
        """Ingestion with the PII engine (it masks free text and scans the columns stored as they are), acting
        for `actor`, each batch in the audit log."""
        if actor.role != "system":  # the appliance's own jobs ingest as the system
            actor.require("data.ingest")
        return Ingestor(self.store, self.tokenizer(), self.vault(), self.protection_policy(),
                        chunk_rows=self.settings["ingest.chunk_rows"],
                        max_bad_row_share=self.settings["ingest.max_bad_row_share"],
                        bulk_rows=self.settings["ingest.bulk_rows"],
                        workers=self.settings["ingest.workers"] or usable_cores(), masker=self.masker(),
                        scanner=self.pii_engine(), follow_symlinks=self.settings["ingest.follow_symlinks"],
                        audit=self.audit, actor=actor)

    def __enter__(self) -> "Home":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def rotate_data_key(self, actor: Actor) -> None:
        actor.require("keys.manage")
        self.audit.record(actor, "keys.rotate", key="data")  # fails closed: no entry, no rotation
        new_key = self.keyring.stage_new_data_key()
        failpoint("rekey.staged")
        self.store.rekey(new_key)
        failpoint("rekey.rekeyed")
        self.keyring.promote_pending_data_key()

    def change_kek(self, actor: Actor, credentials: Credentials) -> str:
        actor.require("keys.manage")
        self.audit.record(actor, "keys.passwd", new_kind="key-file" if credentials.key_file else "passphrase")
        return self.keyring.change_kek(credentials, argon2_memory_kib=self.settings["keys.argon2_memory_kib"],
                                       argon2_iterations=self.settings["keys.argon2_iterations"])

    def checkpoint_target(self):
        from appliance.checkpoints import parse_target

        return parse_target(self.settings["audit.checkpoint_target"], self.path)

    def ship_checkpoint(self, actor: Actor | str) -> tuple[Checkpoint, str]:
        """Sign the audit log's head and send it off the box; the entry says where it went. Returns the
        checkpoint and where it went."""
        from appliance.checkpoints import ship

        target = self.checkpoint_target()
        if target is None:
            raise ConfigError("no off-box checkpoint target: set audit.checkpoint_target (a WORM folder or "
                              "syslog://host:port)")
        checkpoint = self.audit.checkpoint()
        where = ship(checkpoint, target)
        self.audit.record(actor, "audit.checkpoint", count=checkpoint.count, to=where)
        return checkpoint, where

    def verify_audit(self, extra=()):
        """The chain checked against the stored checkpoints, those given, and those the off-box target holds;
        the verdict says plainly when nothing off the box vouches for the log's end."""
        from appliance.checkpoints import shipped

        target = self.checkpoint_target()
        off_box = shipped(target) + list(extra)
        verdict = self.audit.verify(off_box)
        if verdict.ok:
            if off_box:
                last = max(off_box, key=lambda c: c.count)
                verdict.message += (f"; {len(off_box)} off-box checkpoints, the newest at entry {last.count} "
                                    f"({last.at})")
            elif target is None:
                verdict.message += ("; WARNING: no off-box checkpoint (audit.checkpoint_target is not set and none "
                                    "was given): truncation of the log's newest entries cannot be ruled out")
            else:
                verdict.message += ("; WARNING: the checkpoint target holds none the appliance can read back: "
                                    "truncation cannot be ruled out without the receiver's copies (--checkpoint)")
        return verdict

    def restore(self, actor: Actor, backup: Path) -> Restored:
        """Replace the store's contents with a checked backup of this home, in one transaction, after a
        safety copy of what it replaces; the audit log keeps every entry and records the restore."""
        actor.require("store.restore")
        key = self.keyring.data_key
        try:
            staging = recovery.stage(self.path, backup, key, self.keyring.audit_seed)
            try:
                kept = recovery.safety_backup(self.store, key, self.path, "before-restore")
                backup_entries, carried = recovery.replace_contents(self.store, staging, key)
            finally:
                recovery.remove_staging(self.path)
        except StoreError as refused:
            log.warning("restore refused", extra={"backup": Path(backup).name, "error": refused.message})
            try:
                self.audit.record(actor, "store.restore.refused", backup=Path(backup).name, reason=refused.message)
            except AuditError:
                pass
            raise
        self.audit.record(actor, "store.restore", backup=Path(backup).name, backup_entries=backup_entries,
                          carried_entries=carried, kept=kept.name)
        log.info("store restored", extra={"backup": Path(backup).name, "kept": kept.name})
        return Restored(backup_entries, carried, kept)

    @classmethod
    def restore_damaged(cls, path: Path, credentials: Credentials, keyring: Keyring, backup: Path) -> Restored:
        """A store that fails its checks cannot be read to be replaced: its files are moved aside and the
        checked backup takes their place. The key file (or passphrase) that opened `keyring` is the authority
        here, since the damaged store's users cannot be read; the restore is the restored log's next entry."""
        path = Path(path)
        staging = recovery.stage(path, backup, keyring.data_key, keyring.audit_seed)
        try:
            aside = recovery.swap_files(path, STORE, staging)
        finally:
            recovery.remove_staging(path)
        with cls.open(path, credentials) as home:
            entries = home.store.scalar("SELECT coalesce(max(seq), 0) FROM audit_log")
            home.audit.record(system("key custodian"), "store.restore", backup=Path(backup).name,
                              backup_entries=entries, carried_entries=0, damaged_kept=aside.name)
        return Restored(entries, 0, aside)

    def backup(self, actor: Actor, target: Path) -> None:
        """A checked copy of a sound store: a damaged store is refused (a copy would carry the damage, and
        a later restore would bring it back), and the copy is checked before it takes its name."""
        actor.require("store.backup")
        problems = self.store.integrity_problems()
        if problems:
            try:  # the damage may lie in the audit log's own pages: the refusal stands either way
                self.audit.record(actor, "store.backup.refused", target=Path(target).name, problems=len(problems))
            except AuditError:
                pass
            raise StoreError(f"the store failed its integrity check ({len(problems)} problems): backup refused, "
                             "a copy would carry the damage; restore from an earlier backup")
        self.audit.record(actor, "store.backup", target=Path(target).name)
        self.store.backup_to(target, self.keyring.data_key)
