"""What the bank recognizers share: data in class attributes, boundaries that work inside Chinese text.

Presidio's own patterns use `\\b`, which never fires between a Chinese character and a digit; ours use digit
and letter lookarounds instead. `\\d` matches full-width digits too (Unicode), and validators read digits
through `ascii_digits`, so `１３８１２３４５６７８` is a mobile number like `13812345678`.
"""

import unicodedata

import regex
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult

NOT_DIGIT_BEFORE = r"(?<!\d)"
NOT_DIGIT_AFTER = r"(?!\d)"
NOT_ALNUM_BEFORE = r"(?<![A-Za-zＡ-Ｚａ-ｚ\d])"
NOT_ALNUM_AFTER = r"(?![A-Za-zＡ-Ｚａ-ｚ\d])"
SEP = r"[ \-\u3000－]"  # space, hyphen, ideographic space, full-width hyphen
FLAGS = regex.DOTALL | regex.MULTILINE  # no IGNORECASE: letters in codes are upper case


def ascii_digits(text: str) -> str:
    """The digits of `text` as ASCII, full-width and other Unicode digits included; separators dropped."""
    return "".join(str(unicodedata.digit(c)) for c in text if c.isdigit())


def ascii_text(text: str) -> str:
    """Width-folded (NFKC) and without separators: for checksums over letters and digits."""
    return regex.sub(SEP, "", unicodedata.normalize("NFKC", text))


def found(recognizer: EntityRecognizer, start: int, end: int, score: float) -> RecognizerResult:
    """A result of a hand-written recognizer, tagged with its identity as Presidio's own results are (the
    context enhancer finds the recognizer's context words through it)."""
    return RecognizerResult(recognizer.supported_entities[0], start, end, score, recognition_metadata={
        RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name, RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id})


class BankPatternRecognizer(PatternRecognizer):
    """A pattern recognizer configured by class attributes.

    ENTITY: the entity type; PATTERNS: (name, regex, score) triples; CONTEXT: words near a match that make
    it more likely (Chinese and English); NEGATIVE_CONTEXT: words that make it less likely (an order number
    is not a phone). The character-window context enhancer reads both.
    """

    ENTITY = ""
    PATTERNS: list[tuple[str, str, float]] = []
    CONTEXT: list[str] = []
    NEGATIVE_CONTEXT: list[str] = []
    # A value of the right shape whose check digit fails: often a typo of a real one, so it is masked when
    # context says what it is ("身份证" before it), and ignored otherwise.
    SUSPECT_SCORE = 0.3

    def __init__(self, supported_language: str = "zh"):
        super().__init__(
            supported_entity=self.ENTITY,
            name=type(self).__name__,
            supported_language=supported_language,
            patterns=[Pattern(name, pattern, score) for name, pattern, score in self.PATTERNS],
            context=list(self.CONTEXT),
            global_regex_flags=FLAGS,
        )
        self.negative_context = list(self.NEGATIVE_CONTEXT)
        self._suspects: set[str] = set()

    def suspect(self, pattern_text: str) -> None:
        """For validate_result: keep this match, but at SUSPECT_SCORE at most."""
        self._suspects.add(pattern_text)
        return None

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
        self._suspects = set()
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        for result in results:
            if text[result.start:result.end] in self._suspects:
                result.score = min(result.score, self.SUSPECT_SCORE)
        return results
