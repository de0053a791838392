"""A second factor for the people who approve exports, reveal data and run the box (admin, compliance):
time-based one-time passwords (RFC 6238, pyotp), enrolled by scanning a QR code drawn on the box (segno;
nothing leaves it). The secret is sealed under the vault key, bound to its user; a code is accepted once
(a replayed code, or one older than the last accepted, is refused) and wrong codes count towards the same
lockout as wrong passwords.
"""

import time

import pyotp
import segno

from appliance.protect import Sealer
from appliance.store import Store

REQUIRED_FOR = frozenset({"admin", "compliance"})
ISSUER = "Insight Appliance"
DOMAIN = "totp"


class SecondFactor:
    def __init__(self, store: Store, vault_key: bytes):
        self.store = store
        self.sealer = Sealer(vault_key)

    def enrolled(self, user: str) -> bool:
        return bool(self.store.scalar("SELECT totp_sealed IS NOT NULL FROM users WHERE name = ?", (user,)))

    def begin(self, user: str) -> str:
        """A new secret waiting for its first code (the enrolled one, if any, stays until then)."""
        secret = pyotp.random_base32()
        self.store.execute("UPDATE users SET totp_pending = ? WHERE name = ?",
                           (self.sealer.seal(DOMAIN, user, secret), user))
        return secret

    def pending(self, user: str) -> str | None:
        sealed = self.store.scalar("SELECT totp_pending FROM users WHERE name = ?", (user,))
        return self.sealer.unseal(DOMAIN, user, bytes(sealed)) if sealed else None

    def confirm(self, user: str, code: str) -> bool:
        """The first code from the authenticator app: the waiting secret becomes the user's."""
        secret = self.pending(user)
        step = _accepted_step(secret, code, None) if secret else None
        if step is None:
            return False
        self.store.execute("UPDATE users SET totp_sealed = totp_pending, totp_pending = NULL, totp_last_step = ? "
                           "WHERE name = ?", (step, user))
        return True

    def verify(self, user: str, code: str) -> bool:
        row = self.store.query("SELECT totp_sealed, totp_last_step FROM users WHERE name = ?", (user,))
        if not row or row[0]["totp_sealed"] is None:
            return False
        secret = self.sealer.unseal(DOMAIN, user, bytes(row[0]["totp_sealed"]))
        step = _accepted_step(secret, code, row[0]["totp_last_step"])
        if step is None:
            return False
        self.store.execute("UPDATE users SET totp_last_step = ? WHERE name = ?", (step, user))
        return True

    def reset(self, user: str) -> None:
        """Forget the user's second factor: they enrol again at their next sign-in."""
        self.store.execute("UPDATE users SET totp_sealed = NULL, totp_pending = NULL, totp_last_step = NULL "
                           "WHERE name = ?", (user,))


def _accepted_step(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step the code belongs to (now, or one step either side for clock drift), if it is newer than
    the last accepted one."""
    code = "".join(ch for ch in str(code) if ch.isdigit())[:8]
    if len(code) != 6:
        return None
    totp, now = pyotp.TOTP(secret), time.time()
    for drift in (0, -1, 1):
        step = int(now // totp.interval) + drift
        if (last_step is None or step > last_step) and totp.verify(code, for_time=step * totp.interval):
            return step
    return None


def enrolment_uri(secret: str, user: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The QR code as an SVG data URI, drawn here (the CSP allows data: images; nothing is fetched)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, dark="#123a5c")
