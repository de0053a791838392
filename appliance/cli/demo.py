"""`appliance demo`: the whole product on generated data, in one command."""

import json
from pathlib import Path

import click

from appliance.cli import cli
from appliance.home import Home
from appliance.keys import Credentials


def _demo_insights(home: Home, data: Path) -> None:
    """Install the shipped models (trained on this demo's data) if the home has none, then run the nightly
    pipeline as of the day after the data ends, and say what it found."""
    from datetime import date, timedelta

    from appliance import tagging
    from appliance.access import system
    from appliance.jobs import nightly, recorded
    from appliance.shipped import install_models

    models = home.path / "models"
    if not list(models.glob("churn-*.json")):
        for card in install_models(models):
            home.audit.record(system("demo"), "model.install", model=card.name)
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
               + (f", flagged ({', '.join(drift['over_threshold'][:4])}): the data moved; retrain with "
                  "`appliance train churn`" if drift["flagged"] else ", within threshold"))
    truth = _against_the_truth(home, data, as_of)
    if truth:
        click.echo(f"   against the generator's truth (who closes in the {truth['days']} days after {as_of}): "
                   f"ROC-AUC {truth['auc']:.3f}; {truth['churners']} of {truth['scored']} customers close "
                   f"({truth['rate']:.1%}), {truth['high']} are scored high risk ({truth['high_share']:.1%}), of "
                   f"whom {truth['high_hits']} close")


def _against_the_truth(home: Home, data: Path, as_of) -> dict | None:
    """The shipped churn model judged on what the generator knows happens next (truth/churn.csv, which no
    mapping reads): ROC-AUC of the scores, and the high-risk share against the true churn rate."""
    import pandas as pd

    from datetime import timedelta

    path = data / "truth" / "churn.csv"
    if not path.exists():
        return None
    days = home.settings["features.churn_horizon_days"]
    truth = pd.read_csv(path, dtype=str).fillna("")
    tokenizer = home.tokenizer()
    end = (as_of + timedelta(days=days)).isoformat()
    closes = {tokenizer.token("customer", row.customer_no, "demo"): as_of.isoformat() <= row.closes_on < end
              for row in truth.itertuples()}
    scores = pd.DataFrame([tuple(r) for r in home.store.query(
        "SELECT customer_id, probability, risk_band FROM customer_scores WHERE as_of = ?", (as_of.isoformat(),))],
        columns=["customer", "probability", "band"])
    scores["closes"] = scores["customer"].map(closes).fillna(False).astype(bool)
    positives, negatives = int(scores["closes"].sum()), int((~scores["closes"]).sum())
    if not positives or not negatives:
        return None
    ranks = scores["probability"].rank()  # ROC-AUC as the Mann-Whitney statistic over the ranks
    auc = (ranks[scores["closes"]].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    high = scores["band"] == "high"
    return {"days": days, "auc": float(auc), "churners": positives, "scored": len(scores),
            "rate": positives / len(scores), "high": int(high.sum()), "high_share": float(high.mean()),
            "high_hits": int((high & scores["closes"]).sum())}


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
    return home.sign_in(name, password_file.read_text(encoding="utf-8").strip())


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
        _demo_insights(home, data)
        _demo_export(home, root)
        _demo_user(home, root, "demo.staff", "staff")
        entries = home.audit.verify()
        click.echo(f"6. audit log: {entries.message}")
    click.echo(f"Done. Explore with: .venv/bin/appliance status --home {home_path} --key-file {key}\n"
               f"  acting as the admin: APPLIANCE_USER=admin APPLIANCE_USER_PASSWORD=$(cat {password_file}) "
               f".venv/bin/appliance quarantine --home {home_path} --key-file {key}\n"
               f"  exports, as the compliance officer: APPLIANCE_USER=demo.officer "
               f"APPLIANCE_USER_PASSWORD=$(cat {root / 'demo.officer.password'}) .venv/bin/appliance export list "
               f"--home {home_path} --key-file {key}")
    click.echo(f"The web console: .venv/bin/appliance serve --home {home_path} --key-file {key}, then open "
               "http://127.0.0.1:8080/ and sign in as\n"
               f"  demo.staff (branch staff), password in {root / 'demo.staff.password'}\n"
               f"  demo.analyst (analyst), password in {root / 'demo.analyst.password'}\n"
               f"  demo.officer (compliance), password in {root / 'demo.officer.password'}\n"
               f"  admin (IT), password in {password_file}\n"
               "  compliance and admin enrol a second factor at their first sign-in: scan the QR code with an "
               "authenticator app (FreeOTP, Google Authenticator; it works offline)")
