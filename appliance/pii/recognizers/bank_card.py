from appliance.pii.recognizers.base import NOT_DIGIT_AFTER, NOT_DIGIT_BEFORE, SEP, BankPatternRecognizer, ascii_digits
from appliance.pii.recognizers.cn_resident_id import CnResidentIdRecognizer


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = int(char)
        if position % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


class BankCardRecognizer(BankPatternRecognizer):
    """Payment card numbers: 16-19 digits, contiguous or grouped by four, Luhn-valid. UnionPay (62) and the
    international schemes' prefixes score higher; a valid resident ID number is never also a card."""

    ENTITY = "BANK_CARD"
    PATTERNS = [
        ("unionpay", NOT_DIGIT_BEFORE + r"[6６][2２]\d{14,17}" + NOT_DIGIT_AFTER, 0.7),
        ("unionpay_grouped", NOT_DIGIT_BEFORE + rf"[6６][2２]\d{{2}}(?:{SEP}\d{{4}}){{3}}(?:{SEP}?\d{{1,3}})?"
         + NOT_DIGIT_AFTER, 0.75),
        ("card", NOT_DIGIT_BEFORE + r"[3-6３-６]\d{15,18}" + NOT_DIGIT_AFTER, 0.5),
        ("card_grouped", NOT_DIGIT_BEFORE + rf"[3-6３-６]\d{{3}}(?:{SEP}\d{{4}}){{3}}(?:{SEP}?\d{{1,3}})?"
         + NOT_DIGIT_AFTER, 0.6),
    ]
    CONTEXT = ["卡号", "银行卡", "借记卡", "信用卡", "储蓄卡", "贷记卡", "银联", "扣款卡", "还款卡", "卡", "card", "visa",
               "mastercard", "unionpay", "debit", "credit"]
    NEGATIVE_CONTEXT = ["订单号", "订单", "流水号", "单号", "交易号", "编号", "批次", "合同号", "order no", "order id",
                        "reference", "ref no", "tracking", "invoice", "serial", "batch", "contract"]

    def __init__(self, supported_language: str = "zh"):
        super().__init__(supported_language)
        self._id_check = CnResidentIdRecognizer(supported_language)

    def validate_result(self, pattern_text: str):
        digits = ascii_digits(pattern_text)
        if not 16 <= len(digits) <= 19:
            return False
        if len(digits) == 18 and self._id_check.validate_result(digits) is True:
            return False  # a resident ID number that happens to pass Luhn
        return None if luhn_valid(digits) else self.suspect(pattern_text)
