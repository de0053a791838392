import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("身份证号110101199003071233，请核实", ["110101199003071233"]),            # inside Chinese, no \b
    ("证件号码：44030519770101004X。", ["44030519770101004X"]),                 # X check character
    ("ID number 310101198512120028 on file", ["310101198512120028"]),
    ("身份证１１０１０１１９９００３０７１２３３", ["１１０１０１１９９００３０７１２３３"]),  # full-width digits
    ("身份证 110101 19900307 1233 已核验", ["110101 19900307 1233"]),          # grouped
    ("老身份证号110101900307123", ["110101900307123"]),                        # legacy 15 digits, with context
    ("身份证110101199003071237", ["110101199003071237"]),                      # bad check digit, but context
])
def test_found(pii, text, expected):
    assert found(pii, text, "CN_RESIDENT_ID") == expected


@pytest.mark.parametrize("text", [
    "订单号110101199003071237已发货",        # bad check digit, no context, negative context
    "110101199013071233",                    # month 13
    "990101199003071233",                    # no such province
    "流水号1101011990030712331",             # 19 digits: too long
    "110101900307123",                       # 15 digits without context
])
def test_not_found(pii, text):
    assert found(pii, text, "CN_RESIDENT_ID") == []
