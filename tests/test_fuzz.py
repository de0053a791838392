"""Property-based fuzzing of what reads outside input: the CSV and JSON Lines readers, the typing of cells,
the mapping parser and every policy parser. Whatever the input, the only way out is the product's own
refusal (IngestError, MappingError, PolicyError) naming file and line, never another exception.

Examples per test: the `ci` profile (1,000) in `make test`; `benchmarks/fuzz.py` runs the `long` profile."""

import csv
import json
import math
import re
from pathlib import Path

import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.errors import IngestError, MappingError, PolicyError
from appliance.ingest import MAX_MAGNITUDE, YEARS, _parse
from appliance.mapping import ColumnSpec, load_mapping
from appliance.policies import SHIPPED_DIR, ProtectionPolicy
from appliance.readers import open_input
from appliance.home import policy_parsers

POLICY = ProtectionPolicy.load(SHIPPED_DIR)
HEADER = ["customer_no", "name", "amount", "opened", "code"]
MAPPING = Path(__file__).parent / "data" / "fuzz_mapping.yaml"
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

cells = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", '"', '""', ",", "\n", "\r\n", "1e309", "-inf", "NaN", "0001-01-01", "2024-02-30", "\x00", "\ufeff", "1,234.5",
     "6258157569222544", "=HYPERLINK(1)", "9" * 400])


def _spec(tmp: Path, fmt: str):
    mapping = load_mapping(MAPPING, POLICY)
    return next(f for f in mapping.files if f.format == fmt)


def _drain(path: Path, spec) -> int:
    rows = 0
    try:
        opened = open_input(path, spec, chunk_rows=7)
        for chunk in map(lambda c: c.parsed(), opened.chunks):
            rows += len(chunk.frame) + len(chunk.malformed)
            assert list(chunk.frame.columns) == opened.header
    except IngestError as exc:
        assert path.name in str(exc)
    return rows


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=7), max_size=12), delimiter=st.sampled_from([",", ";", "\t", "|"]),
       header=st.booleans(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
def test_csv_reader_reads_or_refuses(tmp_path_factory, rows, delimiter, header, encoding):
    path = tmp_path_factory.mktemp("csv") / "customers.csv"
    lines = ([delimiter.join(HEADER)] if header else []) + [delimiter.join(r) for r in rows]
    try:
        data = "\n".join(lines).encode(encoding)
    except UnicodeEncodeError:
        data = "\n".join(lines).encode("utf-8")
    path.write_bytes(data)
    _drain(path, _spec(path.parent, "csv"))


def _lines_row_by_row(path: Path) -> tuple[list[int], list[int]]:
    """The source line of every record and of every malformed one, found the slow, obvious way: one csv
    record at a time, each starting on the line after the previous one ended."""
    kept, malformed = [], []
    with open(path, encoding="utf-8", newline="") as handle:
        handle.readline()
        reader = csv.reader(handle)
        for row in reader:
            start = reader.line_num + 1 - _physical_lines(row) + 1
            if row and (len(row) > 1 or row[0].strip()):
                (kept if len(row) == len(HEADER) else malformed).append(start)
    return kept, malformed


def _physical_lines(row: list[str]) -> int:
    return 1 + sum(len(re.findall(r"\r\n|\r|\n", cell)) for cell in row)


@FUZZ
@given(rows=st.lists(st.lists(st.sampled_from(["a", "", " ", "x\ny", "p\r\nq", "r\rs", '"q"', "1,5"]),
                              min_size=0, max_size=6), max_size=15),
       ending=st.sampled_from(["\n", "\r\n"]), chunk_rows=st.integers(1, 4))
def test_csv_reader_finds_each_records_line_across_chunks(tmp_path_factory, rows, ending, chunk_rows):
    """The reading process only splits records; the worker numbers them. Quoted line breaks of every kind,
    blank and malformed lines, any chunk size: every record keeps the line it starts on."""
    path = tmp_path_factory.mktemp("lines") / "customers.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator=ending)
        writer.writerow(HEADER)
        writer.writerows(rows)
    kept, malformed = [], []
    for chunk in open_input(path, _spec(path.parent, "csv"), chunk_rows=chunk_rows).chunks:
        parsed = chunk.parsed()
        kept += parsed.lines
        malformed += [line for line, _ in parsed.malformed]
    assert (kept, malformed) == _lines_row_by_row(path)
    if not any("r\rs" in row for row in rows):  # Python's csv splits a field at a lone \r, quoted or not
        assert len(kept) == sum(1 for row in rows if len(row) == len(HEADER))


@FUZZ
@given(raw=st.binary(max_size=300))
def test_csv_reader_survives_any_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("bytes") / "customers.csv"
    path.write_bytes(raw)
    _drain(path, _spec(path.parent, "csv"))


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | cells,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(cells, inner, max_size=3),
                           max_leaves=8)


@FUZZ
@given(records=st.lists(st.dictionaries(st.sampled_from(HEADER) | cells, json_values, max_size=6) | json_values,
                        max_size=8), garbage=st.lists(cells, max_size=2))
def test_jsonl_reader_reads_or_refuses(tmp_path_factory, records, garbage):
    path = tmp_path_factory.mktemp("jsonl") / "customers.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in records] + garbage
    path.write_text("\n".join(lines), encoding="utf-8")
    _drain(path, _spec(path.parent, "jsonl"))


@FUZZ
@given(values=st.lists(cells | st.none(), max_size=20), kind=st.sampled_from(["text", "integer", "decimal", "date",
                                                                              "datetime", "boolean"]))
def test_typing_never_stores_what_it_should_refuse(values, kind):
    spec = ColumnSpec("c", "C1", kind, "keep", [], 1)
    typed, failures = _parse(spec, pd.Series(values, dtype=object))
    refused = pd.Series(False, index=typed.index)
    for mask, reason in failures:
        refused |= mask
        # A value that is a piece of the reason's own wording ("numb" in "number") is not an echo of it.
        wording = {r for _m, r in _parse(spec, pd.Series(["\x01\x02\x03\x04"] * 2, dtype=object))[1]}
        assert isinstance(reason, str) and not any(
            v in reason and not any(v in w for w in wording)
            for v in values if isinstance(v, str) and len(v) > 3)
    for value, bad in zip(typed.tolist(), refused.tolist()):
        if bad or value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            continue
        if kind in ("integer", "decimal"):
            assert math.isfinite(float(value)) and abs(float(value)) <= MAX_MAGNITUDE
        if kind in ("date", "datetime"):
            assert YEARS[0] <= int(str(value)[:4]) <= YEARS[1]
        if kind == "text":
            assert not any(ord(c) < 32 and c not in "\t\n\r" for c in str(value))


yaml_trees = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | cells,
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                              st.sampled_from(["source", "files", "columns", "match", "to", "class", "protect", "type",
                                               "version", "classes", "vault", "tables", "days", "reports", "k"]) | cells,
                              inner, max_size=4), max_leaves=12)


@FUZZ
@given(tree=yaml_trees, raw=st.booleans(), text=cells)
def test_mapping_parser_accepts_or_names_the_line(tmp_path_factory, tree, raw, text):
    path = tmp_path_factory.mktemp("mapping") / "fuzzed.yaml"
    path.write_text(text if raw else yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    try:
        load_mapping(path, POLICY)
    except MappingError as exc:
        assert "fuzzed.yaml" in str(exc)


@FUZZ
@given(tree=yaml_trees, raw=st.booleans(), text=cells, version=st.booleans())
def test_every_policy_parser_accepts_or_names_the_line(tree, raw, text, version):
    if version and isinstance(tree, dict):
        tree = {"version": 1, **tree}
    document = text if raw else yaml.safe_dump(tree, allow_unicode=True)
    for name, parse in policy_parsers().items():
        try:
            parse(document)
        except PolicyError as exc:
            assert str(exc).startswith(name), (name, str(exc))
