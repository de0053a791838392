import datetime as dt

from appliance.pii.recognizers.base import NOT_ALNUM_AFTER, NOT_ALNUM_BEFORE, BankPatternRecognizer, ascii_text

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_PROVINCES = {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42",
              "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82", "91"}
_D = r"\d"
_DATE18 = r"(?:[1１][9９]|[2２][0０])\d{2}(?:[0０]\d|[1１][0-2０-２])(?:[0-3０-３]\d)"


def _valid_birth(year: int, month: int, day: int) -> bool:
    try:
        born = dt.date(year, month, day)
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= born <= dt.date.today()


class CnResidentIdRecognizer(BankPatternRecognizer):
    """Mainland resident identity card numbers: 18 characters with the GB 11643 MOD 11-2 check character and a
    valid birth date; the legacy 15-digit form (no check digit) scores lower and leans on context."""

    ENTITY = "CN_RESIDENT_ID"
    PATTERNS = [
        ("id18", NOT_ALNUM_BEFORE + rf"{_D}{{6}}[ \u3000]?{_DATE18}[ \u3000]?{_D}{{3}}[\dXxＸｘ]" + NOT_ALNUM_AFTER, 0.5),
        ("id15", NOT_ALNUM_BEFORE + rf"{_D}{{8}}(?:[0０]\d|[1１][0-2０-２])[0-3０-３]\d{_D}{{3}}" + NOT_ALNUM_AFTER, 0.3),
    ]
    CONTEXT = ["身份证", "证件号", "证件", "公民身份", "居民身份", "身份号码", "id no", "id number", "identity", "id card",
               "resident id", "national id"]
    NEGATIVE_CONTEXT = ["订单号", "订单", "流水号", "单号", "order no", "order id", "reference", "ref no", "tracking"]

    def validate_result(self, pattern_text: str):
        value = ascii_text(pattern_text).upper()
        if value[:2] not in _PROVINCES:
            return False
        if len(value) == 18:
            if not _valid_birth(int(value[6:10]), int(value[10:12]), int(value[12:14])):
                return False
            expected = _CHECK[sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS)) % 11]
            return True if value[17] == expected else self.suspect(pattern_text)
        if not _valid_birth(1900 + int(value[6:8]), int(value[8:10]), int(value[10:12])):
            return False
        return None  # 15 digits carry no check digit: the pattern score stands, context decides
