import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("卡号6222021234567890128的年费", ["6222021234567890128"]),       # UnionPay, 19 digits
    ("信用卡6225 8812 3456 7890被扣款", ["6225 8812 3456 7890"]),      # grouped by four
    ("card 4111 1111 1111 1111 was lost", ["4111 1111 1111 1111"]),  # Visa test number
    ("借记卡６２２２０２１２３４５６７８９０１２８", ["６２２２０２１２３４５６７８９０１２８"]),
    ("卡号6222021234567890123有误", ["6222021234567890123"]),         # Luhn fails, but context says card
    ("5555555555554444", ["5555555555554444"]),                     # Mastercard, no context
    ("Amex 378282246310005 on file", ["378282246310005"]),          # 15 digits, American Express
    ("card 3782 822463 10005", ["3782 822463 10005"]),              # Amex grouped 4-6-5
    ("Diners 3056 930902 5904", ["3056 930902 5904"]),              # 14 digits, grouped 4-6-4
    ("maestro 500000000009 charged", ["500000000009"]),            # 12 digits, Maestro
])
def test_found(pii, text, expected):
    assert found(pii, text, "BANK_CARD") == expected


@pytest.mark.parametrize("text", [
    "流水号6222021234567890128",        # Luhn-valid, but a reference number
    "订单号4111111111111111",
    "110101199003071233",               # a valid resident ID is not a card
    "6222021234567890123",              # Luhn fails, no context
    "62220212345678901281",             # 20 digits
    "123456789015",                     # 12 digits, Luhn-valid, but no scheme issues it
    "378282246310006",                  # Amex prefix, Luhn fails
])
def test_not_found(pii, text):
    assert found(pii, text, "BANK_CARD") == []
