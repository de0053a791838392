"""Reading input files in chunks: CSV (UTF-8, UTF-8 with BOM, GB18030; any delimiter; gzip too),
XLSX and JSON Lines. Every row keeps the line (or sheet row) it came from, so a quarantined row can be
found in the source file. Values arrive as strings; typing is the ingest's job.
"""

import codecs
import csv
import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pandas as pd
import regex

from appliance.errors import IngestError
from appliance.mapping import FileSpec

_BLOCK = 1 << 20


@dataclass
class Chunk:
    frame: pd.DataFrame  # string cells, one column per header name
    lines: list[int]  # source line of each frame row
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, reason): rows that did not split

    def parsed(self) -> "Chunk":
        return self


class _Batcher:
    """Collects rows (with their lines) and malformed lines until a chunk is full."""

    def __init__(self, header: list[str], size: int):
        self.header, self.size = header, size
        self.rows, self.lines, self.malformed = [], [], []

    def add(self, row: list[str], line: int) -> None:
        self.rows.append(row)
        self.lines.append(line)

    def bad(self, line: int, reason: str) -> None:
        self.malformed.append((line, reason))

    @property
    def full(self) -> bool:
        return len(self.rows) + len(self.malformed) >= self.size

    def __bool__(self) -> bool:
        return bool(self.rows or self.malformed)

    def take(self) -> Chunk:
        chunk = Chunk(pd.DataFrame(self.rows, columns=self.header, dtype=object), self.lines, self.malformed)
        self.rows, self.lines, self.malformed = [], [], []
        return chunk


# A record's line breaks, as the text reader (newline="") counts lines: \r\n, \r or \n each start a line.
_LINE_BREAK = regex.compile(r"\r\n|\r|\n")


@dataclass
class SplitRows:
    """CSV records as the csv module split them in the reading process. Line numbers, width checks and the
    frame are left to the worker that prepares the chunk (parsed()), so the reading process, which also
    writes the batch, does only what the C parser does."""

    header: list[str]
    rows: list[list[str]]
    first_line: int
    line_span: int  # physical lines the records took: more than len(rows) when a quoted field holds a newline

    def parsed(self) -> Chunk:
        width, rows = len(self.header), self.rows
        if self.line_span == len(rows) and width > 1 and all(len(row) == width for row in rows):
            # One line per record, no blank or malformed one: the common case, without a Python step per row.
            return Chunk(pd.DataFrame(rows, columns=self.header, dtype=object),
                         list(range(self.first_line, self.first_line + len(rows))))
        if self.line_span == len(rows):
            spans = None
        else:
            spans = [1 + sum(len(_LINE_BREAK.findall(cell)) for cell in row) for row in rows]
        batch = _Batcher(self.header, len(rows))
        line = self.first_line
        for position, row in enumerate(rows):
            if row and (len(row) > 1 or row[0].strip()):
                if len(row) != width:
                    batch.bad(line, f"{len(row)} fields where the header has {width}")
                else:
                    batch.add(row, line)
            line += 1 if spans is None else spans[position]
        return batch.take()


@dataclass
class OpenedFile:
    header: list[str]
    encoding: str | None
    chunks: Iterator[Chunk | SplitRows]  # parsed() gives the Chunk


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def detect_encoding(path: Path) -> str:
    """utf-8-sig when a BOM leads, utf-8 when the whole file decodes as UTF-8, else gb18030 (a superset of
    GBK and GB2312, as Chinese core systems export). Anything else is refused."""
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with _open_binary(path) as handle:
                first = True
                for block in iter(lambda: handle.read(_BLOCK), b""):
                    if first and block.startswith(codecs.BOM_UTF8):
                        return "utf-8-sig"
                    first = False
                    decoder.decode(block)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            if encoding == "utf-8":
                try:
                    _refuse_mixed_encodings(path)
                except (OSError, EOFError, gzip.BadGzipFile):
                    raise IngestError(f"{path.name}: cannot be read (damaged or truncated archive)") from None
            continue
        except (OSError, EOFError, gzip.BadGzipFile):
            raise IngestError(f"{path.name}: cannot be read (damaged or truncated archive)") from None
    raise IngestError(f"{path.name}: text is neither UTF-8 nor GB18030; re-export it in one of those")


def _refuse_mixed_encodings(path: Path) -> None:
    """A file that is not UTF-8 throughout but holds UTF-8 lines was written in two encodings (appended
    exports, a hand edit): read as GB18030, its UTF-8 lines would turn into other characters, silently."""
    utf8_line = other_line = None
    with _open_binary(path) as handle:
        for number, line in enumerate(handle, 1):
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
                utf8_line = utf8_line or number
            except UnicodeDecodeError:
                other_line = other_line or number
            if utf8_line and other_line:
                raise IngestError(f"{path.name}: mixed text encodings (line {utf8_line} is UTF-8, line {other_line} "
                                  "is not); re-export it in one encoding")


def open_input(path: Path, spec: FileSpec, chunk_rows: int) -> OpenedFile:
    if spec.format == "xlsx":
        return _open_xlsx(path, spec, chunk_rows)
    encoding = detect_encoding(path) if spec.encoding == "auto" else spec.encoding
    opened = (_open_jsonl if spec.format == "jsonl" else _open_csv)(path, spec, chunk_rows, _decoder_for(encoding))
    opened.encoding = encoding
    return opened


def _decoder_for(encoding: str) -> str:
    return "utf-8-sig" if encoding == "utf-8" else encoding  # tolerate a BOM on a UTF-8 file


def _text(path: Path, encoding: str):
    return io.TextIOWrapper(_open_binary(path), encoding=encoding, newline="")


def _open_csv(path: Path, spec: FileSpec, chunk_rows: int, encoding: str) -> OpenedFile:
    handle = _text(path, encoding)
    first = handle.readline()
    if not first.strip():
        handle.close()
        raise IngestError(f"{path.name}: empty file, no header row")
    delimiter = spec.delimiter
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
    _check_header(path, header)
    reader = csv.reader(handle, delimiter=delimiter)

    def chunks() -> Iterator[SplitRows]:
        try:
            with handle:
                while True:
                    before = reader.line_num
                    rows = list(itertools.islice(reader, chunk_rows))  # the C parser, no Python per row
                    if not rows:
                        break
                    yield SplitRows(header, rows, before + 2, reader.line_num - before)  # + 2: the header line
        except csv.Error:
            raise IngestError(f"{path.name} line {reader.line_num + 1}: not parseable as CSV") from None
        except (OSError, EOFError):
            raise IngestError(f"{path.name}: cannot be read to the end (damaged or truncated archive)") from None

    return OpenedFile(header, encoding, chunks())


# A header name is shown in a message only when it reads like a column name: short, no long run of digits,
# no @, no : or / (a file without its header line must not print its first row: a card number, a mobile).
_NAME_LIKE = regex.compile(r"(?=.*[\p{L}_])(?!.*\d{5})(?!.*[@:/\\])[\p{L}\p{N}_ .()\-#%]{1,40}")


def shown_name(name: str, position: int) -> str:
    """How a message names a column: 'name' when the name reads like one, else by its position only."""
    return f"'{name}'" if _NAME_LIKE.fullmatch(name) else f"{position} (its name looks like data and is not shown)"


def _check_header(path: Path, header: list[str]) -> None:
    seen = set()
    for position, name in enumerate(header, 1):
        if not name:
            raise IngestError(f"{path.name}: header column {position} has no name")
        if name in seen:
            raise IngestError(f"{path.name}: header names column {shown_name(name, position)} twice")
        seen.add(name)


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _open_xlsx(path: Path, spec: FileSpec, chunk_rows: int) -> OpenedFile:
    import openpyxl  # only XLSX sources pay for it

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise IngestError(f"{path.name}: not a readable XLSX workbook") from None
    if spec.sheet is not None and spec.sheet not in book.sheetnames:
        book.close()
        raise IngestError(f"{path.name}: has no sheet '{spec.sheet}'")
    sheet = book[spec.sheet] if spec.sheet else book.worksheets[0]
    rows_iter = sheet.iter_rows(values_only=True)
    header: list[str] = []
    header_line = 0
    for header_line, values in enumerate(rows_iter, 1):
        if any(v is not None for v in values):
            header = [_cell_text(v) for v in values]
            break
    while header and not header[-1]:
        header.pop()
    if not header:
        book.close()
        raise IngestError(f"{path.name}: empty sheet, no header row")
    _check_header(path, header)
    width = len(header)

    def chunks() -> Iterator[Chunk]:
        batch = _Batcher(header, chunk_rows)
        try:
            for line, values in enumerate(rows_iter, header_line + 1):
                cells = [_cell_text(v) for v in values]
                if not any(cells):
                    continue
                if any(cells[width:]):
                    batch.bad(line, f"cells beyond the {width} header columns")
                else:
                    batch.add((cells + [""] * width)[:width], line)
                if batch.full:
                    yield batch.take()
            if batch:
                yield batch.take()
        finally:
            book.close()

    return OpenedFile(header, None, chunks())


def _json_text(value) -> str | None:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return None  # nested: not a cell


def _open_jsonl(path: Path, spec: FileSpec, chunk_rows: int, encoding: str) -> OpenedFile:
    header = list(spec.columns)
    known = set(header)

    def chunks() -> Iterator[Chunk]:
        batch = _Batcher(header, chunk_rows)
        try:
            with _text(path, encoding) as handle:
                for line, text in enumerate(handle, 1):
                    if not text.strip():
                        continue
                    if batch.full:
                        yield batch.take()
                    try:
                        record = json.loads(text)
                    except ValueError:
                        batch.bad(line, "not valid JSON")
                        continue
                    if not isinstance(record, dict):
                        batch.bad(line, "not a JSON object")
                        continue
                    unknown = next(((i, k) for i, k in enumerate(record, 1) if k not in known), None)
                    if unknown is not None:
                        raise IngestError(f"{path.name} line {line}: key {shown_name(unknown[1], unknown[0])} "
                                          "is not in the mapping")
                    cells = {k: _json_text(v) for k, v in record.items()}
                    nested = next((k for k, v in cells.items() if v is None), None)
                    if nested is not None:
                        batch.bad(line, f"column '{nested}' holds a nested value")
                        continue
                    batch.add([cells.get(name, "") for name in header], line)
        except (OSError, EOFError):
            raise IngestError(f"{path.name}: cannot be read to the end (damaged or truncated archive)") from None
        if batch:
            yield batch.take()

    return OpenedFile(header, encoding, chunks())
