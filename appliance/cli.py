"""The `appliance` command. Commands are thin: they gather options, call the library, print results.
Every failure is one line on stderr and a non-zero exit; no traceback reaches the user."""

import functools
import json
import logging
import os
import sys
import traceback
import uuid
from pathlib import Path

import click

from appliance.errors import AccessError, ApplianceError, AuditError, KeyMaterialError
from appliance.home import Home, resolve_home
from appliance.keys import Credentials

log = logging.getLogger("appliance")


def _passphrase_source(env_name: str, prompt: str, confirm: bool = False):
    def read() -> str:
        value = os.environ.get(env_name)
        if value is not None:
            return value
        if not sys.stdin.isatty():
            raise KeyMaterialError(f"no passphrase: set {env_name} or run in a terminal")
        return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)

    return read


def credentials_from(key_file: str | None, *, new: bool = False) -> Credentials:
    """The KEK comes the same way for every command: key file option or env, passphrase env, or a prompt."""
    key_file = key_file or os.environ.get("APPLIANCE_KEY_FILE")
    if key_file:
        return Credentials(key_file=Path(key_file))
    return Credentials(passphrase=_passphrase_source("APPLIANCE_PASSPHRASE", "Passphrase", confirm=new))


home_option = click.option("--home", "home_dir", type=click.Path(file_okay=False),
                           help="Appliance home (default: $APPLIANCE_HOME).")
key_file_option = click.option("--key-file", type=click.Path(dir_okay=False),
                               help="Key file holding the key-encryption key (default: $APPLIANCE_KEY_FILE; "
                                    "else the passphrase from $APPLIANCE_PASSPHRASE or a prompt).")


user_option = click.option("--user", "user_name", envvar="APPLIANCE_USER",
                           help="Who acts (default: $APPLIANCE_USER); the password comes from "
                                "$APPLIANCE_USER_PASSWORD or a prompt.")


def _secret(env_name: str, prompt: str, confirm: bool = False) -> str:
    return _passphrase_source(env_name, prompt, confirm)()


def sign_in(home: Home, name: str | None):
    """Authenticate the person acting; success and failure both go to the audit log."""
    if not name:
        raise AccessError("this command acts for a person: pass --user NAME or set APPLIANCE_USER")
    password = _secret("APPLIANCE_USER_PASSWORD", f"Password for {name}")
    failure = None
    with home.store.transaction():
        try:
            actor = home.users().authenticate(name, password)
        except AccessError as exc:
            failure = exc
            home.audit.record(f"unauthenticated:{name}", "login.failure", user=name)
        else:
            home.audit.record(actor, "login.success", user=name, role=actor.role)
    if failure is not None:
        raise failure
    return actor


def acting(permission: str):
    """For commands that act for a person: opens the home, signs the user in, checks the permission, and
    passes `home` and `actor`."""

    def decorate(command):
        @home_option
        @key_file_option
        @user_option
        @functools.wraps(command)
        def wrapper(home_dir, key_file, user_name, **kwargs):
            with Home.open(resolve_home(home_dir), credentials_from(key_file)) as home:
                actor = sign_in(home, user_name)
                actor.require(permission)
                return command(home=home, actor=actor, **kwargs)

        return wrapper

    return decorate


def with_home(command):
    """Opens the home from --home/--key-file and passes it as `home`; closes it afterwards."""

    @home_option
    @key_file_option
    @functools.wraps(command)
    def wrapper(home_dir, key_file, **kwargs):
        with Home.open(resolve_home(home_dir), credentials_from(key_file)) as home:
            return command(home=home, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="insight-appliance")
def cli():
    """Insight Appliance: on-prem, privacy-first customer insight for banks."""


@cli.command()
@home_option
@key_file_option
@click.option("--new-key-file", type=click.Path(dir_okay=False),
              help="Create a fresh random key file here (outside the home) and lock the home with it.")
@click.option("--admin", default="admin", show_default=True,
              help="The first admin user; its password from $APPLIANCE_ADMIN_PASSWORD or a prompt.")
def init(home_dir, key_file, new_key_file, admin):
    """Create a home: settings, policies, wrapped keys, the encrypted store and its first admin."""
    from appliance.keys import new_key_file as create_key_file

    path = resolve_home(home_dir)
    if new_key_file:
        create_key_file(Path(new_key_file))
        key_file = new_key_file
    credentials = credentials_from(key_file, new=True)
    admin_password = _secret("APPLIANCE_ADMIN_PASSWORD", f"Password for the first admin '{admin}'", confirm=True)
    with Home.init(path, credentials, admin=admin, admin_password=admin_password) as home:
        click.echo(f"initialised {path} (store schema v{home.store.schema_version()}, "
                   f"key-encryption key from a {home.keyring.kek_kind})")


@cli.command()
@acting("keys.manage")
def rekey(home, actor):
    """Rotate the store's data key (every row kept; crash-safe)."""
    home.rotate_data_key(actor)
    click.echo("data key rotated")


@cli.command()
@acting("keys.manage")
@click.option("--new-key-file", type=click.Path(dir_okay=False),
              help="Lock the home with this key file from now on (it must exist, 0600, outside the home).")
def passwd(home, actor, new_key_file):
    """Change the key-encryption key (new passphrase from $APPLIANCE_NEW_PASSPHRASE or a prompt)."""
    if new_key_file:
        credentials = Credentials(key_file=Path(new_key_file))
    else:
        credentials = Credentials(passphrase=_passphrase_source("APPLIANCE_NEW_PASSPHRASE", "New passphrase",
                                                                confirm=True))
    kind = home.change_kek(actor, credentials)
    click.echo(f"key-encryption key changed (now from a {kind})")


@cli.command()
@acting("data.ingest")
@click.option("--source", "source", required=True, help="Source mapping name (see `appliance sources`).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def ingest(home, actor, source, paths):
    """Ingest files (CSV, XLSX, JSON Lines; gzip ok) through a source mapping, as one all-or-nothing batch."""
    report = home.ingestor(actor).ingest(home.mapping(source), [Path(p) for p in paths])
    for f in report.files:
        if f.duplicate_of_batch is not None:
            click.echo(f"{f.name}: already ingested (batch {f.duplicate_of_batch or 'this one'}), skipped")
            continue
        click.echo(f"{f.name}: {f.rows_read} rows read, {f.rows_loaded} loaded, {f.rows_quarantined} quarantined"
                   + (f", {f.rows_filtered} filtered out" if f.rows_filtered else "")
                   + (f" [{f.encoding}]" if f.encoding else ""))
        for (column, reason), count in f.reasons.most_common():
            click.echo(f"    {count} x {'column ' + repr(column) + ': ' if column else ''}{reason}")
    for name in report.unmatched:
        click.echo(f"{name}: no entry in mapping '{source}', not ingested")
    if report.batch_id is None:
        click.echo("nothing new to ingest")
    else:
        click.echo(f"batch {report.batch_id} committed: {report.rows_loaded} rows loaded, "
                   f"{report.rows_quarantined} quarantined")


@cli.command()
@with_home
def status(home):
    """Row counts per canonical table and the latest batches."""
    from appliance import model

    for table in [t.name for t in model.TABLES] + ["quarantine", "vault"]:
        click.echo(f"{table:20} {home.store.scalar(f'SELECT count(*) FROM {table}'):>10}")
    for row in home.store.query("SELECT batch_id, source, finished_at, rows_loaded, rows_quarantined FROM "
                                "ingest_batches ORDER BY batch_id DESC LIMIT 5"):
        click.echo(f"batch {row[0]} {row[1]} {row[2]}: {row[3]} loaded, {row[4]} quarantined")


@cli.command()
@acting("quarantine.read")
@click.option("--batch", type=int, help="Only this batch.")
@click.option("--limit", type=int, default=50, show_default=True)
def quarantine(home, actor, batch, limit):
    """List quarantined rows: file, line, column and reason (never the value)."""
    sql = "SELECT batch_id, file_name, line, column_name, reason FROM quarantine"
    params: tuple = ()
    if batch is not None:
        sql, params = sql + " WHERE batch_id = ?", (batch,)
    rows = home.store.query(sql + " ORDER BY quarantine_id LIMIT ?", params + (limit,))
    home.audit.record(actor, "quarantine.read", batch=batch, rows=len(rows))
    for row in rows:
        column = f" column {row[3]}" if row[3] else ""
        click.echo(f"batch {row[0]} {row[1]} line {row[2]}{column}: {row[4]}")


@cli.command()
@home_option
def sources(home_dir):
    """List the source mappings available (shipped, and the home's own)."""
    from appliance.mapping import available_mappings
    from appliance.settings import Settings

    extra = None
    if home_dir or os.environ.get("APPLIANCE_HOME"):
        path = resolve_home(home_dir)
        extra = path / Settings.load(path / "config.yaml")["sources.dir"]
    for name, path in available_mappings(extra).items():
        click.echo(f"{name:20} {path}")


@cli.command("check-mapping")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def check_mapping(path):
    """Validate a source mapping file against the shipped protection policy."""
    from appliance.mapping import load_mapping
    from appliance.policies import SHIPPED_DIR, ProtectionPolicy

    mapping = load_mapping(Path(path), ProtectionPolicy.load(SHIPPED_DIR))
    click.echo(f"{Path(path).name}: source '{mapping.name}', {len(mapping.files)} file entries, valid")


@cli.command()
@acting("store.backup")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the encrypted copy.")
def backup(home, actor, out):
    """Write a consistent encrypted copy of the store (SQLite backup API, same key)."""
    home.backup(actor, Path(out))
    click.echo(f"backup written to {out}")


@cli.group()
def pii():
    """Find and mask personal information in text: stdin to stdout, one line at a time."""


def _stdin_lines():
    """Lines of UTF-8 text as they arrive (an undecodable byte becomes U+FFFD), without their line ends."""
    sys.stdin.reconfigure(encoding="utf-8", errors="replace", newline="\n")
    sys.stdout.reconfigure(encoding="utf-8")
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        yield line[:-1] if line.endswith("\n") else line


@pii.command("analyze")
@click.option("--language", type=click.Choice(["zh", "en", "auto"]), default="auto", show_default=True)
def pii_analyze(language):
    """Per input line, one JSON line: {"entities": [{"type", "start", "end", "score"}]} (str offsets)."""
    import json

    from appliance.pii.engine import engine

    analyzer = engine()
    for line in _stdin_lines():
        entities = [e.as_dict() for e in analyzer.analyze(line, language)]
        sys.stdout.write(json.dumps({"entities": entities}, ensure_ascii=False) + "\n")
        sys.stdout.flush()


@pii.command("mask")
@click.option("--operator", type=click.Choice(["placeholder", "token", "display"]), default="placeholder",
              show_default=True, help="token needs --home and its key (the home's token key).")
@click.option("--language", type=click.Choice(["zh", "en", "auto"]), default="auto", show_default=True)
@home_option
@key_file_option
def pii_mask(operator, language, home_dir, key_file):
    """Per input line, the line with every entity masked (placeholder <TYPE>, keyed token, or display mask)."""
    from appliance.pii.engine import engine
    from appliance.pii.operators import Masker
    from appliance.pii.recognizers import ENTITIES
    from appliance.policies import SHIPPED_DIR, MaskingPolicy

    if operator == "token" or home_dir:
        with Home.open(resolve_home(home_dir), credentials_from(key_file)) as home:
            masker = home.masker(operator)
    else:
        masker = Masker(engine(), MaskingPolicy.load(SHIPPED_DIR, ENTITIES), operator=operator)
    masker.language = language
    for line in _stdin_lines():
        sys.stdout.write(masker.mask(line) + "\n")
        sys.stdout.flush()


@pii.command("eval")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--language", type=click.Choice(["zh", "en", "auto"]), default="auto", show_default=True)
def pii_eval(path, language):
    """Precision, recall and F2 per entity type on a labelled JSON Lines file (text, spans)."""
    from appliance.pii.engine import engine
    from appliance.pii.evaluate import evaluate, load, report

    scores, _ = evaluate(engine(), load(Path(path)), language)
    click.echo(report(scores))


@cli.command("demo-data")
@click.option("--customers", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--months", type=click.IntRange(13, 60), default=18, show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False))
def demo_data(customers, seed, months, out):
    """Write a deterministic Chinese retail-bank dataset that the `demo` source reads."""
    from appliance.demo_data import generate

    counts = generate(Path(out), customers, seed=seed, months=months)
    click.echo(", ".join(f"{v} {k}" for k, v in vars(counts).items()) + f" written to {out}")


def _demo_insights(home: Home) -> None:
    """Install the shipped models (trained on this demo's data) if the home has none, then run the nightly
    pipeline as of the day after the data ends, and say what it found."""
    import shutil
    from datetime import date, timedelta

    from appliance import tagging
    from appliance.access import system
    from appliance.jobs import nightly, recorded

    shipped = Path(__file__).resolve().parent.parent / "models"
    models = home.path / "models"
    models.mkdir(exist_ok=True)
    if not list(models.glob("churn-*.json")):
        for path in sorted(shipped.glob("*-*.onnx")) + sorted(shipped.glob("*-*.json")):
            shutil.copy(path, models / path.name)
            if path.suffix == ".json":
                home.audit.record(system("demo"), "model.install", model=path.name)
    latest = home.store.scalar("SELECT max(booked_at) FROM transactions")
    as_of = date.fromisoformat(latest[:10]) + timedelta(days=1)
    with recorded(home, "nightly", system("demo")) as outcome:
        outcome["rows"] = nightly(home, as_of, system("demo"))
    bands = dict(home.store.query("SELECT risk_band, count(*) FROM customer_scores WHERE as_of = ? GROUP BY 1",
                                  (as_of.isoformat(),)))
    names = [json.loads(r[0])["name_zh"] for r in
             home.store.query("SELECT profile FROM segment_profiles WHERE as_of = ? ORDER BY segment",
                              (as_of.isoformat(),))]
    top = list(tagging.counts(home.store, as_of).items())[:5]
    from appliance.scoring import current_card

    drift = json.loads(current_card(models).read_text(encoding="utf-8"))["drift"][-1]
    click.echo(f"4. insights as of {as_of} (shipped models): {outcome['rows']} customers; churn risk high "
               f"{bands.get('high', 0)}, medium {bands.get('medium', 0)}, low {bands.get('low', 0)}; "
               f"segments {', '.join(names)}; top tags " + ", ".join(f"{t} {n}" for t, n in top))
    click.echo(f"   drift against the model's training data: max PSI {drift['max_psi']:.2f}"
               + (f", flagged ({', '.join(drift['over_threshold'][:4])}...): retrain with `appliance train churn`"
                  if drift["flagged"] else ", within threshold"))


def _demo_user(home: Home, root: Path, name: str, role: str):
    """A demo user with a generated password kept in <root>/<name>.password, signed in as any person is."""
    import secrets

    from appliance.access import system
    from appliance.keys import write_private_file

    password_file = root / f"{name}.password"
    if not password_file.exists():
        password = secrets.token_urlsafe(12)
        with home.store.transaction():
            home.users().add(name, role, password)
            home.audit.record(system("demo"), "user.add", user=name, role=role)
        write_private_file(password_file, password + "\n")
    actor = home.users().authenticate(name, password_file.read_text(encoding="utf-8").strip())
    home.audit.record(actor, "login.success", user=name, role=role)
    return actor


def _demo_export(home: Home, root: Path) -> None:
    """An analyst requests an aggregated report, a compliance officer approves it, the bundle is verified."""
    from appliance.audit import load_public_key
    from appliance.exports import verify
    from appliance.home import EXPORT_PUBLIC_KEY

    analyst = _demo_user(home, root, "demo.analyst", "analyst")
    officer = _demo_user(home, root, "demo.officer", "compliance")
    exports = home.exports()
    request = exports.request(analyst, "segment_profile", ("segment", "region"), recipient="head_office",
                              purpose="management_reporting")
    bundle = exports.approve(officer, request["request_id"])
    verdict = verify(bundle, load_public_key((home.path / EXPORT_PUBLIC_KEY).read_bytes()))
    result = request["result"]
    click.echo(f"5. export {request['request_id']}: segment profiles by segment x region, requested by "
               f"{analyst.name}, approved by {officer.name}: {result['published']} cells published, "
               f"{result['suppressed']} suppressed (k={exports.policy.min_cell_size}, dominance, complements)\n"
               f"   signed bundle {bundle}: {'verified' if verdict.ok else 'NOT VERIFIED'} with "
               f"{EXPORT_PUBLIC_KEY}")


@cli.command()
@click.option("--dir", "directory", default="demo", show_default=True, type=click.Path(file_okay=False),
              help="Working folder: data/, home/ and the key file demo.key beside the home.")
@click.option("--customers", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(directory, customers, seed):
    """Run the whole pipeline on generated data: data, home, keys, ingestion. Re-runs reuse what exists."""
    import secrets

    from appliance.access import system
    from appliance.demo_data import generate
    from appliance.keys import new_key_file, write_private_file

    root = Path(directory).absolute()
    data, home_path, key = root / "data", root / "home", root / "demo.key"
    root.mkdir(parents=True, exist_ok=True)
    if not (data / "customers.csv").exists():
        counts = generate(data, customers, seed=seed)
        click.echo(f"1. generated demo data: {counts.customers} customers, {counts.transactions} transactions, "
                   f"{counts.interactions} complaints and notes -> {data}")
    else:
        click.echo(f"1. demo data already in {data}")
    credentials = Credentials(key_file=key)
    password_file = root / "admin.password"
    if not (home_path / "keyring.json").exists():
        if not key.exists():
            new_key_file(key)
        password = secrets.token_urlsafe(12)
        write_private_file(password_file, password + "\n")
        Home.init(home_path, credentials, admin="admin", admin_password=password).close()
        click.echo(f"2. created home {home_path}, locked by key file {key} (kept outside the home); "
                   f"first admin 'admin', password in {password_file}")
    else:
        click.echo(f"2. home {home_path} exists")
    with Home.open(home_path, credentials) as home:
        report = home.ingestor(system("demo")).ingest(home.mapping("demo"), [data])
        if report.batch_id is None:
            click.echo("3. ingest: every file already ingested, nothing new")
        else:
            click.echo(f"3. ingested batch {report.batch_id}: {report.rows_loaded} rows loaded, "
                       f"{report.rows_quarantined} quarantined; identifiers tokenised, PII sealed in the vault, "
                       "complaints, notes and memos masked by the PII engine")
        counts = {t: home.store.scalar(f"SELECT count(*) FROM {t}") for t in
                  ("customers", "accounts", "transactions", "interactions", "digital_events", "vault")}
        click.echo("   store: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        _demo_insights(home)
        _demo_export(home, root)
        entries = home.audit.verify()
        click.echo(f"6. audit log: {entries.message}")
    click.echo(f"Done. Explore with: .venv/bin/appliance status --home {home_path} --key-file {key}\n"
               f"  acting as the admin: APPLIANCE_USER=admin APPLIANCE_USER_PASSWORD=$(cat {password_file}) "
               f".venv/bin/appliance quarantine --home {home_path} --key-file {key}\n"
               f"  exports, as the compliance officer: APPLIANCE_USER=demo.officer "
               f"APPLIANCE_USER_PASSWORD=$(cat {root / 'demo.officer.password'}) .venv/bin/appliance export list "
               f"--home {home_path} --key-file {key}")


@cli.group()
def user():
    """Manage users and their roles (admin, analyst, staff, compliance)."""


@user.command("add")
@acting("users.manage")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "analyst", "staff", "compliance"]), required=True)
def user_add(home, actor, name, role):
    """Add a user; the new password from $APPLIANCE_NEW_USER_PASSWORD or a prompt."""
    password = _secret("APPLIANCE_NEW_USER_PASSWORD", f"Password for {name}", confirm=True)
    with home.store.transaction():
        home.users().add(name, role, password)
        home.audit.record(actor, "user.add", user=name, role=role)
    click.echo(f"user '{name}' added ({role})")


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
    """Change a password: your own, or (as admin) anyone's. New password from $APPLIANCE_NEW_USER_PASSWORD."""
    with Home.open(resolve_home(home_dir), credentials_from(key_file)) as home:
        actor = sign_in(home, user_name)
        target = name or actor.name
        if target != actor.name and actor.role != "admin":
            raise AccessError(f"user '{actor.name}' may only change their own password")
        password = _secret("APPLIANCE_NEW_USER_PASSWORD", f"New password for {target}", confirm=True)
        with home.store.transaction():
            home.users().set_password(target, password)
            home.audit.record(actor, "user.passwd", user=target)
    click.echo(f"password of '{target}' changed")


@cli.group()
def audit():
    """Review and verify the tamper-evident audit log."""


@audit.command("list")
@acting("audit.read")
@click.option("--from", "since", help="From this time (ISO 8601, UTC).")
@click.option("--to", "until", help="Before this time (ISO 8601, UTC).")
@click.option("--actor", "who", help="Only this actor.")
@click.option("--event", help="Only this event type.")
@click.option("--customer", help="Only entries naming this customer token.")
@click.option("--limit", type=int, default=200, show_default=True)
def audit_list(home, actor, since, until, who, event, customer, limit):
    """List audit entries, filtered by time, actor, event type or customer token."""
    for entry in home.audit.entries(since=since, until=until, actor=who, event=event, customer=customer,
                                    limit=limit):
        click.echo(f"{entry['seq']:>7} {entry['at']} {entry['actor']:<28} {entry['event']:<18} {entry['details']}")


@audit.command("verify")
@acting("audit.verify")
@click.option("--checkpoint", "checkpoint_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint file kept off the box (repeatable): catches entries removed from the end.")
def audit_verify(home, actor, checkpoint_files):
    """Check the whole chain and every signed checkpoint; exit 0 when intact, else name the first bad entry."""
    from appliance.audit import read_checkpoint_file

    extra = [c for path in checkpoint_files for c in read_checkpoint_file(Path(path))]
    verdict = home.audit.verify(extra)
    if not verdict.ok:
        raise AuditError(f"audit log NOT intact: {verdict.message}")
    click.echo(verdict.message)


@audit.command("checkpoint")
@acting("audit.verify")
@click.option("--out", type=click.Path(dir_okay=False), help="Append the checkpoint to this file (keep it off the box).")
def audit_checkpoint(home, actor, out):
    """Sign the log's current head (count + hash + time) and print it as a JSON line."""
    import json

    home.audit.record(actor, "audit.checkpoint")
    checkpoint = home.audit.checkpoint()
    line = json.dumps(checkpoint.as_dict())
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    click.echo(line)


@audit.command("export")
@acting("audit.read")
@click.option("--from", "since", help="From this time (ISO 8601, UTC).")
@click.option("--to", "until", help="Before this time (ISO 8601, UTC).")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def audit_export(home, actor, since, until, out):
    """Write a signed evidence pack (entries, chain proof, checkpoints, public key) for an auditor."""
    if Path(out).exists():
        raise click.ClickException(f"{out} exists; refusing to overwrite it")
    home.audit.record(actor, "audit.export", since=since, until=until)
    Path(out).write_bytes(home.audit.export_pack(since, until))
    click.echo(f"evidence pack written to {out}")


@audit.command("verify-pack")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False),
              help="The home's public key as kept by the auditor (PEM); pins who signed the pack.")
def audit_verify_pack(path, public_key):
    """Verify an evidence pack on any machine: no home or key needed."""
    from appliance.audit import load_public_key, verify_pack

    pinned = load_public_key(Path(public_key).read_bytes()) if public_key else None
    verdict = verify_pack(Path(path).read_bytes(), pinned)
    if not verdict.ok:
        raise AuditError(f"evidence pack NOT intact: {verdict.message}")
    click.echo(verdict.message)


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


@cli.group()
def tags():
    """Customer tag counts and overlaps (aggregates only)."""


@tags.command("counts")
@acting("insights.read")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
def tags_counts(home, actor, as_of):
    """How many customers carry each tag and lifecycle stage."""
    from appliance import tagging

    for tag, count in tagging.counts(home.store, as_of.date()).items():
        click.echo(f"{tag:32} {count:>9}")


@tags.command("overlap")
@acting("insights.read")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
@click.argument("first")
@click.argument("second")
def tags_overlap(home, actor, as_of, first, second):
    """How many customers carry both tags."""
    from appliance import tagging

    click.echo(tagging.overlap(home.store, as_of.date(), first, second))


@cli.group()
def train():
    """Train models on the box from the bank's own data (needs the train extra: scikit-learn, skl2onnx)."""


def _training():
    """The training module, which needs the train extra (scikit-learn, skl2onnx, onnx)."""
    try:
        from appliance import training
    except ImportError:
        raise click.ClickException("training needs the train extra: pip install 'insight-appliance[train]'") from None
    return training


@train.command("churn")
@acting("jobs.run")
@click.option("--source", help="Train on this source's customers only.")
@click.option("--cv", "folds", type=click.IntRange(2, 20), help="Also report K-fold cross-validated ROC-AUC.")
def train_churn(home, actor, source, folds):
    """Fit a churn model, convert it to ONNX, write it and its card; prints the card's path last."""
    card_path = _training().churn_for_home(home, source, folds)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    home.audit.record(actor, "model.train", kind="churn", source=source, model=card["sha256"],
                      roc_auc=round(card["metrics"]["roc_auc"], 4), rows=card["training"]["rows"])
    auc = f"holdout ROC-AUC {card['metrics']['roc_auc']:.3f}"
    if "cv_roc_auc" in card["metrics"]:
        auc += f", {folds}-fold CV ROC-AUC {card['metrics']['cv_roc_auc']:.3f}"
    click.echo(f"trained on {card['training']['rows']} customers; {auc}")
    click.echo(str(card_path))


@train.command("segments")
@acting("jobs.run")
@click.option("--source", help="Train on this source's customers only.")
@click.option("--k", type=click.IntRange(2, 30), default=6, show_default=True, help="How many segments.")
def train_segments(home, actor, source, k):
    """Fit customer segments (KMeans on scaled behaviour features) to ONNX with profiles; prints the card last."""
    card_path = _training().segments_for_home(home, source, k)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    home.audit.record(actor, "model.train", kind="segments", source=source, model=card["sha256"], k=k)
    for profile in card["profiles"]:
        click.echo(f"segment {profile['segment']}: {profile['name_zh']} / {profile['name_en']}, "
                   f"{profile['size']} customers")
    click.echo(str(card_path))


@cli.group()
def run():
    """Run one of the appliance's jobs now."""


@run.command("features")
@acting("jobs.run")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="Compute features from what happened before this date.")
def run_features(home, actor, as_of):
    """Compute every customer's features (and churn label, where knowable) as of a date."""
    from appliance.jobs import build_features, recorded

    day = as_of.date()
    with recorded(home, "features", actor) as outcome:
        outcome["rows"] = build_features(home, day)
    click.echo(f"features of {outcome['rows']} customers as of {day}")


@run.command("score")
@acting("jobs.run")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="Score the features computed as of this date.")
def run_score(home, actor, as_of):
    """Churn probability, risk band and top-3 reasons (zh/en) for every customer, with the current model."""
    from appliance.jobs import recorded, score_customers

    day = as_of.date()
    with recorded(home, "score", actor) as outcome:
        outcome["rows"], drift, profiles = score_customers(home, day, actor)
    click.echo(f"scored {outcome['rows']} customers as of {day}")
    click.echo(f"  drift: max PSI {drift['max_psi']:.3f}" + (f", FLAGGED: {', '.join(drift['over_threshold'])}"
                                                              if drift["flagged"] else ", within threshold"))
    for profile in profiles:
        click.echo(f"  segment {profile['segment']}: {profile['name_zh']} / {profile['name_en']}, "
                   f"{profile['size']} customers")


@run.command("tags")
@acting("jobs.run")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
def run_tags(home, actor, as_of):
    """Tag every customer and give each a lifecycle stage, from features (and scores) as of a date."""
    from appliance.jobs import recorded, tag_customers

    day = as_of.date()
    with recorded(home, "tags", actor) as outcome:
        outcome["rows"] = tag_customers(home, day)
    click.echo(f"{outcome['rows']} tags and stages given as of {day}")


@run.command("nightly")
@acting("jobs.run")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), help="Default: today.")
def run_nightly(home, actor, as_of):
    """The nightly pipeline now: features, churn scores and segments (where models exist), tags."""
    from datetime import date

    from appliance.jobs import nightly, recorded

    day = as_of.date() if as_of else date.today()
    with recorded(home, "nightly", actor) as outcome:
        outcome["rows"] = nightly(home, day, actor)
    click.echo(f"nightly pipeline done for {outcome['rows']} customers as of {day}")


@run.command("inbox")
@acting("data.ingest")
def run_inbox(home, actor):
    """Ingest every file waiting in the home's inbox/<source>/ folders (moved to done/ once in)."""
    from appliance.jobs import inbox, recorded

    with recorded(home, "inbox", actor) as outcome:
        outcome["rows"] = inbox(home)
    click.echo(f"inbox: {outcome['rows']} rows loaded")


@run.command("retention")
@acting("retention.run")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), help="Purge as of this date (default: today).")
def run_retention(home, actor, as_of):
    """Purge customer-level rows older than policies/retention.yaml allows; counts go to the audit log."""
    from datetime import date

    from appliance.jobs import recorded, retention

    day = as_of.date() if as_of else date.today()
    with recorded(home, "retention", actor) as outcome:
        counts = retention(home, day, actor)
        outcome["rows"] = sum(counts.values())
    click.echo("purged: " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@cli.group()
def policy():
    """Compliance policies in the home's policies/ (protection, masking, retention, export)."""


@policy.command("check")
@click.option("--dir", "directory", type=click.Path(exists=True, file_okay=False),
              help="Validate the policy files in this folder (a draft) instead of the home's, without a home.")
@home_option
@key_file_option
@user_option
def policy_check(directory, home_dir, key_file, user_name):
    """Validate every policy; exit 1 naming file, line and reason when one is malformed. With a home, loads
    and changes are audited and a malformed file is refused while the last good version stays in force."""
    from appliance.errors import PolicyError

    if directory:
        from appliance.home import check_policy_files

        results = check_policy_files(Path(directory))
    else:
        with Home.open(resolve_home(home_dir), credentials_from(key_file)) as home:
            sign_in(home, user_name).require("policy.manage")
            results = home.check_policies()
    for name, error, sha256 in results:
        if error is None:
            click.echo(f"{name:18} valid   sha256 {sha256[:16]}")
        else:
            kept = f" (in force: last good version {sha256[:16]})" if sha256 else ""
            click.echo(f"{name:18} REFUSED {error}{kept}")
    refused = [r for r in results if r[1]]
    if refused:
        raise PolicyError(f"{len(refused)} policy file(s) refused: {refused[0][1]}")


@cli.group()
def report():
    """The reports that may leave the box as aggregates."""


@report.command("list")
def report_list():
    """Name every report with its dimensions and measures (the export policy chooses which are allowed)."""
    from appliance.reports import REPORTS

    for item in REPORTS.values():
        measures = ", ".join(m.name for m in item.measures) or "-"
        click.echo(f"{item.name:18} {item.title_en} / {item.title_zh}\n"
                   f"{'':18} counts: {item.unit_en}; dimensions: {', '.join(item.dimensions)}; measures: {measures}")


@cli.group()
def export():
    """Aggregated exports: request, preview, approve or reject, verify."""


def _print_request(request: dict, reasons: bool) -> None:
    result = request["result"]
    click.echo(f"{request['request_id']}  {request['status']}  report {request['report']} by "
               f"{', '.join(request['dimensions'])}  as of {request['parameters']['as_of']}")
    click.echo(f"  for {request['recipient']} ({request['purpose']}); requested by {request['requested_by']} at "
               f"{request['requested_at']}" + (f"; {request['status']} by {request['decided_by']}"
                                               if request["decided_by"] else "")
               + (f": {request['reason']}" if request["reason"] else ""))
    click.echo(f"  {result['published']} published, {result['suppressed']} suppressed cells; "
               f"epsilon {request['epsilon']:g}")
    columns = result["columns"]
    click.echo("  " + "\t".join(columns))
    for row in result["rows"]:
        click.echo("  " + "\t".join("" if row.get(c) is None else str(row[c]) for c in columns))
    if reasons:
        for item in result["reasons"]:
            cell = ", ".join(f"{k}={v}" for k, v in item["cell"].items()) or "grand total"
            click.echo(f"  suppressed [{cell}]: {item['reason']}")


@export.command("request")
@acting("export.request")
@click.argument("report_name", metavar="REPORT")
@click.option("--by", "dims", multiple=True, required=True, help="A dimension (repeat for a second).")
@click.option("--recipient", required=True, help="Who receives it (a recipient in policies/export.yaml).")
@click.option("--purpose", required=True,
              help="An export purpose named in policies/purposes.yaml (in the manifest and the audit log).")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), help="Default: the latest pipeline run.")
@click.option("--months", type=int, default=1, show_default=True, help="churn_risk: months in the window.")
def export_request(home, actor, report_name, dims, recipient, purpose, as_of, months):
    """Compute a report, protect it as the export policy says, and queue it for approval. Prints the request
    id as its last line."""
    request = home.exports().request(actor, report_name, tuple(dims), recipient=recipient, purpose=purpose,
                                     as_of=as_of.date() if as_of else None, months=months)
    _print_request(request, reasons=False)
    click.echo(request["request_id"])


@export.command("list")
@acting("insights.read")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected", "stale"]))
def export_list(home, actor, status):
    """List export requests, oldest first."""
    for item in home.exports().list(status):
        decided = f" by {item['decided_by']}" if item["decided_by"] else ""
        click.echo(f"{item['request_id']}  {item['status']:8}{decided}  {item['report']} by "
                   f"{', '.join(json.loads(item['dimensions']))}  for {item['recipient']}  "
                   f"(requested by {item['requested_by']} at {item['requested_at']})")


@export.command("show")
@acting("insights.read")
@click.argument("request_id")
def export_show(home, actor, request_id):
    """Preview a request: the table exactly as it would leave, and why each suppressed cell is suppressed."""
    _print_request(home.exports().preview(actor, request_id), reasons=True)


@export.command("approve")
@acting("export.approve")
@click.argument("request_id")
def export_approve(home, actor, request_id):
    """Approve a request someone else made: re-checked, then written as a signed bundle. Prints the bundle's
    path as its last line."""
    bundle = home.exports().approve(actor, request_id)
    click.echo(f"{request_id} approved by {actor.name}; signed bundle written")
    click.echo(str(bundle))


@export.command("reject")
@acting("export.approve")
@click.argument("request_id")
@click.option("--reason", required=True, help="Why (recorded with the request and in the audit log).")
def export_reject(home, actor, request_id, reason):
    """Reject a pending request with a reason."""
    home.exports().reject(actor, request_id, reason)
    click.echo(f"{request_id} rejected")


@export.command("verify")
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--public-key", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The appliance's export public key (export-public-key.pem), as kept by the receiver.")
def export_verify(bundle, public_key):
    """Verify a bundle anywhere, no home needed: signature, manifest and data. Exit 0 only when intact."""
    from appliance.audit import load_public_key
    from appliance.errors import ExportError
    from appliance.exports import verify

    verdict = verify(Path(bundle), load_public_key(Path(public_key).read_bytes()))
    if not verdict.ok:
        raise ExportError(f"bundle NOT intact: {verdict.message}")
    click.echo(verdict.message)


@cli.command()
@home_option
@key_file_option
def scheduler(home_dir, key_file):
    """Run the scheduler in the foreground (its own process): nightly pipeline, inbox, retention, by cron."""
    from appliance.jobs import scheduler as build_scheduler

    path = resolve_home(home_dir)
    credentials = credentials_from(key_file)
    if credentials.passphrase is not None:  # asked once: scheduled runs have no terminal to prompt on
        passphrase = credentials.passphrase()
        credentials = Credentials(passphrase=lambda: passphrase)
    with Home.open(path, credentials) as home:
        runner = build_scheduler(home, credentials)
    for job in runner.get_jobs():
        click.echo(f"{job.id:10} {job.trigger}")
    try:
        runner.start()
    except (KeyboardInterrupt, SystemExit):
        click.echo("scheduler stopped")


def main() -> None:
    try:
        cli.main(standalone_mode=False, prog_name="appliance")
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ApplianceError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; nothing half-written was kept", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback, no data in the message
        incident = uuid.uuid4().hex[:12]
        frames = "".join(traceback.format_tb(exc.__traceback__))
        # Only the exception type and code locations: an exception's text may quote data.
        sys.stderr.write(f"error: internal error {incident} ({type(exc).__name__}); "
                         "set APPLIANCE_DEBUG=1 for code locations\n")
        if os.environ.get("APPLIANCE_DEBUG") == "1":
            sys.stderr.write(frames)
        sys.exit(70)
