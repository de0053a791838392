"""Users, roles and what each role may do: one module, used by the command line and (later) the console.

Passwords are hashed with Argon2id (argon2-cffi). Repeated failures lock an account for a while. Every
action has an actor: a person signed in here, or `system:<job>` for the appliance's own scheduled work.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance.errors import AccessError
from appliance.store import Store

ROLES = ("admin", "analyst", "staff", "compliance")
PERMISSIONS: dict[str, frozenset[str]] = {
    "users.manage": frozenset({"admin"}),
    "keys.manage": frozenset({"admin"}),
    "store.backup": frozenset({"admin"}),
    "store.restore": frozenset({"admin"}),
    "data.ingest": frozenset({"admin", "analyst"}),
    "quarantine.read": frozenset({"admin", "analyst", "compliance"}),
    "customers.read_masked": frozenset({"staff", "analyst", "compliance"}),
    "insights.read": frozenset({"analyst", "compliance", "admin"}),
    "export.request": frozenset({"analyst"}),
    "export.approve": frozenset({"compliance"}),
    "audit.read": frozenset({"compliance"}),
    "audit.verify": frozenset({"compliance", "admin"}),
    "policy.manage": frozenset({"compliance"}),
    "subject.rights": frozenset({"compliance"}),
    "vault.reveal": frozenset({"compliance"}),
    "retention.run": frozenset({"admin", "compliance"}),
    "jobs.run": frozenset({"admin", "analyst"}),
    "campaign.manage": frozenset({"analyst"}),
    "campaign.work": frozenset({"staff", "analyst"}),
    "campaign.read": frozenset({"staff", "analyst", "compliance"}),
}
# What one person may not do with a password another person chose for them: an admin who sets a
# compliance officer's password could otherwise approve exports as that officer.
OWN_PASSWORD_REQUIRED = frozenset({"export.approve", "vault.reveal", "subject.rights"})
MIN_PASSWORD_LENGTH = 10
_HASHER = PasswordHasher()  # Argon2id, argon2-cffi's current defaults


@dataclass(frozen=True)
class Actor:
    name: str
    role: str
    one_time_password: bool = False  # set by an admin, not yet changed by its owner

    @property
    def label(self) -> str:
        return self.name

    def require(self, permission: str) -> None:
        if self.role not in PERMISSIONS[permission]:
            raise AccessError(f"user '{self.name}' ({self.role}) may not do this: it needs {permission}")
        if self.one_time_password and permission in OWN_PASSWORD_REQUIRED:
            raise AccessError(f"user '{self.name}' signed in with a password an admin set; change it first "
                              "(appliance user passwd, as yourself) before approving, revealing or erasing")


class SignInRefused(AccessError):
    """Always the same words for the person; the reason is for the audit log only."""

    def __init__(self, reason: str):
        super().__init__("sign-in refused: wrong user name or password, or the account is locked or disabled")
        self.reason = reason


def system(job: str) -> Actor:
    """The appliance itself, acting for a scheduled or automated job."""
    return Actor(f"system:{job}", "system")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccessError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")


def _check_name(name: str) -> None:
    if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum() or len(name) > 64:
        raise AccessError("user names are 1-64 letters, digits, '.', '-' or '_'")


def check_new_user(name: str, role: str, password: str) -> None:
    """Refuse a user that could not be added, before anything is created for it."""
    _check_name(name)
    if role not in ROLES:
        raise AccessError(f"unknown role '{role}' (roles: {', '.join(ROLES)})")
    _check_password(password)


class Users:
    def __init__(self, store: Store, *, max_failures: int = 5, lockout_minutes: int = 15):
        self.store = store
        self.max_failures = max_failures
        self.lockout = timedelta(minutes=lockout_minutes)

    def add(self, name: str, role: str, password: str, *, set_by: str | None = None) -> Actor:
        """A new user; a password chosen by someone else (`set_by`) is one-time until its owner changes it."""
        check_new_user(name, role, password)
        if self.store.scalar("SELECT 1 FROM users WHERE name = ?", (name,)):
            raise AccessError(f"user '{name}' already exists")
        now = _now().isoformat(timespec="seconds")
        set_by = set_by if set_by != name else None
        self.store.execute("INSERT INTO users (name, role, password_hash, created_at, updated_at, password_set_by) "
                           "VALUES (?,?,?,?,?,?)", (name, role, _HASHER.hash(password), now, now, set_by))
        return Actor(name, role, one_time_password=set_by is not None)

    def list(self) -> list[dict]:
        return [dict(r) for r in self.store.query(
            "SELECT name, role, disabled, failed_attempts, locked_until, created_at FROM users ORDER BY name")]

    def actor(self, name: str) -> Actor:
        """The user as an actor (their role now, and whether their password is still one an admin set)."""
        user = self._get(name)
        return Actor(name, user["role"], one_time_password=bool(user["password_set_by"]))

    def _get(self, name: str):
        row = self.store.query("SELECT * FROM users WHERE name = ?", (name,))
        if not row:
            raise AccessError(f"no user '{name}'")
        return row[0]

    def _update(self, name: str, **fields) -> None:
        fields["updated_at"] = _now().isoformat(timespec="seconds")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self.store.execute(f"UPDATE users SET {assignments} WHERE name = ?", (*fields.values(), name))

    def disable(self, name: str) -> None:
        self._get(name)
        self._update(name, disabled=1)

    def enable(self, name: str) -> None:
        self._get(name)
        self._update(name, disabled=0, failed_attempts=0, locked_until=None)

    def set_password(self, name: str, password: str, *, set_by: str) -> None:
        """Set by its owner, a password is theirs; set by anyone else (an admin), it is one-time."""
        self._get(name)
        _check_password(password)
        self._update(name, password_hash=_HASHER.hash(password), failed_attempts=0, locked_until=None,
                     password_set_by=None if set_by == name else set_by)

    def set_role(self, name: str, role: str) -> str:
        old = self._get(name)["role"]
        if role not in ROLES:
            raise AccessError(f"unknown role '{role}' (roles: {', '.join(ROLES)})")
        if old == "admin" and role != "admin" and self._active_admins() == 1:
            raise AccessError("the last active admin cannot lose the admin role")
        self._update(name, role=role)
        return old

    def _active_admins(self) -> int:
        return self.store.scalar("SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0")

    def failed(self, name: str) -> bool:
        """One more failed attempt (a wrong password or second-factor code); True when it locks the account."""
        failures = self._get(name)["failed_attempts"] + 1
        locked = (_now() + self.lockout).isoformat(timespec="seconds") if failures >= self.max_failures else None
        self._update(name, failed_attempts=0 if locked else failures, locked_until=locked)
        return locked is not None

    def succeeded(self, name: str) -> None:
        self._update(name, failed_attempts=0, locked_until=None)

    def authenticate(self, name: str, password: str, *, final: bool = True) -> Actor:
        """The user, if the password is right and the account usable. Failures count towards a lockout; the
        message never says whether the name or the password was wrong."""
        row = self.store.query("SELECT * FROM users WHERE name = ?", (name,))
        # One message for every refusal: an unknown name must not read differently from a locked account.
        # The audit log records the reason (SignInRefused.reason).
        if not row:
            _HASHER.hash(password)  # spend the same time as for a real user
            raise SignInRefused("unknown user")
        user = row[0]
        if user["disabled"]:
            _HASHER.hash(password)
            raise SignInRefused("disabled")
        if user["locked_until"] and datetime.fromisoformat(user["locked_until"]) > _now():
            _HASHER.hash(password)
            raise SignInRefused("locked")
        try:
            _HASHER.verify(user["password_hash"], password)
        except (VerificationError, InvalidHashError):
            locked = self.failed(name)
            raise SignInRefused("wrong password" + (", now locked" if locked else "")) from None
        # With a second factor still due (`final` false) the count stands until that succeeds too: a right
        # password must not buy more guesses at the code.
        if final and (user["failed_attempts"] or user["locked_until"]):
            self._update(name, failed_attempts=0, locked_until=None)
        if _HASHER.check_needs_rehash(user["password_hash"]):
            self._update(name, password_hash=_HASHER.hash(password))
        return Actor(name, user["role"], one_time_password=bool(user["password_set_by"]))
