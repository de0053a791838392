import phonenumbers
import regex
from phonenumbers import Leniency, PhoneNumberMatcher
from presidio_analyzer import LocalRecognizer

from appliance.errors import ConfigError
from appliance.pii.recognizers.base import found as result

DEFAULT_REGIONS = ("CN", "HK", "MO", "TW", "SG", "US", "GB", "DE", "FR", "AU", "JP", "KR")
# Written the way phone numbers are: a leading + or (, groups split by spaces, dashes or dots, an extension.
_DATE = regex.compile(r"\d{4}[\-./年]\d{1,2}[\-./月]\d{1,2}|\d{1,2}[\-./]\d{1,2}[\-./]\d{2,4}")
# (A single dot is a decimal point: an amount, not a phone.)
# A compact date first (19931107, 931107) and a time after it: a timestamp, not a phone.
_DATE_FIRST = regex.compile(r"(?:19|20)?\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[ T]")
_PHONE_SHAPED = regex.compile(r"^[+(（]|\d[ \-)）]+\(?\d|\d+\.\d+\.\d|\d\s?(?:x|ext\.?)\s?\d", regex.IGNORECASE)


def parse_regions(value: str | tuple[str, ...]) -> tuple[str, ...]:
    """Region codes from the setting (comma-separated ISO 3166 codes), each one phonenumbers knows."""
    codes = tuple(c.strip().upper() for c in (value.split(",") if isinstance(value, str) else value) if c.strip())
    unknown = [c for c in codes if c not in phonenumbers.SUPPORTED_REGIONS]
    if unknown or not codes:
        raise ConfigError(f"setting 'pii.phone_regions': unknown region code '{unknown[0] if unknown else ''}'"
                          " (use ISO 3166 codes such as CN, HK, US)")
    return codes


class PhoneNumberRecognizer(LocalRecognizer):
    """Phone numbers of the configured regions through Google's libphonenumber (`phonenumbers`, which
    Presidio's own phone recognizer uses). A number that is valid in a region, or possible and written as
    phone numbers are written ("(579)888-3058", "+46 (0)8 928 571 38", "079 0442 1744"), counts; a bare run
    of digits needs a context word (电话, phone, call): in bank data it is more often an amount or a code. Mainland mobiles and landlines
    keep their own recognizers, which score higher and win where both match."""

    ENTITY = "PHONE_NUMBER"
    CONTEXT = ["电话", "手机", "联系", "致电", "来电", "号码", "phone", "tel", "telephone", "mobile", "cell", "call",
               "contact", "fax", "whatsapp"]
    NEGATIVE_CONTEXT = ["订单号", "订单", "流水号", "单号", "交易号", "编号", "金额", "余额", "账号", "卡号", "order",
                        "reference", "ref no", "invoice", "amount", "serial", "account", "balance"]
    VALID_SCORE = 0.6
    SHAPED_SCORE = 0.55
    BARE_VALID_SCORE = 0.45
    BARE_SCORE = 0.3
    MIN_DIGITS = 7

    def __init__(self, supported_language: str = "en", regions: tuple[str, ...] = DEFAULT_REGIONS):
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__,
                         supported_language=supported_language, context=list(self.CONTEXT))
        self.regions = parse_regions(regions)
        self.negative_context = list(self.NEGATIVE_CONTEXT)

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        if self.ENTITY not in entities:
            return []
        spans: dict[tuple[int, int], float] = {}
        for region in self.regions:
            for match in PhoneNumberMatcher(text, region, leniency=Leniency.POSSIBLE):
                span = (match.start, match.end)
                raw = match.raw_string
                if sum(c.isdigit() for c in raw) < self.MIN_DIGITS or _DATE.fullmatch(raw) or _DATE_FIRST.match(raw) \
                        or (match.start and text[match.start - 1].isalnum()) or text[match.end:match.end + 1] == ":":
                    continue  # a postcode, a house number, a date or a time, the tail of a product code
                shaped = _PHONE_SHAPED.search(raw)
                valid = phonenumbers.is_valid_number(match.number)
                if shaped:
                    score = self.VALID_SCORE if valid else self.SHAPED_SCORE
                else:  # a bare run of digits is as often an amount, a code or an account: context decides
                    score = self.BARE_VALID_SCORE if valid else self.BARE_SCORE
                spans[span] = max(score, spans.get(span, 0.0))
        return [result(self, start, end, score) for (start, end), score in sorted(spans.items())]
