"""Per-user tokens for the console's JSON API (/api/v1). A token is 32 random bytes shown once at creation;
the store keeps only its SHA-256 (a random secret of that length needs no slow hash), who it belongs to, a
label, when it expires and when it was last used. It acts with its user's current role and stops working when
revoked, expired, or when its user is disabled. Created only in the console, after the full sign-in (the
second factor included), so that a password alone never mints one."""

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from appliance.errors import AccessError
from appliance.store import Store

PREFIX = "iat_"
MAX_DAYS = 365
LABEL_LENGTH = 64


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ApiTokens:
    def __init__(self, store: Store):
        self.store = store

    def create(self, user: str, label: str, days: int = 90) -> tuple[str, str]:
        """(the token, shown once; its id, for listing and revoking)."""
        label = " ".join("".join(ch for ch in label if ch.isprintable()).split())[:LABEL_LENGTH]
        if not label:
            raise AccessError("an API token needs a label (what it is for)")
        if not 1 <= days <= MAX_DAYS:
            raise AccessError(f"an API token lives 1 to {MAX_DAYS} days")
        token = PREFIX + secrets.token_urlsafe(32)
        token_id = secrets.token_hex(4)
        now = _now()
        self.store.execute("INSERT INTO api_tokens (token_sha256, token_id, user_name, label, created_at, "
                           "expires_at) VALUES (?,?,?,?,?,?)",
                           (_digest(token), token_id, user, label, now.isoformat(timespec="seconds"),
                            (now + timedelta(days=days)).isoformat(timespec="seconds")))
        return token, token_id

    def holder(self, token: str) -> tuple[str, str, str] | None:
        """(user, their role now, token id) for a live token, else None."""
        if not token.startswith(PREFIX) or len(token) > 100:
            return None
        rows = self.store.query(
            "SELECT t.token_id, t.user_name, t.expires_at, t.revoked_at, u.role, u.disabled FROM api_tokens t "
            "JOIN users u ON u.name = t.user_name WHERE t.token_sha256 = ?", (_digest(token),))
        if not rows:
            return None
        row = rows[0]
        if row["revoked_at"] or row["disabled"] or datetime.fromisoformat(row["expires_at"]) <= _now():
            return None
        with self.store.transaction():
            self.store.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_id = ?",
                               (_now().isoformat(timespec="seconds"), row["token_id"]))
        return row["user_name"], row["role"], row["token_id"]

    def list(self, user: str | None = None) -> list[dict]:
        where, params = ("WHERE user_name = ?", (user,)) if user else ("", ())
        return [dict(r) for r in self.store.query(
            f"SELECT token_id, user_name, label, created_at, expires_at, last_used_at, revoked_at FROM api_tokens "
            f"{where} ORDER BY created_at DESC", params)]

    def revoke(self, token_id: str, *, user: str | None = None) -> bool:
        """Revoke a token (only the user's own when `user` is given); False when there is no such live token."""
        clause, params = ("AND user_name = ?", (user,)) if user else ("", ())
        return self.store.execute(f"UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL "
                                  f"{clause}", (_now().isoformat(timespec="seconds"), token_id[:16], *params)
                                  ).rowcount == 1
