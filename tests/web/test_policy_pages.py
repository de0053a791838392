"""Policies in the console: each in force with its revision and history; a malformed draft shows its file and
line and changes nothing; an admin applies a valid draft, which is then in force and audited with who."""

import io
import json

from tests.web.test_console import HTTPS, SAME_SITE, _english, _sign_in
from tests.web.test_customer_view import _csrf_of


def _client(app, user):
    client = _english(app)
    _sign_in(client, user, f"{user}-password-1")
    return client


def _post(client, path, **data):
    page = client.get("/policies", base_url=HTTPS).get_data(as_text=True)
    return client.post(path, base_url=HTTPS, headers=SAME_SITE, data={"csrf_token": _csrf_of(page)} | data)


def _in_force(home):
    return dict(home.store.rows("SELECT name, sha256 FROM policy_state"))


def test_a_malformed_draft_names_its_line_and_changes_nothing(scored):
    home, app = scored
    home.export_policy()
    before, file_before = _in_force(home), (home.path / "policies" / "export.yaml").read_bytes()
    officer = _client(app, "cora")
    text = file_before.decode().replace("min_cell_size: 10", "min_cell_size: -3")
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "min_cell_size" in l)
    response = _post(officer, "/policies/check", name="export.yaml", text=text)
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and f"line {line}" in body and 'id="draft-error"' in body
    broken = _post(officer, "/policies/check", name="export.yaml", text="reports: [unclosed")
    assert broken.status_code == 400 and "line 1" in broken.get_data(as_text=True)
    assert _in_force(home) == before and (home.path / "policies" / "export.yaml").read_bytes() == file_before
    assert _post(officer, "/policies/apply", name="export.yaml", text=text).status_code == 403


def test_an_admin_applies_a_valid_draft_uploaded_as_a_file(scored):
    home, app = scored
    home.export_policy()
    old = _in_force(home)["export.yaml"]
    text = (home.path / "policies" / "export.yaml").read_text().replace("min_cell_size: 10", "min_cell_size: 12")
    admin = _client(app, "admin")
    page = admin.get("/policies", base_url=HTTPS).get_data(as_text=True)
    response = admin.post("/policies/apply", base_url=HTTPS, headers=SAME_SITE, content_type="multipart/form-data",
                          data={"csrf_token": _csrf_of(page), "name": "export.yaml",
                                "file": (io.BytesIO(text.encode()), "export.yaml")})
    assert response.status_code == 200 and 'id="draft-ok"' in response.get_data(as_text=True)
    assert home.export_policy().min_cell_size == 12 and _in_force(home)["export.yaml"] != old
    applied = home.store.query("SELECT actor, details FROM audit_log WHERE event = 'policy.apply'")[0]
    assert applied[0] == "admin" and json.loads(applied[1])["old_sha256"] == old
    assert home.store.scalar("SELECT count(*) FROM audit_log WHERE event = 'policy.change'") == 1
    listing = admin.get("/policies?show=export.yaml", base_url=HTTPS).get_data(as_text=True)
    assert "min_cell_size: 12" in listing and "policy.apply" in listing


def test_only_compliance_and_admin_see_policies(scored):
    _home, app = scored
    for user in ("sam", "ana"):
        assert _client(app, user).get("/policies", base_url=HTTPS).status_code == 403
