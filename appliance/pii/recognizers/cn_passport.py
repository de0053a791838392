from appliance.pii.recognizers.base import NOT_ALNUM_AFTER, NOT_ALNUM_BEFORE, BankPatternRecognizer


class CnPassportRecognizer(BankPatternRecognizer):
    """Mainland passports: E + 8 digits, E + letter + 7 digits (from 2012), G + 8 digits (older), and
    service/diplomatic P/S/D + 7 digits. Short codes like these need context to count."""

    ENTITY = "CN_PASSPORT"
    PATTERNS = [
        ("ordinary", NOT_ALNUM_BEFORE + r"[EG]\d{8}" + NOT_ALNUM_AFTER, 0.35),
        ("ordinary_2012", NOT_ALNUM_BEFORE + r"E[A-HJ-NP-Z]\d{7}" + NOT_ALNUM_AFTER, 0.35),
        ("official", NOT_ALNUM_BEFORE + r"[PSD]E?\d{7}" + NOT_ALNUM_AFTER, 0.1),
    ]
    CONTEXT = ["护照", "passport", "证件号", "证件"]
    NEGATIVE_CONTEXT = ["订单", "型号", "产品", "model", "order", "sku"]
