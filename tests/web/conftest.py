"""A home with the demo data ingested, the shipped models installed and one nightly run, and its console."""

import shutil
from datetime import date, timedelta

import pytest

from appliance.keys import Credentials
from appliance.jobs import nightly
from appliance.web import create_app
from tests.conftest import ROOT, TESTS


def scored_home(home, demo_dir):
    home.ingestor(TESTS).ingest(home.mapping("demo"), [demo_dir])
    (home.path / "models").mkdir()
    for path in (ROOT / "models").glob("*-*.*"):
        shutil.copy(path, home.path / "models" / path.name)
    as_of = date.fromisoformat(home.store.scalar("SELECT max(booked_at) FROM transactions")[:10]) + timedelta(1)
    nightly(home, as_of, TESTS)
    for name, role in (("sam", "staff"), ("ana", "analyst"), ("cora", "compliance")):
        home.users().add(name, role, f"{name}-password-1")
    return as_of


@pytest.fixture
def scored(home, demo_dir, key_file):
    scored_home(home, demo_dir)
    return home, create_app(home, testing=True, credentials=Credentials(key_file=key_file))
