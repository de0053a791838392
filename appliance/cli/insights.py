"""Commands that make and read insights: tags, training, the pipeline's jobs."""

import json

import click

from appliance.cli import acting, cli


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
    import importlib.util

    missing = [m for m in ("sklearn", "skl2onnx", "onnx") if importlib.util.find_spec(m) is None]
    if missing:  # looked for before anything starts: the library imports them only when it fits
        raise click.ClickException(f"training needs the train extra ({', '.join(missing)} missing): "
                                   "pip install 'insight-appliance[train]'")
    from appliance import training

    return training


def _report_training(home, actor, kind: str, source: str | None, card_path) -> None:
    card = json.loads(card_path.read_text(encoding="utf-8"))
    measured = card["metrics"]
    home.audit.record(actor, "model.train", kind=kind, target=card.get("target", {}).get("name"), source=source,
                      model=card["sha256"], roc_auc=round(measured["roc_auc"], 4),
                      cv_roc_auc=round(measured["cv_roc_auc"], 4), rows=card["training"]["rows"],
                      forced=measured.get("forced", False))
    click.echo(f"features ({len(card['features'])}), by importance:")
    for info in sorted(card["feature_info"], key=lambda i: -i["importance"]):
        origin = f"column {info['source_column']}, {info['kind']}" if info["source_column"] else "built-in"
        click.echo(f"  {info['name']:<40} {info['importance']:.3f}  ({origin})")
    click.echo(f"trained on {card['training']['rows']} customers ({card['training']['positives']} positive); "
               f"holdout ROC-AUC {measured['roc_auc']:.3f}, {measured['cv_folds']}-fold CV ROC-AUC "
               f"{measured['cv_roc_auc']:.3f}, Brier {measured['brier']:.3f}"
               + ("; INSTALLED BY --force UNDER THE FLOOR" if measured.get("forced") else ""))
    click.echo(str(card_path))


_force = click.option("--force", is_flag=True,
                      help="Install the model even when its CV ROC-AUC is under models.min_auc (said in its card).")
_folds = click.option("--cv", "folds", type=click.IntRange(2, 20), default=5, show_default=True,
                      help="Folds of the cross-validated ROC-AUC that decides whether the model is installed.")


@train.command("churn")
@acting("jobs.run")
@click.option("--source", help="Train on this source's customers only (and the features its mapping declares).")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Learn as of this date (labels from what followed; the holdout one horizon later). Default: "
                   "as late as the data allows. Choose the point of the year you will score at.")
@_folds
@_force
def train_churn(home, actor, source, as_of, folds, force):
    """Fit a churn model on the built-in features and those the source's mapping declares, convert it to ONNX,
    and install it with its card unless it is no better than chance. Prints the features it used and the
    card's path last."""
    _report_training(home, actor, "churn", source, _training().churn_for_home(
        home, source, folds, force, as_of.date() if as_of else None))


@train.command("propensity")
@acting("jobs.run")
@click.option("--target", required=True,
              help="A label the mapping declares (label: true), campaign:<id> (its responses), or product:<category> "
                   "(next best product: who comes to hold it).")
@click.option("--source", help="Train on this source's customers only.")
@_folds
@_force
def train_propensity(home, actor, target, source, folds, force):
    """Fit a propensity model for any yes/no target, like churn; its scores go to propensity_scores."""
    _report_training(home, actor, "propensity", source,
                     _training().propensity_for_home(home, target, source, folds, force))


@train.command("segments")
@acting("jobs.run")
@click.option("--source", help="Train on this source's customers only.")
@click.option("--k", type=click.IntRange(2, 30),
              help="How many segments (default: the most, 3 to 8, that hold under resampling).")
@click.option("--force", is_flag=True, help="Install even when the segments do not hold under resampling.")
def train_segments(home, actor, source, k, force):
    """Fit customer segments (KMeans on log- and min-max-scaled behaviour features) to ONNX with profiles; the
    number of segments must hold under bootstrap resampling. Prints the card last."""
    card_path = _training().segments_for_home(home, source, k, force)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    stability = card["metrics"]["bootstrap_stability"]["chosen"]
    home.audit.record(actor, "model.train", kind="segments", source=source, model=card["sha256"], k=card["k"],
                      stability=round(stability["mean_ari"], 3))
    click.echo(f"{card['k']} segments, bootstrap stability (mean adjusted Rand index over 10 refits) "
               f"{stability['mean_ari']:.2f}")
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
@click.option("--full", is_flag=True, help="Recompute every customer (by default, after a run in the week "
                                           "before, only customers whose data changed or crossed a window's edge).")
def run_features(home, actor, as_of, full):
    """Compute every customer's features (and churn label, where knowable) as of a date."""
    from appliance.jobs import build_features, recorded

    day = as_of.date()
    with recorded(home, "features", actor) as outcome:
        outcome["rows"] = build_features(home, day, full=full)
    run = home.store.query("SELECT mode, recomputed FROM feature_runs WHERE as_of = ?", (day.isoformat(),))[0]
    click.echo(f"features of {outcome['rows']} customers as of {day} ({run['mode']}: {run['recomputed']} recomputed)")


@run.command("score")
@acting("jobs.run")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="Score the features computed as of this date.")
def run_score(home, actor, as_of):
    """Churn probability, risk band and reasons (zh/en) for every customer, each by the current model of its
    source's scope; propensity scores for every target with a model; segments. Drift per model."""
    from appliance.jobs import recorded, score_customers

    day = as_of.date()
    with recorded(home, "score", actor) as outcome:
        outcome["rows"], drifts, profiles = score_customers(home, day, actor)
    click.echo(f"scored {outcome['rows']} customers as of {day}")
    for model, drift in drifts.items():
        click.echo(f"  {model}: drift max PSI {drift['max_psi']:.3f}"
                   + (f", FLAGGED: {', '.join(drift['over_threshold'])}" if drift["flagged"] else ", within threshold"))
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
    """The nightly pipeline now: features, churn scores and segments (where models exist), tags; then the
    report cells exports read."""
    from datetime import date

    from appliance.jobs import nightly, recorded

    day = as_of.date() if as_of else date.today()
    with recorded(home, "nightly", actor) as outcome:
        outcome["rows"] = nightly(home, day, actor)
    click.echo(f"nightly pipeline done for {outcome['rows']} customers as of {day}")
    _precompute_reports(home, actor, day)


@run.command("reports")
@acting("jobs.run")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Default: each report's latest results, as an export takes them.")
def run_reports(home, actor, as_of):
    """Precompute every report's cells (as the nightly run does after its pipeline), so that exports read
    them until the data changes."""
    _precompute_reports(home, actor, as_of.date() if as_of else None)


def _precompute_reports(home, actor, day) -> None:
    from appliance.jobs import report_cells_run

    seconds = report_cells_run(home, day, actor)
    click.echo(f"report cells as of {day or 'the latest results'}: "
               + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items()))


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
