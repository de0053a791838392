"""Commands on the home itself: init, keys, backup, status, the scheduler."""

from pathlib import Path

import click

from appliance.cli import (acting, cli, credentials_from, home_option, key_file_option, passphrase_source,
                           secret, sign_in, user_option, with_home)
from appliance.errors import StoreError, StoreWriteError
from appliance.home import Home, resolve_home
from appliance.keys import Credentials


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
    admin_password = secret("APPLIANCE_ADMIN_PASSWORD", f"Password for the first admin '{admin}'", confirm=True)
    with Home.init(path, credentials, admin=admin, admin_password=admin_password) as home:
        from appliance.web.tls import make_self_signed

        certificate, _key = make_self_signed(home.path)
        click.echo(f"initialised {path} (store schema v{home.store.schema_version()}, "
                   f"key-encryption key from a {home.keyring.kek_kind}); the console's own TLS certificate: "
                   f"{certificate}")


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
        credentials = Credentials(passphrase=passphrase_source("APPLIANCE_NEW_PASSPHRASE", "New passphrase",
                                                                confirm=True))
    kind = home.change_kek(actor, credentials)
    click.echo(f"key-encryption key changed (now from a {kind})")

@cli.command()
@home_option
@key_file_option
def doctor(home_dir, key_file):
    """Check the home: store integrity, free disk, models against their cards, policies, the audit chain and
    its last off-box checkpoint, the scheduler's last runs. Exit 1 when anything is wrong."""
    from appliance.doctor import FAIL, examine, examine_unopenable
    from appliance.errors import ApplianceError

    path, credentials = resolve_home(home_dir), credentials_from(key_file)
    try:
        with Home.open(path, credentials) as home:
            findings = examine(home)
    except ApplianceError as refused:
        findings = examine_unopenable(path, credentials, refused.message)
    for finding in findings:
        click.echo(f"{finding.state:8} {finding.check:11} {finding.detail}")
    failed = [f for f in findings if f.state == FAIL]
    if failed:
        click.echo(f"{len(failed)} problem(s): {failed[0].check}: {failed[0].detail}", err=True)
        raise SystemExit(1)


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
@acting("store.backup")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the encrypted copy.")
def backup(home, actor, out):
    """Write a consistent encrypted copy of the store (SQLite backup API, same key). A store that fails its
    integrity check is refused, and the copy is checked before it takes its name."""
    home.backup(actor, Path(out))
    click.echo(f"backup written to {out}")

@cli.command()
@home_option
@key_file_option
@user_option
@click.argument("backup_file", type=click.Path(dir_okay=False))
def restore(home_dir, key_file, user_name, backup_file):
    """Restore the store from BACKUP_FILE, a backup of this home. The backup is checked first (it opens with
    this home's keys, passes the integrity checks, its audit log verifies and this home's continues it) and a
    damaged or foreign one changes nothing. A sound store is replaced in one transaction after a safety copy
    in <home>/backups/, by an admin; the audit log keeps every entry. A damaged store (run `doctor`) is moved
    aside into <home>/backups/ and replaced, on the key alone: stop the console and scheduler first."""
    from appliance.home import KEYRING, STORE
    from appliance.keys import Keyring
    from appliance.store import Store

    path, credentials = resolve_home(home_dir), credentials_from(key_file)
    keyring = Keyring.open(path / KEYRING, credentials)
    try:
        with Store(path / STORE, keyring.data_key) as live:
            damaged = bool(live.integrity_problems())
    except StoreError as exc:
        if isinstance(exc, StoreWriteError):
            raise
        damaged = True
    if damaged:
        click.echo("the store fails its checks: it is moved aside and replaced by the backup", err=True)
        restored = Home.restore_damaged(path, credentials, keyring, Path(backup_file))
        click.echo(f"restored from {Path(backup_file).name}: {restored.backup_entries} audit entries; the "
                   f"damaged store's files are kept in {restored.kept}")
        return
    with Home.open(path, credentials) as home:
        actor = sign_in(home, user_name)
        restored = home.restore(actor, Path(backup_file))
    click.echo(f"restored from {Path(backup_file).name}; the audit log kept its {restored.carried_entries} entries "
               f"made since the backup; the store it replaced is kept as {restored.kept}")


@cli.command()
@home_option
@key_file_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Loopback: plain HTTP for this box only. Any other: HTTPS only.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
def serve(home_dir, key_file, host, port):
    """Serve the web console on this home: waitress on loopback; on any other address HTTPS only (gunicorn),
    with the bank's certificate (settings console.tls_certificate, console.tls_key) or the box's own."""
    import ipaddress

    from appliance.web import create_app

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise click.BadParameter(f"{host} is not an IP address (or localhost)", param_hint="--host") from None
    credentials = credentials_from(key_file)
    with Home.open(resolve_home(home_dir), credentials) as home:
        app = create_app(home, credentials=credentials)
        if loopback:
            import waitress

            click.echo(f"console on http://{host}:{port}/ (this box only; Ctrl-C to stop)")
            waitress.serve(app, host=host, port=port, threads=4, ident="insight-appliance")
        else:
            from appliance.web.tls import certificate_for, serve_https

            certificate, key = certificate_for(home)
            click.echo(f"console on https://{host}:{port}/ with certificate {certificate} (Ctrl-C to stop)")
            serve_https(app, host, port, certificate, key)


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
