"""Commands about people: users and roles, data-subject rights."""

import sys

import click

from appliance.cli import acting, cli, credentials_from, home_option, key_file_option, secret, sign_in, user_option
from appliance.errors import AccessError
from appliance.home import Home, resolve_home


@cli.group()
def user():
    """Manage users and their roles (admin, analyst, staff, compliance)."""


@user.command("add")
@acting("users.manage")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "analyst", "staff", "compliance"]), required=True)
def user_add(home, actor, name, role):
    """Add a user; the new password from $APPLIANCE_NEW_USER_PASSWORD or a prompt. It is one-time: the user
    must change it (user passwd, as themselves) before approving, revealing or erasing anything."""
    password = secret("APPLIANCE_NEW_USER_PASSWORD", f"Password for {name}", confirm=True)
    with home.store.transaction():
        home.users().add(name, role, password, set_by=actor.name)
        home.audit.record(actor, "user.add", user=name, role=role, one_time_password=True)
    click.echo(f"user '{name}' added ({role}); the password is one-time until '{name}' changes it")


@user.command("list")
@acting("users.manage")
def user_list(home, actor):
    """List users, their roles and whether they are disabled or locked."""
    for row in home.users().list():
        state = "disabled" if row["disabled"] else ("locked" if row["locked_until"] else "active")
        click.echo(f"{row['name']:24} {row['role']:11} {state}")


@user.command("disable")
@acting("users.manage")
@click.argument("name")
def user_disable(home, actor, name):
    """Disable a user (kept for the audit trail, never deleted)."""
    with home.store.transaction():
        home.users().disable(name)
        home.audit.record(actor, "user.disable", user=name)
    click.echo(f"user '{name}' disabled")


@user.command("enable")
@acting("users.manage")
@click.argument("name")
def user_enable(home, actor, name):
    """Enable a disabled or locked user."""
    with home.store.transaction():
        home.users().enable(name)
        home.audit.record(actor, "user.enable", user=name)
    click.echo(f"user '{name}' enabled")


@user.command("reset-second-factor")
@acting("users.manage")
@click.argument("name")
def user_reset_second_factor(home, actor, name):
    """Forget a user's console second factor (a lost phone): they enrol a new one at their next sign-in."""
    with home.store.transaction():
        home.users().actor(name)  # refuses an unknown name
        home.second_factor().reset(name)
        from appliance.web.sessions import end_sessions

        ended = end_sessions(home.store, name)
        home.audit.record(actor, "user.second_factor.reset", user=name, sessions_ended=ended)
    click.echo(f"user '{name}': second factor reset; they enrol again at their next console sign-in")


@user.command("role")
@acting("users.manage")
@click.argument("name")
@click.argument("role", type=click.Choice(["admin", "analyst", "staff", "compliance"]))
def user_role(home, actor, name, role):
    """Change a user's role."""
    with home.store.transaction():
        old = home.users().set_role(name, role)
        home.audit.record(actor, "user.role", user=name, old_role=old, new_role=role)
    click.echo(f"user '{name}': {old} -> {role}")


@user.command("passwd")
@home_option
@key_file_option
@user_option
@click.argument("name", required=False)
def user_passwd(home_dir, key_file, user_name, name):
    """Change a password: your own, or (as admin) anyone's. New password from $APPLIANCE_NEW_USER_PASSWORD.
    A password an admin sets for someone else is one-time: its owner must change it before approving,
    revealing or erasing anything."""
    with Home.open(resolve_home(home_dir), credentials_from(key_file)) as home:
        actor = sign_in(home, user_name)
        target = name or actor.name
        if target != actor.name and actor.role != "admin":
            raise AccessError(f"user '{actor.name}' may only change their own password")
        password = secret("APPLIANCE_NEW_USER_PASSWORD", f"New password for {target}", confirm=True)
        with home.store.transaction():
            home.users().set_password(target, password, set_by=actor.name)
            home.audit.record(actor, "user.passwd", user=target, one_time_password=target != actor.name)
    click.echo(f"password of '{target}' changed" + (f"; one-time until '{target}' changes it" if target != actor.name
                                                    else ""))

@cli.group()
def subject():
    """Data-subject rights (PIPL art. 44-47): find, report and erase a person's data."""


@subject.command("find")
@acting("subject.rights")
@click.option("--by", "kind", type=click.Choice(["id_number", "phone", "email", "name", "customer_id"]),
              required=True)
@click.option("--source", help="With --by customer_id: the source whose customer numbers these are.")
@click.option("--purpose", required=True, help="Why: a purpose named in policies/purposes.yaml (audited).")
def subject_find(home, actor, kind, source, purpose):
    """Find customers by an identifier typed at the prompt (hashed to its token, never stored)."""
    from appliance import subjects

    home.purpose_policy().check(purpose)
    value = click.prompt(f"{kind} of the person", hide_input=True, err=True) if sys.stdin.isatty() \
        else sys.stdin.readline().strip()
    if not value:
        raise click.UsageError(f"no {kind} given (type it at the prompt, or one line on stdin)")
    namespace = home.mapping(source).id_namespace if source else None
    found = subjects.find(home.store, home.tokenizer(), kind, value, namespace)
    home.audit.record(actor, "subject.find", by=kind, purpose=purpose, customers=found)
    for token in found:
        click.echo(token)
    if not found:
        click.echo("no customer holds that value")


@subject.command("report")
@acting("subject.rights")
@click.option("--customer", required=True, help="The customer token (from `subject find`).")
@click.option("--reveal", is_flag=True,
              help="Also show the vaulted raw values your role may reveal for --purpose (needs --reason).")
@click.option("--purpose", help="With --reveal: a purpose that policies/purposes.yaml lets your role reveal for.")
@click.option("--reason", help="With --reveal: the case or request (recorded in the audit log).")
def subject_report(home, actor, customer, reveal, purpose, reason):
    """What the box holds about a person: rows per table, masked notes, vaulted fields."""
    import json

    from appliance import subjects

    fields: frozenset[str] = frozenset()
    if reveal:
        actor.require("vault.reveal")
        if not reason or not purpose:
            raise click.UsageError("--reveal needs --purpose and --reason")
        fields = home.purpose_policy().revealable(actor.role, purpose)
    person = subjects.load(home.store, customer)
    home.audit.record(actor, "subject.report", customer=customer, reveal=reveal)
    held = subjects.report(home.store, home.vault(), person, reveal=fields)
    if reveal:
        home.audit.record(actor, "vault.reveal", customer=customer, purpose=purpose, reason=reason,
                          fields=sorted(held.get("revealed", {})))
    click.echo(json.dumps(held, ensure_ascii=False, indent=2))


@subject.command("erase")
@acting("subject.rights")
@click.option("--customer", required=True, help="The customer token (from `subject find`).")
@click.option("--reason", required=True, help="The request being honoured (recorded in the audit log).")
def subject_erase(home, actor, customer, reason):
    """Erase a person everywhere: canonical rows, quarantine, vault, derived data. Exported aggregates stay."""
    from appliance import subjects

    person = subjects.load(home.store, customer)
    with home.store.transaction():
        counts = subjects.erase(home.store, person)
        home.audit.record(actor, "subject.erase", customer=customer, reason=reason, counts=counts)
    click.echo("erased: " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@subject.command("erase-leftovers")
@acting("subject.rights")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@click.option("--dry-run", is_flag=True, help="Only count the rows.")
def subject_erase_leftovers(home, actor, reason, dry_run):
    """Erase derived rows (features, scores, tags...) of customers already erased. Before schema 15,
    `subject erase` on the command line left them."""
    from appliance import subjects

    if dry_run:
        counts = subjects.leftovers(home.store)
    else:
        with home.store.transaction():
            counts = subjects.erase_leftovers(home.store)
            home.audit.record(actor, "subject.erase.leftovers", reason=reason, counts=counts)
    listed = ", ".join(f"{n} {table}" for table, n in counts.items()) or "nothing"
    click.echo(f"{'would erase' if dry_run else 'erased'}: {listed}")
