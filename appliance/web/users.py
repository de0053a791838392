"""Users, for admins: add (with a one-time password shown once to hand over), change a role, disable or
enable, reset a password (one-time again) or a second factor, end a user's sessions, revoke API tokens. A
changed role, a disabled user or a reset ends that user's sessions at once. Every change is audited; the
last active admin cannot be demoted or disabled (the library refuses)."""

import secrets

from flask import Blueprint, current_app, render_template, request

from flask_babel import gettext as _

from appliance.access import ROLES
from appliance.api_tokens import ApiTokens
from appliance.errors import AccessError
from appliance.web.auth import requires
from appliance.web.sessions import end_sessions

blueprint = Blueprint("users", __name__)


def _page(message=None, error=None, handed=None, status=200):
    home = current_app.extensions["home"]
    people = home.users().list()
    sessions = dict(home.store.rows("SELECT user_name, count(*) FROM web_sessions GROUP BY 1"))
    enrolled = {r[0] for r in home.store.rows("SELECT name FROM users WHERE totp_sealed IS NOT NULL")}
    for person in people:
        person["sessions"] = sessions.get(person["name"], 0)
        person["second_factor"] = person["name"] in enrolled
    return render_template("users/list.html", user=request.user, role=request.role, people=people, roles=ROLES,
                           tokens=ApiTokens(home.store).list(), message=message, error=error, handed=handed), status


@blueprint.route("/users")
@requires("users.manage")
def listing():
    return _page()


def _one_time_password() -> str:
    return secrets.token_urlsafe(12)


@blueprint.route("/users", methods=["POST"])
@requires("users.manage")
def act():
    """One form per action; `action` says which."""
    home = current_app.extensions["home"]
    users, action = home.users(), request.form.get("action", "")
    name = request.form.get("name", "")[:64]
    handed = None
    try:
        with home.store.transaction():
            if action == "add":
                password = _one_time_password()
                role = request.form.get("role", "")
                users.add(name, role, password, set_by=request.user)
                home.audit.record(request.user, "user.add", user=name, role=role, one_time_password=True)
                handed = (name, password)
            elif action == "role":
                role = request.form.get("role", "")
                old = users.set_role(name, role)
                home.audit.record(request.user, "user.role", user=name, old_role=old, new_role=role)
            elif action in ("disable", "enable"):
                if action == "disable" and name == request.user:
                    raise AccessError("you cannot disable yourself")
                if action == "disable" and users.actor(name).role == "admin" and home.store.scalar(
                        "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0") == 1:
                    raise AccessError("the last active admin cannot be disabled")
                users.disable(name) if action == "disable" else users.enable(name)
                home.audit.record(request.user, f"user.{action}", user=name)
            elif action == "password":
                password = _one_time_password()
                users.set_password(name, password, set_by=request.user)
                ended = end_sessions(home.store, name)
                home.audit.record(request.user, "user.passwd", user=name, one_time_password=True,
                                  sessions_ended=ended)
                handed = (name, password)
            elif action == "second_factor":
                users.actor(name)
                home.second_factor().reset(name)
                ended = end_sessions(home.store, name)
                home.audit.record(request.user, "user.second_factor.reset", user=name, sessions_ended=ended)
            elif action == "sessions":
                users.actor(name)
                home.audit.record(request.user, "user.sessions.end", user=name, sessions=end_sessions(home.store, name))
            elif action == "revoke":
                token_id = request.form.get("token_id", "")[:16]
                if not ApiTokens(home.store).revoke(token_id):
                    raise AccessError("no such live token")
                home.audit.record(request.user, "api_token.revoke", token=token_id)
            else:
                raise AccessError("unknown action")
    except AccessError as refused:
        return _page(error=refused.message, status=400)
    return _page(message=_("Done."), handed=handed)

