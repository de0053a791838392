import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("登录IP 192.168.1.20异常", ["192.168.1.20"]),
    ("from 2001:db8:85a3:0:0:8a2e:370:7334 at 10:00", ["2001:db8:85a3:0:0:8a2e:370:7334"]),
    ("IP：10.0.0.1。", ["10.0.0.1"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "IP_ADDRESS") == expected


@pytest.mark.parametrize("text", ["版本1.2.3.4已上线", "300.1.1.1", "version 2.10.3.1"])
def test_not_found(pii, text):
    assert found(pii, text, "IP_ADDRESS") == []
