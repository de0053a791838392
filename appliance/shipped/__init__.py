"""What the appliance ships beside its code: the default compliance policies and the default models.

They live at the repository's top (policies/, models/) where reviewers expect them; these links carry them
into the wheel, so an installed appliance finds them without the source tree."""

import shutil
from pathlib import Path

POLICIES = Path(__file__).parent / "policies"
MODELS = Path(__file__).parent / "models"


def install_models(models_dir: Path) -> list[Path]:
    """Copy the shipped models into a home's models folder, each model file before the cards that name it;
    returns the cards copied."""
    models_dir.mkdir(exist_ok=True)
    cards = []
    for path in sorted(MODELS.glob("*-*.onnx")) + sorted(MODELS.glob("*-*.json")):
        shutil.copy(path, models_dir / path.name)
        if path.suffix == ".json":
            cards.append(models_dir / path.name)
    return cards
