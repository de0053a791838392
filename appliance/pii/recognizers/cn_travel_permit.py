from appliance.pii.recognizers.base import NOT_ALNUM_AFTER, NOT_ALNUM_BEFORE, BankPatternRecognizer


class CnTravelPermitRecognizer(BankPatternRecognizer):
    """Travel permits: to Hong Kong/Macau (C/W + 8 digits, or C + letter + 7 digits), Home Return Permits of
    Hong Kong and Macau residents (H/M + 8 or 10 digits), Taiwan compatriot permits (8 or 10 digits) and
    permits to Taiwan (L/T + 8 digits). Context decides: the shapes are common elsewhere."""

    ENTITY = "CN_TRAVEL_PERMIT"
    PATTERNS = [
        ("hk_macau", NOT_ALNUM_BEFORE + r"(?:[CW]\d{8}|C[A-HJ-NP-Z]\d{7})" + NOT_ALNUM_AFTER, 0.3),
        ("home_return", NOT_ALNUM_BEFORE + r"[HM]\d{8}(?:\d{2})?" + NOT_ALNUM_AFTER, 0.3),
        ("to_taiwan", NOT_ALNUM_BEFORE + r"[LT]\d{8}" + NOT_ALNUM_AFTER, 0.2),
        ("taiwan_compatriot", NOT_ALNUM_BEFORE + r"\d{8}(?:\d{2})?" + NOT_ALNUM_AFTER, 0.05),
    ]
    CONTEXT = ["通行证", "回乡证", "台胞证", "港澳", "往来台湾", "来往内地", "permit", "home return", "exit-entry",
               "mainland travel"]
    NEGATIVE_CONTEXT = ["订单", "编号", "型号", "order", "sku", "model"]
