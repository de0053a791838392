"""What the appliance ships beside its code: the default compliance policies and the default models.

They live at the repository's top (policies/, models/) where reviewers expect them; these links carry them
into the wheel, so an installed appliance finds them without the source tree."""

from pathlib import Path

POLICIES = Path(__file__).parent / "policies"
MODELS = Path(__file__).parent / "models"
