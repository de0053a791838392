"""A home with the demo data ingested, the shipped models installed and one nightly run, and its console."""

import pytest

from appliance.keys import Credentials
from appliance.web import create_app
from tests.conftest import ingest_and_score


def scored_home(home, demo_dir):
    as_of = ingest_and_score(home, demo_dir)
    for name, role in (("sam", "staff"), ("ana", "analyst"), ("cora", "compliance")):
        home.users().add(name, role, f"{name}-password-1")
    return as_of


@pytest.fixture
def scored(home, demo_dir, key_file):
    scored_home(home, demo_dir)
    return home, create_app(home, testing=True, credentials=Credentials(key_file=key_file))
