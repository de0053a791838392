import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("港澳通行证C12345678", ["C12345678"]),
    ("回乡证H1234567801", ["H1234567801"]),
    ("台胞证12345678", ["12345678"]),
    ("Home Return Permit M12345678", ["M12345678"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "CN_TRAVEL_PERMIT") == expected


@pytest.mark.parametrize("text", ["编号C12345678", "C12345678", "12345678"])
def test_not_found(pii, text):
    assert found(pii, text, "CN_TRAVEL_PERMIT") == []
