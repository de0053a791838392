"""Source mappings: which input files and columns land in which canonical fields, typed and classified.

A mapping is YAML, validated on load; every error names the mapping file and line. Every column of an
input must be listed (a column the mapping does not know stops the ingest), each with its data class
(identifier, C3, C2, C1, free_text, not_personal) and how it is protected (token, keep, drop, mask; the
default and the choices come from `policies/protection.yaml`). See docs/mappings.md.
"""

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from appliance import model, yamlfile
from appliance.errors import MappingError
from appliance.policies import DATA_CLASSES, ProtectionPolicy
from appliance.transforms import TRANSFORMS

SHIPPED_DIR = Path(__file__).resolve().parent / "sources"
FORMATS = ("csv", "xlsx", "jsonl")
ENCODINGS = ("auto", "utf-8", "gb18030")
_COLUMN_KEYS = {"to", "class", "type", "protect", "format", "values", "required", "optional", "min", "max",
                "derive", "prefix", "help", "feature", "unit", "label"}
FEATURE_KINDS = ("numeric", "categorical")
_FILE_KEYS = {"match", "format", "delimiter", "encoding", "sheet", "null_values", "filter", "constants", "columns",
              "help", "duplicates"}
DUPLICATES = ("keep", "merge")
_SOURCE_KEYS = {"source", "description", "id_namespace", "files"}


@dataclass(frozen=True)
class Target:
    table: str
    field: str | None = None  # None: an attribute
    attribute: str | None = None

    @property
    def spec(self) -> model.Field | None:
        return model.BY_NAME[self.table].field(self.field) if self.field else None

    @property
    def token_domain(self) -> str | None:
        if self.attribute:
            return f"attr:{self.attribute}"
        return self.spec.token_domain

    def __str__(self) -> str:
        return f"{self.table}.{self.field or 'attributes.' + self.attribute}"


@dataclass
class ColumnSpec:
    name: str
    data_class: str
    type: str
    protect: str
    targets: list[Target]
    line: int
    format: str | None = None
    values: dict[str, str] | None = None
    required: bool = False
    optional: bool = False
    minimum: float | None = None
    maximum: float | None = None
    derive: list[tuple[Target, str]] = field(default_factory=list)
    prefix: str = ""  # keeps keys of different source tables apart when they share a canonical table
    feature: str | None = None  # "numeric" or "categorical": the models may learn from this column
    unit: str | None = None  # how a person reads its values in a reason ("months", "USD")
    label: bool = False  # a binary outcome the models may learn to predict (`train propensity --target`)

    @property
    def customer_target(self) -> "Target | None":
        """Where the value lives on the customer (a customers field or attribute), for features and labels."""
        return next((t for t in self.targets if t.table == "customers"), None)


@dataclass
class FileSpec:
    match: str
    format: str
    columns: dict[str, ColumnSpec]
    line: int
    delimiter: str | None = None
    encoding: str = "auto"
    sheet: str | None = None
    null_values: tuple[str, ...] = ("",)
    filter_column: str | None = None
    filter_values: tuple[str, ...] = ()
    constants: dict[Target, str] = field(default_factory=dict)  # the same value on every row, e.g. a category
    duplicates: str = "keep"  # rows with no key of their own that repeat another: "keep" each, or "merge"

    def keyless_tables(self) -> set[str]:
        """Tables this file writes without mapping their key: their rows are keyed by their content."""
        keyed = {t.table for c in self.columns.values() for t in c.targets
                 if t.field == model.BY_NAME[t.table].key}
        return {t for t in self.tables() if t not in keyed}

    def matches(self, file_name: str) -> bool:
        name = file_name[:-3] if file_name.endswith(".gz") else file_name
        return fnmatch.fnmatch(name, self.match) or fnmatch.fnmatch(file_name, self.match)

    def tables(self) -> list[str]:
        seen: list[str] = []
        for column in self.columns.values():
            for target in column.targets + [t for t, _ in column.derive]:
                if target.table not in seen:
                    seen.append(target.table)
        for target in self.constants:
            if target.table not in seen:
                seen.append(target.table)
        return seen


@dataclass
class SourceMapping:
    name: str
    description: str
    id_namespace: str
    files: list[FileSpec]
    path: Path

    def file_for(self, file_name: str) -> FileSpec | None:
        return next((f for f in self.files if f.matches(file_name)), None)

    def declared_features(self) -> list[ColumnSpec]:
        """The columns the mapping offers the models as features, in mapping order."""
        return [c for f in self.files for c in f.columns.values() if c.feature]

    def declared_labels(self) -> dict[str, ColumnSpec]:
        """Label name (the column's target attribute or field) -> its column."""
        found = {}
        for column in (c for f in self.files for c in f.columns.values() if c.label):
            target = column.customer_target
            found[target.attribute or target.field] = column
        return found


class _Checker:
    def __init__(self, path: Path):
        self.where = path.name

    def fail(self, line: int, message: str):
        raise MappingError(f"{self.where} line {line}: {message}")

    def mapping(self, value, line: int, what: str) -> yamlfile.LineDict:
        if not isinstance(value, dict):
            self.fail(line, f"{what} must be a mapping")
        return value

    def keys(self, node: yamlfile.LineDict, allowed: set[str], what: str) -> None:
        for key in node:
            if key not in allowed:
                self.fail(node.line_of(key), f"unknown key '{key}' in {what}")


def _parse_target(check: _Checker, text, line: int) -> Target:
    if not isinstance(text, str):
        check.fail(line, "a target must be written table.field or table.attributes.name")
    parts = text.split(".")
    table = model.BY_NAME.get(parts[0])
    if table is None:
        check.fail(line, f"unknown table '{parts[0]}' (tables: {', '.join(model.BY_NAME)})")
    if len(parts) == 3 and parts[1] == "attributes" and parts[2]:
        return Target(table.name, attribute=parts[2])
    if len(parts) != 2 or table.field(parts[1]) is None:
        check.fail(line, f"'{text}' is not a field of {table.name}")
    return Target(table.name, field=parts[1])


def _parse_column(check: _Checker, name: str, node, line: int, policy: ProtectionPolicy) -> ColumnSpec:
    what = f"column '{name}'"
    node = check.mapping(node, line, what)
    check.keys(node, _COLUMN_KEYS, what)
    data_class = node.get("class")
    if data_class not in DATA_CLASSES:
        check.fail(node.line_of("class"), f"{what} needs a class: one of {', '.join(DATA_CLASSES)}")
    col_type = node.get("type", "text")
    if col_type not in model.TYPES:
        check.fail(node.line_of("type"), f"{what} has unknown type '{col_type}' ({', '.join(model.TYPES)})")
    protect = node.get("protect", policy.default_for(data_class))
    if not policy.allows(data_class, protect):
        check.fail(node.line_of("protect") if "protect" in node else node.line,
                   f"{what}: policy does not allow '{protect}' for class {data_class}")
    raw_targets = node.get("to", [])
    raw_targets = [raw_targets] if isinstance(raw_targets, str) else raw_targets
    if not isinstance(raw_targets, list):
        check.fail(node.line_of("to"), f"{what}: 'to' must be a target or a list of targets")
    targets = [_parse_target(check, t, node.line_of("to")) for t in raw_targets]
    if protect == "drop":
        targets = []
    elif not targets:
        check.fail(node.line, f"{what} is kept ({protect}) but has no 'to' target")
    for target in targets:
        spec = target.spec
        if protect == "token" and spec is not None and spec.token_domain is None:
            check.fail(node.line_of("to"), f"{what}: {target} does not hold tokens; choose a token field")
        if protect != "token" and spec is not None and spec.token_domain is not None:
            check.fail(node.line_of("to"), f"{what}: {target} holds tokens only, so the column must be protect: token")
        if protect == "mask" and spec is not None and not spec.free_text:
            check.fail(node.line_of("to"), f"{what}: {target} is not a free-text field")
        if protect != "mask" and spec is not None and spec.free_text:
            check.fail(node.line_of("to"), f"{what}: {target} takes free text only, masked (class free_text)")
        fits = spec is None or spec.type in (col_type, "text") or (spec.type, col_type) == ("datetime", "date")
        if protect == "keep" and not fits:
            check.fail(node.line_of("type"), f"{what}: type {col_type} does not fit {target} ({spec.type})")
    if data_class == "free_text" and col_type != "text":
        check.fail(node.line_of("type"), f"{what}: free text must have type text")
    values = node.get("values")
    if values is not None:
        if not isinstance(values, dict) or not all(isinstance(v, (str, int)) or v is None for v in values.values()):
            check.fail(node.line_of("values"), f"{what}: 'values' must map source values to canonical values")
        values = {str(k): (None if v is None else str(v)) for k, v in values.items()}
    fmt = node.get("format")
    if fmt is not None and col_type not in ("date", "datetime"):
        check.fail(node.line_of("format"), f"{what}: 'format' applies to date and datetime columns only")
    derive = []
    raw_derive = node.get("derive") or {}
    if not isinstance(raw_derive, dict):
        check.fail(node.line_of("derive"), f"{what}: 'derive' must map targets to transforms")
    for target_text, transform in raw_derive.items():
        line_d = raw_derive.line_of(target_text)
        target = _parse_target(check, target_text, line_d)
        if transform not in TRANSFORMS:
            check.fail(line_d, f"{what}: unknown transform '{transform}' ({', '.join(TRANSFORMS)})")
        spec = target.spec
        if spec is not None and (spec.token_domain or spec.type != TRANSFORMS[transform][1]):
            check.fail(line_d, f"{what}: {transform} gives {TRANSFORMS[transform][1]}, which does not fit {target}")
        derive.append((target, transform))
    prefix = node.get("prefix", "")
    if not isinstance(prefix, str) or (prefix and protect != "token"):
        check.fail(node.line_of("prefix"), f"{what}: 'prefix' must be text, on a tokenised column")
    for flag in ("required", "optional"):
        if flag in node and not isinstance(node[flag], bool):
            check.fail(node.line_of(flag), f"{what}: '{flag}' must be true or false")
    for bound in ("min", "max"):
        if bound in node and (col_type not in ("integer", "decimal") or not isinstance(node[bound], (int, float))):
            check.fail(node.line_of(bound), f"{what}: '{bound}' must be a number, on a numeric column")
    feature, label = node.get("feature"), node.get("label", False)
    on_customer = any(t.table == "customers" for t in targets) and protect == "keep"
    if feature is not None:
        if feature not in FEATURE_KINDS:
            check.fail(node.line_of("feature"), f"{what}: 'feature' must be one of {', '.join(FEATURE_KINDS)}")
        if not on_customer:
            check.fail(node.line_of("feature"), f"{what}: a feature must be kept on the customer "
                                                "(to: customers.<field> or customers.attributes.<name>, protect: keep)")
        if feature == "numeric" and col_type not in ("integer", "decimal", "boolean"):
            check.fail(node.line_of("feature"), f"{what}: a numeric feature needs type integer, decimal or boolean")
    if not isinstance(label, bool):
        check.fail(node.line_of("label"), f"{what}: 'label' must be true or false")
    if label and (not on_customer or (col_type != "boolean" and not values)):
        check.fail(node.line_of("label"), f"{what}: a label must be kept on the customer and be yes/no (type: boolean, "
                                          "or values mapping to 1 and 0)")
    unit = node.get("unit")
    if unit is not None and (not isinstance(unit, str) or feature is None):
        check.fail(node.line_of("unit"), f"{what}: 'unit' is text, on a feature column")
    return ColumnSpec(name, data_class, col_type, protect, targets, node.line, fmt, values,
                      node.get("required", False), node.get("optional", False), node.get("min"), node.get("max"),
                      derive, prefix, feature, unit, label)


def _parse_file(check: _Checker, node, line: int, policy: ProtectionPolicy) -> FileSpec:
    node = check.mapping(node, line, "a file entry")
    check.keys(node, _FILE_KEYS, "a file entry")
    match = node.get("match")
    if not isinstance(match, str) or not match:
        check.fail(node.line, "a file entry needs 'match', a file-name pattern")
    fmt = node.get("format")
    if fmt is None:
        suffix = match.removesuffix(".gz").rsplit(".", 1)[-1].lower()
        fmt = {"xlsx": "xlsx", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix, "csv")
    if fmt not in FORMATS:
        check.fail(node.line_of("format"), f"unknown format '{fmt}' ({', '.join(FORMATS)})")
    encoding = node.get("encoding", "auto")
    if encoding not in ENCODINGS:
        check.fail(node.line_of("encoding"), f"unknown encoding '{encoding}' ({', '.join(ENCODINGS)})")
    delimiter = node.get("delimiter")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        check.fail(node.line_of("delimiter"), "'delimiter' must be one character")
    nulls = node.get("null_values", [""])
    if not isinstance(nulls, list) or not all(isinstance(v, str) for v in nulls):
        check.fail(node.line_of("null_values"), "'null_values' must be a list of strings")
    columns_node = check.mapping(node.get("columns"), node.line_of("columns"), "'columns'")
    columns = {str(name): _parse_column(check, str(name), spec, columns_node.line_of(name), policy)
               for name, spec in columns_node.items()}
    filter_column, filter_values = None, ()
    if "filter" in node:
        flt = check.mapping(node["filter"], node.line_of("filter"), "'filter'")
        filter_column = flt.get("column")
        values = flt.get("values")
        if filter_column not in columns or not isinstance(values, list):
            check.fail(flt.line, "'filter' needs a mapped 'column' and a list of 'values' to keep")
        filter_values = tuple(str(v) for v in values)
    constants = {}
    raw_constants = node.get("constants") or {}
    if not isinstance(raw_constants, dict):
        check.fail(node.line_of("constants"), "'constants' must map targets to values")
    for target_text, value in raw_constants.items():
        line_c = raw_constants.line_of(target_text)
        target = _parse_target(check, target_text, line_c)
        if target.spec is not None and (target.spec.token_domain or target.spec.type != "text"):
            check.fail(line_c, f"constant for {target}: only plain text fields take constants")
        if not isinstance(value, (str, int, float)):
            check.fail(line_c, f"constant for {target} must be a single value")
        constants[target] = str(value)
    duplicates = node.get("duplicates", "keep")
    if duplicates not in DUPLICATES:
        check.fail(node.line_of("duplicates"), f"'duplicates' must be one of {', '.join(DUPLICATES)}")
    spec = FileSpec(match, fmt, columns, node.line, delimiter, encoding, node.get("sheet"),
                    tuple(["", *nulls]), filter_column, filter_values, constants, duplicates)
    if not spec.tables():
        check.fail(node.line, f"file entry '{match}' maps no column to any table")
    return spec


def load_mapping(path: Path, policy: ProtectionPolicy) -> SourceMapping:
    check = _Checker(path)
    doc = yamlfile.load(path, MappingError)
    doc = check.mapping(doc, 1, "a source mapping")
    check.keys(doc, _SOURCE_KEYS, "the source mapping")
    name = doc.get("source")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        check.fail(doc.line_of("source"), "'source' must be a name of letters, digits, - and _")
    namespace = doc.get("id_namespace", name)
    if not isinstance(namespace, str) or not namespace:
        check.fail(doc.line_of("id_namespace"), "'id_namespace' must be a non-empty name")
    files_node = doc.get("files")
    if not isinstance(files_node, list) or not files_node:
        check.fail(doc.line_of("files"), "'files' must list at least one file entry")
    files = [_parse_file(check, f, doc.line_of("files"), policy) for f in files_node]
    return SourceMapping(name, str(doc.get("description", "")), namespace, files, Path(path))


def available_mappings(extra_dir: Path | None = None) -> dict[str, Path]:
    """Source name -> mapping file: shipped mappings, then the home's own (which may override them)."""
    found: dict[str, Path] = {}
    for directory in (SHIPPED_DIR, extra_dir):
        if directory is not None and directory.is_dir():
            for path in sorted(directory.glob("*.yaml")):
                if not path.name.endswith(".pull.yaml"):  # a database pull's definition (appliance.pulls)
                    found[path.stem] = path
    return found


def find_mapping(name: str, policy: ProtectionPolicy, extra_dir: Path | None = None) -> SourceMapping:
    paths = available_mappings(extra_dir)
    if name not in paths:
        raise MappingError(f"no source mapping named '{name}' (known: {', '.join(sorted(paths)) or 'none'})")
    mapping = load_mapping(paths[name], policy)
    if mapping.name != name:
        raise MappingError(f"{paths[name].name}: declares source '{mapping.name}', expected '{name}'")
    return mapping
