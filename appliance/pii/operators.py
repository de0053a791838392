"""Masking free text with presidio-anonymizer: typed placeholders, keyed tokens and display masks.

Which operator applies to which entity comes from `policies/masking.yaml` (per data class), and so do the
display rules (how many characters stay at each end), so a compliance officer can change them.
"""

from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult
from presidio_anonymizer.operators import Operator, OperatorType

from appliance.errors import ApplianceError
from appliance.pii.engine import PiiEngine
from appliance.policies import DisplayRule, MaskingPolicy
from appliance.protect import Tokenizer

TOKEN_CHARS = 12
# Entities whose tokens share a domain with structured columns: a phone number in a complaint gets the
# same token as the customer's phone column, so the two can be linked without revealing either.
SHARED_DOMAINS = {"CN_MOBILE": "phone", "CN_LANDLINE": "phone", "CN_RESIDENT_ID": "id_number", "CN_PERSON": "name",
                  "EN_PERSON": "name", "EMAIL": "email", "CN_ADDRESS": "address"}


def display_mask(value: str, rule: DisplayRule) -> str:
    """Keep `keep_first` and `keep_last` letters/digits (and everything from `keep_from` on); star the rest.
    Separators (spaces, dashes) stay where they are, so the shape of the value is still readable."""
    head, tail = value, ""
    if rule.keep_from and rule.keep_from in value:
        cut = value.index(rule.keep_from)
        head, tail = value[:cut], value[cut:]
    positions = [i for i, c in enumerate(head) if c.isalnum()]
    keep = set(positions[:rule.keep_first]) | set(positions[len(positions) - rule.keep_last:] if rule.keep_last else [])
    if len(keep) >= len(positions) and positions:  # too short to show that much: show less, never all
        keep = set(positions[:1])
    return "".join(c if (i in keep or not c.isalnum()) else "*" for i, c in enumerate(head)) + tail


class KeyedToken(Operator):
    """`<TYPE:hex>`: HMAC-SHA256 under the home's token key, so equal values give equal tokens."""

    def operate(self, text: str, params: dict = None) -> str:
        entity = params["entity_type"]
        domain = SHARED_DOMAINS.get(entity, f"pii:{entity}")
        return f"<{entity}:{params['tokenizer'].token(domain, text)[:TOKEN_CHARS]}>"

    def validate(self, params: dict = None) -> None:
        if not isinstance(params.get("tokenizer"), Tokenizer):
            raise ValueError("keyed_token needs the home's tokenizer")

    def operator_name(self) -> str:
        return "keyed_token"

    def operator_type(self) -> OperatorType:
        return OperatorType.Anonymize


class DisplayMask(Operator):
    def operate(self, text: str, params: dict = None) -> str:
        return display_mask(text, params["rule"])

    def validate(self, params: dict = None) -> None:
        if not isinstance(params.get("rule"), DisplayRule):
            raise ValueError("display_mask needs a display rule")

    def operator_name(self) -> str:
        return "display_mask"

    def operator_type(self) -> OperatorType:
        return OperatorType.Anonymize


MASKED_CACHE = 100_000  # distinct texts a masker remembers (a few tens of MiB)


class Masker:
    """Masks text: finds entities with the engine, replaces each as the policy (or a fixed operator) says.
    Used by ingestion for every free-text column, and by `appliance pii mask`."""

    def __init__(self, engine: PiiEngine, policy: MaskingPolicy, *, operator: str | None = None,
                 tokenizer: Tokenizer | None = None, language: str = "auto"):
        chosen = {operator} if operator else set(policy.operators.values())
        if "token" in chosen and tokenizer is None:
            raise ApplianceError("the token operator needs a home (its token key): pass --home and the key")
        self.engine = engine
        self.language = language
        self.anonymizer = AnonymizerEngine()
        self._masked: dict[str, str] = {}  # across calls: a batch's chunks repeat the same memos
        self.anonymizer.add_anonymizer(KeyedToken)
        self.anonymizer.add_anonymizer(DisplayMask)
        self.operators = {}
        for entity, rule in policy.display.items():
            kind = operator or policy.operator_for(entity)
            if kind == "placeholder":
                config = OperatorConfig("replace", {"new_value": f"<{entity}>"})
            elif kind == "token":
                config = OperatorConfig("keyed_token", {"tokenizer": tokenizer, "entity_type": entity})
            else:
                config = OperatorConfig("display_mask", {"rule": rule})
            self.operators[entity] = config

    def _apply(self, text: str, entities) -> str:
        if not entities:
            return text
        results = [RecognizerResult(e.type, e.start, e.end, e.score) for e in entities]
        return self.anonymizer.anonymize(text, results, operators=self.operators).text

    def mask(self, text: str) -> str:
        return self._apply(text, self.engine.analyze(text, self.language))

    def mask_many(self, texts: list[str]) -> list[str]:
        # Memos and notes repeat ("超市购物", "代发工资"), within a chunk and from one chunk to the next: each
        # distinct text is analysed once while it stays in the bounded cache (in this process's memory only,
        # like the chunk itself), and the new ones go to the engine together so its Chinese NER runs in batches.
        if len(self._masked) > MASKED_CACHE:
            self._masked.clear()
        new = [text for text in dict.fromkeys(texts) if text not in self._masked]
        for text, entities in zip(new, self.engine.analyze_many(new, self.language)):
            self._masked[text] = self._apply(text, entities)
        return [self._masked[text] for text in texts]
