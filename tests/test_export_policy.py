"""The export policy: validated against its schema and the report registry, every error with file and line;
loads and changes audited with old and new hashes; `policy check` with and without a home."""

import pytest

from appliance.errors import PolicyError
from appliance.policies import SHIPPED_DIR, ExportPolicy
from tests.conftest import add_user, assert_one_line_error, run_cli

SHIPPED = (SHIPPED_DIR / "export.yaml").read_text(encoding="utf-8")


def test_the_shipped_policy_is_valid():
    policy = ExportPolicy.parse(SHIPPED)
    assert policy.min_cell_size == 10 and policy.dominance_share == 0.5 and not policy.privacy.enabled
    assert set(policy.reports) == {"segment_profile", "churn_risk", "tag_counts", "tag_overlap", "campaign_results",
                                   "product_holdings"}


@pytest.mark.parametrize("old, new, message", [
    ("min_cell_size: 10", "min_cell_size: 1", "'min_cell_size' must be a whole number from 3"),
    ("min_cell_size: 10", "min_cell_size: ten", "'min_cell_size' must be a whole number"),
    ("max_share: 0.5", "max_share: 2", "'max_share' must be a number"),
    ("counts: 5", "counts: 50", "'counts' must be a whole number from 1 to 10"),
    ("mechanism: none", "mechanism: magic", "'mechanism' must be one of none, laplace, gaussian"),
    ("regulator:   {budget_epsilon: 2.0}", "regulator:   {budget_epsilon: 0.5}", "budget_epsilon is below"),
    ("  churn_risk:", "  churn_forecast:", "unknown report 'churn_forecast'"),
    ("[tag_a, tag_b]", "[tag_a, customer_id]", "'tag_overlap.dimensions' must list some of"),
    ("[tag, region, segment]", "[region, segment]", "'tag_counts.dimensions' must include 'tag'"),
    ("revision: 2026-11-23.1", "revision: ''", "'revision' must name this version"),
    ("recipients:\n", "recipients: nobody\n", "mapping values are not allowed here"),  # YAML syntax
    ("version: 1", "version: 1\nversion: 2", "duplicate key 'version'"),
])
def test_a_malformed_policy_is_refused_with_file_and_line(old, new, message):
    assert old in SHIPPED
    text = SHIPPED.replace(old, new)
    if "budget_epsilon: 0.5" in text:
        text = text.replace("mechanism: none", "mechanism: laplace")
    with pytest.raises(PolicyError, match=r"export.yaml line \d+: ") as refused:
        ExportPolicy.parse(text)
    assert message in refused.value.message


def test_an_export_the_policy_does_not_allow_is_refused():
    policy = ExportPolicy.parse(SHIPPED.replace("  product_holdings: {dimensions: [product, age_band, region]}\n",
                                                "  product_holdings: {dimensions: [product]}\n"))
    assert policy.allowed("product_holdings", ("product",)) == ("amount",)
    with pytest.raises(PolicyError, match="does not allow 'product_holdings' by 'region'"):
        policy.allowed("product_holdings", ("product", "region"))
    without = ExportPolicy.parse(SHIPPED.replace("  tag_overlap:      {dimensions: [tag_a, tag_b]}\n", ""))
    with pytest.raises(PolicyError, match="does not allow report 'tag_overlap'"):
        without.allowed("tag_overlap", ("tag_a", "tag_b"))


def test_policy_check_with_a_home_audits_loads_changes_and_refusals(tmp_path, key_file):
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file), "APPLIANCE_HOME": str(home),
           "APPLIANCE_NEW_USER_PASSWORD": "officer-password"}
    run_cli("init", env_extra=env, check=True)
    officer = add_user("officer", "compliance", "officer-password", env=env)
    assert "export.yaml        valid" in run_cli("policy", "check", env_extra=officer, check=True).stdout
    policy_file = home / "policies" / "export.yaml"
    policy_file.write_text(SHIPPED.replace("min_cell_size: 10", "min_cell_size: 20"), encoding="utf-8")
    run_cli("policy", "check", env_extra=officer, check=True)
    policy_file.write_text(SHIPPED.replace("min_cell_size: 10", "min_cell_size: lots"), encoding="utf-8")
    refused = run_cli("policy", "check", env_extra=officer)
    assert "REFUSED export.yaml line" in refused.stdout and "in force: last good version" in refused.stdout
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    entries = run_cli("audit", "list", "--event", "policy.change", env_extra=officer, check=True).stdout
    change = [line for line in entries.splitlines() if "export.yaml" in line]
    assert len(change) == 1 and '"old_sha256":"' in change[0] and '"new_sha256":"' in change[0]
    refusals = run_cli("audit", "list", "--event", "policy.refuse", env_extra=officer, check=True).stdout
    assert "min_cell_size" in refusals and "kept_sha256" in refusals
    # the analyst side of it: the last good version (k = 20) is the one in force
    from appliance.home import Home
    from appliance.keys import Credentials

    with Home.open(home, Credentials(key_file=key_file)) as opened:
        assert opened.export_policy().min_cell_size == 20


def test_policy_check_needs_the_policy_role(tmp_path, key_file):
    env = {"APPLIANCE_KEY_FILE": str(key_file), "APPLIANCE_HOME": str(tmp_path / "home")}
    run_cli("init", env_extra=env, check=True)
    assert_one_line_error(run_cli("policy", "check", env_extra=env), "policy.manage")


def test_a_draft_folder_is_checked_without_a_home(tmp_path):
    draft = tmp_path / "draft"
    draft.mkdir()
    for path in SHIPPED_DIR.glob("*.yaml"):
        (draft / path.name).write_bytes(path.read_bytes())
    result = run_cli("policy", "check", "--dir", draft, env_extra={"APPLIANCE_HOME": ""})
    assert result.returncode == 0 and result.stdout.count("valid") == 5, result.stdout
    (draft / "purposes.yaml").unlink()
    assert_one_line_error(run_cli("policy", "check", "--dir", draft, env_extra={"APPLIANCE_HOME": ""}),
                          "purposes.yaml: cannot be read")
