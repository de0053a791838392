"""The analyzer: Presidio's AnalyzerEngine on its no-op NLP engine, with the bank recognizers, for Chinese
and English, built once per process.

Why no spaCy pipeline: no Chinese spaCy model exists on PyPI and nothing may be downloaded; `spacy.blank("zh")`
works offline but only yields character tokens, and measured here the no-op engine ran about twice as fast
with pattern recognizers. What a pipeline would have given is supplied directly: context from characters
around each match (appliance.pii.context) and Chinese word boundaries and person-name tags from jieba, whose
dictionary ships inside its wheel.
"""

import logging
from dataclasses import dataclass
from functools import lru_cache

import regex
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry, RecognizerResult
from presidio_analyzer.nlp_engine import NoOpNlpEngine

from appliance.pii.context import CharContextEnhancer
from appliance.pii.recognizers import RECOGNIZERS

# Presidio's own log lines can quote analysed text at debug level: they are switched off, not redirected.
for _name in ("presidio-analyzer", "presidio-anonymizer"):
    logging.getLogger(_name).disabled = True

LANGUAGES = ("zh", "en")
THRESHOLD = 0.5
_HAN = regex.compile(r"\p{Han}")
_UPPER = regex.compile(r"[A-Z]")
_DIGIT = regex.compile(r"\d")
# Which recognizers can possibly match, by what a text contains: most memos and many notes hold few digits
# and no Latin letter, and Presidio's per-recognizer overhead is most of the cost, so the rest are not run.
# Each number entity needs at least this many digits in the text.
_MIN_DIGITS = {"CN_RESIDENT_ID": 15, "CN_MOBILE": 11, "CN_LANDLINE": 10, "BANK_CARD": 16, "CN_USCC": 6,
               "CN_PASSPORT": 7, "CN_TRAVEL_PERMIT": 8, "IBAN": 8, "DATE_OF_BIRTH": 5, "ACCOUNT_NUMBER": 8,
               "IP_ADDRESS": 4}


def candidate_entities(text: str) -> list[str]:
    digits = len(_DIGIT.findall(text))
    chosen = [entity for entity, least in _MIN_DIGITS.items() if digits >= least]
    if "IP_ADDRESS" not in chosen and text.count(":") >= 2:
        chosen.append("IP_ADDRESS")  # an IPv6 address may hold few decimal digits
    if _HAN.search(text):
        chosen += ["CN_PERSON", "CN_ADDRESS"]
    if _UPPER.search(text):
        chosen += ["EN_PERSON", "SWIFT_CODE"] + (["EN_ADDRESS"] if digits else [])
    if "@" in text:
        chosen.append("EMAIL")
    return chosen


@dataclass(frozen=True)
class Entity:
    type: str
    start: int
    end: int
    score: float

    def as_dict(self) -> dict:
        return {"type": self.type, "start": self.start, "end": self.end, "score": round(self.score, 4)}


def detect_language(text: str) -> str:
    """zh when the text holds any Chinese character (mixed text is the norm in Chinese banks), else en."""
    return "zh" if _HAN.search(text) else "en"


def resolve_overlaps(results: list[RecognizerResult]) -> list[Entity]:
    """One entity per stretch of text. A span inside a longer one gives way to it (an address covers the
    place name in it, and masking more is the safe side); where spans cross, the higher score wins, then
    the longer span."""
    outer = [r for r in results if not any(o is not r and o.start <= r.start and r.end <= o.end
                                           and (o.end - o.start) > (r.end - r.start) for o in results)]
    chosen: list[RecognizerResult] = []
    for result in sorted(outer, key=lambda r: (-r.score, -(r.end - r.start), r.start)):
        if all(result.end <= c.start or result.start >= c.end for c in chosen):
            chosen.append(result)
    return [Entity(r.entity_type, r.start, r.end, r.score) for r in sorted(chosen, key=lambda r: r.start)]


class PiiEngine:
    def __init__(self, threshold: float = THRESHOLD):
        registry = RecognizerRegistry(supported_languages=list(LANGUAGES))
        for language in LANGUAGES:
            for recognizer in RECOGNIZERS:
                registry.add_recognizer(recognizer(supported_language=language))
        nlp = NoOpNlpEngine(models=[{"lang_code": lang, "model_name": "none"} for lang in LANGUAGES])
        nlp.load()
        self.threshold = threshold
        self.analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=list(LANGUAGES),
                                       context_aware_enhancer=CharContextEnhancer(), default_score_threshold=threshold)
        for recognizer in registry.recognizers:
            recognizer.load()
            recognizer.is_loaded = True

    def analyze(self, text: str, language: str = "auto") -> list[Entity]:
        if not text or not text.strip():
            return []
        entities = candidate_entities(text)
        if not entities:
            return []
        language = detect_language(text) if language == "auto" else language
        results = self.analyzer.analyze(text, language=language, entities=entities, score_threshold=self.threshold)
        return resolve_overlaps(results)


@lru_cache(maxsize=1)
def engine() -> PiiEngine:
    """The process's engine: building it loads jieba's dictionary, so it is built once and shared."""
    return PiiEngine()
