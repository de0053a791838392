from appliance.pii.recognizers.base import NOT_DIGIT_AFTER, NOT_DIGIT_BEFORE, SEP, BankPatternRecognizer


class AccountNumberRecognizer(BankPatternRecognizer):
    """Bank account numbers written in context ("账号", "account no."): 8-25 digits, maybe grouped. Without
    context a long number is just a number, so the base score is below any threshold."""

    ENTITY = "ACCOUNT_NUMBER"
    PATTERNS = [("account", NOT_DIGIT_BEFORE + rf"\d{{4}}(?:{SEP}?\d{{2,4}}){{1,5}}\d{{0,4}}" + NOT_DIGIT_AFTER, 0.05)]
    CONTEXT = ["账号", "帐号", "账户", "帐户", "对公户", "收款户", "account no", "account number", "acct", "a/c",
               "account"]
    NEGATIVE_CONTEXT = ["订单", "流水号", "order", "reference", "invoice"]
