"""Compliance policies from `policies/`: loaded, validated (file and line in every error), hashed."""

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from appliance import shipped, yamlfile
from appliance.errors import PolicyError

DATA_CLASSES = ("identifier", "C3", "C2", "C1", "free_text", "not_personal")
HANDLINGS = ("token", "keep", "drop", "mask")
PII_CLASSES = ("C3", "C2", "C1")
MASK_OPERATORS = ("placeholder", "token", "display")
SHIPPED_DIR = shipped.POLICIES


def read_text(directory: Path, name: str) -> str:
    try:
        return (Path(directory) / name).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{name}: cannot be read ({exc.__class__.__name__})") from None


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document(text: str, name: str, keys: tuple[str, ...]):
    """A policy file's YAML, checked for its schema version and its top-level keys (a misspelt section must
    not pass silently, its rules unapplied): the document and `fail(line, message)`, which raises a
    PolicyError naming file and line."""
    doc = yamlfile.parse(text, name, PolicyError)

    def fail(line: int, message: str):
        raise PolicyError(f"{name} line {line}: {message}")

    if not isinstance(doc, dict) or doc.get("version") != 1:
        fail(getattr(doc, "line", 1), "expected a mapping with version: 1")
    unknown = [key for key in doc if key not in ("version", *keys)]
    if unknown:
        fail(doc.line_of(unknown[0]), f"unknown key '{unknown[0]}' (this file knows: {', '.join(keys)})")
    return doc, fail


class PolicyFile:
    """A policy read from `FILE` in a policies folder; subclasses parse its text."""
    FILE = ""

    @classmethod
    def load(cls, directory: Path, *args):
        return cls.parse(read_text(directory, cls.FILE), *args)


def policies_dir(home_policies: Path | None = None) -> Path:
    """The home's own policies when present (a bank's compliance officer edits those), else the shipped ones."""
    if home_policies is not None and home_policies.is_dir():
        return home_policies
    return SHIPPED_DIR


@dataclass(frozen=True)
class ProtectionPolicy(PolicyFile):
    defaults: dict[str, str]
    allowed: dict[str, tuple[str, ...]]
    vault_fields: frozenset[str]
    sha256: str

    def default_for(self, data_class: str) -> str:
        return self.defaults[data_class]

    def allows(self, data_class: str, handling: str) -> bool:
        return handling in self.allowed[data_class]

    FILE = "protection.yaml"

    @classmethod
    def parse(cls, text: str) -> "ProtectionPolicy":
        doc, fail = document(text, cls.FILE, ("classes", "vault"))
        classes = doc.get("classes")
        if not isinstance(classes, dict):
            fail(doc.line_of("classes"), "'classes' must map each data class to its handling")
        defaults, allowed = {}, {}
        for data_class in DATA_CLASSES:
            rule = classes.get(data_class)
            if not isinstance(rule, dict):
                fail(classes.line, f"data class '{data_class}' has no rule")
            handlings = rule.get("allowed")
            if not isinstance(handlings, list) or not handlings or any(h not in HANDLINGS for h in handlings):
                fail(rule.line_of("allowed"), f"'{data_class}.allowed' must list handlings from {', '.join(HANDLINGS)}")
            if rule.get("default") not in handlings:
                fail(rule.line_of("default"), f"'{data_class}.default' must be one of its allowed handlings")
            if data_class == "C3" and "keep" in handlings:
                fail(rule.line_of("allowed"), "C3 (authentication) data may never be kept")
            if data_class != "free_text" and "mask" in handlings:
                fail(rule.line_of("allowed"), "only free text can be masked")
            defaults[data_class] = rule["default"]
            allowed[data_class] = tuple(handlings)
        unknown = set(classes) - set(DATA_CLASSES)
        if unknown:
            name = sorted(unknown)[0]
            fail(classes.line_of(name), f"unknown data class '{name}'")
        vault = doc.get("vault") or []
        if not isinstance(vault, list) or not all(isinstance(v, str) and v.count(".") == 1 for v in vault):
            fail(doc.line_of("vault"), "'vault' must list canonical fields as table.field")
        return cls(defaults, allowed, frozenset(vault), text_sha256(text))


@dataclass(frozen=True)
class DisplayRule:
    keep_first: int
    keep_last: int
    keep_from: str | None = None  # keep everything from this character on (the domain of an e-mail)


@dataclass(frozen=True)
class MaskingPolicy(PolicyFile):
    operators: dict[str, str]  # data class -> operator
    entity_classes: dict[str, str]  # entity type -> data class
    display: dict[str, DisplayRule]
    sha256: str

    def operator_for(self, entity: str) -> str:
        return self.operators[self.entity_classes.get(entity, "C2")]

    FILE = "masking.yaml"

    @classmethod
    def parse(cls, text: str, known_entities: tuple[str, ...]) -> "MaskingPolicy":
        doc, fail = document(text, cls.FILE, ("operators", "entities"))
        operators = doc.get("operators")
        if not isinstance(operators, dict):
            fail(doc.line_of("operators"), "'operators' must map each PII data class to an operator")
        for data_class in PII_CLASSES:
            if operators.get(data_class) not in MASK_OPERATORS:
                fail(operators.line_of(data_class), f"operator for {data_class} must be one of {', '.join(MASK_OPERATORS)}")
        if operators["C3"] == "display":
            fail(operators.line_of("C3"), "C3 (authentication) data may not be shown even in part")
        entities = doc.get("entities")
        if not isinstance(entities, dict):
            fail(doc.line_of("entities"), "'entities' must map entity types to a class and a display rule")
        classes, rules = {}, {}
        for entity, rule in entities.items():
            line = entities.line_of(entity)
            if entity not in known_entities:
                fail(line, f"unknown entity type '{entity}'")
            if not isinstance(rule, dict) or rule.get("class") not in PII_CLASSES:
                fail(line, f"{entity}: 'class' must be one of {', '.join(PII_CLASSES)}")
            display = rule.get("display") or {}
            if not isinstance(display, dict):
                fail(line, f"{entity}: 'display' must be a mapping")
            first, last = display.get("keep_first", 0), display.get("keep_last", 0)
            if not all(isinstance(n, int) and 0 <= n <= 12 for n in (first, last)):
                fail(getattr(display, "line", line), f"{entity}: keep_first and keep_last must be whole numbers 0-12")
            classes[entity] = rule["class"]
            rules[entity] = DisplayRule(first, last, display.get("keep_from"))
        # An entity type newer than the home's copy of this file (an upgrade added it) is C2, shown not at all:
        # the most protective rule, until a compliance officer writes one.
        for entity in known_entities:
            if entity not in classes:
                classes[entity] = "C2"
                rules[entity] = DisplayRule(0, 0, None)
        return cls(dict(operators), classes, rules, text_sha256(text))


DP_MECHANISMS = ("none", "laplace", "gaussian")
DP_PERIODS = ("day", "month", "quarter", "year")


@dataclass(frozen=True)
class Privacy:
    mechanism: str  # none, laplace or gaussian (OpenDP)
    epsilon: float  # spent by each export
    delta: float  # gaussian only
    period: str  # the window a recipient's budget covers

    @property
    def enabled(self) -> bool:
        return self.mechanism != "none"


@dataclass(frozen=True)
class ExportPolicy(PolicyFile):
    revision: str
    min_cell_size: int
    dominance_top: int
    dominance_share: float
    round_counts: int
    round_amounts: float
    decimals: int
    max_cells: int
    privacy: Privacy
    budgets: dict[str, float]  # recipient -> epsilon per period
    reports: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # allowed report -> (dimensions, measures)
    sha256: str

    FILE = "export.yaml"

    def allowed(self, report: str, dims: tuple[str, ...]) -> tuple[str, ...]:
        """The measures this report may publish with these dimensions; refuses what the policy does not allow."""
        if report not in self.reports:
            raise PolicyError(f"the export policy does not allow report '{report}'")
        dimensions, measures = self.reports[report]
        refused = [d for d in dims if d not in dimensions]
        if refused:
            raise PolicyError(f"the export policy does not allow '{report}' by '{refused[0]}' "
                              f"(allowed: {', '.join(dimensions)})")
        return measures

    @classmethod
    def parse(cls, text: str) -> "ExportPolicy":
        from appliance.reports import REPORTS

        doc, fail = document(text, cls.FILE, ("revision", "min_cell_size", "dominance", "rounding", "max_cells",
                                              "differential_privacy", "recipients", "reports"))

        def number(mapping, key, kind, low, high, default=None):
            value = mapping.get(key, default)
            if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
                fail(mapping.line_of(key), f"'{key}' must be a {'whole ' if kind is int else ''}number "
                                           f"from {low} to {high}")
            return value

        def section(key):
            value = doc.get(key)
            if value is None:
                return yamlfile.LineDict.empty(doc.line_of(key))
            if not isinstance(value, dict):
                fail(doc.line_of(key), f"'{key}' must be a mapping")
            return value

        revision = doc.get("revision")
        if not isinstance(revision, (str, int, date)) or isinstance(revision, bool) or str(revision).strip() == "":
            fail(doc.line_of("revision"), "'revision' must name this version of the policy (bump it on every change)")
        k = number(doc, "min_cell_size", int, 3, 1000, 10)
        dominance = section("dominance")
        top = number(dominance, "top", int, 1, 3, 1)
        share = number(dominance, "max_share", (int, float), 0.05, 0.95, 0.5)
        rounding = section("rounding")
        round_counts = number(rounding, "counts", int, 1, k, 1)
        round_amounts = number(rounding, "amounts", (int, float), 0.01, 1e6, 1)
        decimals = number(rounding, "decimals", int, 0, 6, 3)
        max_cells = number(doc, "max_cells", int, 1, 5000, 1000)
        dp = section("differential_privacy")
        mechanism = dp.get("mechanism", "none")
        if mechanism not in DP_MECHANISMS:
            fail(dp.line_of("mechanism"), f"'mechanism' must be one of {', '.join(DP_MECHANISMS)}")
        epsilon = delta = 0.0
        period = dp.get("period", "month")
        if mechanism != "none":
            epsilon = float(number(dp, "epsilon", (int, float), 0.01, 10.0))
            delta = float(number(dp, "delta", (int, float), 1e-12, 1e-3, 1e-6)) if mechanism == "gaussian" else 0.0
            if period not in DP_PERIODS:
                fail(dp.line_of("period"), f"'period' must be one of {', '.join(DP_PERIODS)}")
        recipients = doc.get("recipients")
        if not isinstance(recipients, dict) or not recipients:
            fail(doc.line_of("recipients"), "'recipients' must name who may receive exports")
        budgets = {}
        for name, rule in recipients.items():
            if not isinstance(rule, dict):
                fail(recipients.line_of(name), f"recipient '{name}' needs a mapping (budget_epsilon)")
            budgets[str(name)] = float(number(rule, "budget_epsilon", (int, float), 0.0, 1000.0, 0.0))
            if mechanism != "none" and budgets[str(name)] < epsilon:
                fail(rule.line_of("budget_epsilon"), f"recipient '{name}': budget_epsilon is below one export's "
                                                     f"epsilon ({epsilon})")
        reports = doc.get("reports")
        if not isinstance(reports, dict) or not reports:
            fail(doc.line_of("reports"), "'reports' must list the reports that may be exported")
        allowed = {}
        for name, rule in reports.items():
            line = reports.line_of(name)
            if name not in REPORTS:
                fail(line, f"unknown report '{name}' (reports: {', '.join(REPORTS)})")
            report = REPORTS[name]
            if not isinstance(rule, dict):
                fail(line, f"report '{name}' needs a mapping with dimensions (and measures)")
            dims = rule.get("dimensions")
            if not isinstance(dims, list) or not dims or any(d not in report.dimensions for d in dims):
                fail(rule.line_of("dimensions"), f"'{name}.dimensions' must list some of: {', '.join(report.dimensions)}")
            for needed in report.required_dimensions:
                if needed not in dims:
                    fail(rule.line_of("dimensions"), f"'{name}.dimensions' must include '{needed}'")
            names = [m.name for m in report.measures]
            measures = rule.get("measures", names)
            if not isinstance(measures, list) or any(m not in names for m in measures):
                fail(rule.line_of("measures"), f"'{name}.measures' must list some of: {', '.join(names) or '(none)'}")
            allowed[name] = (tuple(dims), tuple(measures))
        return cls(str(revision), k, top, float(share), round_counts, float(round_amounts), decimals, max_cells,
                   Privacy(mechanism, epsilon, delta, period), budgets, allowed,
                   text_sha256(text))


@dataclass(frozen=True)
class PurposePolicy(PolicyFile):
    """Why customer data may be used: the purposes every `--purpose` must name, which of them allow an export,
    and who may reveal which vaulted fields for which purposes."""
    titles: dict[str, tuple[str, str]]  # purpose -> (zh, en)
    export_purposes: frozenset[str]
    reveal: dict[str, tuple[frozenset[str], frozenset[str]]]  # role -> (fields, purposes)
    sha256: str

    FILE = "purposes.yaml"

    def check(self, purpose: str, *, export: bool = False) -> str:
        if purpose not in self.titles:
            raise PolicyError(f"'{purpose}' is not a purpose in {self.FILE} (purposes: {', '.join(self.titles)})")
        if export and purpose not in self.export_purposes:
            raise PolicyError(f"purpose '{purpose}' does not allow an export (export purposes: "
                              f"{', '.join(sorted(self.export_purposes))})")
        return purpose

    def revealable(self, role: str, purpose: str) -> frozenset[str]:
        """The vaulted fields (table.field) this role may reveal for this purpose; refuses when none."""
        self.check(purpose)
        fields, purposes = self.reveal.get(role, (frozenset(), frozenset()))
        if purpose not in purposes:
            raise PolicyError(f"{self.FILE} does not let role '{role}' reveal data for purpose '{purpose}'")
        return fields

    @classmethod
    def parse(cls, text: str) -> "PurposePolicy":
        from appliance.access import ROLES

        doc, fail = document(text, cls.FILE, ("purposes", "reveal"))
        purposes = doc.get("purposes")
        if not isinstance(purposes, dict) or not purposes:
            fail(doc.line_of("purposes"), "'purposes' must map each purpose to its titles (zh, en)")
        titles, exports = {}, set()
        for name, rule in purposes.items():
            line = purposes.line_of(name)
            if not isinstance(rule, dict) or not all(isinstance(rule.get(t), str) and rule[t] for t in ("zh", "en")):
                fail(line, f"purpose '{name}' needs zh and en titles")
            if not isinstance(rule.get("export", False), bool):
                fail(rule.line_of("export"), f"purpose '{name}': 'export' must be true or false")
            titles[str(name)] = (rule["zh"], rule["en"])
            if rule.get("export"):
                exports.add(str(name))
        reveal_rules = doc.get("reveal") or {}
        if not isinstance(reveal_rules, dict):
            fail(doc.line_of("reveal"), "'reveal' must map roles to the fields and purposes they may reveal for")
        reveal = {}
        for role, rule in reveal_rules.items():
            line = reveal_rules.line_of(role)
            if role not in ROLES:
                fail(line, f"unknown role '{role}' (roles: {', '.join(ROLES)})")
            if not isinstance(rule, dict):
                fail(line, f"'{role}' needs fields and purposes")
            fields, allowed = rule.get("fields"), rule.get("purposes")
            if not isinstance(fields, list) or not all(isinstance(f, str) and f.count(".") == 1 for f in fields):
                fail(rule.line_of("fields"), f"'{role}.fields' must list vaulted fields as table.field")
            if not isinstance(allowed, list) or any(p not in titles for p in allowed):
                fail(rule.line_of("purposes"), f"'{role}.purposes' must list purposes defined above")
            if any(p in exports for p in allowed):
                fail(rule.line_of("purposes"), f"'{role}': an export purpose never reveals customer data")
            reveal[role] = (frozenset(fields), frozenset(allowed))
        return cls(titles, frozenset(exports), reveal, text_sha256(text))
