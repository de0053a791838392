"""Every setting, read and validated once, in one place, each with a default and a line of help.

The home's `config.yaml` overrides defaults; `docs/settings.md` documents each setting (a test checks).
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from appliance.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    kind: type
    help: str
    minimum: float | None = None
    maximum: float | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting("ingest.chunk_rows", 50_000, int,
            "Rows read, validated and written per chunk; bounds ingest memory.", 100, 5_000_000),
    Setting("ingest.max_bad_row_share", 0.5, float,
            "A batch whose share of quarantined rows exceeds this is refused whole (a wrong mapping, not bad rows).",
            0.0, 1.0),
    Setting("ingest.workers", 0, int,
            "Processes that validate, mask and protect chunks while the main process writes; 0 uses every core "
            "this process may run on, 1 works inline.", 0, 64),
    Setting("ingest.bulk_rows", 100_000, int,
            "A batch that writes more rows than this into a table, and more than half as many as the table held, "
            "builds the table's secondary indexes again once at the end instead of updating them row by row "
            "(a first load, a backfill); 0 never does.", 0, 1_000_000_000),
    Setting("pii.phone_regions", "CN,HK,MO,TW,SG,US,GB,DE,FR,AU,JP,KR", str,
            "Regions (ISO 3166 codes, comma-separated) whose phone numbers the PII engine finds in free text, "
            "besides the mainland-China formats it always knows."),
    Setting("ingest.follow_symlinks", False, bool,
            "Read input files through symbolic links (inside a folder, only links that stay inside it)."),
    Setting("store.busy_timeout_ms", 30_000, int,
            "How long a writer waits for another writer before giving up.", 0, 3_600_000),
    Setting("keys.argon2_memory_kib", 65_536, int,
            "Argon2id memory cost for passphrase-derived key-encryption keys (new or changed passphrases).",
            8_192, 4_194_304),
    Setting("keys.argon2_iterations", 3, int,
            "Argon2id time cost for passphrase-derived key-encryption keys.", 1, 100),
    Setting("users.max_failures", 5, int,
            "Failed sign-ins in a row after which an account is locked.", 1, 100),
    Setting("users.lockout_minutes", 15, int,
            "How long a locked account stays locked.", 1, 10_080),
    Setting("features.workers", 0, int,
            "Processes computing customer features in parallel (each reads through its own connection); 0: one "
            "per core this process may use. With more than one, the nightly also plans its features beside reading "
            "the customers, reads the day's features in two halves at once, and builds tags beside the segments.",
            0, 64),
    Setting("features.chunk_customers", 2_000, int,
            "Customers whose features are computed together; bounds memory.", 10, 1_000_000),
    Setting("features.churn_horizon_days", 90, int,
            "A customer who closes out within this many days after the as-of date counts as churned.", 7, 730),
    Setting("features.inactivity_days", 90, int,
            "Or who makes no customer-initiated transaction in this many days after it (though active before).",
            7, 730),
    Setting("scoring.risk_medium", 0.3, float, "Churn probability from which a customer's risk band is medium.",
            0.0, 1.0),
    Setting("scoring.risk_high", 0.6, float, "Churn probability from which a customer's risk band is high.", 0.0, 1.0),
    Setting("models.min_auc", 0.6, float,
            "A trained model whose cross-validated ROC-AUC is below this is not installed (unless --force): it is "
            "no better than chance.", 0.5, 1.0),
    Setting("segments.min_stability", 0.8, float,
            "Segments must hold under resampling: the mean adjusted Rand index of 10 bootstrap refits against "
            "the full fit must reach this, or the number of segments is refused.", 0.0, 1.0),
    Setting("drift.psi_threshold", 0.2, float,
            "Population stability index above which a feature or the score has drifted and the run is flagged.",
            0.01, 10.0),
    Setting("schedule.nightly", "0 1 * * *", str,
            "Cron schedule of the nightly pipeline: features, scores and segments, tags."),
    Setting("schedule.inbox", "*/15 * * * *", str, "Cron schedule of ingesting the files waiting in inbox/<source>/."),
    Setting("schedule.retention", "0 3 * * sun", str,
            "Cron schedule of the retention purge. Name weekdays (mon..sun): APScheduler 3 reads 0 as Monday."),
    Setting("schedule.checkpoint", "0 * * * *", str,
            "Cron schedule of signing the audit log's head and sending it to audit.checkpoint_target."),
    Setting("audit.checkpoint_target", "", str,
            "Where signed audit checkpoints leave the box: a folder (a mounted WORM share; one file each) or "
            "syslog://host:port (UDP) or syslog+tcp://host:port. Empty: none, and audit verify says truncation "
            "cannot be ruled out."),
    Setting("logs.max_mib", 20, int,
            "The operating log (<home>/logs/appliance.jsonl, JSON lines) is rotated when it reaches this size.", 1, 1024),
    Setting("logs.keep", 10, int, "How many rotated operating log files are kept.", 1, 100),
    Setting("console.idle_minutes", 15, int,
            "A console session unused for this long ends; the user signs in again.", 1, 480),
    Setting("console.session_hours", 8, int,
            "A console session ends this long after sign-in, however busy.", 1, 24),
    Setting("console.upload_mib", 512, int,
            "The largest file the console takes in an upload, in MiB (sent in chunks; kept only in the home's "
            "inbox until it is ingested).", 1, 10240),
    Setting("console.tls_certificate", "", str,
            "The bank's certificate (PEM) for the console on addresses other than loopback; relative to the home "
            "or absolute. Empty: the box's own, made at init (tls/ in the home)."),
    Setting("console.tls_key", "", str,
            "The private key (PEM, unencrypted, readable by the service only) of console.tls_certificate."),
    Setting("sources.dir", "sources", str,
            "Folder (relative to the home) holding the bank's own source mappings, beside the shipped ones."),
    Setting("exports.outbox", "outbox", str,
            "Folder (relative to the home, or absolute) where approved export bundles are written."),
    Setting("reports.cache_mib", 1024, int,
            "Page cache (MiB) a report's computation may use while it runs, an export computed afresh or the "
            "report cells after the nightly run: at a million customers 1024 takes a report's join from about "
            "30 s to 10; 0 keeps the store's own 64.", 0, 65_536),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class Settings:
    """Validated settings; read values with `settings["ingest.chunk_rows"]`."""

    def __init__(self, overrides: dict[str, Any] | None = None, origin: str = "settings"):
        self._values = {s.name: s.default for s in SETTINGS}
        for name, raw in (overrides or {}).items():
            setting = _BY_NAME.get(name)
            if setting is None:
                raise ConfigError(f"{origin}: unknown setting '{name}'")
            self._values[name] = _coerce(setting, raw, origin)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    @classmethod
    def load(cls, path: Path) -> "Settings":
        if not path.exists():
            return cls()
        try:
            tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except RecursionError:
            raise ConfigError(f"{path.name}: nested too deeply to read") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path.name}: not UTF-8 text") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path.name}{where}: not valid YAML") from None
        except (ValueError, TypeError, OverflowError):  # a scalar YAML types but cannot build: 0000-00-00
            raise ConfigError(f"{path.name}: holds a value YAML cannot read (an impossible date or number)") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"{path.name}: expected a mapping of settings")
        return cls(_flatten(tree), origin=path.name)

    def as_yaml(self) -> str:
        lines = ["# Insight Appliance settings. Each is documented in docs/settings.md."]
        for s in SETTINGS:
            lines.append(f"# {s.help}")
            lines.append(f"{s.name}: {yaml.safe_dump(self._values[s.name]).splitlines()[0]}")
        return "\n".join(lines) + "\n"


def _coerce(setting: Setting, raw: Any, origin: str) -> Any:
    if setting.kind is float and isinstance(raw, int) and not isinstance(raw, bool):
        raw = float(raw)
    if not isinstance(raw, setting.kind) or (isinstance(raw, bool) and setting.kind is not bool):
        raise ConfigError(f"{origin}: setting '{setting.name}' must be {setting.kind.__name__}")
    if setting.minimum is not None and raw < setting.minimum:
        raise ConfigError(f"{origin}: setting '{setting.name}' must be at least {setting.minimum}")
    if setting.maximum is not None and raw > setting.maximum:
        raise ConfigError(f"{origin}: setting '{setting.name}' must be at most {setting.maximum}")
    return raw
