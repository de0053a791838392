"""The PII engine on public corpora nobody here wrote (../shared/data/pii_text), with baselines beside it:

- appliance: what `appliance pii eval FILE` prints for each corpus;
- jieba: a plain jieba part-of-speech tagger, no rules at all, its person-name tags (nr) as PERSON (the
  Chinese corpora);
- presidio: Presidio's predefined recognizers over a blank spaCy English pipeline, what Presidio offers
  offline (the English corpora).

    .venv/bin/python benchmarks/pii_corpora.py [--limit N]

Prints one markdown table per corpus, as docs/pii.md shows them.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.pii.corpora import scored_kinds  # noqa: E402
from appliance.pii.engine import Entity, engine  # noqa: E402
from appliance.pii.evaluate import evaluate_file  # noqa: E402

CORPORA = ROOT.parent / "shared" / "data" / "pii_text"
FILES = {"cluener_train.json": "CLUENER2020 news (zh)", "weibo_ner_train.conll": "Weibo posts (zh)",
         "wnut17_train.conll": "WNUT-17 user posts (en)", "presidio_generated_large.json": "presidio-research sentences (en)"}
PRESIDIO_KINDS = {"PERSON": "EN_PERSON", "PHONE_NUMBER": "PHONE_NUMBER", "CREDIT_CARD": "BANK_CARD",
                  "EMAIL_ADDRESS": "EMAIL", "IBAN_CODE": "IBAN", "IP_ADDRESS": "IP_ADDRESS"}


class JiebaBaseline:
    def __init__(self):
        import jieba.posseg

        self.cut = jieba.posseg.cut

    def analyze_many(self, texts, language="auto"):
        out = []
        for text in texts:
            found, at = [], 0
            for word, flag in self.cut(text):
                if flag in ("nr", "nrfg", "nrt") and len(word) >= 2:
                    found.append(Entity("CN_PERSON", at, at + len(word), 1.0))
                at += len(word)
            out.append(found)
        return out


class PresidioBaseline:
    def __init__(self):
        import appliance  # noqa: F401 - the offline guards
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer import predefined_recognizers as predefined
        from presidio_analyzer.nlp_engine import SpacyNlpEngine

        nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}])
        nlp_engine.nlp = {"en": spacy.blank("en")}
        registry = RecognizerRegistry()
        # Named one by one: Presidio's loader finds classes by name, and ours share some names with its own.
        for recognizer in (predefined.CreditCardRecognizer, predefined.EmailRecognizer, predefined.IbanRecognizer,
                           predefined.IpRecognizer, predefined.PhoneRecognizer, predefined.SpacyRecognizer):
            registry.add_recognizer(recognizer())
        self.analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])

    def analyze_many(self, texts, language="auto"):
        return [[Entity(PRESIDIO_KINDS[r.entity_type], r.start, r.end, r.score)
                 for r in self.analyzer.analyze(text, language="en") if r.entity_type in PRESIDIO_KINDS]
                for text in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only the first N texts of each corpus")
    args = parser.parse_args()
    if not CORPORA.exists():
        sys.exit(f"needs {CORPORA} (the shared data beside the repository)")
    ours = engine()
    for name, title in FILES.items():
        path = CORPORA / name
        baseline = ("jieba", JiebaBaseline()) if "(zh)" in title else ("presidio", PresidioBaseline())
        scores = evaluate_file(ours, path, limit=args.limit)
        base = evaluate_file(baseline[1], path, limit=args.limit)
        print(f"\n**{title}** (`{name}`)\n")
        print(f"| kind | support | precision | recall | F2 | {baseline[0]} recall | {baseline[0]} F2 |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for kind in sorted(scored_kinds(path)):
            s, b = scores[kind], base[kind]
            if s.tp + s.fn == 0:
                continue
            print(f"| {kind} | {s.tp + s.fn:,} | {s.precision:.3f} | {s.recall:.3f} | {s.f2:.3f} | "
                  f"{b.recall:.3f} | {b.f2:.3f} |")


if __name__ == "__main__":
    main()
