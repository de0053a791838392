from appliance.pii.recognizers.base import NOT_ALNUM_AFTER, NOT_ALNUM_BEFORE, BankPatternRecognizer
from appliance.pii.recognizers.iban import _LENGTHS

_COUNTRIES = set(_LENGTHS) | {"CN", "HK", "MO", "TW", "US", "CA", "AU", "NZ", "JP", "KR", "SG", "MY", "TH", "VN", "ID",
                              "PH", "IN", "RU", "BR", "MX", "ZA"}


class SwiftCodeRecognizer(BankPatternRecognizer):
    """SWIFT/BIC codes (4 bank letters, 2 country letters, 2 location characters, optional 3 branch). Upper
    case words of 8 or 11 letters are common, so only context makes one count."""

    ENTITY = "SWIFT_CODE"
    PATTERNS = [("bic", NOT_ALNUM_BEFORE + r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?" + NOT_ALNUM_AFTER, 0.2)]
    CONTEXT = ["swift", "bic", "银行代码", "汇款", "电汇", "wire", "bank code"]

    def validate_result(self, pattern_text: str):
        return None if pattern_text[4:6] in _COUNTRIES else False
