from appliance.pii.recognizers.base import BankPatternRecognizer

_STREET = r"(?:Road|Rd|Street|St|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Drive|Dr|Way|Court|Ct|Place|Pl|Square|Sq|Terrace)"


class EnAddressRecognizer(BankPatternRecognizer):
    """Street addresses written in English ("Room 1203, 88 Century Avenue, Pudong, Shanghai")."""

    ENTITY = "EN_ADDRESS"
    PATTERNS = [
        ("street", r"(?<![A-Za-z\d])(?:(?:Room|Rm|Flat|Unit|Apt|Suite)\.? ?[\dA-Z\-]+, ?)?\d{1,5}[A-Z]? "
                   rf"(?:[A-Z][a-z]+(?:'s)? ){{1,4}}{_STREET}\.?(?:,? (?:[A-Z][a-z]+)(?: [A-Z][a-z]+)?){{0,3}}"
                   r"(?:,? \d{5,6})?(?![A-Za-z])", 0.6),
    ]
    CONTEXT = ["address", "lives at", "living at", "moved to", "mail to", "send to", "地址", "住址"]
