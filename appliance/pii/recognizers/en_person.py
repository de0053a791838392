from functools import lru_cache
from importlib import resources

import regex
from presidio_analyzer import LocalRecognizer

from appliance.pii import lexicon
from appliance.pii.recognizers.base import found as result

_WORD = r"\p{Lu}\p{Ll}+(?:['\-]\p{L}\p{Ll}+)?"
_NAME = rf"{_WORD}(?: {_WORD}){{0,2}}"
_TITLE = regex.compile(rf"(?<![A-Za-z])(?P<title>(?i:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Mister|Madam)\.?) (?P<name>{_NAME})(?!\p{{L}})")
_CONTEXT = regex.compile(
    rf"(?<![A-Za-z])(?i:customer|client|name is|named|called|I am|I'm|this is|spoke to|spoke with|call(?:ed)? with|"
    rf"follow-up with|complaint from|account holder|cardholder|payee|beneficiary|dear|from|客户|姓名)[:：,]? ?"
    rf"(?P<name>{_WORD}(?: {_WORD}){{1,2}})(?![A-Za-z])")
# A run of one to three capitalised words: the candidates for a name without a title or a context word.
_RUN = regex.compile(rf"(?<![\p{{L}}'\-])(?P<name>{_WORD}(?: {_WORD}){{0,2}})(?!\p{{L}})")
_LOWER_NAME = regex.compile(r"(?<![\p{L}@.'\-])(?P<given>\p{Ll}{3,12})(?: (?P<family>\p{Ll}{2,20}))?(?![\p{L}'\-@.])")
_LATIN = regex.compile(r"[A-Za-z]")
_LATIN_NAME = regex.compile(r"\p{Latin}{2,}")
# How many of the most common given names (by the census's frequency) are taken for a name even when written
# in lower case, as people write in chats and posts ("talked to mike").
_COMMON_GIVEN_RANKS = 250


def _census(name: str) -> list[str]:
    """The US Census Bureau's 1990 name lists, as the `names` package ships them, most frequent first."""
    text = (resources.files("names") / name).read_text(encoding="ascii")
    return [line.split()[0].lower() for line in text.splitlines() if line.strip()]


def _faker_names() -> tuple[set[str], set[str]]:
    """Given and family names in Latin letters from Faker's person providers (about 80 locales), for the
    names of customers from abroad that the US lists lack ("Bożena", "Ólafsdóttir")."""
    import importlib
    import pkgutil

    import faker.providers.person as providers

    given, family = set(), set()
    for module in pkgutil.iter_modules(providers.__path__):
        provider = getattr(importlib.import_module(f"{providers.__name__}.{module.name}"), "Provider", None)
        for attribute, names in (vars(provider) if provider else {}).items():
            into = given if "first_name" in attribute else family if "last_name" in attribute else None
            if into is not None and isinstance(names, (list, tuple, set, dict)):
                into.update(n.lower() for n in names if isinstance(n, str) and _LATIN_NAME.fullmatch(n))
    return given, family


@lru_cache(maxsize=1)
def lexicons() -> tuple[frozenset, frozenset, frozenset, frozenset]:
    """(given names, family names, given names to take alone, given names common enough to take in lower
    case), less the given names that are mostly ordinary words. A name standing alone as a whole value must be
    in the US or pinyin lists: the world's lists hold given names that are words elsewhere ("Male", "Silver")."""
    male, female = _census("dist.male.first"), _census("dist.female.first")
    world_given, world_family = _faker_names()
    alone = (set(male) | set(female) | lexicon.EN_GIVEN | lexicon.PINYIN_GIVEN) - lexicon.EN_NAME_WORDS
    given = (alone | world_given) - lexicon.EN_NAME_WORDS
    family = (set(_census("dist.all.last")) | world_family | lexicon.EN_SURNAMES | lexicon.PINYIN_SURNAMES) \
        - lexicon.EN_NAME_WORDS
    common = (set(male[:_COMMON_GIVEN_RANKS]) | set(female[:_COMMON_GIVEN_RANKS])) - lexicon.EN_NAME_WORDS \
        - lexicon.EN_COMMON_WORDS
    return frozenset(given), frozenset(family), frozenset(alone), frozenset(common)


def _runs_without_stop_words(match) -> list[list[tuple[int, int]]]:
    """The word spans of a capitalised run, split where a word that is never part of a name stands
    ("Dear John Smith" gives "John Smith")."""
    runs, current = [], []
    for word in regex.finditer(r"\S+", match.group("name")):
        span = (match.start("name") + word.start(), match.start("name") + word.end())
        if word.group().lower() in lexicon.EN_NOT_NAMES:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(span)
    if current:
        runs.append(current)
    return runs


class EnPersonRecognizer(LocalRecognizer):
    """Person names in Latin letters (English, and pinyin as Chinese customers write them).

    From strong to weak: after a title or a word like "customer" / "name is"; a run of capitalised words
    that starts with a known given name or pairs a given and a family name ("Maria Garcia"); a capitalised
    known given name alone ("Don't go to town, Judy!"); one of the most common given names in lower case
    ("talked to mike"). Known names come from the US Census lists in the
    `names` package and a pinyin list; names that are mostly ordinary words (Will, May, Bill, Rose) are
    taken only with a title, a context word or a family name after them ("Grace Johnson")."""

    ENTITY = "EN_PERSON"
    CONTEXT = ["mr", "mrs", "ms", "customer", "client", "name"]

    def __init__(self, supported_language: str = "en"):
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__,
                         supported_language=supported_language, context=list(self.CONTEXT))

    def load(self) -> None:
        lexicons()

    def analyze(self, text, entities, nlp_artifacts=None):
        if self.ENTITY not in entities or not _LATIN.search(text):
            return []
        given, family, alone, common = lexicons()
        # A lone name from the world's lists only in running text, not as a whole value ("Male" in a column).
        running_text = len(text.split()) >= 3
        found: dict[tuple[int, int], float] = {}

        def add(span: tuple[int, int], score: float) -> None:
            if not any(s <= span[0] and span[1] <= e and (s, e) != span for s, e in found):
                found[span] = max(score, found.get(span, 0.0))

        for match in _TITLE.finditer(text):
            add((match.start(), match.end("name")), 0.9)  # the title too: it says the person's sex
        for match in _CONTEXT.finditer(text):
            words = [w.lower() for w in match.group("name").split()]
            if not any(w in lexicon.EN_NOT_NAMES for w in words):
                add(match.span("name"), 0.85)
        for match in _RUN.finditer(text):
            for run in _runs_without_stop_words(match):
                words = [text[s:e].lower() for s, e in run]
                start, end = run[0][0], run[-1][1]
                if len(words) >= 2 and (words[0] in given or (words[0] in family and words[1] in given)
                                        or (words[0] in lexicon.EN_NAME_WORDS and words[1] in family)):
                    add((start, end), 0.8)
                elif len(words) >= 2 and words[1] in family and words[0] not in lexicon.EN_COMMON_WORDS:
                    add((start, end), 0.6)
                elif words[0] in alone or (words[0] in given and running_text):
                    add(run[0], 0.6)
        for match in _LOWER_NAME.finditer(text, overlapped=True):
            if match.group("given") not in common:
                continue
            family_name = match.group("family")
            if family_name and family_name in family and family_name not in lexicon.EN_COMMON_WORDS:
                add(match.span(), 0.6)  # "david lange"
            else:
                add(match.span("given"), 0.55)
        return [result(self, start, end, score) for (start, end), score in sorted(found.items())]
