"""Commands that bring data in and look at it: ingest, quarantine, sources and mappings, the PII engine,
demo data."""

import os
import sys
from pathlib import Path

import click

from appliance.cli import acting, cli, credentials_from, home_option, key_file_option
from appliance.home import Home, resolve_home


@cli.command()
@acting("data.ingest")
@click.option("--source", "source", required=True, help="Source mapping name (see `appliance sources`).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def ingest(home, actor, source, paths):
    """Ingest files (CSV, XLSX, JSON Lines; gzip ok) through a source mapping, as one all-or-nothing batch."""
    report = home.ingestor(actor).ingest(home.mapping(source), [Path(p) for p in paths])
    _show(report, source)


def _show(report, source: str) -> None:
    for f in report.files:
        if f.duplicate_of_batch is not None:
            click.echo(f"{f.name}: already ingested (batch {f.duplicate_of_batch or 'this one'}), skipped")
            continue
        click.echo(f"{f.name}: {f.rows_read} rows read, {f.rows_loaded} loaded, {f.rows_quarantined} quarantined"
                   + (f", {f.rows_filtered} filtered out" if f.rows_filtered else "")
                   + (f" [{f.encoding}]" if f.encoding else ""))
        for (column, reason), count in f.reasons.most_common():
            click.echo(f"    {count} x {'column ' + repr(column) + ': ' if column else ''}{reason}")
        if f.duplicate_rows:
            click.echo(f"    {f.duplicate_rows} rows with no key of their own repeat an earlier row: "
                       + ("each kept (row keys generated; the mapping's duplicates: keep)" if f.duplicates == "keep"
                          else "merged into it (the mapping's duplicates: merge)"))
    for name in report.unmatched:
        click.echo(f"{name}: no entry in mapping '{source}', not ingested")
    if report.batch_id is None:
        click.echo("nothing new to ingest")
    else:
        click.echo(f"batch {report.batch_id} committed: {report.rows_loaded} rows loaded, "
                   f"{report.rows_quarantined} quarantined")


@cli.group()
def pull():
    """Pull a source from the bank's database (read-only account; <home>/sources/NAME.pull.yaml)."""


@pull.command("run")
@acting("data.ingest")
@click.argument("name")
def pull_run(home, actor, name):
    """Run the pull's queries in one read-only transaction and ingest their rows through its source mapping,
    as one all-or-nothing batch."""
    report = home.pull(actor, name)
    _show(report, report.source)


@pull.command("password")
@acting("keys.manage")
@click.argument("name")
def pull_password(home, actor, name):
    """Seal the pull's database password in the home's keyring (from $APPLIANCE_PULL_PASSWORD or a prompt)."""
    from appliance.cli import secret

    home.set_pull_password(actor, name, secret("APPLIANCE_PULL_PASSWORD", f"Database password for pull '{name}'",
                                               confirm=True))
    click.echo(f"password for pull '{name}' sealed in the keyring")


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
@click.option("--format", "fmt", type=click.Choice(["auto", "jsonl", "cluener", "weibo", "conll", "presidio"]),
              default="auto", show_default=True,
              help="jsonl: ours (text, spans of engine types); cluener: CLUENER2020 JSON lines; weibo: CoNLL by "
                   "character; conll: CoNLL by token (WNUT-17); presidio: presidio-research JSON.")
@click.option("--language", type=click.Choice(["zh", "en", "auto"]), default="auto", show_default=True)
@click.option("--limit", type=click.IntRange(1), help="Only the first N texts.")
def pii_eval(path, fmt, language, limit):
    """Precision, recall and F2 per type on a labelled file: ours, or a public NER corpus (whose classes are
    compared as kinds: PERSON, ADDRESS, PHONE, CARD, EMAIL, IBAN, IP)."""
    from appliance.pii.engine import engine
    from appliance.pii.evaluate import evaluate_file, report

    click.echo(report(evaluate_file(engine(), Path(path), fmt, language, limit)))


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
