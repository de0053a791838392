"""Key material: the one module that creates, wraps, unwraps and rotates keys.

Five random 256-bit keys live in the home's keyring, each only wrapped (AES-256-GCM) by a key-encryption
key (KEK):
- data:  the raw SQLCipher key of the store (no per-connection KDF);
- token: the HMAC-SHA256 key behind pseudonymous tokens (never rotated: tokens are join keys);
- vault: the AES-GCM key of the vault that holds raw values a policy chooses to keep;
- audit: the Ed25519 private key (its 32-byte seed) that signs audit-log checkpoints and evidence packs;
- export: the Ed25519 private key (seed) that signs export bundles, apart from the audit key so that
  receivers of exports and auditors pin different keys.

The KEK comes from a passphrase (Argon2id, parameters recorded in the keyring) or from a key file kept
outside the home (mode 0600 enforced). Rotation of the data key is two-phase: the new key is written as
`pending` before the store is re-keyed, so a crash at any point leaves a key that opens the store.
"""

import base64
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.errors import KeyMaterialError

KEYRING_FORMAT = 1
KEY_BYTES = 32
MIN_KEY_FILE_BYTES = 32
_PURPOSES = ("data", "token", "vault", "audit", "export")


@dataclass
class Credentials:
    """How the KEK is obtained. The passphrase is asked for lazily, only if the keyring needs one."""

    key_file: Path | None = None
    passphrase: Callable[[], str] | None = None


def new_key_file(path: Path) -> None:
    """Write a fresh random key file, 0600, refusing to overwrite one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyMaterialError(f"key file {path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyMaterialError(f"key file {path} cannot be created: {exc.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")


def _read_key_file(path: Path, home: Path) -> bytes:
    path = Path(path).expanduser()
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise KeyMaterialError(f"key file {path} not found") from None
    if resolved.is_relative_to(home.resolve()):
        raise KeyMaterialError(f"key file {path} is inside the home; keep it outside, beside nothing it protects")
    try:
        info = resolved.stat()
        mode = info.st_mode
        if mode & 0o077:
            raise KeyMaterialError(f"key file {path} is readable by others (mode {mode & 0o777:o}); chmod 600 it")
        if info.st_uid != os.geteuid():
            raise KeyMaterialError(f"key file {path} belongs to another user (uid {info.st_uid}); it must belong to "
                                   "the user the appliance runs as")
        folder = resolved.parent.stat()
        if folder.st_mode & 0o022 and not folder.st_mode & stat.S_ISVTX:
            raise KeyMaterialError(f"the folder of key file {path} is writable by others (mode "
                                   f"{folder.st_mode & 0o777:o}): they could swap the key file; chmod go-w it")
        content = resolved.read_bytes().strip()
    except PermissionError:
        raise KeyMaterialError(f"key file {path} is not readable by this user") from None
    except IsADirectoryError:
        raise KeyMaterialError(f"key file {path} is a directory") from None
    if len(content) < MIN_KEY_FILE_BYTES:
        raise KeyMaterialError(f"key file {path} holds fewer than {MIN_KEY_FILE_BYTES} bytes of key material")
    return content


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _kek_from_key_file(content: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=b"insight-appliance kek v1").derive(content)


def _kek_from_passphrase(passphrase: str, params: dict) -> bytes:
    if not passphrase:
        raise KeyMaterialError("empty passphrase")
    return Argon2id(salt=_unb64(params["salt"]), length=KEY_BYTES, iterations=params["iterations"],
                    lanes=params["lanes"], memory_cost=params["memory_kib"]).derive(passphrase.encode("utf-8"))


def _new_kek_spec(credentials: Credentials, home: Path, argon2_memory_kib: int, argon2_iterations: int):
    """A fresh KEK and the spec that lets it be derived again."""
    if credentials.key_file is not None:
        return _kek_from_key_file(_read_key_file(credentials.key_file, home)), {"kind": "key-file"}
    if credentials.passphrase is None:
        raise KeyMaterialError("no key given: pass --key-file, set APPLIANCE_KEY_FILE or APPLIANCE_PASSPHRASE")
    spec = {"kind": "passphrase", "kdf": "argon2id", "salt": _b64(os.urandom(16)),
            "memory_kib": argon2_memory_kib, "iterations": argon2_iterations, "lanes": 4}
    return _kek_from_passphrase(credentials.passphrase(), spec), spec


def _kek_for(spec: dict, credentials: Credentials, home: Path) -> bytes:
    if spec["kind"] == "key-file":
        if credentials.key_file is None:
            raise KeyMaterialError("this home is locked with a key file: pass --key-file or set APPLIANCE_KEY_FILE")
        return _kek_from_key_file(_read_key_file(credentials.key_file, home))
    if credentials.key_file is not None:
        raise KeyMaterialError("this home is locked with a passphrase, not a key file")
    if credentials.passphrase is None:
        raise KeyMaterialError("this home is locked with a passphrase: set APPLIANCE_PASSPHRASE or run interactively")
    return _kek_from_passphrase(credentials.passphrase(), spec)


def _wrap(kek: bytes, purpose: str, key: bytes) -> dict:
    nonce = os.urandom(12)
    sealed = AESGCM(kek).encrypt(nonce, key, f"insight-appliance:{purpose}".encode())
    return {"nonce": _b64(nonce), "sealed": _b64(sealed)}


def _unwrap(kek: bytes, purpose: str, wrapped: dict) -> bytes:
    try:
        return AESGCM(kek).decrypt(_unb64(wrapped["nonce"]), _unb64(wrapped["sealed"]),
                                   f"insight-appliance:{purpose}".encode())
    except InvalidTag:
        raise KeyMaterialError("wrong key: the passphrase or key file does not open this home's keyring") from None


def write_private_file(path: Path, text: str) -> None:
    """Atomically replace `path` (0600) so a crash leaves the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Keyring:
    """The unwrapped keys of one home, in memory only."""

    def __init__(self, path: Path, document: dict, kek: bytes):
        self.path = path
        self._document = document
        self._kek = kek
        missing = [p for p in _PURPOSES if p not in document["keys"]]
        for purpose in missing:  # a keyring from before this key existed gains it on first open
            document["keys"][purpose] = _wrap(kek, purpose, secrets.token_bytes(KEY_BYTES))
        self._keys = {p: _unwrap(kek, p, document["keys"][p]) for p in _PURPOSES}
        if missing:
            write_private_file(path, json.dumps(document, indent=2))
        pending = document.get("pending_data")
        self.pending_data_key = _unwrap(kek, "data", pending) if pending else None

    @property
    def data_key(self) -> bytes:
        return self._keys["data"]

    @property
    def token_key(self) -> bytes:
        return self._keys["token"]

    @property
    def vault_key(self) -> bytes:
        return self._keys["vault"]

    @property
    def audit_seed(self) -> bytes:
        return self._keys["audit"]

    @property
    def export_seed(self) -> bytes:
        """Seeds the Ed25519 key that signs export bundles (a key of its own: receivers pin it)."""
        return self._keys["export"]

    @property
    def kek_kind(self) -> str:
        return self._document["kek"]["kind"]

    @classmethod
    def create(cls, path: Path, credentials: Credentials, *, argon2_memory_kib: int,
               argon2_iterations: int) -> "Keyring":
        if path.exists():
            raise KeyMaterialError(f"{path.name} already exists; this home is initialised")
        kek, spec = _new_kek_spec(credentials, path.parent, argon2_memory_kib, argon2_iterations)
        document = {"format": KEYRING_FORMAT, "kek": spec,
                    "keys": {p: _wrap(kek, p, secrets.token_bytes(KEY_BYTES)) for p in _PURPOSES}}
        write_private_file(path, json.dumps(document, indent=2))
        return cls(path, document, kek)

    @classmethod
    def open(cls, path: Path, credentials: Credentials) -> "Keyring":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyMaterialError(f"no keyring at {path}: is this an initialised home?") from None
        except (OSError, ValueError):
            raise KeyMaterialError(f"{path.name} is unreadable or corrupt") from None
        if not isinstance(document, dict) or document.get("format") != KEYRING_FORMAT:
            raise KeyMaterialError(f"{path.name} has an unknown format")
        try:
            return cls(path, document, _kek_for(document["kek"], credentials, path.parent))
        except (KeyError, TypeError, ValueError):
            raise KeyMaterialError(f"{path.name} is corrupt") from None

    def _save(self) -> None:
        write_private_file(self.path, json.dumps(self._document, indent=2))

    # Data-key rotation, two-phase (see module docstring).
    def stage_new_data_key(self) -> bytes:
        new_key = secrets.token_bytes(KEY_BYTES)
        self._document["pending_data"] = _wrap(self._kek, "data", new_key)
        self._save()
        self.pending_data_key = new_key
        return new_key

    def promote_pending_data_key(self) -> None:
        pending = self._document.pop("pending_data")
        self._document["keys"]["data"] = pending
        self._keys["data"] = self.pending_data_key
        self.pending_data_key = None
        self._save()

    def drop_pending_data_key(self) -> None:
        self._document.pop("pending_data", None)
        self.pending_data_key = None
        self._save()

    # Secrets the appliance must present elsewhere (a database pull's password), sealed under the KEK like
    # the keys: never in a config file, never in the store.
    def set_secret(self, name: str, value: str) -> None:
        self._document.setdefault("secrets", {})[name] = _wrap(self._kek, f"secret:{name}", value.encode("utf-8"))
        self._save()

    def secret(self, name: str) -> str | None:
        wrapped = self._document.get("secrets", {}).get(name)
        return None if wrapped is None else _unwrap(self._kek, f"secret:{name}", wrapped).decode("utf-8")

    def change_kek(self, credentials: Credentials, *, argon2_memory_kib: int, argon2_iterations: int) -> str:
        kek, spec = _new_kek_spec(credentials, self.path.parent, argon2_memory_kib, argon2_iterations)
        secrets_held = {name: self.secret(name) for name in self._document.get("secrets", {})}
        self._document["kek"] = spec
        self._document["keys"] = {p: _wrap(kek, p, self._keys[p]) for p in _PURPOSES}
        if secrets_held:
            self._document["secrets"] = {name: _wrap(kek, f"secret:{name}", value.encode("utf-8"))
                                         for name, value in secrets_held.items()}
        if self.pending_data_key is not None:
            self._document["pending_data"] = _wrap(kek, "data", self.pending_data_key)
        self._kek = kek
        self._save()
        return spec["kind"]
