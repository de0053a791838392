import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("护照号码E12345678", ["E12345678"]),
    ("passport EA1234567 expires", ["EA1234567"]),
    ("护照：G12345678。", ["G12345678"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "CN_PASSPORT") == expected


@pytest.mark.parametrize("text", ["产品型号E12345678", "E12345678"])
def test_not_found(pii, text):
    assert found(pii, text, "CN_PASSPORT") == []
