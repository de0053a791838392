import regex
from presidio_analyzer import LocalRecognizer

from appliance.pii import lexicon
from appliance.pii.recognizers.base import found as result

_WORD = r"[A-Z][a-z]+(?:-[A-Z][a-z]+)?"
_NAME = rf"{_WORD}(?: {_WORD}){{0,2}}"
_TITLE = regex.compile(rf"(?<![A-Za-z])(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Mister|Madam)\.? (?P<name>{_NAME})(?![A-Za-z])")
_CONTEXT = regex.compile(
    rf"(?<![A-Za-z])(?i:customer|client|name is|named|called|I am|I'm|this is|spoke to|spoke with|call(?:ed)? with|"
    rf"follow-up with|complaint from|account holder|cardholder|payee|beneficiary|dear|from|客户|姓名)[:：,]? ?"
    rf"(?P<name>{_WORD}(?: {_WORD}){{1,2}})(?![A-Za-z])")
_CAPITALISED = regex.compile(r"[A-Z][a-z]")
_PAIR = regex.compile(rf"(?<![A-Za-z])(?P<name>{_WORD} {_WORD})(?![A-Za-z])")
_KNOWN_GIVEN = lexicon.EN_GIVEN | lexicon.PINYIN_GIVEN
_KNOWN_FAMILY = lexicon.EN_SURNAMES | lexicon.PINYIN_SURNAMES
_NOT_NAMES = {"customer", "client", "bank", "card", "account", "mobile", "banking", "service", "road", "street",
              "avenue", "china", "beijing", "shanghai", "the", "dear", "thank", "thanks", "please", "branch", "team",
              "hong", "kong", "macau", "taiwan", "guangzhou", "shenzhen", "pudong", "central", "nanjing", "wuhan"}


def _looks_like_name(words: list[str]) -> bool:
    lowered = [w.lower() for w in words]
    if any(w in _NOT_NAMES for w in lowered):
        return False
    return any(w in _KNOWN_GIVEN or w in _KNOWN_FAMILY for w in lowered)


class EnPersonRecognizer(LocalRecognizer):
    """Person names in Latin letters (English, and pinyin as Chinese customers write them): after a title or
    a word like "customer"/"name is", or as a pair of capitalised words that a name list knows."""

    ENTITY = "EN_PERSON"
    CONTEXT = ["mr", "mrs", "ms", "customer", "client", "name"]

    def __init__(self, supported_language: str = "en"):
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__,
                         supported_language=supported_language, context=list(self.CONTEXT))

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        if self.ENTITY not in entities or not _CAPITALISED.search(text):
            return []
        found: dict[tuple[int, int], float] = {}
        for match in _TITLE.finditer(text):
            found[match.span("name")] = 0.9
        for match in _CONTEXT.finditer(text):
            words = match.group("name").split()
            if _looks_like_name(words) or len(words) == 2:
                if not any(w.lower() in _NOT_NAMES for w in words):
                    found.setdefault(match.span("name"), 0.85)
        for match in _PAIR.finditer(text, overlapped=True):
            words = match.group("name").split()
            first, last = (w.lower() for w in words)
            known = (first in _KNOWN_GIVEN and last in _KNOWN_FAMILY) or (first in _KNOWN_FAMILY and last in _KNOWN_GIVEN)
            if known and not any(w in _NOT_NAMES for w in (first, last)):
                span = match.span("name")
                if not any(s <= span[0] and span[1] <= e for s, e in found):
                    found.setdefault(span, 0.7)
        return [result(self, start, end, score) for (start, end), score in sorted(found.items())]
