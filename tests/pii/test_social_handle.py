import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("follow @zhangwei_88 on weibo", ["@zhangwei_88"]),
    ("客户在微博@李小龙粉丝 ... 说", []),  # not Latin: left to the name recognizers
    ("thanks @jessejane!", ["@jessejane"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "SOCIAL_HANDLE") == expected


@pytest.mark.parametrize("text", ["mail zhang@163.com", "price @ 5", "a@b"])
def test_not_found(pii, text):
    assert found(pii, text, "SOCIAL_HANDLE") == []
