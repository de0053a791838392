"""Context by characters, not lemmas.

Presidio's LemmaContextAwareEnhancer compares context words with the lemmas of neighbouring tokens; on a
no-op (or blank Chinese) pipeline there are none, so it never fires. This enhancer looks at the characters
around each match instead: a context word of the recognizer within the window raises the score, a negative
context word shortly before it lowers the score.
"""

from presidio_analyzer import RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

BEFORE = 16  # characters; Chinese context words sit right before the value ("身份证号：...", "卡号...")
AFTER = 8
NEGATIVE_BEFORE = 10


class CharContextEnhancer(ContextAwareEnhancer):
    def __init__(self, boost: float = 0.35, min_with_context: float = 0.55, penalty: float = 0.5):
        super().__init__(context_similarity_factor=boost, min_score_with_context_similarity=min_with_context,
                         context_prefix_count=BEFORE, context_suffix_count=AFTER)
        self.penalty = penalty

    def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
        by_id = {recognizer.id: recognizer for recognizer in recognizers}
        lowered = text.lower()
        extra = [word.lower() for word in context or []]
        for result in raw_results:
            recognizer = by_id.get(result.recognition_metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
            if recognizer is None:
                continue
            before = lowered[max(0, result.start - BEFORE):result.start]
            after = lowered[result.end:result.end + AFTER]
            words = [w.lower() for w in (recognizer.context or [])] + extra
            if any(w in before or w in after for w in words):
                result.score = min(self.MAX_SCORE, max(result.score + self.context_similarity_factor,
                                                       self.min_score_with_context_similarity))
            near = lowered[max(0, result.start - NEGATIVE_BEFORE):result.start]
            if any(w.lower() in near for w in getattr(recognizer, "negative_context", ())):
                result.score = max(self.MIN_SCORE, result.score - self.penalty)
        return raw_results
