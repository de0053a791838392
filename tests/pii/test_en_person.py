import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("Customer Wei Zhang called about a charge", ["Wei Zhang"]),
    ("Mr. Smith asked to close the account", ["Smith"]),
    ("Complaint from Grace Clark (grace@example.com)", ["Grace Clark"]),
    ("Spoke to David Brown about rates", ["David Brown"]),
    ("客户Zhang Wei来电", ["Zhang Wei"]),
])
def test_found(pii, text, expected):
    assert found(pii, text, "EN_PERSON") == expected


@pytest.mark.parametrize("text", [
    "Customer Service will call back",
    "Send it to Hong Kong",
    "The Bank Of China branch",
])
def test_not_found(pii, text):
    assert found(pii, text, "EN_PERSON") == []
