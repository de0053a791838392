import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("IBAN GB82 WEST 1234 5698 7654 32", ["GB82 WEST 1234 5698 7654 32"]),
    ("收款账户DE89370400440532013000", ["DE89370400440532013000"]),
    ("iban gb50mvfc38361978683032 on file", ["gb50mvfc38361978683032"]),  # typed in lower case
])
def test_found(pii, text, expected):
    assert found(pii, text, "IBAN") == expected


@pytest.mark.parametrize("text", ["GB82 WEST 1234 5698 7654 33", "XX89370400440532013000"])
def test_not_found(pii, text):
    assert found(pii, text, "IBAN") == []
