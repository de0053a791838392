from appliance.pii.recognizers.base import NOT_DIGIT_AFTER, NOT_DIGIT_BEFORE, SEP, BankPatternRecognizer, ascii_digits


class CnLandlineRecognizer(BankPatternRecognizer):
    """Mainland fixed-line numbers: area code (010, 02x, 0xxx) and 7-8 digit number, optional +86 and extension.
    A bare run of digits like this is often something else, so the score leans on context."""

    ENTITY = "CN_LANDLINE"
    PATTERNS = [
        ("landline", NOT_DIGIT_BEFORE + rf"(?:(?:\+|00)86{SEP}?)?(?:\(|（)?[0０](?:[1-9１-９]\d{{1,2}})(?:\)|）)?{SEP}?"
         rf"[2-9２-９]\d{{2,3}}{SEP}?\d{{4}}(?:(?:转|ext\.?|x){SEP}?\d{{1,5}})?" + NOT_DIGIT_AFTER, 0.4),
    ]
    CONTEXT = ["电话", "座机", "固话", "办公", "联系", "传真", "致电", "回电", "来电", "拨打", "tel", "phone", "landline",
               "office", "fax", "call"]
    NEGATIVE_CONTEXT = ["订单号", "订单", "流水号", "单号", "编号", "金额", "order", "reference", "amount", "invoice"]

    def validate_result(self, pattern_text: str):
        digits = ascii_digits(pattern_text.split("转")[0].split("ext")[0].split("x")[0])
        if digits.startswith("86"):
            digits = digits[2:]
        if digits.startswith("0086"):
            digits = digits[4:]
        if not digits.startswith("0") or digits.startswith("00"):
            return False
        return None if 10 <= len(digits) <= 12 else False
