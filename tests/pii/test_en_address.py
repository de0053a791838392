import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("moved to 88 Century Avenue, Pudong, Shanghai.", ["88 Century Avenue, Pudong, Shanghai"]),
    ("Room 1203, 5 Queen Road, Central", ["Room 1203, 5 Queen Road, Central"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "EN_ADDRESS") == expected


@pytest.mark.parametrize("text", ["Road works on the avenue", "3 Avenues"])
def test_not_found(pii, text):
    assert found(pii, text, "EN_ADDRESS") == []
