from appliance.pii.recognizers.base import BankPatternRecognizer


class SocialHandleRecognizer(BankPatternRecognizer):
    """Social-media and chat handles (@name): an online identifier of a person, masked like a name, but not
    a name."""

    ENTITY = "SOCIAL_HANDLE"
    PATTERNS = [("handle", r"(?<![A-Za-z\d@._%+\-])@[A-Za-z_][A-Za-z\d_]{2,30}(?![A-Za-z\d_@.\-])", 0.6)]
    CONTEXT = ["微博", "微信", "推特", "twitter", "weibo", "instagram", "wechat", "follow"]
