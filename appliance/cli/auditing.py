"""Commands on the audit log: list, verify, checkpoint, evidence packs."""

from pathlib import Path

import click

from appliance.cli import acting, cli
from appliance.errors import AuditError


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
    verdict = home.verify_audit(extra)
    if not verdict.ok:
        raise AuditError(f"audit log NOT intact: {verdict.message}")
    click.echo(verdict.message)


@audit.command("checkpoint")
@acting("audit.verify")
@click.option("--out", type=click.Path(dir_okay=False), help="Append the checkpoint to this file (keep it off the box).")
def audit_checkpoint(home, actor, out):
    """Sign the log's current head (count + hash + time) and print it as a JSON line; with
    audit.checkpoint_target set, also send it there (as the scheduler does every hour)."""
    import json

    if home.checkpoint_target() is not None:
        checkpoint, where = home.ship_checkpoint(actor)
        click.echo(f"sent to {where}", err=True)
    else:
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
