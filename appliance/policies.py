"""Compliance policies from `policies/`: loaded, validated (file and line in every error), hashed."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from appliance import yamlfile
from appliance.errors import PolicyError

DATA_CLASSES = ("identifier", "C3", "C2", "C1", "free_text", "not_personal")
HANDLINGS = ("token", "keep", "drop", "mask")
PII_CLASSES = ("C3", "C2", "C1")
MASK_OPERATORS = ("placeholder", "token", "display")
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "policies"


def policies_dir(home_policies: Path | None = None) -> Path:
    """The home's own policies when present (a bank's compliance officer edits those), else the shipped ones."""
    if home_policies is not None and home_policies.is_dir():
        return home_policies
    return SHIPPED_DIR


@dataclass(frozen=True)
class ProtectionPolicy:
    defaults: dict[str, str]
    allowed: dict[str, tuple[str, ...]]
    vault_fields: frozenset[str]
    sha256: str

    def default_for(self, data_class: str) -> str:
        return self.defaults[data_class]

    def allows(self, data_class: str, handling: str) -> bool:
        return handling in self.allowed[data_class]

    @classmethod
    def load(cls, directory: Path) -> "ProtectionPolicy":
        path = directory / "protection.yaml"
        doc = yamlfile.load(path, PolicyError)
        where = path.name

        def fail(line: int, message: str):
            raise PolicyError(f"{where} line {line}: {message}")

        if not isinstance(doc, dict):
            raise PolicyError(f"{where}: expected a mapping")
        if doc.get("version") != 1:
            fail(doc.line_of("version"), "version must be 1")
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
        return cls(defaults, allowed, frozenset(vault), hashlib.sha256(path.read_bytes()).hexdigest())


@dataclass(frozen=True)
class DisplayRule:
    keep_first: int
    keep_last: int
    keep_from: str | None = None  # keep everything from this character on (the domain of an e-mail)


@dataclass(frozen=True)
class MaskingPolicy:
    operators: dict[str, str]  # data class -> operator
    entity_classes: dict[str, str]  # entity type -> data class
    display: dict[str, DisplayRule]
    sha256: str

    def operator_for(self, entity: str) -> str:
        return self.operators[self.entity_classes.get(entity, "C2")]

    @classmethod
    def load(cls, directory: Path, known_entities: tuple[str, ...]) -> "MaskingPolicy":
        path = directory / "masking.yaml"
        doc = yamlfile.load(path, PolicyError)
        where = path.name

        def fail(line: int, message: str):
            raise PolicyError(f"{where} line {line}: {message}")

        if not isinstance(doc, dict) or doc.get("version") != 1:
            fail(getattr(doc, "line", 1), "expected a mapping with version: 1")
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
        missing = [e for e in known_entities if e not in classes]
        if missing:
            fail(entities.line, f"no rule for entity type {missing[0]}")
        return cls(dict(operators), classes, rules, hashlib.sha256(path.read_bytes()).hexdigest())
