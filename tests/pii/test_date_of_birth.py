import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("出生日期：1990年3月7日", ["1990年3月7日"]),
    ("DOB 1985-03-12, mobile", ["1985-03-12"]),
    ("born 12/03/1985 in Beijing", ["12/03/1985"]),
    ("date of birth: 7 March 1990", ["7 March 1990"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "DATE_OF_BIRTH") == expected


@pytest.mark.parametrize("text", ["交易日期2025-03-05", "2025-03-05", "出生日期1990-13-45"])
def test_not_found(pii, text):
    assert found(pii, text, "DATE_OF_BIRTH") == []
