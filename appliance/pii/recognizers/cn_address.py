import regex
from presidio_analyzer import LocalRecognizer

from appliance.pii import lexicon
from appliance.pii.recognizers.base import found

_CJK = r"\p{Han}"
_PROVINCE = "(?:" + "|".join(lexicon.CN_PROVINCES) + ")(?:" + "|".join(lexicon.CN_PROVINCE_SUFFIXES) + ")?"
_CITY = "(?:" + "|".join(lexicon.CN_CITIES) + ")(?:市)?"
_GENERIC_CITY = rf"{_CJK}{{2,4}}?(?:市|自治州|地区|盟)"
_DISTRICT = rf"{_CJK}{{1,4}}?(?:新区|区|县|旗)"
_TOWN = rf"{_CJK}{{1,5}}?(?:镇|乡|街道)"
_ROAD = rf"[\p{{Han}}\dA-Za-z]{{1,8}}?(?:{'|'.join(lexicon.CN_ROAD_SUFFIXES)})(?:[东西南北中]段)?"
_NUM = r"[\d０-９一二三四五六七八九十百零〇]+"
_NUMBER = rf"{_NUM}(?:号|弄|栋|幢)(?:{_NUM}[A-Za-z]?(?:号楼|栋|幢|座|单元|层|楼|室|号|户))*"
_ESTATE = rf"{_CJK}{{2,6}}?(?:小区|花园|大厦|公寓|新村|家园|苑|广场|中心)(?:{_NUM}[A-Za-z]?(?:号楼|栋|幢|座|单元|层|楼|室|号))*"
_HAN = regex.compile(r"\p{Han}")
# A place followed by these names a bank's own branch ("北京市东城区支行"), not where a person lives.
_BRANCH = regex.compile(r"(?:支行|分行|总行|营业部|分理处|储蓄所|网点|营业厅)")
_CONTEXT = r"(?:地址|住址|住在|家住|居住在|现住|寄到|寄往|搬到|搬至|位于|改为|变更为|address)[:：]?\s?"

_ANCHORED = regex.compile(
    rf"(?P<province>{_PROVINCE})?(?P<city>{_CITY}|(?(province){_GENERIC_CITY}|(?!)))?"
    rf"(?(province)|(?(city)|(?!)))"  # a province or a known city starts an anchored address
    rf"(?P<district>{_DISTRICT})?(?P<town>{_TOWN})?(?:(?P<road>{_ROAD})(?P<number>{_NUMBER})?)?(?P<estate>{_ESTATE})?")
_BY_CONTEXT = regex.compile(
    rf"(?<={_CONTEXT})(?P<district>{_DISTRICT})?(?P<town>{_TOWN})?(?P<road>{_ROAD})(?P<number>{_NUMBER})"
    rf"(?P<estate>{_ESTATE})?", regex.IGNORECASE)


class CnAddressRecognizer(LocalRecognizer):
    """Chinese postal addresses: province / city / district / town / road / number / estate and room.

    An address starts at a province or a known city from the gazetteer and needs at least one more level
    ("江苏省南京市玄武区中山路319号"); without them, a road and a number right after a word like 地址 or 住在
    ("住址：朝阳区建国路88号") count too. A city name alone is not an address.
    """

    ENTITY = "CN_ADDRESS"
    CONTEXT = ["地址", "住址", "住在", "家住", "寄到", "address"]

    def __init__(self, supported_language: str = "zh"):
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__,
                         supported_language=supported_language, context=list(self.CONTEXT))

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        if self.ENTITY not in entities or not _HAN.search(text):
            return []
        results = []
        taken_until = -1
        for match in _ANCHORED.finditer(text):
            if match.start() < taken_until or match.end() == match.start():
                continue
            levels = sum(1 for g in ("province", "city", "district", "town", "road", "estate") if match.group(g))
            has_street = bool(match.group("road") and match.group("number")) or bool(match.group("estate"))
            if levels < 2 or _BRANCH.search(text[match.end():match.end() + 4]):
                continue
            score = 0.85 if has_street else 0.6
            results.append(found(self, match.start(), match.end(), score))
            taken_until = match.end()
        for match in _BY_CONTEXT.finditer(text):
            if match.start() >= taken_until:
                results.append(found(self, match.start(), match.end(), 0.7))
        return results
