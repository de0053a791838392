"""The pipeline's jobs, run now (`appliance run JOB`) or on a schedule (`appliance scheduler`).

Every run is recorded in `job_runs` (start, end, status, rows, a safe error message) and in the audit log.
Runs never overlap: one lock file in the home is held for the length of a run, across processes, so the
scheduler and a person at the command line cannot write the same tables at once; a run that finds it held is
recorded as skipped. Each step writes its results in one transaction, so a failed run leaves the previous
results whole.

The scheduler is APScheduler 3.x (the stable line), in its own process, never inside the console's web workers;
schedules are cron expressions from the settings (`schedule.*`).
"""

import fcntl
import logging
import os
import shutil
import time
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

from appliance.access import Actor, system
from appliance.errors import ApplianceError, ConfigError

log = logging.getLogger("appliance.jobs")

LOCK = "jobs.lock"
INBOX = "inbox"


class JobBusy(ApplianceError):
    code = "busy"
    exit_code = 8


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def recorded(home, job: str, actor: Actor):
    """Hold the home's job lock, record the run, and its outcome; yields a dict for the row count."""
    handle = open(home.path / LOCK, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        with home.store.transaction():
            home.store.execute("INSERT INTO job_runs (job, started_at, finished_at, status, rows, error) "
                               "VALUES (?, ?, ?, 'skipped', 0, 'another job was running')", (job, _now(), _now()))
            home.audit.record(actor, "job.run", job=job, status="skipped")
        raise JobBusy(f"job '{job}' not run: another job is running on this home") from None
    outcome = {"rows": 0}
    started = time.monotonic()
    with home.store.transaction():
        run_id = home.store.execute("INSERT INTO job_runs (job, started_at, status) VALUES (?, ?, 'running')",
                                    (job, _now())).lastrowid
        home.audit.record(actor, "job.run", job=job, run=run_id, status="started")
    try:
        yield outcome
    except Exception as exc:
        message = exc.message if isinstance(exc, ApplianceError) else f"internal error ({type(exc).__name__})"
        log.error("job failed", extra={"job": job, "run": run_id, "error": message},
                  exc_info=not isinstance(exc, ApplianceError))
        with home.store.transaction():
            home.store.execute("UPDATE job_runs SET finished_at = ?, status = 'failed', error = ? WHERE run_id = ?",
                               (_now(), message, run_id))
            home.audit.record(actor, "job.run", job=job, run=run_id, status="failed")
        raise
    else:
        with home.store.transaction():
            home.store.execute("UPDATE job_runs SET finished_at = ?, status = 'ok', rows = ? WHERE run_id = ?",
                               (_now(), outcome["rows"], run_id))
            home.audit.record(actor, "job.run", job=job, run=run_id, status="ok", rows=outcome["rows"])
        log.info("job finished", extra={"job": job, "run": run_id, "rows": outcome["rows"],
                                        "seconds": round(time.monotonic() - started, 1)})
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _feature_workers(home) -> int:
    from appliance.settings import usable_cores

    return home.settings["features.workers"] or usable_cores()


def build_features(home, as_of: date, full: bool = False) -> int:
    """Every customer's features as of the date, with the home's settings: incrementally after a recent run,
    or recomputed for everyone (`full`)."""
    from appliance import features

    settings = home.settings
    return features.build(home.store, as_of, chunk_customers=settings["features.chunk_customers"],
                          horizon_days=settings["features.churn_horizon_days"],
                          inactivity_days=settings["features.inactivity_days"], full=full,
                          workers=_feature_workers(home), key=home.keyring.data_key)


def score_customers(home, as_of: date, actor: Actor, loaded=None, scored: list | None = None,
                    after_scores: Callable[[], None] | None = None) -> tuple[int, dict, list[dict]]:
    """Churn scores with the current model of each scope (a customer is scored by the model of its own source
    where there is one, else by a model for all), propensity scores for each target, and segments where a
    segments model exists; each model run in the audit log, drift measured per model. Returns (customers
    given churn scores, the drift summaries by model, segment profiles). `loaded`: the day's features, when
    the caller has them; `scored`: a list that collects the churn scores written (`scoring.day_scores`);
    `after_scores`: called once the scores are written, before the segments (the nightly starts tagging)."""
    from appliance import features
    from appliance.models import Model
    from appliance.scoring import (assign_segments, by_narrowest_scope, current_card, current_cards, day_scores,
                                   score, summarise_risk)

    settings, models = home.settings, home.path / "models"
    if loaded is None:
        loaded = features.load(home.store, as_of)  # once for every model of the run
    cut_offs = (settings["scoring.risk_medium"], settings["scoring.risk_high"])
    claimed: set[str] = set()
    scored = [] if scored is None else scored  # the churn scores as written, for segments and the risk summary
    drift = {}
    for position, churn in enumerate(by_narrowest_scope([Model(c) for c in current_cards(models, "churn")])):
        home.audit.record(actor, "model.score", model=churn.card["sha256"], as_of=as_of.isoformat(),
                          scope=churn.scope)
        score(home.store, churn, as_of, cut_offs, drift_threshold=settings["drift.psi_threshold"], claimed=claimed,
              first=position == 0, loaded=loaded, scored=scored)
        drift[churn.card["onnx_file"]] = churn.card["drift"][-1]
    for card in current_cards(models, "propensity"):
        model = Model(card)
        home.audit.record(actor, "model.score", model=model.card["sha256"], as_of=as_of.isoformat(),
                          target=model.card["target"]["name"], scope=model.scope)
        score(home.store, model, as_of, cut_offs, drift_threshold=settings["drift.psi_threshold"], loaded=loaded)
        drift[model.card["onnx_file"]] = model.card["drift"][-1]
    if after_scores is not None:
        after_scores()
    profiles, assigned = [], []
    if list(models.glob("segments-*.json")):
        segments = Model(current_card(models, "segments"))
        home.audit.record(actor, "model.score", model=segments.card["sha256"], as_of=as_of.isoformat())
        profiles = assign_segments(home.store, segments, as_of, loaded,
                                   day_scores(home.store, as_of, scored if claimed else None), assigned)
    if claimed:
        summarise_risk(home.store, as_of, day_scores(home.store, as_of, scored), loaded,
                       assigned[0] if assigned else None)
    return len(claimed), drift, profiles


def _tag_rules(home) -> Path:
    from appliance import tagging

    rules = home.path / "tags.yaml"
    return rules if rules.exists() else tagging.SHIPPED


def tag_customers(home, as_of: date, loaded=None, scores=None) -> int:
    """Tags and lifecycle stages, with the home's own rules when it has them (`loaded`: the day's features,
    `scores`: its churn scores, when the caller has them)."""
    from appliance import tagging

    return tagging.build(home.store, as_of, _tag_rules(home), loaded, scores)


# What a tagger forked by the nightly works from: a fork inherits the frames, which as arguments would be
# pickled whole (a million customers' features), and its own store connection replaces the parent's.
_inherited: dict = {}


def _open_store(path: str, key: bytes) -> None:
    from appliance.store import Store

    _inherited["store"] = Store(Path(path), key)


def _tag_inherited(as_of: date, rules: Path) -> int:
    from appliance import tagging

    return tagging.build(_inherited["store"], as_of, rules, _inherited["loaded"], _inherited["scores"])


def nightly(home, as_of: date, actor: Actor = system("nightly")) -> int:
    """Features, churn scores (and segments) where a churn model exists, tags: the nightly pipeline, in order.
    With more than one core, tags are built in a forked process (through its own connection) while this one
    assigns the segments and summarises the risk: each needs only the day's features and churn scores, and
    each writes in its own transaction."""
    from appliance import features
    from appliance.scoring import day_scores
    from appliance.workers import ForkedWorkers

    rows = build_features(home, as_of)
    workers = _feature_workers(home)
    # Once for scoring and tagging, in two halves at once (9 s at a million customers in one).
    loaded = features.load(home.store, as_of, workers, home.keyring.data_key)
    scored: list = []
    tagged: list = []
    with ForkedWorkers(1, _tag_inherited, setup=_open_store, setup_args=(str(home.store.path), home.keyring.data_key),
                       inline=workers <= 1) as aside:
        def start_tagging() -> None:
            _inherited.update(store=home.store, loaded=loaded,
                              scores=day_scores(home.store, as_of, scored) if scored else None)
            tagged.append(aside.submit(_tag_inherited, as_of, _tag_rules(home)))

        try:
            if list((home.path / "models").glob("churn-*.json")) or \
                    list((home.path / "models").glob("propensity-*.json")):
                score_customers(home, as_of, actor, loaded, scored, after_scores=start_tagging)
            if not tagged:
                start_tagging()
            tagged[0].result()
        finally:
            _inherited.clear()
    return rows


def precompute_reports(home, as_of: date | None) -> dict[str, float]:
    """Every report's cells as of the date (None: each report's latest results), under the current export
    policy's dominance rule and clamping, for exports to read until the data changes. Seconds per report."""
    from appliance import report_cells

    policy = home.export_policy()
    return report_cells.build(home.store, as_of, top=policy.dominance_top, clamp=policy.privacy.enabled,
                              cache_mib=home.settings["reports.cache_mib"])


def report_cells_run(home, as_of: date | None, actor: Actor) -> dict[str, float]:
    """precompute_reports as a recorded run of its own: after a nightly run, so that exports keep computing
    afresh if it fails."""
    with recorded(home, "report_cells", actor) as outcome:
        seconds = precompute_reports(home, as_of)
        outcome["rows"] = len(seconds)
    return seconds


def inbox(home) -> int:
    """Ingest every file waiting in inbox/<source>/ as the system, a batch per source; files that went in are
    moved to inbox/<source>/done/, files of a refused batch stay where they are."""
    rows = 0
    root = home.path / INBOX
    for folder in sorted(p for p in root.glob("*") if p.is_dir()):
        waiting = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not waiting:
            continue
        report = home.ingestor(system("inbox")).ingest(home.mapping(folder.name), waiting)
        rows += report.rows_loaded
        done = folder / "done"
        done.mkdir(exist_ok=True)
        for path in waiting:
            shutil.move(str(path), done / path.name)
    return rows


def retention(home, as_of: date, actor: Actor = system("retention")) -> dict[str, int]:
    """Purge what the retention policy no longer allows, in one transaction with its audit entry."""
    from appliance import retention as purge

    policy = home.retention_policy()
    with home.store.transaction():
        counts = purge.purge(home.store, policy, as_of)
        home.audit.record(actor, "retention.purge", as_of=as_of.isoformat(), counts=counts)
    return counts


SCHEDULED = {"nightly": "schedule.nightly", "inbox": "schedule.inbox", "retention": "schedule.retention",
             "checkpoint": "schedule.checkpoint"}


def run_scheduled(home_path: Path, credentials, job: str, actor: Actor | None = None) -> None:
    """One run, in the scheduler's process or a console's thread ("run now", as the person who asked): opens
    the home on its own connection, runs, records; never raises."""
    from appliance.home import Home

    actor = actor or system("scheduler")
    try:
        with Home.open(home_path, credentials) as home:
            _run_recorded(home, job, actor)
            if job == "nightly":
                report_cells_run(home, date.today(), actor)
    # Recorded in job_runs already; the scheduler keeps running.
    except Exception:  # noqa: BLE001 # nosec B110
        pass


def _run_recorded(home, job: str, actor: Actor) -> None:
    with recorded(home, job, actor) as outcome:
        if job == "nightly":
            outcome["rows"] = nightly(home, date.today(), actor)
        elif job == "inbox":
            outcome["rows"] = inbox(home)
        elif job == "checkpoint":
            if home.checkpoint_target() is not None:
                home.ship_checkpoint(actor)
            outcome["rows"] = 0
        else:
            outcome["rows"] = sum(retention(home, date.today(), actor).values())


def scheduler(home, credentials):
    """A blocking APScheduler with one cron job per scheduled job; never two runs of one job at once."""
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    runner = BlockingScheduler(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
                               timezone=os.environ.get("TZ", "Asia/Shanghai"))
    for job, setting in SCHEDULED.items():
        try:
            trigger = CronTrigger.from_crontab(home.settings[setting], timezone=runner.timezone)
        except ValueError:
            raise ConfigError(f"setting '{setting}' is not a cron expression (minute hour day month weekday)") from None
        runner.add_job(run_scheduled, trigger, args=(home.path, credentials, job), id=job, name=job)
    return runner
