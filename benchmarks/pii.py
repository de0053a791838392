"""PII engine throughput on 10,000 mixed bank texts (complaints, call notes, transfer memos; Chinese and
English), beside, in the same run and on the same texts:
- the floor: a bare `re` scan for the same number patterns (ID, mobile, card, e-mail), no validation;
- Presidio's predefined recognizers over a blank spaCy English pipeline (what Presidio offers offline).

    .venv/bin/python benchmarks/pii.py [--texts 10000]

Each runs in its own process, so peak RSS is its own.
"""

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_texts(count: int, path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    rows = [json.loads(line)["text"] for line in open(ROOT / "tests/data/pii_dev.jsonl", encoding="utf-8")]
    memos = ["超市购物", "代发工资", "餐饮", "水电燃气费", "网购", "房租", "ATM取款", "转账", "差旅出行", "教育缴费"]
    rng = random.Random(5)
    texts = []
    while len(texts) < count:  # about the mix ingestion sees: memos outnumber notes
        texts.append(rng.choice(rows) if rng.random() < 0.6 else rng.choice(memos) + f" {rng.randint(1, 9999)}")
    path.write_text("\n".join(texts), encoding="utf-8")


def run_floor(texts: list[str]) -> int:
    patterns = [re.compile(p) for p in (r"(?<!\d)\d{17}[\dXx](?!\d)", r"(?<!\d)1[3-9]\d{9}(?!\d)",
                                        r"(?<!\d)\d{16,19}(?!\d)", r"[\w.+-]+@[\w-]+\.[\w.]+")]
    return sum(1 for text in texts for p in patterns for _ in p.finditer(text))


def run_appliance(texts: list[str]) -> int:
    from appliance.pii.engine import engine

    analyzer = engine()
    return sum(len(analyzer.analyze(text)) for text in texts)


def run_presidio_blank(texts: list[str]) -> int:
    import appliance  # noqa: F401 - the offline guards
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    nlp_engine.nlp = {"en": spacy.blank("en")}
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(languages=["en"])
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    return sum(len(analyzer.analyze(text, language="en")) for text in texts)


RUNNERS = {"floor": run_floor, "appliance": run_appliance, "presidio_blank": run_presidio_blank}


def child(kind: str, path: str) -> None:
    texts = Path(path).read_text(encoding="utf-8").split("\n")
    RUNNERS[kind](texts[:50])  # warm-up: engines load lazily
    started = time.perf_counter()
    found = RUNNERS[kind](texts)
    seconds = time.perf_counter() - started
    print(json.dumps({"texts": len(texts), "seconds": seconds, "found": found,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "texts.txt"
        make_texts(args.texts, path)
        results = {}
        for kind in RUNNERS:
            out = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], capture_output=True,
                                 text=True, check=True)
            results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'what':<44} {'texts/s':>9} {'seconds':>8} {'entities':>9} {'peak RSS MiB':>12}")
    labels = {"floor": "bare re scan, 4 number patterns (floor)", "appliance": "appliance PII engine",
              "presidio_blank": "Presidio predefined, blank spaCy en"}
    for kind, r in results.items():
        print(f"{labels[kind]:<44} {r['texts'] / r['seconds']:>9,.0f} {r['seconds']:>8.2f} {r['found']:>9} "
              f"{r['peak_rss_mib']:>12.0f}")
    floor = results["floor"]["texts"] / results["floor"]["seconds"]
    ours = results["appliance"]["texts"] / results["appliance"]["seconds"]
    print(f"appliance is {floor / ours:.0f}x slower than the floor (target: within 5x)")


if __name__ == "__main__":
    main()
