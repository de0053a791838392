"""An appliance home: settings, the keyring and the encrypted store, opened together.

Layout: `config.yaml`, `keyring.json` (wrapped keys only), `store.db` (+ its WAL), `policies/` (the
policies in force, copied from the shipped defaults at init), `sources/` for the bank's own mappings,
`cache/` for library caches. Nothing in the home opens without the KEK.
"""

import hashlib
import os
import shutil
from pathlib import Path

from appliance import offline
from appliance.errors import ConfigError, StoreError
from appliance.access import Actor, Users, check_new_user, system
from appliance.audit import AuditLog, public_key_pem
from appliance.ingest import Ingestor
from appliance.keys import Credentials, Keyring
from appliance.mapping import SourceMapping, find_mapping
from appliance.policies import SHIPPED_DIR as SHIPPED_POLICIES, MaskingPolicy, ProtectionPolicy
from appliance.protect import Tokenizer, Vault
from appliance.settings import Settings
from appliance.store import Store

CONFIG = "config.yaml"
KEYRING = "keyring.json"
STORE = "store.db"
POLICIES = "policies"
AUDIT_PUBLIC_KEY = "audit-public-key.pem"


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
        keyring = Keyring.open(path / KEYRING, credentials)
        store = cls._open_store(path, keyring, settings)
        store.migrate()
        home = cls(path, settings, keyring, store)
        config = path / CONFIG
        if config.exists():
            home._policy_loaded(CONFIG, hashlib.sha256(config.read_bytes()).hexdigest())
        return home

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

    def users(self) -> Users:
        return Users(self.store, max_failures=self.settings["users.max_failures"],
                     lockout_minutes=self.settings["users.lockout_minutes"])

    def _policy_loaded(self, name: str, sha256: str) -> None:
        """Audit the first load of a policy or the settings, and every change of them (old and new hash)."""
        old = self.store.scalar("SELECT sha256 FROM policy_state WHERE name = ?", (name,))
        if old == sha256:
            return
        event = "config.change" if name == CONFIG else ("policy.load" if old is None else "policy.change")
        with self.store.transaction():
            self.audit.record(system("policy"), event, file=name, old_sha256=old, new_sha256=sha256)
            self.store.execute("INSERT OR REPLACE INTO policy_state VALUES (?, ?, datetime('now'))", (name, sha256))

    def protection_policy(self) -> ProtectionPolicy:
        policy = ProtectionPolicy.load(self.path / POLICIES)
        self._policy_loaded("protection.yaml", policy.sha256)
        return policy

    def mapping(self, source: str) -> SourceMapping:
        return find_mapping(source, self.protection_policy(), self.sources_dir)

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.keyring.token_key)

    def vault(self) -> Vault:
        return Vault(self.store, self.keyring.vault_key)

    def masking_policy(self):
        from appliance.pii.recognizers import ENTITIES

        policy = MaskingPolicy.load(self.path / POLICIES, ENTITIES)
        self._policy_loaded("masking.yaml", policy.sha256)
        return policy

    def masker(self, operator: str | None = None):
        """The PII engine's masker with this home's masking policy and token key (loads the engine)."""
        from appliance.pii.engine import engine
        from appliance.pii.operators import Masker

        return Masker(engine(), self.masking_policy(), operator=operator, tokenizer=self.tokenizer())

    def ingestor(self, actor: Actor) -> Ingestor:
        """Ingestion with the PII engine (it masks free text and scans the columns stored as they are), acting
        for `actor`, each batch in the audit log."""
        from appliance.pii.engine import engine

        if actor.role != "system":  # the appliance's own jobs ingest as the system
            actor.require("data.ingest")
        return Ingestor(self.store, self.tokenizer(), self.vault(), self.protection_policy(),
                        chunk_rows=self.settings["ingest.chunk_rows"],
                        max_bad_row_share=self.settings["ingest.max_bad_row_share"],
                        workers=self.settings["ingest.workers"], masker=self.masker(), scanner=engine(),
                        audit=self.audit, actor=actor)

    def __enter__(self) -> "Home":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def rotate_data_key(self, actor: Actor) -> None:
        actor.require("keys.manage")
        self.audit.record(actor, "keys.rotate", key="data")  # fails closed: no entry, no rotation
        new_key = self.keyring.stage_new_data_key()
        self.store.rekey(new_key)
        self.keyring.promote_pending_data_key()

    def change_kek(self, actor: Actor, credentials: Credentials) -> str:
        actor.require("keys.manage")
        self.audit.record(actor, "keys.passwd", new_kind="key-file" if credentials.key_file else "passphrase")
        return self.keyring.change_kek(credentials, argon2_memory_kib=self.settings["keys.argon2_memory_kib"],
                                       argon2_iterations=self.settings["keys.argon2_iterations"])

    def backup(self, actor: Actor, target: Path) -> None:
        actor.require("store.backup")
        self.audit.record(actor, "store.backup", target=Path(target).name)
        self.store.backup_to(target, self.keyring.data_key)
