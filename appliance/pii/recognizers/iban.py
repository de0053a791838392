from appliance.pii.recognizers.base import NOT_ALNUM_AFTER, NOT_ALNUM_BEFORE, BankPatternRecognizer

# ISO 13616 lengths per country, for the countries a Chinese bank's cross-border customers meet most.
_LENGTHS = {"AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
            "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23,
            "IS": 26, "IT": 27, "KZ": 20, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
            "NO": 15, "PL": 28, "PT": 25, "QA": 29, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "TR": 26}


class IbanRecognizer(BankPatternRecognizer):
    """International bank account numbers, printed plain or in groups of four, with the ISO 7064 mod-97 check."""

    ENTITY = "IBAN"
    # Letters of either case (people type "gb82west..."); the mod-97 check keeps it safe.
    PATTERNS = [("iban", NOT_ALNUM_BEFORE + r"[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?"
                 + NOT_ALNUM_AFTER, 0.5)]
    CONTEXT = ["iban", "account", "账号", "账户", "汇款", "收款"]

    def validate_result(self, pattern_text: str):
        value = pattern_text.replace(" ", "").upper()
        if _LENGTHS.get(value[:2]) != len(value):
            return False
        rearranged = value[4:] + value[:4]
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
