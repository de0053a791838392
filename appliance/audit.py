"""The tamper-evident audit log: one call, `AuditLog.record`, used by every module that acts.

Each entry holds the SHA-256 of the previous one over a canonical encoding (a hash chain), so an edit, a
deletion, an insertion or a reordering anywhere in the log breaks the chain from that entry on. A bare chain
cannot see its newest entries cut off, so checkpoints (entry count + head hash + time) are signed with the
home's Ed25519 key; kept off the box, a checkpoint catches truncation behind it. Entries hold actors,
tokens, counts and hashes, never a personal value.

Appending happens inside a write transaction (the caller's, or its own), so concurrent writers queue on the
store's lock and the chain stays one line. It fails closed: an operation whose entry cannot be written is
rolled back with it, or refused before it starts.
"""

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.access import Actor
from appliance.errors import AuditError
from appliance.store import DatabaseError, Store, StoreError

GENESIS = "0" * 64
CHECKPOINT_EVERY = 1000
PACK_FORMAT = 1
_SIGNATURE_PREFIX = b"\nsignature: "

EVENTS = (
    "init", "keys.rotate", "keys.passwd", "store.backup", "store.backup.refused", "store.restore", "store.restore.refused", "pull.password", "user.add", "user.disable",
    "user.enable", "user.passwd", "user.role", "user.second_factor.reset", "login.success", "login.second_factor",
    "login.failure", "customer.read", "vault.reveal", "vault.reveal.refused", "ingest.batch",
    "quarantine.read", "policy.load", "policy.change", "policy.refuse", "model.train", "model.install",
    "model.score", "export.request", "export.preview", "export.approve", "export.reject", "export.stale",
    "export.write", "job.run", "job.requested", "retention.purge", "subject.find", "subject.report", "subject.erase",
    "subject.erase.leftovers",
    "config.change", "audit.export", "audit.checkpoint", "logout", "api_token.create", "api_token.revoke",
    "campaign.create", "campaign.contact", "export.download", "audit.verify", "audit.search", "user.sessions.end", "policy.apply",
)


def strict_b64decode(text: bytes | str) -> bytes:
    """Base64 with one spelling only: a signature whose text was altered (a flipped bit in the padding's
    unused bits decodes to the same bytes) is refused, not read as the original."""
    data = text.encode("ascii") if isinstance(text, str) else text
    decoded = base64.b64decode(data, validate=True)
    if base64.b64encode(decoded) != data:
        raise ValueError("non-canonical base64")
    return decoded


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(seq: int, at: str, actor: str, event: str, details: str, prev_hash: str) -> str:
    return hashlib.sha256(canonical([seq, at, actor, event, details, prev_hash])).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


REF_KEYS = ("customer", "request", "campaign")


def _refs(details: dict) -> set[str]:
    """What an entry names that people search by: customer tokens, export requests, campaigns."""
    refs = {details[k] for k in REF_KEYS if isinstance(details.get(k), str) and details[k]}
    customers = details.get("customers")
    if isinstance(customers, list):
        refs |= {c for c in customers if isinstance(c, str) and c}
    return refs


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except ValueError:
        raise AuditError("the public key is not a PEM Ed25519 key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError("the public key is not an Ed25519 key")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass
class Checkpoint:
    count: int
    head_hash: str
    at: str
    signature: str

    def payload(self) -> bytes:
        return canonical({"count": self.count, "head_hash": self.head_hash, "at": self.at})

    def as_dict(self) -> dict:
        return {"count": self.count, "head_hash": self.head_hash, "at": self.at, "signature": self.signature}

    def valid_for(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(strict_b64decode(self.signature), self.payload())
            return True
        except (InvalidSignature, ValueError):
            return False


@dataclass
class Verdict:
    ok: bool
    entries: int
    message: str
    first_bad: int | None = None


class AuditLog:
    def __init__(self, store: Store, signing_seed: bytes):
        self.store = store
        self._key = Ed25519PrivateKey.from_private_bytes(signing_seed)
        self.public_key = self._key.public_key()

    # Writing ------------------------------------------------------------------------------------------
    def record(self, actor: Actor | str, event: str, **details) -> int:
        """Append one entry; returns its sequence number. Inside the caller's transaction when there is one,
        so the entry and the operation commit (or vanish) together."""
        if event not in EVENTS:
            raise AuditError(f"unknown audit event '{event}'")
        label = actor.label if isinstance(actor, Actor) else str(actor)
        text = canonical(details).decode("utf-8")
        refs = _refs(details)
        try:
            if self.store.conn.in_transaction:
                return self._append(label, event, text, refs)
            with self.store.transaction():
                return self._append(label, event, text, refs)
        except (StoreError, DatabaseError, OSError) as exc:
            raise AuditError(f"the audit log cannot be written ({exc.__class__.__name__}); nothing was done") from None

    def _append(self, actor: str, event: str, details: str, refs: set[str] = frozenset()) -> int:
        last = self.store.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        seq, prev = (last[0][0] + 1, last[0][1]) if last else (1, GENESIS)
        at = _now()
        digest = entry_hash(seq, at, actor, event, details, prev)
        self.store.execute("INSERT INTO audit_log (seq, at, actor, event, details, prev_hash, hash) "
                           "VALUES (?,?,?,?,?,?,?)", (seq, at, actor, event, details, prev, digest))
        if refs:
            self.store.executemany("INSERT OR IGNORE INTO audit_refs VALUES (?,?)", [(r, seq) for r in sorted(refs)])
        if seq % CHECKPOINT_EVERY == 0:
            self._store_checkpoint(seq, digest)
        return seq

    def _store_checkpoint(self, count: int, head: str) -> Checkpoint:
        at = _now()
        unsigned = Checkpoint(count, head, at, "")
        signature = base64.b64encode(self._key.sign(unsigned.payload())).decode()
        checkpoint = Checkpoint(count, head, at, signature)
        self.store.execute("INSERT OR REPLACE INTO audit_checkpoints VALUES (?,?,?,?)",
                           (count, head, at, signature))
        return checkpoint

    def checkpoint(self) -> Checkpoint:
        """Sign the current head now (for keeping off the box)."""
        with self.store.transaction():
            last = self.store.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            count, head = (last[0][0], last[0][1]) if last else (0, GENESIS)
            return self._store_checkpoint(count, head)

    # Reading ------------------------------------------------------------------------------------------
    def entries(self, *, since: str | None = None, until: str | None = None, actor: str | None = None,
                event: str | None = None, customer: str | None = None, limit: int | None = None) -> list[dict]:
        clauses, params = [], []
        for column, op, value in (("at", ">=", since), ("at", "<", until), ("actor", "=", actor),
                                  ("event", "=", event)):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        if customer:
            clauses.append("instr(details, ?) > 0")
            params.append(customer)
        sql = "SELECT * FROM audit_log" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [dict(row) for row in self.store.query(sql, params)]

    def search(self, *, actor: str | None = None, event: str | None = None, ref: str | None = None,
               since: str | None = None, until: str | None = None, before: int | None = None,
               limit: int = 100) -> list[dict]:
        """Newest first, a page at a time (`before`: the last seq shown): by actor, event, a customer token,
        export request or campaign the entry names (`audit_refs`, an index beside the chain, not part of it),
        and time. Each filter has its index, so a page costs the same at millions of entries."""
        clauses, params = [], []
        for column, value in (("a.actor", actor), ("a.event", event)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since:
            clauses.append("a.seq >= coalesce((SELECT seq FROM audit_log WHERE at >= ? ORDER BY at LIMIT 1), 9e18)")
            params.append(since)
        if until:
            clauses.append("a.seq < coalesce((SELECT seq FROM audit_log WHERE at >= ? ORDER BY at LIMIT 1), 9e18)")
            params.append(until)
        if before is not None:
            clauses.append("a.seq < ?")
            params.append(before)
        source = "audit_log a"
        if ref:
            source = "audit_refs r JOIN audit_log a ON a.seq = r.seq"
            clauses.append("r.ref = ?")
            params.append(ref)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        return [dict(row) for row in self.store.query(
            f"SELECT a.* FROM {source}{where} ORDER BY a.seq DESC LIMIT ?", (*params, int(limit)))]

    def stored_checkpoints(self) -> list[Checkpoint]:
        return [Checkpoint(*row) for row in self.store.query("SELECT * FROM audit_checkpoints ORDER BY count")]

    def verify(self, extra_checkpoints: list[Checkpoint] = ()) -> Verdict:
        return verify_entries(self.store.conn.execute(
            "SELECT seq, at, actor, event, details, prev_hash, hash FROM audit_log ORDER BY seq"),
            self.stored_checkpoints() + list(extra_checkpoints), self.public_key)

    # Evidence packs ------------------------------------------------------------------------------------
    def export_pack(self, since: str | None, until: str | None) -> bytes:
        entries = self.entries(since=since, until=until)
        first_prev = entries[0]["prev_hash"] if entries else GENESIS
        last_seq = entries[-1]["seq"] if entries else 0
        checkpoints = [c.as_dict() for c in self.stored_checkpoints()
                       if entries and entries[0]["seq"] <= c.count <= last_seq]
        payload = canonical({"format": PACK_FORMAT, "from": since, "to": until, "made_at": _now(),
                             "public_key": public_key_pem(self.public_key), "starts_after": first_prev,
                             "entries": entries, "checkpoints": checkpoints})
        return payload + _SIGNATURE_PREFIX + base64.b64encode(self._key.sign(payload)) + b"\n"


def verify_entries(rows, checkpoints: list[Checkpoint], public_key: Ed25519PublicKey,
                   first_seq: int = 1, prev: str = GENESIS) -> Verdict:
    """Walk the chain; the verdict names the first entry that is out of place."""
    expected_seq = first_seq
    heads: dict[int, str] = {}
    wanted = {c.count for c in checkpoints}
    for seq, at, actor, event, details, prev_hash, digest in rows:
        if seq != expected_seq:
            return Verdict(False, expected_seq - first_seq, f"entry {expected_seq} is missing (next found: {seq})",
                           expected_seq)
        if prev_hash != prev:
            return Verdict(False, seq - first_seq, f"entry {seq} does not follow entry {seq - 1} (chain broken)", seq)
        if entry_hash(seq, at, actor, event, details, prev_hash) != digest:
            return Verdict(False, seq - first_seq, f"entry {seq} was modified (its hash does not match)", seq)
        if seq in wanted:
            heads[seq] = digest
        prev, expected_seq = digest, seq + 1
    count = expected_seq - 1
    for checkpoint in checkpoints:
        if not checkpoint.valid_for(public_key):
            return Verdict(False, count - first_seq + 1, f"checkpoint at {checkpoint.count} has a bad signature",
                           checkpoint.count)
        if checkpoint.count > count:
            return Verdict(False, count - first_seq + 1, f"the log ends at entry {count} but a signed checkpoint "
                           f"covers {checkpoint.count} entries: entries were removed from its end", count + 1)
        if checkpoint.count >= first_seq and heads.get(checkpoint.count) != checkpoint.head_hash:
            return Verdict(False, count - first_seq + 1, f"entry {checkpoint.count} differs from its signed "
                           "checkpoint: the log was rewritten", checkpoint.count)
    return Verdict(True, count - first_seq + 1, f"intact: {count - first_seq + 1} entries, "
                   f"{len(checkpoints)} signed checkpoints")


def read_checkpoint_file(path: Path) -> list[Checkpoint]:
    try:
        lines = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        return [Checkpoint(int(d["count"]), str(d["head_hash"]), str(d["at"]), str(d["signature"])) for d in lines]
    except (OSError, ValueError, KeyError, TypeError):
        raise AuditError(f"{Path(path).name}: not a checkpoint file (JSON lines of count, head_hash, at, "
                         "signature)") from None


def verify_pack(data: bytes, pinned_key: Ed25519PublicKey | None = None) -> Verdict:
    """Check an evidence pack anywhere: the signature over its exact bytes, then its chain and checkpoints."""
    cut = data.rfind(_SIGNATURE_PREFIX)
    if cut < 0 or not data.endswith(b"\n"):
        return Verdict(False, 0, "not an evidence pack (no signature line)")
    payload, signature = data[:cut], data[cut + len(_SIGNATURE_PREFIX):-1]
    try:
        document = json.loads(payload)
        key = load_public_key(document["public_key"])
        raw_signature = strict_b64decode(signature)
    except (ValueError, KeyError, TypeError, AuditError):
        return Verdict(False, 0, "the pack is damaged (unreadable content or signature)")
    if canonical(document) != payload:
        return Verdict(False, 0, "the pack was altered (its content is not as written)")
    if pinned_key is not None and fingerprint(pinned_key) != fingerprint(key):
        return Verdict(False, 0, "the pack was signed by another key than the one given")
    try:
        key.verify(raw_signature, payload)
    except InvalidSignature:
        return Verdict(False, 0, "the pack's signature does not match its content")
    entries = document["entries"]
    rows = [(e["seq"], e["at"], e["actor"], e["event"], e["details"], e["prev_hash"], e["hash"]) for e in entries]
    checkpoints = [Checkpoint(**c) for c in document["checkpoints"]]
    first = entries[0]["seq"] if entries else 1
    verdict = verify_entries(rows, checkpoints, key, first_seq=first, prev=document["starts_after"])
    if verdict.ok:
        verdict.message = f"intact: {verdict.entries} entries, signed by key {fingerprint(key)}"
    return verdict
