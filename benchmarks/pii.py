"""PII engine throughput, one core, on two sets of texts, beside, in the same run and on the same texts:
- the floor: a bare `re` scan for the same number patterns (ID, mobile, card, e-mail), no validation;
- Presidio's predefined recognizers over a blank spaCy English pipeline (what Presidio offers offline).

The sets: "mixed", 10,000 bank texts (complaints, call notes, transfer memos; Chinese and English), and
"zh40", 10,000 Chinese texts of 40 characters (CLUENER news cut to 40 characters when ../shared is there,
else the dev set's Chinese notes), where the statistical NER runs on every text.

    .venv/bin/python benchmarks/pii.py [--texts 10000]

Each runs in its own process pinned to one core (the figures are per core), so peak RSS is its own. The
appliance's engine is called as ingestion calls it: a chunk's distinct texts at once (analyze_many), so its
Chinese NER runs in padded batches.
"""

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


CLUENER = ROOT.parent / "shared" / "data" / "pii_text" / "cluener_train.json"


def make_texts(count: int, path: Path) -> None:
    rows = [json.loads(line)["text"] for line in open(ROOT / "tests/data/pii_dev.jsonl", encoding="utf-8")]
    memos = ["超市购物", "代发工资", "餐饮", "水电燃气费", "网购", "房租", "ATM取款", "转账", "差旅出行", "教育缴费"]
    rng = random.Random(5)
    texts = []
    while len(texts) < count:  # about the mix ingestion sees: memos outnumber notes
        texts.append(rng.choice(rows) if rng.random() < 0.6 else rng.choice(memos) + f" {rng.randint(1, 9999)}")
    path.write_text("\n".join(texts), encoding="utf-8")


def make_chinese_40(count: int, path: Path) -> str:
    """Distinct Chinese texts of 40 characters; says where they came from."""
    if CLUENER.exists():
        source, lines = "CLUENER news", [json.loads(line)["text"] for line in open(CLUENER, encoding="utf-8")]
    else:
        source, lines = "dev-set notes", [json.loads(line)["text"] for line in
                                          open(ROOT / "tests/data/pii_dev.jsonl", encoding="utf-8")]
    lines = [t for t in lines if re.search(r"[\u4e00-\u9fff]", t)]
    rng = random.Random(40)
    texts = []
    while len(texts) < count:
        text = "".join(rng.choice(lines) for _ in range(3))  # long enough to cut 40 characters from
        start = rng.randrange(0, max(1, len(text) - 40))
        texts.append(text[start:start + 40].replace("\n", " "))
    path.write_text("\n".join(texts), encoding="utf-8")
    return source


def run_floor(texts: list[str]) -> int:
    patterns = [re.compile(p) for p in (r"(?<!\d)\d{17}[\dXx](?!\d)", r"(?<!\d)1[3-9]\d{9}(?!\d)",
                                        r"(?<!\d)\d{16,19}(?!\d)", r"[\w.+-]+@[\w-]+\.[\w.]+")]
    return sum(1 for text in texts for p in patterns for _ in p.finditer(text))


def run_appliance(texts: list[str]) -> int:
    from appliance.pii.engine import engine

    analyzer = engine()
    found = 0
    for at in range(0, len(texts), 2000):  # as ingestion does, a chunk's texts at once
        found += sum(len(entities) for entities in analyzer.analyze_many(texts[at:at + 2000]))
    return found


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
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core: the figures are per core
    texts = Path(path).read_text(encoding="utf-8").split("\n")
    RUNNERS[kind](["预热 warm-up 13812345678"])  # engines load lazily; warm up on a text not measured
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
    labels = {"floor": "bare re scan, 4 number patterns (floor)", "appliance": "appliance PII engine",
              "presidio_blank": "Presidio predefined, blank spaCy en"}
    with tempfile.TemporaryDirectory() as folder:
        sets = {"mixed": Path(folder) / "mixed.txt", "zh40": Path(folder) / "zh40.txt"}
        make_texts(args.texts, sets["mixed"])
        source = make_chinese_40(args.texts, sets["zh40"])
        for name, path in sets.items():
            results = {}
            for kind in RUNNERS:
                out = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], capture_output=True,
                                     text=True, check=True)
                results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
            title = "mixed bank texts" if name == "mixed" else f"Chinese texts of 40 characters ({source})"
            print(f"\n{args.texts:,} {title}, one core")
            print(f"{'what':<44} {'texts/s':>9} {'seconds':>8} {'entities':>9} {'peak RSS MiB':>12}")
            for kind, r in results.items():
                print(f"{labels[kind]:<44} {r['texts'] / r['seconds']:>9,.0f} {r['seconds']:>8.2f} {r['found']:>9} "
                      f"{r['peak_rss_mib']:>12.0f}")
            floor = results["floor"]["texts"] / results["floor"]["seconds"]
            ours = results["appliance"]["texts"] / results["appliance"]["seconds"]
            target = " (target: at least 1,500 texts/s per core)" if name == "zh40" else ""
            print(f"appliance: {ours:,.0f} texts/s per core{target}, {floor / ours:.0f}x slower than the floor")


if __name__ == "__main__":
    main()
