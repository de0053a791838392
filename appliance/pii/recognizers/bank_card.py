from appliance.pii.recognizers.base import NOT_DIGIT_AFTER, NOT_DIGIT_BEFORE, SEP, BankPatternRecognizer, ascii_digits
from appliance.pii.recognizers.cn_resident_id import CnResidentIdRecognizer

# Issuer prefixes (IIN ranges) and the lengths each scheme issues. A 12-15 digit number is a card only with
# one of these and a valid Luhn digit; 16-19 digits starting 3-6 are cards on Luhn alone, as before
# (mainland banks issue cards under many prefixes).
_ISSUERS: tuple[tuple[tuple[int, int], range], ...] = (
    ((4, 4), range(13, 20)),                     # Visa (13, 16, 19)
    ((51, 55), range(16, 17)), ((2221, 2720), range(16, 17)),  # Mastercard
    ((34, 34), range(15, 16)), ((37, 37), range(15, 16)),      # American Express
    ((300, 305), range(14, 20)), ((3095, 3095), range(14, 20)), ((36, 36), range(14, 20)),
    ((38, 39), range(14, 20)),                   # Diners Club
    ((6011, 6011), range(16, 20)), ((644, 649), range(16, 20)), ((65, 65), range(16, 20)),  # Discover
    ((3528, 3589), range(16, 20)),               # JCB
    ((62, 62), range(14, 20)), ((81, 81), range(16, 20)),      # UnionPay
    ((50, 50), range(12, 20)), ((56, 69), range(12, 20)),      # Maestro
    ((2200, 2204), range(16, 20)),               # Mir
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = int(char)
        if position % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def issued_length(digits: str) -> bool:
    """Some scheme issues cards of this length under this prefix."""
    for (low, high), lengths in _ISSUERS:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return True
    return False


class BankCardRecognizer(BankPatternRecognizer):
    """Payment card numbers, 12-19 digits, contiguous or grouped (4-4-4-4, Amex 4-6-5, Diners 4-6-4), Luhn-valid.
    16-19 digits starting 3-6 count on Luhn alone; 12-15 digits need a scheme that issues that length under
    that prefix (Amex 15, Diners 14, Maestro 12-13). UnionPay (62) scores higher; a valid resident ID number
    is never also a card."""

    ENTITY = "BANK_CARD"
    PATTERNS = [
        ("unionpay", NOT_DIGIT_BEFORE + r"[6６][2２]\d{14,17}" + NOT_DIGIT_AFTER, 0.7),
        ("unionpay_grouped", NOT_DIGIT_BEFORE + rf"[6６][2２]\d{{2}}(?:{SEP}\d{{4}}){{3}}(?:{SEP}?\d{{1,3}})?"
         + NOT_DIGIT_AFTER, 0.75),
        ("card", NOT_DIGIT_BEFORE + r"[3-6３-６]\d{15,18}" + NOT_DIGIT_AFTER, 0.5),
        ("card_grouped", NOT_DIGIT_BEFORE + rf"[2-6２-６]\d{{3}}(?:{SEP}\d{{4}}){{2,3}}(?:{SEP}?\d{{1,3}})?"
         + NOT_DIGIT_AFTER, 0.6),
        ("card_short", NOT_DIGIT_BEFORE + r"[2-6２-６]\d{11,14}" + NOT_DIGIT_AFTER, 0.55),
        ("card_amex_diners", NOT_DIGIT_BEFORE + rf"[3３]\d{{3}}{SEP}\d{{6}}{SEP}\d{{4,5}}" + NOT_DIGIT_AFTER, 0.65),
    ]
    CONTEXT = ["卡号", "银行卡", "借记卡", "信用卡", "储蓄卡", "贷记卡", "银联", "扣款卡", "还款卡", "卡", "card", "visa",
               "mastercard", "unionpay", "amex", "american express", "diners", "maestro", "jcb", "debit", "credit"]
    NEGATIVE_CONTEXT = ["订单号", "订单", "流水号", "单号", "交易号", "编号", "批次", "合同号", "order no", "order id",
                        "reference", "ref no", "tracking", "invoice", "serial", "batch", "contract"]

    def __init__(self, supported_language: str = "zh"):
        super().__init__(supported_language)
        self._id_check = CnResidentIdRecognizer(supported_language)

    def validate_result(self, pattern_text: str):
        digits = ascii_digits(pattern_text)
        if not 12 <= len(digits) <= 19:
            return False
        if len(digits) == 18 and self._id_check.validate_result(digits) is True:
            return False  # a resident ID number that happens to pass Luhn
        if len(digits) < 16:
            return None if issued_length(digits) and luhn_valid(digits) else False
        if not (digits[0] in "3456" or issued_length(digits)):
            return False
        return None if luhn_valid(digits) else self.suspect(pattern_text)
