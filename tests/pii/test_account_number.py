import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("收款账号：310012345678901234", ["310012345678901234"]),
    ("account no. 1100 2233 4455 6677", ["1100 2233 4455 6677"]),
    ("账户44001234567890已冻结", ["44001234567890"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "ACCOUNT_NUMBER") == expected


@pytest.mark.parametrize("text", ["合同号310012345678901234", "310012345678901234"])
def test_not_found(pii, text):
    assert found(pii, text, "ACCOUNT_NUMBER") == []
