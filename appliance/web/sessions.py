"""Console sessions kept in the encrypted store, not in the cookie.

The cookie (`__Host-session`: Secure, HttpOnly, SameSite=Strict, path /) carries only a random id; the store
keeps its SHA-256 with the user, the role at sign-in, the CSRF token and the times. So a session ends for good
when it is removed: at logout (every session of that user), when the user is disabled or their role changes
(checked on every request), after `console.idle_minutes` unused or `console.session_hours` in all. A new id is
issued at sign-in, so an id planted before sign-in is worth nothing after it.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass

from flask.sessions import SessionInterface, SessionMixin

COOKIE = "__Host-session"
PRE_COOKIE = "__Host-presession"  # the sign-in form's CSRF token, before a session exists
STORELESS = ("/static/", "/favicon.ico")  # paths served without reading the store


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


class ConsoleSession(dict, SessionMixin):
    """What a request may keep in its session: the CSRF token (flask-wtf) and, once signed in, who."""

    def __init__(self, session_id: str | None = None, user: str | None = None, role: str | None = None,
                 language: str | None = None, pending: str | None = None, **data):
        super().__init__(**data)
        self.session_id, self.user, self.role, self.language = session_id, user, role, language
        self.pending = pending  # "totp" or "enrol": the password was right, the second factor is still due
        self.modified = False


def end_sessions(store, user: str) -> int:
    """End every console session of this user, inside the caller's transaction (with its audit entry)."""
    return store.execute("DELETE FROM web_sessions WHERE user_name = ?", (user,)).rowcount


@dataclass
class SessionStore:
    home: object
    idle_seconds: int
    absolute_seconds: int

    def start(self, user: str, role: str, csrf: str, pending: str | None = None) -> str:
        """A new session for a signed-in user (waiting for the second factor when `pending`); returns the id
        for the cookie."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        with self.home.store.transaction():
            self.home.store.execute("INSERT INTO web_sessions (id_sha256, user_name, role, csrf, created_at, "
                                    "last_seen, pending) VALUES (?,?,?,?,?,?,?)",
                                    (_digest(session_id), user, role, csrf, now, now, pending))
        return session_id

    def second_factor_done(self, session_id: str) -> None:
        with self.home.store.transaction():
            self.home.store.execute("UPDATE web_sessions SET pending = NULL WHERE id_sha256 = ?",
                                    (_digest(session_id),))

    def find(self, session_id: str) -> ConsoleSession | None:
        """The live session with this id, or None (ended, expired, or its user disabled or given another role)."""
        rows = self.home.store.query(
            "SELECT s.user_name, s.role, s.csrf, s.created_at, s.last_seen, s.pending, u.role AS current_role, "
            "u.disabled, u.language "
            "FROM web_sessions s LEFT JOIN users u ON u.name = s.user_name WHERE s.id_sha256 = ?",
            (_digest(session_id),))
        if not rows:
            return None
        row, now = rows[0], time.time()
        if (row["disabled"] is None or row["disabled"] or row["current_role"] != row["role"]
                or now - row["last_seen"] > self.idle_seconds or now - row["created_at"] > self.absolute_seconds):
            if row["disabled"] or row["current_role"] != row["role"]:
                self.end_user(row["user_name"])  # the user changed: every session of theirs goes
            else:
                self.end(session_id)
            return None
        with self.home.store.transaction():
            self.home.store.execute("UPDATE web_sessions SET last_seen = ? WHERE id_sha256 = ?",
                                    (now, _digest(session_id)))
        return ConsoleSession(session_id, row["user_name"], row["role"], row["language"], row["pending"],
                              csrf_token=row["csrf"])

    def end(self, session_id: str) -> None:
        with self.home.store.transaction():
            self.home.store.execute("DELETE FROM web_sessions WHERE id_sha256 = ?", (_digest(session_id),))

    def end_others(self, user: str, keep: str) -> int:
        """End every session of this user but the one given (a password change ends the others)."""
        with self.home.store.transaction():
            return self.home.store.execute("DELETE FROM web_sessions WHERE user_name = ? AND id_sha256 != ?",
                                           (user, _digest(keep))).rowcount

    def end_user(self, user: str) -> int:
        """End every session of this user (logout anywhere ends them all)."""
        with self.home.store.transaction():
            return end_sessions(self.home.store, user)


class StoreSessionInterface(SessionInterface):
    """Flask's session, backed by SessionStore. Before sign-in a session lives only for the request that made
    it (it holds the CSRF token of the sign-in form, in a short-lived signed cookie of its own)."""

    def __init__(self, sessions: SessionStore):
        self.sessions = sessions

    def open_session(self, app, request):
        if request.path.startswith(STORELESS):  # static files: no session, so no store and no wait for it
            return ConsoleSession()
        session_id = request.cookies.get(COOKIE)
        found = self.sessions.find(session_id) if session_id else None
        if found is not None:
            return found
        anonymous = ConsoleSession()
        token = request.cookies.get(PRE_COOKIE)
        if token:
            anonymous["csrf_token"] = token
        return anonymous

    def save_session(self, app, session, response):
        secure = dict(secure=True, httponly=True, samesite="Strict", path="/")
        if session.session_id is None and "csrf_token" in session:
            response.set_cookie(PRE_COOKIE, session["csrf_token"], **secure)
