import regex
from presidio_analyzer import LocalRecognizer

from appliance.pii import lexicon
from appliance.pii.chinese_ner import ChineseNer
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
# What makes a run of place words an address rather than a place: a road, a number, an estate or building.
_STREET_LEVEL = regex.compile(rf"(?:{'|'.join(lexicon.CN_ROAD_SUFFIXES)})|\d|[号楼室层栋幢座]|小区|花园|大厦|公寓|新村|家园|苑|居|广场|中心|村")
# Every address the rules or the NER accept holds one of these; the costly patterns run only where one is.
_ANY_LEVEL = regex.compile(rf"[省市区县旗镇乡盟州号楼室栋幢座苑居村]|{'|'.join(lexicon.CN_ROAD_SUFFIXES)}|小区|花园|大厦|公寓|广场|中心|\d")
_NUMBER_IN = regex.compile(r"\d+\s?[号楼室层栋幢座]")
_NUMBERED = regex.compile(r"[\d０-９一二三四五六七八九十百零〇]+[A-Za-z]?(?:号楼|号|楼|室|层|栋|幢|座|单元|户)?")
_BUILDING_UNITS = {"号", "楼", "室", "层", "栋", "幢", "座", "单元", "号楼", "户"}
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

    By rule, an address starts at a province or a known city from the gazetteer and needs at least one more
    level ("江苏省南京市玄武区中山路319号"); without them, a road and a number right after a word like 地址 or
    住在 ("住址：朝阳区建国路88号") count too. By the statistical NER, a run of place words with the numbers and
    building words after them is an address when it reaches street level (a road, a number, an estate:
    "永福路泽源居7楼", "南京路86号"). A place name alone (上海, 海淀区) is not an address.
    """

    ENTITY = "CN_ADDRESS"
    CONTEXT = ["地址", "住址", "住在", "家住", "寄到", "address"]
    USES_CHINESE_NER = True

    def __init__(self, supported_language: str = "zh", ner: ChineseNer | None = None):
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__,
                         supported_language=supported_language, context=list(self.CONTEXT))
        self.ner = ner

    def _from_ner(self, text: str) -> list[tuple[int, int]]:
        runs, run = [], []
        for word in self.ner.tag(text):
            piece = text[word.start:word.end]
            if word.tag == "LOC" or (run and (_NUMBERED.fullmatch(piece) or piece in _BUILDING_UNITS)):
                run.append(word)
                continue
            if run:
                runs.append(run)
            run = []
        if run:
            runs.append(run)
        spans = []
        for run in runs:
            start, end = run[0].start, run[-1].end
            places = sum(1 for w in run if w.tag == "LOC")
            street = _STREET_LEVEL.search(text[start:end])
            if street and (places >= 2 or len(run) >= 2 or _NUMBER_IN.search(text[start:end])) \
                    and not _BRANCH.match(text[end:end + 4]):
                spans.append((start, end))
        return spans

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        if self.ENTITY not in entities or not _HAN.search(text) or not _ANY_LEVEL.search(text):
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
        if self.ner:
            results += [found(self, start, end, 0.7) for start, end in self._from_ner(text)]
        return results
