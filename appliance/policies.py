"""Compliance policies from `policies/`: loaded, validated (file and line in every error), hashed."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from appliance import yamlfile
from appliance.errors import PolicyError

DATA_CLASSES = ("identifier", "C3", "C2", "C1", "free_text", "not_personal")
HANDLINGS = ("token", "keep", "drop", "mask")
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
