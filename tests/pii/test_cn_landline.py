import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("办公电话010-62345678", ["010-62345678"]),
    ("座机(021)58765432转123", ["(021)58765432转123"]),
    ("tel 0755 2345678", ["0755 2345678"]),
    ("固话：0571-88886666", ["0571-88886666"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "CN_LANDLINE") == expected


@pytest.mark.parametrize("text", ["编号010-62345678", "订单02162345678", "0062345678"])
def test_not_found(pii, text):
    assert found(pii, text, "CN_LANDLINE") == []
