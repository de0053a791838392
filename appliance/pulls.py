"""Pulling a source from the bank's own database instead of files.

A pull is a YAML file in the home's sources folder, `<name>.pull.yaml`:

    pull: core_banking
    mapping: demo                       # the source mapping the rows go through, as a file's would
    url: postgresql+psycopg://insight_reader@db.bank.local:5432/core
    queries:                            # one query per file entry of the mapping, its columns named as
      customers.csv: |                  # the file's header would name them
        SELECT cust_no AS "客户号", cust_name AS "姓名", ... FROM crm.customers

The URL carries no password: `appliance pull password NAME` seals it in the home's keyring. The pull opens
one read-only transaction (a consistent snapshot where the database gives one), streams each query's rows in
chunks of `ingest.chunk_rows`, and hands them to the same validation, protection and all-or-nothing batch as
files. Errors name the pull, the query and the database's error code, never its message: a database's
message can quote the value it failed on.
"""

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from appliance.errors import IngestError, MappingError
from appliance.mapping import FileSpec, SourceMapping
from appliance.readers import Chunk, OpenedFile
from appliance import yamlfile

SUFFIX = ".pull.yaml"
# Drivers that need no client library on the box: psycopg's binary wheel, PyMySQL and python-oracledb's thin
# mode are all installed from the offline bundle.
DRIVERS = {"postgresql+psycopg": "postgresql", "mysql+pymysql": "mysql", "oracle+oracledb": "oracle"}


@dataclass(frozen=True)
class Pull:
    name: str
    mapping: str
    url: str
    queries: dict[str, str]
    path: Path

    @property
    def secret_name(self) -> str:
        return f"pull:{self.name}"


def pull_path(sources_dir: Path, name: str) -> Path:
    return Path(sources_dir) / f"{name}{SUFFIX}"


def load_pull(path: Path) -> Pull:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    document = yamlfile.load(path, MappingError)
    if not isinstance(document, yamlfile.LineDict):
        raise MappingError(f"{path.name}: not a pull definition (a mapping with pull, mapping, url, queries)")
    unknown = sorted(set(document) - {"pull", "mapping", "url", "queries", "description"})
    if unknown:
        raise MappingError(f"{path.name} line {document.line_of(unknown[0])}: unknown key '{unknown[0]}'")
    for key in ("pull", "mapping", "url", "queries"):
        if key not in document:
            raise MappingError(f"{path.name}: '{key}' is missing")
    if document["pull"] != path.name[:-len(SUFFIX)]:
        raise MappingError(f"{path.name} line {document.line_of('pull')}: declares pull '{document['pull']}', "
                           f"expected '{path.name[:-len(SUFFIX)]}'")
    where = f"{path.name} line {document.line_of('url')}"
    try:
        url = make_url(str(document["url"]))
    except ArgumentError:
        raise MappingError(f"{where}: 'url' is not a database URL (driver://user@host:port/database)") from None
    if url.password is not None:
        raise MappingError(f"{where}: 'url' holds a password; remove it and keep it in the keyring with "
                           f"`appliance pull password {document['pull']}`")
    if url.drivername not in DRIVERS:
        raise MappingError(f"{where}: driver '{url.drivername}' is not one of {', '.join(sorted(DRIVERS))}")
    queries = document["queries"]
    if not isinstance(queries, dict) or not queries or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in queries.items()):
        raise MappingError(f"{path.name} line {document.line_of('queries')}: 'queries' must map each file "
                           "entry's name to a SELECT")
    return Pull(str(document["pull"]), str(document["mapping"]), str(document["url"]),
                {k: v.strip().rstrip(";") for k, v in queries.items()}, path)


def _specs(pull: Pull, mapping: SourceMapping) -> list[tuple[str, FileSpec]]:
    specs = []
    for name in pull.queries:
        spec = mapping.file_for(name)
        if spec is None:
            raise MappingError(f"{pull.path.name}: query '{name}' matches no file entry of mapping '{mapping.name}'")
        specs.append((name, spec))
    return specs


def _text(value, column_format: str | None) -> str:
    """A database value as a file would carry it, so the mapping's own types and formats read it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime(column_format) if column_format else value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.strftime(column_format) if column_format else value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise IngestError("a query returned binary data; select text, numbers and dates only")
    return str(value).strip()


def _reason(exc: Exception) -> str:
    code = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(getattr(exc, "orig", None), "args", [None])[0]
    kind = type(getattr(exc, "orig", None) or exc).__name__
    return f"{kind}, code {code}" if isinstance(code, (str, int)) and code else kind


class _Fingerprint:
    """Each table's rows hashed as they stream past: the batch records what it read."""

    def __init__(self, pull: Pull):
        self.pull = pull
        self.digests = {name: hashlib.sha256() for name in pull.queries}

    def add(self, name: str, rows: list[list[str]]) -> None:
        digest = self.digests[name]
        for row in rows:
            digest.update("\x1f".join(row).encode("utf-8") + b"\x1e")

    def sha256(self, name: str, batch: int) -> str:
        # The batch is part of it: a database is pulled again and again, and unchanged rows are normal.
        return hashlib.sha256(f"{self.pull.name}\x1f{name}\x1f{batch}\x1f".encode()
                              + self.digests[name].digest()).hexdigest()


@contextmanager
def opened(pull: Pull, mapping: SourceMapping, password: str | None, chunk_rows: int
           ) -> Iterator[tuple[list[tuple[str, FileSpec, OpenedFile]], _Fingerprint]]:
    """A read-only connection and, for each query, its rows as chunks a file reader would give."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    specs = _specs(pull, mapping)
    url = make_url(pull.url)
    if password is not None:
        url = url.set(password=password)
    dialect = DRIVERS[url.drivername]
    fingerprint = _Fingerprint(pull)
    engine = create_engine(url)
    try:
        try:
            connection = engine.connect()
        except SQLAlchemyError as exc:
            raise IngestError(f"pull '{pull.name}': cannot connect to the database at {url.host or 'its socket'} "
                              f"as {url.username} ({_reason(exc)})") from None
        with connection:
            if dialect in ("postgresql", "mysql"):
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            connection.begin()
            try:
                connection.execute(text("SET TRANSACTION READ ONLY"))
            except SQLAlchemyError as exc:
                raise IngestError(f"pull '{pull.name}': the database refused a read-only transaction "
                                  f"({_reason(exc)})") from None

            def run(name: str, spec: FileSpec) -> OpenedFile:
                try:
                    result = connection.execution_options(stream_results=True, yield_per=chunk_rows).execute(
                        text(pull.queries[name]))
                except SQLAlchemyError as exc:
                    raise IngestError(f"pull '{pull.name}': the query for {name} failed ({_reason(exc)})") from None
                header = list(result.keys())
                formats = [spec.columns[c].format if c in spec.columns else None for c in header]

                def chunks() -> Iterator[Chunk]:
                    import pandas as pd

                    line = 0
                    try:
                        for partition in result.partitions(chunk_rows):
                            rows = [[_text(v, f) for v, f in zip(row, formats)] for row in partition]
                            fingerprint.add(name, rows)
                            lines = list(range(line + 1, line + len(rows) + 1))
                            line += len(rows)
                            yield Chunk(pd.DataFrame(rows, columns=header, dtype=object), lines)
                    except SQLAlchemyError as exc:
                        raise IngestError(f"pull '{pull.name}': reading {name} failed ({_reason(exc)})") from None
                    finally:
                        result.close()

                return OpenedFile(header, None, chunks())

            # Queries run one after another (a connection streams one result at a time).
            yield [(name, spec, _Lazy(run, name, spec)) for name, spec in specs], fingerprint
    finally:
        engine.dispose()


class _Lazy:
    """An OpenedFile whose query runs when the ingest reaches its table, not before: one open result at a
    time, as MySQL's streaming cursors require."""

    def __init__(self, run, name: str, spec: FileSpec):
        self._run, self._name, self._spec = run, name, spec
        self._opened: OpenedFile | None = None

    def _open(self) -> OpenedFile:
        if self._opened is None:
            self._opened = self._run(self._name, self._spec)
        return self._opened

    @property
    def header(self):
        return self._open().header

    @property
    def chunks(self):
        return self._open().chunks
