"""The `appliance` command. Commands are thin: they gather options, call the library, print results.
Every failure is one line on stderr and a non-zero exit; no traceback reaches the user."""

import functools
import logging
import os
import sys
import traceback
import uuid
from pathlib import Path

import click

from appliance.errors import ApplianceError, KeyMaterialError
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
def init(home_dir, key_file, new_key_file):
    """Create a home: settings, policies, wrapped keys and the encrypted store."""
    from appliance.keys import new_key_file as create_key_file

    path = resolve_home(home_dir)
    if new_key_file:
        create_key_file(Path(new_key_file))
        key_file = new_key_file
    credentials = credentials_from(key_file, new=True)
    with Home.init(path, credentials) as home:
        click.echo(f"initialised {path} (store schema v{home.store.schema_version()}, "
                   f"key-encryption key from a {home.keyring.kek_kind})")


@cli.command()
@with_home
def rekey(home):
    """Rotate the store's data key (every row kept; crash-safe)."""
    home.rotate_data_key()
    click.echo("data key rotated")


@cli.command()
@with_home
@click.option("--new-key-file", type=click.Path(dir_okay=False),
              help="Lock the home with this key file from now on (it must exist, 0600, outside the home).")
def passwd(home, new_key_file):
    """Change the key-encryption key (new passphrase from $APPLIANCE_NEW_PASSPHRASE or a prompt)."""
    if new_key_file:
        credentials = Credentials(key_file=Path(new_key_file))
    else:
        credentials = Credentials(passphrase=_passphrase_source("APPLIANCE_NEW_PASSPHRASE", "New passphrase",
                                                                confirm=True))
    kind = home.change_kek(credentials)
    click.echo(f"key-encryption key changed (now from a {kind})")


@cli.command()
@with_home
@click.option("--source", "source", required=True, help="Source mapping name (see `appliance sources`).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def ingest(home, source, paths):
    """Ingest files (CSV, XLSX, JSON Lines; gzip ok) through a source mapping, as one all-or-nothing batch."""
    report = home.ingestor().ingest(home.mapping(source), [Path(p) for p in paths])
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
@with_home
@click.option("--batch", type=int, help="Only this batch.")
@click.option("--limit", type=int, default=50, show_default=True)
def quarantine(home, batch, limit):
    """List quarantined rows: file, line, column and reason (never the value)."""
    sql = "SELECT batch_id, file_name, line, column_name, reason FROM quarantine"
    params: tuple = ()
    if batch is not None:
        sql, params = sql + " WHERE batch_id = ?", (batch,)
    for row in home.store.query(sql + " ORDER BY quarantine_id LIMIT ?", params + (limit,)):
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
@with_home
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the encrypted copy.")
def backup(home, out):
    """Write a consistent encrypted copy of the store (SQLite backup API, same key)."""
    home.backup(Path(out))
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


@cli.command()
@click.option("--dir", "directory", default="demo", show_default=True, type=click.Path(file_okay=False),
              help="Working folder: data/, home/ and the key file demo.key beside the home.")
@click.option("--customers", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(directory, customers, seed):
    """Run the whole pipeline on generated data: data, home, keys, ingestion. Re-runs reuse what exists."""
    from appliance.demo_data import generate
    from appliance.keys import new_key_file

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
    if not (home_path / "keyring.json").exists():
        if not key.exists():
            new_key_file(key)
        Home.init(home_path, credentials).close()
        click.echo(f"2. created home {home_path}, locked by key file {key} (kept outside the home)")
    else:
        click.echo(f"2. home {home_path} exists")
    with Home.open(home_path, credentials) as home:
        report = home.ingestor().ingest(home.mapping("demo"), [data])
        if report.batch_id is None:
            click.echo("3. ingest: every file already ingested, nothing new")
        else:
            click.echo(f"3. ingested batch {report.batch_id}: {report.rows_loaded} rows loaded, "
                       f"{report.rows_quarantined} quarantined; identifiers tokenised, PII sealed in the vault, "
                       "complaints, notes and memos masked by the PII engine")
        counts = {t: home.store.scalar(f"SELECT count(*) FROM {t}") for t in
                  ("customers", "accounts", "transactions", "interactions", "digital_events", "vault")}
        click.echo("   store: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    click.echo(f"Done. Explore with: .venv/bin/appliance status --home {home_path} --key-file {key}")


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
