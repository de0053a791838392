"""Ingestion: files in, through their source mapping, validated, protected, into the encrypted store.

A batch (one `ingest` call, any number of files) commits whole or not at all: one write transaction,
so a kill at any moment leaves the store as it was. A file already ingested (same source, same sha256)
is skipped; rows are upserted on their canonical key, so overlapping files add nothing twice. Bad rows go
to the quarantine with file, line, column and a reason that never quotes the value. Raw identifiers and
PII are replaced by tokens before anything is written; free text is masked or dropped.
"""

import hashlib
import json
import logging
import stat
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from appliance import model
from appliance.errors import ApplianceError, IngestError
from appliance.failpoints import failpoint
from appliance.mapping import ColumnSpec, FileSpec, SourceMapping
from appliance.policies import ProtectionPolicy
from appliance.protect import PiiScanner, Sealer, TextMasker, Tokenizer, Vault
from appliance.readers import Chunk, OpenedFile, SplitRows, open_input, sha256_of, shown_name
from appliance.store import Store
from appliance.transforms import TRANSFORMS
from appliance.workers import ForkedWorkers

log = logging.getLogger("appliance.ingest")

# The column scan: distinct values sampled per column and chunk, and when what it finds stops the batch.
SCAN_SAMPLE = 30
# Every chunk of a file's first SCAN_EVERY is scanned, then one in SCAN_EVERY: a large file is still sampled
# from end to end, while the scan (about a millisecond a value) stops being a large share of the batch.
SCAN_EVERY = 8
SCAN_MIN_SCORE = 0.5
SCAN_SURE_SCORE = 0.8  # one value this sure is enough (a checksum-valid ID number, say)
SCAN_MAX_SHARE = 0.02  # otherwise more than this share of sampled values must hold the entity
# Names are found by word lists and models, so a town or a product may read as one ("Kutna Hora"); a column
# of names reads as names throughout. For them no single value is sure, and the share must be larger.
SCAN_NAME_TYPES = {"CN_PERSON", "EN_PERSON", "SOCIAL_HANDLE"}
SCAN_MAX_NAME_SHARE = 0.2

_TRUE = {"1", "true", "t", "yes", "y", "是", "真"}
_FALSE = {"0", "false", "f", "no", "n", "否", "假"}
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"
WITHHELD = "<withheld>"
MAX_MAGNITUDE = 1e15  # beyond any balance or amount (and beyond the integers a float holds exactly)
YEARS = (1900, 2100)  # dates outside are typos or sentinels (0001-01-01), not events
_SUBJECT_DOMAINS = ("customer", "account")  # the tokens erasure looks for a subject by
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


@dataclass
class FileReport:
    name: str
    sha256: str
    encoding: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_filtered: int = 0
    duplicate_of_batch: int | None = None
    duplicate_rows: int = 0  # rows with no key of their own identical to an earlier row of the file
    duplicates: str = "keep"  # what happened to them: "keep" (row keys generated) or "merge"
    seen_content: dict = field(default_factory=dict)  # table -> Counter of content keys (keyless tables only)
    reasons: Counter = field(default_factory=Counter)  # (column, reason) -> rows
    scanned: Counter = field(default_factory=Counter)  # column -> values sampled by the PII scan
    pii_hits: Counter = field(default_factory=Counter)  # (column, entity type) -> sampled values holding it
    pii_best: dict = field(default_factory=dict)  # (column, entity type) -> highest score seen


@dataclass
class BatchReport:
    source: str
    batch_id: int | None = None
    files: list[FileReport] = field(default_factory=list)
    table_counts: Counter = field(default_factory=Counter)
    unmatched: list[str] = field(default_factory=list)  # files in a folder that no mapping entry covers
    indexes_rebuilt: list[str] = field(default_factory=list)  # tables loaded in bulk (see _BulkIndexes)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def expand_paths(paths: list[Path], follow_symlinks: bool = False) -> list[tuple[Path, bool]]:
    """(file, named explicitly): files inside a named folder were not chosen one by one.

    Only regular files are read. A symbolic link is refused unless the setting allows links, and even then a
    link inside a folder must lead to a file inside that folder: an inbox cannot be used to read /etc."""
    files: list[tuple[Path, bool]] = []
    for path in paths:
        path = Path(path)
        if path.is_symlink() and not follow_symlinks:
            raise IngestError(f"{path}: a symbolic link; give the file itself (or set ingest.follow_symlinks)")
        if path.is_dir():
            root = path.resolve()
            for entry in sorted(path.iterdir()):
                if entry.name.startswith("."):
                    continue
                if entry.is_symlink():
                    if not follow_symlinks:
                        raise IngestError(f"{entry}: a symbolic link in {path}; links are not followed "
                                          "(set ingest.follow_symlinks to allow links inside the folder)")
                    if not entry.resolve().is_relative_to(root):
                        raise IngestError(f"{entry}: a symbolic link leading outside {path}; refused")
                if entry.is_dir():
                    continue
                files.append((_regular(entry), False))
        elif path.exists():
            files.append((_regular(path), True))
        else:
            raise IngestError(f"{path}: no such file")
    return files


def _regular(path: Path) -> Path:
    if not stat.S_ISREG(path.stat().st_mode):
        raise IngestError(f"{path}: not a regular file (a device, a pipe or a socket); refused")
    return path


# Parsing: a column of strings (NA for missing) -> typed values and the rows that failed ---------------
def _parse(spec: ColumnSpec, raw: pd.Series) -> tuple[pd.Series, list[tuple[pd.Series, str]]]:
    """Typed values, and the checks that failed: (bad-row mask, reason) in the order they apply."""
    present = raw.notna()
    values = raw
    failures: list[tuple[pd.Series, str]] = []
    if spec.values is not None:
        bad = present & ~raw.isin(list(spec.values))
        values = raw.map(spec.values).where(~bad)
        failures.append((bad, "value not among the mapping's values"))
        present = values.notna()
    kind = spec.type
    if kind == "text":
        text = values.astype("string")
        failures.append(((present & text.str.contains(_CONTROL, regex=True)).fillna(False).astype(bool),
                         "holds a control character (a NUL byte or the like)"))
        return values, failures
    if kind in ("integer", "decimal"):
        numbers = pd.to_numeric(values, errors="coerce")
        retry = present & numbers.isna()
        if retry.any():  # "1,234.56" as exports write it; tried only where plain parsing failed
            grouped = values[retry].where(values[retry].str.match(_THOUSANDS, na=False))
            numbers[retry] = pd.to_numeric(grouped.str.replace(",", "", regex=False), errors="coerce")
        numbers = numbers.astype("float64")
        # inf, 1e309 and a 400-digit number parse as floats that no account holds: refused, not stored
        huge = present & numbers.notna() & ~(numbers.abs() <= MAX_MAGNITUDE)
        numbers = numbers.where(~huge)
        failures.append((huge, f"not a finite number within ±{MAX_MAGNITUDE:.0e}"))
        present = present & ~huge
        if kind == "integer":
            bad = present & (numbers.isna() | (numbers % 1 != 0))
            typed = numbers.where(~bad).round().astype("Int64")
            failures.append((bad, "not an integer"))
        else:
            bad = present & numbers.isna()
            typed = numbers.where(~bad).astype("float64")
            failures.append((bad, "not a number"))
        if spec.minimum is not None:
            failures.append(((typed < spec.minimum).fillna(False).astype(bool), f"below minimum {spec.minimum}"))
        if spec.maximum is not None:
            failures.append(((typed > spec.maximum).fillna(False).astype(bool), f"above maximum {spec.maximum}"))
        return typed, failures
    if kind in ("date", "datetime"):
        fmt = spec.format or ("%Y-%m-%d" if kind == "date" else "ISO8601")
        try:
            stamps = pd.to_datetime(values, format=fmt, errors="coerce")
        except (ValueError, TypeError):  # e.g. mixed time zones: judge row by row
            stamps = values.map(lambda v: pd.to_datetime(v, format=fmt, errors="coerce") if pd.notna(v) else pd.NaT)
            stamps = pd.to_datetime(stamps, errors="coerce", utc=True).dt.tz_localize(None)
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        bad = present & stamps.isna()
        failures.append((bad, f"not a {'date' if kind == 'date' else 'date-time'} in format {fmt}"))
        years = stamps.dt.year
        out_of_range = present & stamps.notna() & ~years.between(*YEARS)
        stamps = stamps.where(~out_of_range)
        failures.append((out_of_range, f"a date outside the years {YEARS[0]}-{YEARS[1]}"))
        unit = "D" if kind == "date" else "s"
        text = np.datetime_as_string(stamps.to_numpy().astype(f"datetime64[{unit}]"), unit=unit)
        return pd.Series(text, index=raw.index, dtype=object).where(stamps.notna()), failures
    folded = values.str.lower()
    typed = pd.Series(pd.NA, index=raw.index, dtype="Int64")
    typed[folded.isin(_TRUE)] = 1
    typed[folded.isin(_FALSE)] = 0
    failures.append((present & typed.isna(), "not a true/false value"))
    return typed, failures


def _token_input(spec: ColumnSpec, raw: pd.Series, typed: pd.Series) -> pd.Series:
    """What a token is computed over: the raw text (or the canonical number for integer identifiers),
    behind the column's key prefix."""
    text = typed.astype("string").astype(object).where(typed.notna()) if spec.type == "integer" else raw
    return spec.prefix + text if spec.prefix else text


def _python_values(series: pd.Series) -> list:
    """Plain Python values for the driver: NaN, NA and None all become NULL."""
    return [None if v is None or v is pd.NA or (v.__class__ is float and v != v) else v for v in series.tolist()]


@dataclass
class Prepared:
    """One chunk, validated and protected, ready to write: nothing in it is a raw identifier or PII."""

    rows_read: int = 0
    rows_filtered: int = 0
    rows_loaded: int = 0
    quarantine: list[tuple[int, str | None, str, str | None]] = field(default_factory=list)
    vault: list[tuple[str, str, bytes]] = field(default_factory=list)
    tables: dict[str, tuple[list[str], list[tuple]]] = field(default_factory=dict)
    scanned: dict[str, int] = field(default_factory=dict)  # column -> values sampled
    pii: list[tuple[str, str, float]] = field(default_factory=list)  # (column, entity type, score) per finding


@dataclass
class _Protection:
    """What preparing a chunk needs besides the chunk. Set once per batch; forked workers inherit it, so
    keys never travel through a pipe."""

    tokenizer: Tokenizer
    sealer: Sealer
    vault_fields: frozenset
    masker: TextMasker | None
    scanner: PiiScanner | None


_PROTECTION: _Protection | None = None


def _prepare(spec: FileSpec, namespace: str, chunk: Chunk | SplitRows, scan: bool) -> Prepared:
    """Clean, type, validate and protect one chunk. Pure CPU work: runs in a worker process."""
    protection = _PROTECTION
    chunk = chunk.parsed()
    frame = chunk.frame
    out = Prepared(rows_read=len(frame) + len(chunk.malformed))
    out.quarantine.extend((line, None, reason, None) for line, reason in chunk.malformed)
    lines = pd.Series(chunk.lines, index=frame.index, dtype="int64")
    raw = {}
    nulls = set(spec.null_values)
    for name in spec.columns:
        cells = frame[name].tolist() if name in frame else []
        # Plain comprehension: several times faster than pandas' .str accessors on object columns.
        cleaned = [None if (v := c.strip()) in nulls else v for c in cells] if cells else [None] * len(frame)
        raw[name] = pd.Series(cleaned, index=frame.index, dtype=object)
    if scan and protection.scanner is not None:
        _scan_kept_columns(protection.scanner, spec, raw, out)
    if spec.filter_column:
        keep = raw[spec.filter_column].isin(list(spec.filter_values))
        out.rows_filtered = int((~keep).sum())
        raw = {name: values[keep] for name, values in raw.items()}
        lines = lines[keep]
    index = lines.index
    error_column = pd.Series(None, index=index, dtype=object)
    error_reason = pd.Series(None, index=index, dtype=object)
    typed = {}
    for name, column in spec.columns.items():
        values, checks = _parse(column, raw[name])
        if column.required or _holds_key(column):
            checks.insert(0, (raw[name].isna(), "missing required value"))
        for mask, why in checks:
            if mask.any():
                fresh = mask & error_column.isna()
                error_column[fresh] = name
                error_reason[fresh] = why
        typed[name] = values
    bad_rows = error_column.notna()
    for position in index[bad_rows]:
        out.quarantine.append((int(lines[position]), error_column[position], error_reason[position],
                               _protected_row(protection.tokenizer, namespace, spec, raw, position)))
    good = ~bad_rows
    out.rows_loaded = int(good.sum())
    if not out.rows_loaded:
        return out
    raw = {name: values[good] for name, values in raw.items()}
    typed = {name: values[good] for name, values in typed.items()}
    for table, columns in _protected_tables(protection, namespace, spec, raw, typed, out.vault).items():
        names = list(columns)
        out.tables[table] = (names, list(zip(*(_python_values(columns[n]) for n in names))))
    return out


def _scan_kept_columns(scanner: PiiScanner, spec: FileSpec, raw: dict, out: Prepared) -> None:
    """Sample the columns whose values are stored as they are and look for PII in them: a mapping that calls
    a column of phone numbers "not personal" must not let them through."""
    for name, column in spec.columns.items():
        if column.protect != "keep":
            continue
        sample = list(dict.fromkeys(v for v in raw[name].tolist() if v is not None))[:SCAN_SAMPLE]
        out.scanned[name] = len(sample)
        for value in sample:
            for entity in scanner.analyze(value):
                if entity.score >= SCAN_MIN_SCORE:
                    out.pii.append((name, entity.type, entity.score))


def _holds_key(column: ColumnSpec) -> bool:
    return any(t.field == model.BY_NAME[t.table].key for t in column.targets)


def _shape(value: str) -> str:
    """What a value looks like, never what it is: "18 digits", "6 letters", "12 characters"."""
    if value.isdigit():
        return f"<{len(value)} digits>"
    if value.isalpha():
        return f"<{len(value)} letters>"
    return f"<{len(value)} characters>"


def _protected_row(tokenizer: Tokenizer, namespace: str, spec: FileSpec, raw: dict, position) -> str:
    """The quarantined row as the operator may see it: tokens for the columns that are tokenised, and for
    every other column only the shape of its value. A row that failed validation may hold anything in any
    column (shifted by one, a card number under "amount"), so no raw value is kept, whatever its column's class.

    `links` holds every value of the row tokenised as a customer and as an account of this source: erasure
    finds the row by the subject's tokens even when the identifiers stood in the wrong columns."""
    shown, links = {}, set()
    key_domains = {(t.token_domain, column.prefix) for column in spec.columns.values() for t in column.targets
                   if column.protect == "token" and t.token_domain in _SUBJECT_DOMAINS}
    for name, column in spec.columns.items():
        value = raw[name][position]
        if value is None:
            shown[name] = None
            continue
        if column.protect == "token" and column.targets:
            shown[name] = "tok:" + tokenizer.token(column.targets[0].token_domain, column.prefix + value, namespace)
        elif column.data_class in ("C3", "free_text") or column.protect == "drop":
            shown[name] = WITHHELD
        else:
            shown[name] = _shape(value)
        if column.data_class not in ("C3", "free_text"):
            links.update("tok:" + tokenizer.token(domain, prefix + value, namespace) for domain, prefix in key_domains)
    return json.dumps({"columns": shown, "links": sorted(links)}, ensure_ascii=False)


def _protected_tables(protection: _Protection, namespace: str, spec: FileSpec, raw: dict, typed: dict,
                      vault_out: list) -> dict[str, dict[str, pd.Series]]:
    """table -> {canonical column: Series}; tokens, masks and derivations applied, raw PII gone."""
    fields: dict[str, dict[str, pd.Series]] = {}
    attributes: dict[str, dict[str, pd.Series]] = {}

    def put(target, values: pd.Series) -> None:
        if target.attribute:
            attributes.setdefault(target.table, {})[target.attribute] = values
        else:
            fields.setdefault(target.table, {})[target.field] = values

    for name, column in spec.columns.items():
        if column.protect == "token":
            source_text = _token_input(column, raw[name], typed[name])
            for target in column.targets:
                tokens = protection.tokenizer.tokens(target.token_domain, source_text, namespace)
                put(target, tokens)
                if str(target) in protection.vault_fields:
                    pairs = {t: v for t, v in zip(tokens.tolist(), source_text.tolist()) if t is not None}
                    vault_out.extend((target.token_domain, t, protection.sealer.seal(target.token_domain, t, v))
                                     for t, v in pairs.items())
        elif column.protect == "mask":
            texts = raw[name]
            present = texts.notna()
            masked = pd.Series(None, index=texts.index, dtype=object)
            if present.any():
                masked[present] = protection.masker.mask_many(texts[present].tolist())
            for target in column.targets:
                put(target, masked)
        elif column.protect == "keep":
            for target in column.targets:
                put(target, typed[name])
        for target, transform in column.derive:
            put(target, TRANSFORMS[transform][0](typed[name]))
    any_column = next(iter(raw.values()))
    for target, value in spec.constants.items():
        put(target, pd.Series(value, index=any_column.index, dtype=object))
    for table in set(fields) | set(attributes):
        columns = fields.setdefault(table, {})
        if table in attributes:
            extras = pd.DataFrame(attributes[table])
            columns["attributes"] = pd.Series(
                [json.dumps({k: v for k, v in row.items() if v is not None}, ensure_ascii=False, default=str)
                 for row in extras.astype(object).where(extras.notna(), None).to_dict("records")],
                index=extras.index)
        key = model.BY_NAME[table].key
        if key not in columns:
            columns[key] = _content_keys(namespace, table, columns)
    return fields


def _content_keys(namespace: str, table: str, columns: dict[str, pd.Series]) -> pd.Series:
    """A key for rows whose source has none: a hash of the row's protected content (stable on re-ingest)."""
    names = sorted(columns)
    frame = pd.DataFrame({n: columns[n].astype("string").fillna("\x00") for n in names})
    prefix = f"{namespace}\x1f{table}\x1f"
    joined = frame.astype(str).agg("\x1f".join, axis=1)
    return joined.map(lambda text: hashlib.sha256((prefix + text).encode("utf-8")).hexdigest()[:32])


class Ingestor:
    def __init__(self, store: Store, tokenizer: Tokenizer, vault: Vault, policy: ProtectionPolicy, *,
                 chunk_rows: int, max_bad_row_share: float, bulk_rows: int = 0, workers: int = 1,
                 masker: TextMasker | None = None, scanner: PiiScanner | None = None, audit=None, actor=None, follow_symlinks: bool = False):
        self.store = store
        self.follow_symlinks = follow_symlinks
        self.tokenizer = tokenizer
        self.vault = vault
        self.policy = policy
        self.chunk_rows = chunk_rows
        self.max_bad_row_share = max_bad_row_share
        self.bulk_rows = bulk_rows
        self.workers = workers
        self.masker = masker
        self.scanner = scanner
        self.audit = audit
        self.actor = actor

    # Whole batch ------------------------------------------------------------------------------------
    def ingest(self, mapping: SourceMapping, paths: list[Path]) -> BatchReport:
        report = BatchReport(mapping.name)
        plan: list[tuple[Path, FileSpec, FileReport]] = []
        seen_hashes: set[str] = set()
        for path, explicit in expand_paths(paths, self.follow_symlinks):
            spec = mapping.file_for(path.name)
            if spec is None and not explicit:
                report.unmatched.append(path.name)
                continue
            if spec is None:
                raise IngestError(f"{path.name}: no file entry in source mapping '{mapping.name}' matches it")
            self._check_masking(path, spec)
            file_report = FileReport(path.name, sha256_of(path))
            previous = self.store.scalar("SELECT batch_id FROM ingest_files WHERE source = ? AND file_sha256 = ?",
                                         (mapping.name, file_report.sha256))
            if previous is not None or file_report.sha256 in seen_hashes:
                file_report.duplicate_of_batch = previous or 0
                report.files.append(file_report)
                continue
            seen_hashes.add(file_report.sha256)
            file_report.duplicates = spec.duplicates
            plan.append((path, spec, file_report))
        # Headers first, so an unmapped column stops the batch before any row is read.
        opened = []
        for path, spec, file_report in plan:
            handle = open_input(path, spec, self.chunk_rows)
            self._check_header(path, spec, handle.header)
            file_report.encoding = handle.encoding
            opened.append((path, spec, file_report, handle))
        return self._load(mapping, report, [(path.name, spec, file_report, handle)
                                            for path, spec, file_report, handle in opened])

    def pull(self, mapping: SourceMapping, tables: list[tuple[str, FileSpec, OpenedFile]],
             content_sha256: Callable[[str, int], str]) -> BatchReport:
        """Rows pulled from a database, one query per mapped file entry, through the same checks, protection
        and all-or-nothing batch as files. `content_sha256(name, batch)` gives each table's fingerprint
        once its rows are read."""
        report = BatchReport(mapping.name)
        opened = []
        for name, spec, handle in tables:
            self._check_masking(Path(name), spec)
            file_report = FileReport(name, "")
            file_report.duplicates = spec.duplicates
            opened.append((name, spec, file_report, handle))
        return self._load(mapping, report, opened, content_sha256)

    def _load(self, mapping: SourceMapping, report: BatchReport, opened: list, content_sha256=None) -> BatchReport:
        if not opened:
            return report
        global _PROTECTION
        _PROTECTION = _Protection(self.tokenizer, self.vault.sealer, self.policy.vault_fields, self.masker,
                                  self.scanner)
        try:
            with ForkedWorkers(self.workers, _prepare) as preparer, self.store.transaction():
                batch_id = self.store.execute(
                    "INSERT INTO ingest_batches (source, started_at, status) VALUES (?, ?, 'running')",
                    (mapping.name, _now())).lastrowid
                report.batch_id = batch_id
                bulk = _BulkIndexes(self.store, self.bulk_rows)
                for name, spec, file_report, handle in opened:
                    if content_sha256 is not None:  # a query's columns are known once it runs
                        self._check_header(Path(name), spec, handle.header)
                    jobs = ((spec, mapping.id_namespace, chunk, index < SCAN_EVERY or index % SCAN_EVERY == 0)
                            for index, chunk in enumerate(handle.chunks))
                    content_keyed = spec.keyless_tables()  # tables whose key the source lacks (made from content)
                    for prepared in preparer.map(jobs):
                        self._write(mapping.name, file_report, batch_id, prepared, content_keyed, report.table_counts,
                                    bulk)
                        failpoint("ingest.chunk_written")
                    self._refuse_if_mostly_bad(file_report)
                    self._refuse_if_pii_is_kept(file_report, spec)
                    if content_sha256 is not None:
                        file_report.sha256 = content_sha256(name, batch_id)
                    self.store.execute(
                        "INSERT INTO ingest_files VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (batch_id, mapping.name, name, file_report.sha256, file_report.encoding,
                         file_report.rows_read, file_report.rows_loaded, file_report.rows_quarantined,
                         file_report.rows_filtered, file_report.duplicate_rows,
                         file_report.duplicates if file_report.duplicate_rows else None))
                    report.files.append(file_report)
                report.indexes_rebuilt = bulk.rebuild()
                self.store.execute(
                    "UPDATE ingest_batches SET finished_at = ?, status = 'committed', rows_read = ?, rows_loaded = ?, "
                    "rows_quarantined = ?, rows_filtered = ?, table_counts = ? WHERE batch_id = ?",
                    (_now(), sum(f.rows_read for f in report.files), report.rows_loaded, report.rows_quarantined,
                     sum(f.rows_filtered for f in report.files), json.dumps(dict(report.table_counts)), batch_id))
                if self.audit is not None:  # same transaction: no batch without its audit entry
                    self.audit.record(self.actor, "ingest.batch", source=mapping.name, batch=batch_id,
                                      rows_loaded=report.rows_loaded, rows_quarantined=report.rows_quarantined,
                                      files=[{"name": f.name, "sha256": f.sha256, "rows": f.rows_read}
                                             for f in report.files if f.duplicate_of_batch is None])
                failpoint("ingest.before_commit")
        except Exception as exc:
            log.error("ingest batch rolled back", extra={"source": mapping.name, "files": [n for n, *_ in opened],
                                                         "error": exc.message if isinstance(exc, ApplianceError)
                                                         else type(exc).__name__})
            raise
        finally:
            _PROTECTION = None
        log.info("ingest batch committed", extra={"source": mapping.name, "batch": report.batch_id,
                                                  "rows_loaded": report.rows_loaded,
                                                  "rows_quarantined": report.rows_quarantined,
                                                  "files": [f.name for f in report.files],
                                                  "indexes_rebuilt": report.indexes_rebuilt})
        return report

    def _check_masking(self, path: Path, spec: FileSpec) -> None:
        if self.masker is not None:
            return
        for column in spec.columns.values():
            if column.protect == "mask":
                raise IngestError(f"{path.name}: column '{column.name}' is free text to be masked, but no PII "
                                  "engine is installed; map it with protect: drop")

    @staticmethod
    def _check_header(path: Path, spec: FileSpec, header: list[str]) -> None:
        unknown = [(position, name) for position, name in enumerate(header, 1) if name not in spec.columns]
        if unknown and len(unknown) == len(header) and spec.format != "jsonl":
            raise IngestError(f"{path.name}: line 1 does not look like a header: {len(header)} fields, none of them "
                              "a mapped name (a file without its header line?)")
        if unknown:
            position, name = unknown[0]
            raise IngestError(f"{path.name}: column {shown_name(name, position)} is not in the mapping; map or drop "
                              "it explicitly")
        for name, column in spec.columns.items():
            if name not in header and not column.optional and spec.format != "jsonl":
                raise IngestError(f"{path.name}: mapped column '{name}' is missing from the file")

    def _refuse_if_mostly_bad(self, report: FileReport) -> None:
        considered = report.rows_read - report.rows_filtered
        if considered and report.rows_quarantined / considered > self.max_bad_row_share:
            (column, reason), _ = report.reasons.most_common(1)[0]
            where = f"column '{column}': " if column else ""
            raise IngestError(
                f"{report.name}: {report.rows_quarantined} of {considered} rows failed validation (over "
                f"{self.max_bad_row_share:.0%}; most often {where}{reason}); nothing from this batch was stored")

    @staticmethod
    def _refuse_if_pii_is_kept(report: FileReport, spec: FileSpec) -> None:
        for (column, entity), hits in sorted(report.pii_hits.items()):
            sampled = report.scanned[column]
            share = hits / max(sampled, 1)
            if entity in SCAN_NAME_TYPES:
                refused = share > SCAN_MAX_NAME_SHARE
            else:
                refused = report.pii_best[(column, entity)] >= SCAN_SURE_SCORE or share > SCAN_MAX_SHARE
            if refused:
                data_class = spec.columns[column].data_class
                raise IngestError(
                    f"{report.name}: column '{column}' is stored as it is (class {data_class}) but holds {entity} "
                    f"({hits} of {sampled} sampled values); map it with protect: token or drop, or fix the export")

    def _write(self, source: str, report: FileReport, batch_id: int, prepared: Prepared, content_keyed: set[str],
               table_counts: Counter, bulk: "_BulkIndexes") -> None:
        report.scanned.update(prepared.scanned)
        for column, entity, score in prepared.pii:
            report.pii_hits[(column, entity)] += 1
            report.pii_best[(column, entity)] = max(score, report.pii_best.get((column, entity), 0.0))
        report.rows_read += prepared.rows_read
        report.rows_filtered += prepared.rows_filtered
        report.rows_loaded += prepared.rows_loaded
        report.rows_quarantined += len(prepared.quarantine)
        for _, column, reason, _ in prepared.quarantine:
            report.reasons[(column, reason)] += 1
        if prepared.quarantine:
            self.store.executemany(
                "INSERT INTO quarantine (batch_id, source, file_name, line, column_name, reason, protected_row) "
                "VALUES (?,?,?,?,?,?,?)",
                [(batch_id, source, report.name, line, column, reason, row)
                 for line, column, reason, row in prepared.quarantine])
        if prepared.vault:
            self.vault.put_sealed(prepared.vault)
        for table, (names, rows) in prepared.tables.items():
            if table in content_keyed:
                rows = self._count_duplicates(report, table, names, rows)
            self._upsert(table, names, rows, source, batch_id)
            table_counts[table] += len(rows)
            bulk.wrote(table, table_counts[table])

    @staticmethod
    def _count_duplicates(report: FileReport, table: str, names: list[str], rows: list[tuple]) -> list[tuple]:
        """Rows whose table has no key in the source get one from their content; identical rows would share
        it. Each repeat is counted, and the mapping decides: keep every row (the n-th repeat's key gets #n, so
        re-sending the file changes nothing) or merge repeats into one."""
        position = names.index(model.BY_NAME[table].key)
        seen = report.seen_content.setdefault(table, Counter())
        kept = []
        for row in rows:
            key = row[position]
            repeat = seen[key]
            seen[key] += 1
            if repeat:
                report.duplicate_rows += 1
                if report.duplicates == "keep":
                    row = row[:position] + (f"{key}#{repeat}",) + row[position + 1:]
            kept.append(row)
        return kept

    def _upsert(self, table: str, names: list[str], rows: list[tuple], source: str, batch_id: int) -> None:
        key = model.BY_NAME[table].key
        updates = [f"{n} = excluded.{n}" for n in names if n not in (key, "attributes")]
        updates += ["source = excluded.source", "batch_id = excluded.batch_id"]
        if "attributes" in names:
            updates.append(f"attributes = json_patch(coalesce({table}.attributes, '{{}}'), excluded.attributes)")
        all_names = names + ["source", "batch_id"]
        sql = (f"INSERT INTO {table} ({', '.join(all_names)}) VALUES ({', '.join('?' * len(all_names))}) "
               f"ON CONFLICT({key}) DO UPDATE SET {', '.join(updates)}")
        self.store.executemany(sql, (row + (source, batch_id) for row in rows))


class _BulkIndexes:
    """A batch that loads a table in bulk (a first load, a backfill) drops the table's secondary indexes once
    it has written more than `bulk_rows` rows and more than half as many as the table held, and builds them
    again before it commits: one sort per index instead of a random B-tree insert per row and index. It all
    happens inside the batch's transaction, so a batch that fails or is killed leaves the indexes as they
    were, and other connections keep reading the committed tables with their indexes meanwhile. Unique
    indexes stay: the upserts depend on them."""

    def __init__(self, store: Store, bulk_rows: int):
        self.store, self.bulk_rows = store, bulk_rows
        self.held: dict[str, int] = {}
        self.dropped: dict[str, list[str]] = {}  # table -> the CREATE INDEX statements to run again

    def wrote(self, table: str, written: int) -> None:
        """`written`: the rows this batch has written into `table` so far, the last chunk's included."""
        if not self.bulk_rows or table in self.dropped:
            return
        if table not in self.held:  # the largest rowid counts the rows without reading them all
            self.held[table] = max(0, (self.store.scalar(f"SELECT max(rowid) FROM {table}") or 0) - written)
        if written > max(self.bulk_rows, self.held[table] // 2):
            secondary = self.store.rows(
                "SELECT m.name, m.sql FROM sqlite_master m JOIN pragma_index_list(?) i ON i.name = m.name "
                "WHERE m.type = 'index' AND i.origin = 'c' AND NOT i.\"unique\"", (table,))
            for name, _ in secondary:
                self.store.execute(f'DROP INDEX "{name}"')
            self.dropped[table] = [sql for _, sql in secondary]

    def rebuild(self) -> list[str]:
        for statements in self.dropped.values():
            for sql in statements:
                self.store.execute(sql)
        return sorted(self.dropped)
