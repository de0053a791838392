"""The console on data nobody here wrote: the full Churn_Modelling set (10,000 European bank customers, with
surnames and customer numbers) ingested, a churn model and segments trained on it on the box, the nightly run;
then every page and API call of every role: the expected status, and no surname or customer number from the
file in any answer. Skips, saying why, when ../shared is absent."""

import re
from datetime import date

import pandas as pd
import pytest

from appliance.api_tokens import ApiTokens
from appliance.jobs import nightly
from appliance.keys import Credentials
from appliance.web import create_app
from tests.conftest import ADMIN_ENV, SHARED, TESTS, run_cli
from tests.web.test_console import HTTPS, _english, _sign_in
from tests.web.test_insight_pages import ALLOWED, PAGES

SOURCE = SHARED / "churn_modelling" / "Churn_Modelling.csv"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not SOURCE.exists(), reason="../shared/data/churn_modelling is absent")]


def test_every_page_of_every_role_on_the_churn_set_answers_as_it_should_and_leaks_nothing(home, home_path, key_file):
    home.ingestor(TESTS).ingest(home.mapping("churn_modelling"), [SOURCE])
    env = ADMIN_ENV | {"APPLIANCE_HOME": str(home_path), "APPLIANCE_KEY_FILE": str(key_file)}
    for kind in ("churn", "segments"):
        result = run_cli("train", kind, "--source", "churn_modelling", *(["--cv", "3"] if kind == "churn" else []),
                         env_extra=env)
        assert result.returncode == 0, result.stderr
    nightly(home, date(2019, 1, 1), TESTS)
    for name, role in (("sam", "staff"), ("ana", "analyst"), ("cora", "compliance")):
        home.users().add(name, role, f"{name}-password-1")
    app = create_app(home, testing=True, credentials=Credentials(key_file=key_file))
    raw = pd.read_csv(SOURCE, dtype=str)
    surnames = {s for s in raw["Surname"] if len(s) >= 7}
    numbers = set(raw["CustomerId"])
    leak = re.compile(r"\b(" + "|".join(map(re.escape, sorted(surnames | numbers))) + r")\b")
    customers = [r[0] for r in home.store.query("SELECT customer_id FROM customer_scores ORDER BY probability DESC "
                                                "LIMIT 3")]
    assert len(customers) == 3 and home.store.scalar("SELECT count(*) FROM customer_scores") > 9000
    passwords = {"staff": "sam", "analyst": "ana", "compliance": "cora", "admin": "admin"}
    for role, user in passwords.items():
        client = _english(app)
        _sign_in(client, user, f"{user}-password-1")
        with home.store.transaction():
            token = ApiTokens(home.store).create(user, "crawl", 1)[0]
        for path in (*PAGES, *[f"/customers/{c}" for c in customers], "/churn?sort=value", "/churn?band=high"):
            response = client.get(path, base_url=HTTPS)
            expected = 200 if path.split("?")[0] in ALLOWED[role] or (
                path.startswith("/customers/") and role != "admin") else 403
            assert response.status_code == expected, (role, path, response.status_code)
            assert not leak.search(response.get_data(as_text=True)), (role, path)
        for path in ("/api/v1/overview", "/api/v1/churn?limit=200&lang=en", f"/api/v1/customers/{customers[0]}",
                     "/api/v1/segments", "/api/v1/tags", "/api/v1/lifecycle"):
            response = app.test_client().get(path, base_url=HTTPS, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code in (200, 403) and not leak.search(response.get_data(as_text=True))
