import pytest

from appliance.errors import ConfigError
from appliance.pii.recognizers.phone_number import parse_regions
from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("Call me at (579)888-3058 tomorrow", ["(579)888-3058"]),                  # US, as people write it
    ("ring 079 0442 1744 please", ["079 0442 1744"]),                        # GB, grouped
    ("office +46 (0)8 928 571 38", ["+46 (0)8 928 571 38"]),                  # Sweden, with country code
    ("请拨打香港电话 +852 2345 6789", ["+852 2345 6789"]),                       # HK inside Chinese text
    ("Tel: 2813882583", ["2813882583"]),                                      # bare, but context says phone
    ("833.719.3994x1887 is my desk", ["833.719.3994x1887"]),                  # dots and an extension
])
def test_found(pii, text, expected):
    assert found(pii, text, "PHONE_NUMBER") == expected


@pytest.mark.parametrize("text", [
    "The amount 1234567.89 was paid",      # a decimal amount
    "shipped on 2025-06-15",               # a date
    "产品代码P2740476暂停申购",               # the tail of a product code
    "Order no. 15121832928 shipped",       # bare digits after an order number
    "postcode 40402",                      # too few digits
    "931107 00:00:00",                     # a Berka timestamp
    "20240105 103000",                     # a compact date and time
])
def test_not_found(pii, text):
    assert found(pii, text, "PHONE_NUMBER") == []


def test_mainland_numbers_keep_their_own_types(pii):
    assert found(pii, "手机13812345678", "CN_MOBILE") == ["13812345678"]
    assert found(pii, "手机13812345678", "PHONE_NUMBER") == []
    assert found(pii, "电话010-62345678", "CN_LANDLINE") == ["010-62345678"]


def test_regions_setting_is_checked():
    assert parse_regions("cn, hk,US") == ("CN", "HK", "US")
    with pytest.raises(ConfigError, match="'pii.phone_regions'.*'XX'"):
        parse_regions("CN,XX")
