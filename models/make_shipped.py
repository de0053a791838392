"""Train the shipped default models as a bank would, on generated data the demo never scores.

    .venv/bin/python models/make_shipped.py

Generates 5,000 customers with seed 11 (the demo uses seed 7: the shipped model is judged on customers it
never saw) over the two years before the demo's data ends, ingests them into a scratch home, and trains
- churn as of 2025-07-01, one year before the date the demo scores (the same point of the year, so the
  seasons do not read as drift), labels from the 90 days that followed, measured on a holdout 90 days later;
- segments, their number chosen by bootstrap stability;
and replaces the .onnx files and cards in this folder.
"""

import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from appliance.access import system  # noqa: E402
from appliance.demo_data import generate  # noqa: E402
from appliance.home import Home  # noqa: E402
from appliance.keys import Credentials, new_key_file  # noqa: E402
from appliance.training import churn_for_home, segments_for_home  # noqa: E402

CUSTOMERS, SEED = 5_000, 11
FIRST, MONTHS = date(2024, 7, 1), 24  # ends where the demo's data ends (2026-06-30)
TRAIN_AS_OF = date(2025, 7, 1)  # a year before the demo scores


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate(root / "data", CUSTOMERS, seed=SEED, months=MONTHS, first=FIRST)
        key = root / "keys" / "k.key"
        key.parent.mkdir()
        new_key_file(key)
        with Home.init(root / "home", Credentials(key_file=key), admin="admin",
                       admin_password="shipped-models-1") as home:
            home.ingestor(system("models")).ingest(home.mapping("demo"), [root / "data"])
            churn = churn_for_home(home, None, folds=5, as_of=TRAIN_AS_OF)
            segments = segments_for_home(home, None, None)
        for old in list(HERE.glob("churn-*")) + list(HERE.glob("segments-*")):
            old.unlink()
        for card in (churn, segments):
            shutil.copy(card, HERE / card.name)
            shutil.copy(card.with_suffix(".onnx"), HERE / card.with_suffix(".onnx").name)
            print(f"wrote {card.name}")


if __name__ == "__main__":
    main()
