"""Source mappings and the protection policy are validated on load; every error names file and line."""

import shutil
import textwrap

import pytest

from appliance.errors import MappingError, PolicyError
from appliance.mapping import load_mapping
from appliance.policies import SHIPPED_DIR, ProtectionPolicy

POLICY = ProtectionPolicy.load(SHIPPED_DIR)
HEAD = """\
source: t
files:
  - match: a.csv
    columns:
"""


@pytest.mark.parametrize("column, line, message", [
    ("id: {to: nowhere.x, class: identifier}", 5, "unknown table 'nowhere'"),
    ("id: {to: customers.nope, class: identifier}", 5, "'customers.nope' is not a field of customers"),
    ("id: {to: customers.customer_id}", 5, "needs a class"),
    ("id: {to: customers.customer_id, class: secret}", 5, "needs a class"),
    ("id: {to: customers.customer_id, class: identifier, protect: keep}", 5,
     "policy does not allow 'keep' for class identifier"),
    ("cvv: {to: customers.attributes.cvv, class: C3, protect: keep}", 5, "policy does not allow 'keep' for class C3"),
    ("name: {to: customers.segment, class: C2}", 5, "customers.segment does not hold tokens"),
    ("seg: {to: customers.name, class: C1}", 5, "holds tokens only"),
    ("d: {to: customers.joined_on, class: C1, type: integer}", 5, "type integer does not fit customers.joined_on"),
    ("n: {to: customers.attributes.n, class: C1, type: text, min: 3}", 5, "'min' must be a number"),
    ("t: {to: interactions.text, class: C1}", 5, "takes free text only"),
    ("t: {to: customers.segment, class: free_text}", 5, "is not a free-text field"),
    ("x: {to: customers.segment, class: C1, colour: red}", 5, "unknown key 'colour'"),
    ("x: {to: customers.birth_year, class: C2, protect: drop, derive: {customers.birth_year: magic}}", 5,
     "unknown transform 'magic'"),
    ("x: {to: customers.id_number, class: C2, derive: {customers.gender: cn_id_birth_year}}", 5,
     "cn_id_birth_year gives integer"),
])
def test_column_errors_name_file_and_line(tmp_path, column, line, message):
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + "      " + column + "\n", encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path, POLICY)
    assert str(caught.value).startswith(f"t.yaml line {line}:"), str(caught.value)
    assert message in str(caught.value)


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(HEAD + "      id: {to: customers.customer_id, class: identifier\n      x: 1\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"^broken.yaml line \d+:"):
        load_mapping(path, POLICY)


def test_duplicate_column_is_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(HEAD + "      id: {to: customers.customer_id, class: identifier}\n"
                           "      id: {to: customers.customer_id, class: identifier}\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"dup.yaml line 6: duplicate key 'id'"):
        load_mapping(path, POLICY)


def test_file_level_errors(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(textwrap.dedent("""\
        source: t
        files:
          - match: a.csv
            format: parquet
            columns:
              id: {to: customers.customer_id, class: identifier}
        """), encoding="utf-8")
    with pytest.raises(MappingError, match="f.yaml line 4: unknown format 'parquet'"):
        load_mapping(path, POLICY)


def test_policy_errors_name_file_and_line(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(SHIPPED_DIR, policies)
    text = (policies / "protection.yaml").read_text(encoding="utf-8")
    (policies / "protection.yaml").write_text(
        text.replace("C3:           {default: drop,  allowed: [drop]}", "C3: {default: keep, allowed: [keep, drop]}"),
        encoding="utf-8")
    with pytest.raises(PolicyError, match=r"protection.yaml line \d+: C3 \(authentication\) data may never be kept"):
        ProtectionPolicy.load(policies)
