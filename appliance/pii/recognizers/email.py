from appliance.pii.recognizers.base import BankPatternRecognizer

# tldextract comes with Presidio and carries a snapshot of the public suffix list; the appliance never lets
# it fetch a newer one (see appliance.offline).
import tldextract

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class EmailRecognizer(BankPatternRecognizer):
    """E-mail addresses, also when written right against Chinese text ("邮箱zhang.wei@163.com。"), with a real
    public suffix."""

    ENTITY = "EMAIL"
    PATTERNS = [("email", r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
                          r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])", 0.6)]
    CONTEXT = ["邮箱", "电邮", "邮件", "email", "e-mail", "mail"]

    def validate_result(self, pattern_text: str):
        parts = _EXTRACT(pattern_text.rsplit("@", 1)[1])
        return bool(parts.suffix and parts.domain)
