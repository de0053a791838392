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

from appliance.pii.chinese_ner import ChineseNer
from appliance.pii.context import CharContextEnhancer
from appliance.pii.recognizers import RECOGNIZERS
from appliance.pii.recognizers.phone_number import DEFAULT_REGIONS, PhoneNumberRecognizer

# Presidio's own log lines can quote analysed text at debug level: they are switched off, not redirected.
for _name in ("presidio-analyzer", "presidio-anonymizer"):
    logging.getLogger(_name).disabled = True

LANGUAGES = ("zh", "en")
THRESHOLD = 0.5
YIELDING = {"PHONE_NUMBER"}
REPEATED = {"CN_PERSON", "EN_PERSON"}
NER_BLOCK = 1024  # texts tagged together; fewer than the tagger remembers, so none is tagged twice
_HAN = regex.compile(r"\p{Han}")
_UPPER = regex.compile(r"[A-Z]")
_LATIN = regex.compile(r"[A-Za-z]")
_DIGIT = regex.compile(r"\d")
# Which recognizers can possibly match, by what a text contains: most memos and many notes hold few digits
# and no Latin letter, and Presidio's per-recognizer overhead is most of the cost, so the rest are not run.
# Each number entity needs at least this many digits in the text.
_MIN_DIGITS = {"CN_RESIDENT_ID": 15, "CN_MOBILE": 11, "CN_LANDLINE": 10, "BANK_CARD": 12, "CN_USCC": 6,
               "PHONE_NUMBER": 7,
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
        chosen += ["SWIFT_CODE"] + (["EN_ADDRESS"] if digits else [])
    if _LATIN.search(text):
        chosen.append("EN_PERSON")  # names are written in lower case too ("talked to mike")
    if "@" in text:
        chosen += ["EMAIL", "SOCIAL_HANDLE"]
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
    # The worldwide phone recognizer is the most general: where any other type claims the same digits (a
    # mainland landline, a date of birth, a card), that one is meant.
    results = [r for r in results if r.entity_type not in YIELDING or not any(
        o.entity_type not in YIELDING and o.start < r.end and r.start < o.end for o in results)]
    outer = [r for r in results if not any(o is not r and o.start <= r.start and r.end <= o.end
                                           and (o.end - o.start) > (r.end - r.start) for o in results)]
    chosen: list[RecognizerResult] = []
    for result in sorted(outer, key=lambda r: (-r.score, -(r.end - r.start), r.start)):
        if all(result.end <= c.start or result.start >= c.end for c in chosen):
            chosen.append(result)
    return [Entity(r.entity_type, r.start, r.end, r.score) for r in sorted(chosen, key=lambda r: r.start)]


def repeat_names(text: str, found: list[Entity]) -> list[Entity]:
    """A name found once is a name wherever it recurs in the same text, also where no cue stands beside it
    ("大乖说……大乖也来了")."""
    names = {text[e.start:e.end]: e for e in found if e.type in REPEATED and e.end - e.start >= 2}
    extra = []
    for name, entity in names.items():
        at = text.find(name)
        while at != -1:
            end = at + len(name)
            if not any(e.start < end and at < e.end for e in found + extra):
                extra.append(Entity(entity.type, at, end, entity.score))
            at = text.find(name, end)
    return sorted(found + extra, key=lambda e: e.start) if extra else found


class PiiEngine:
    def __init__(self, threshold: float = THRESHOLD, phone_regions: tuple[str, ...] = DEFAULT_REGIONS):
        registry = RecognizerRegistry(supported_languages=list(LANGUAGES))
        self.chinese_ner = ChineseNer()
        for language in LANGUAGES:
            for recognizer in RECOGNIZERS:
                options = {}
                if getattr(recognizer, "USES_CHINESE_NER", False):
                    options["ner"] = self.chinese_ner
                if recognizer is PhoneNumberRecognizer:
                    options["regions"] = phone_regions
                registry.add_recognizer(recognizer(supported_language=language, **options))
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
        return repeat_names(text, resolve_overlaps(results))

    def analyze_many(self, texts: list[str], language: str = "auto") -> list[list[Entity]]:
        """As analyze, text by text, but the Chinese NER tags all the Chinese texts first in padded batches
        (one ONNX call per batch instead of one per text)."""
        found = []
        for at in range(0, len(texts), NER_BLOCK):
            block = texts[at:at + NER_BLOCK]
            self.chinese_ner.tag_many([t for t in block if t and _HAN.search(t)])
            found += [self.analyze(text, language) for text in block]
        return found


@lru_cache(maxsize=2)
def engine(phone_regions: tuple[str, ...] = DEFAULT_REGIONS) -> PiiEngine:
    """The process's engine: building it loads jieba's dictionary and the Chinese NER model, so it is built
    once (per phone-region setting) and shared."""
    return PiiEngine(phone_regions=phone_regions)
