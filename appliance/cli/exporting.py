"""Commands on policies, reports and exports."""

import json
from pathlib import Path

import click

from appliance.cli import acting, cli, credentials_from, home_option, key_file_option, sign_in, user_option
from appliance.exports import STATUSES
from appliance.home import Home, resolve_home


@cli.group()
def policy():
    """Compliance policies in the home's policies/ (protection, masking, retention, export, purposes)."""


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
    """Aggregated exports: request, preview, approve or reject, write, verify."""


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
@click.option("--status", type=click.Choice(STATUSES))
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


@export.command("write")
@acting("export.approve")
@click.argument("request_id")
def export_write(home, actor, request_id):
    """Write an approved export's bundle to the outbox again, from the bytes recorded at approval (after a
    full disk stopped the first write). Prints the bundle's path as its last line."""
    bundle = home.exports().write_bundle(actor, request_id)
    click.echo(f"{request_id}: signed bundle in the outbox")
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
