import ipaddress

from appliance.pii.recognizers.base import BankPatternRecognizer


class IpAddressRecognizer(BankPatternRecognizer):
    """IPv4 and IPv6 addresses, checked by the standard library's parser."""

    ENTITY = "IP_ADDRESS"
    PATTERNS = [
        ("ipv4", r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])", 0.6),
        ("ipv6", r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|[0-9A-Fa-f]{1,4})(?:%\w+)?(?![0-9A-Fa-f:])", 0.6),
        ("ipv6_compressed", r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:)*:(?::[0-9A-Fa-f]{1,4})+(?![0-9A-Fa-f:])", 0.5),
    ]
    CONTEXT = ["ip", "地址", "登录", "login", "address", "设备"]
    NEGATIVE_CONTEXT = ["版本", "version", "v."]

    def validate_result(self, pattern_text: str):
        try:
            ipaddress.ip_address(pattern_text.split("%")[0])
        except ValueError:
            return False
        return None
