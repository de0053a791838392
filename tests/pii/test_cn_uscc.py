import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("统一社会信用代码91350100M000100Y43", ["91350100M000100Y43"]),
    ("USCC: 91110000802100433B", ["91110000802100433B"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "CN_USCC") == expected


@pytest.mark.parametrize("text", ["91350100M000100Y44", "批次号628959008640514958", "账户110051724562727030"])
def test_not_found(pii, text):
    assert found(pii, text, "CN_USCC") == []
