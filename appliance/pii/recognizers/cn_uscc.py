from appliance.pii.recognizers.base import NOT_ALNUM_AFTER, NOT_ALNUM_BEFORE, BankPatternRecognizer, ascii_text

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


class CnUsccRecognizer(BankPatternRecognizer):
    """Unified social credit codes of organisations (18 characters, GB 32100-2015 check character). They
    identify sole proprietors too, which makes them personal data in a bank's notes."""

    ENTITY = "CN_USCC"
    PATTERNS = [("uscc", NOT_ALNUM_BEFORE + r"[1-9ANY][1-9]\d{6}[0-9A-HJ-NPQRTUWXY]{10}" + NOT_ALNUM_AFTER, 0.4)]
    CONTEXT = ["统一社会信用代码", "信用代码", "社会信用", "营业执照", "税号", "纳税人识别号", "uscc", "credit code",
               "business licence", "business license"]
    NEGATIVE_CONTEXT = ["账号", "账户", "帐号", "帐户", "卡号", "批次号", "流水号", "订单号", "合同号", "编号", "account",
                        "card", "batch", "order", "reference"]

    def validate_result(self, pattern_text: str):
        value = ascii_text(pattern_text).upper()
        total = sum(_ALPHABET.index(c) * w for c, w in zip(value[:17], _WEIGHTS))
        check = (31 - total % 31) % 31
        if value[17] != _ALPHABET[check]:
            return False
        # One all-digit 18-digit number in 31 passes the check by chance: those need context to count.
        return None if value.isdigit() else True
