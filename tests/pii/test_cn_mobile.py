import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("手机13812345678，请回电", ["13812345678"]),
    ("联系电话138 1234 5678。", ["138 1234 5678"]),
    ("call +86 139-8765-4321 now", ["+86 139-8765-4321"]),
    ("电话008615012345678", ["008615012345678"]),
    ("回拨１３９８７６５４３２１", ["１３９８７６５４３２１"]),
    ("客户张伟13812345678来电", ["13812345678"]),
    ("Mobile: 19912345678.", ["19912345678"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "CN_MOBILE") == expected


@pytest.mark.parametrize("text", [
    "订单号13812345678已发货",
    "金额13812345678元",
    "12812345678",            # no such block
    "138123456789012",        # part of a longer number
    "order no. 13812345678",
])
def test_not_found(pii, text):
    assert found(pii, text, "CN_MOBILE") == []
