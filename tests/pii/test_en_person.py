import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("Customer Wei Zhang called about a charge", ["Wei Zhang"]),
    ("Mr. Smith asked to close the account", ["Mr. Smith"]),
    ("Complaint from Grace Clark (grace@example.com)", ["Grace Clark"]),
    ("Spoke to David Brown about rates", ["David Brown"]),
    ("客户Zhang Wei来电", ["Zhang Wei"]),
    ("Please contact Maria Garcia at her office in Dallas.", ["Maria Garcia"]),  # known given + family name
    ("Don't go to town, Judy!", ["Judy"]),                                      # a known given name alone
    ("talked to mike yesterday", ["mike"]),                                     # common given name, lower case
    ("Hello, this is Mr. Derek Crnić.", ["Mr. Derek Crnić"]),                   # letters beyond ASCII
    ("Grace Johnson called", ["Grace Johnson"]),                                # a name-word before a surname
    ("Urszula Wójcik opened an account", ["Urszula Wójcik"]),                   # a Polish name (Faker's lists)
])
def test_found(pii, text, expected):
    assert found(pii, text, "EN_PERSON") == expected


@pytest.mark.parametrize("text", [
    "Customer Service will call back",
    "Send it to Hong Kong",
    "The Bank Of China branch",
    "May I have the statement",           # a given name that is mostly a word
    "I will pay in June",
    "Entertainment fees are high",
])
def test_not_found(pii, text):
    assert found(pii, text, "EN_PERSON") == []
