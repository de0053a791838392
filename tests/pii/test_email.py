import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("邮箱zhang.wei@163.com。", ["zhang.wei@163.com"]),
    ("email: li_na+bank@example.com.cn, thanks", ["li_na+bank@example.com.cn"]),
    ("发送至Wang.Fang88@QQ.COM即可", ["Wang.Fang88@QQ.COM"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "EMAIL") == expected


@pytest.mark.parametrize("text", ["user@localhost", "a@b.notatld", "@163.com", "zhang.wei@"])
def test_not_found(pii, text):
    assert found(pii, text, "EMAIL") == []
