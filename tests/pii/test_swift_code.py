import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("SWIFT代码BKCHCNBJ", ["BKCHCNBJ"]),
    ("BIC: HSBCHKHHHKH", ["HSBCHKHHHKH"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "SWIFT_CODE") == expected


@pytest.mark.parametrize("text", ["CUSTOMER SERVICE", "BKCHCNBJ", "The BANKXXZZ code"])
def test_not_found(pii, text):
    assert found(pii, text, "SWIFT_CODE") == []
