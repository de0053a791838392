from appliance.pii.recognizers.base import NOT_DIGIT_AFTER, NOT_DIGIT_BEFORE, SEP, BankPatternRecognizer, ascii_digits

# Mainland mobile number blocks (MIIT allocations): 13x, 145-149, 15x (not 154), 162/165-167, 170-178, 18x,
# 190-193/195-199.
_PREFIXES = ("13", "145", "146", "147", "148", "149", "150", "151", "152", "153", "155", "156", "157", "158", "159",
             "162", "165", "166", "167", "170", "171", "172", "173", "174", "175", "176", "177", "178", "18", "190",
             "191", "192", "193", "195", "196", "197", "198", "199")


class CnMobileRecognizer(BankPatternRecognizer):
    """Mainland mobile numbers, bare or with +86 / 0086, grouped 3-4-4 with spaces or dashes or not at all."""

    ENTITY = "CN_MOBILE"
    PATTERNS = [
        ("mobile", NOT_DIGIT_BEFORE + rf"(?:(?:\+|＋|00|００)[8８][6６]{SEP}?)?[1１][3-9３-９]\d{SEP}?\d{{4}}{SEP}?\d{{4}}"
         + NOT_DIGIT_AFTER, 0.7),
    ]
    CONTEXT = ["手机", "电话", "联系方式", "联系", "致电", "来电", "回拨", "号码", "短信", "微信", "mobile", "phone", "cell",
               "tel", "call", "contact", "whatsapp", "sms"]
    NEGATIVE_CONTEXT = ["订单号", "订单", "流水号", "单号", "交易号", "编号", "金额", "余额", "order", "reference", "ref no", "tracking", "invoice", "amount", "serial"]

    def validate_result(self, pattern_text: str):
        digits = ascii_digits(pattern_text)
        if len(digits) == 13:
            digits = digits[2:]
        elif len(digits) == 15:
            digits = digits[4:]
        return None if len(digits) == 11 and digits.startswith(_PREFIXES) else False
