"""Cut the small test fixtures in tests/data/pii_corpora/ from the public corpora in ../shared/data/pii_text/,
in their own formats (so the readers are tested too): a fixed random sample of each, never the whole corpus.

    python tests/data/make_pii_corpora_sample.py
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
SHARED = HERE.parent.parent.parent / "shared" / "data" / "pii_text"
OUT = HERE / "pii_corpora"
SIZES = {"cluener_train.json": 300, "weibo_ner_train.conll": 200, "wnut17_train.conll": 400,
         "presidio_generated_large.json": 300}


def blocks(path: Path) -> list[str]:
    """CoNLL texts: blocks of lines between blank lines."""
    return [b for b in path.read_text(encoding="utf-8").split("\n\n") if b.strip()]


def main() -> None:
    OUT.mkdir(exist_ok=True)
    rng = random.Random(2026)
    for name, size in SIZES.items():
        source = SHARED / name
        if name.endswith(".conll"):
            sample = rng.sample(blocks(source), size)
            (OUT / name).write_text("\n\n".join(b.strip("\n") for b in sample) + "\n", encoding="utf-8")
        elif name.startswith("presidio"):
            records = json.loads(source.read_text(encoding="utf-8"))
            sample = rng.sample(records, size)
            (OUT / name).write_text(json.dumps(sample, ensure_ascii=False, indent=0), encoding="utf-8")
        else:
            lines = source.read_text(encoding="utf-8").splitlines()
            (OUT / name).write_text("\n".join(rng.sample(lines, size)) + "\n", encoding="utf-8")
        print(name, size)


if __name__ == "__main__":
    main()
