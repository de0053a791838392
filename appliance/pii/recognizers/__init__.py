"""The recognizers the engine registers: an explicit allowlist, one class per module."""

from appliance.pii.recognizers.account_number import AccountNumberRecognizer
from appliance.pii.recognizers.bank_card import BankCardRecognizer
from appliance.pii.recognizers.cn_address import CnAddressRecognizer
from appliance.pii.recognizers.cn_landline import CnLandlineRecognizer
from appliance.pii.recognizers.cn_mobile import CnMobileRecognizer
from appliance.pii.recognizers.cn_passport import CnPassportRecognizer
from appliance.pii.recognizers.cn_person import CnPersonRecognizer
from appliance.pii.recognizers.cn_resident_id import CnResidentIdRecognizer
from appliance.pii.recognizers.cn_travel_permit import CnTravelPermitRecognizer
from appliance.pii.recognizers.cn_uscc import CnUsccRecognizer
from appliance.pii.recognizers.date_of_birth import DateOfBirthRecognizer
from appliance.pii.recognizers.email import EmailRecognizer
from appliance.pii.recognizers.en_address import EnAddressRecognizer
from appliance.pii.recognizers.en_person import EnPersonRecognizer
from appliance.pii.recognizers.iban import IbanRecognizer
from appliance.pii.recognizers.phone_number import PhoneNumberRecognizer
from appliance.pii.recognizers.social_handle import SocialHandleRecognizer
from appliance.pii.recognizers.ip_address import IpAddressRecognizer
from appliance.pii.recognizers.swift_code import SwiftCodeRecognizer

RECOGNIZERS = (
    CnResidentIdRecognizer, CnMobileRecognizer, CnLandlineRecognizer, BankCardRecognizer, CnUsccRecognizer,
    CnPassportRecognizer, CnTravelPermitRecognizer, EmailRecognizer, IpAddressRecognizer, IbanRecognizer,
    SwiftCodeRecognizer, CnAddressRecognizer, EnAddressRecognizer, CnPersonRecognizer, EnPersonRecognizer,
    DateOfBirthRecognizer, AccountNumberRecognizer, PhoneNumberRecognizer, SocialHandleRecognizer,
)
ENTITIES = tuple(r.ENTITY for r in RECOGNIZERS)
