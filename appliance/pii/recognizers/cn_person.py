import logging

import jieba
import jieba.posseg
import regex
from presidio_analyzer import LocalRecognizer

from appliance.pii import lexicon
from appliance.pii.recognizers.base import found as result

jieba.setLogLevel(logging.WARNING)  # jieba announces its dictionary on stderr otherwise

_SURNAME = "(?:" + "|".join(lexicon.CN_SURNAMES_COMPOUND) + "|[" + "".join(sorted(lexicon.CN_SURNAMES_SINGLE)) + "])"
_GIVEN = r"\p{Han}{1,2}"
# Words right before a name that say "a person follows": strong ones stand alone, weak ones need jieba's
# part-of-speech tagger to agree that a person name (nr) starts there.
_STRONG_LEFT = ["客户", "顾客", "用户", "储户", "持卡人", "户名", "姓名", "名字", "我叫", "我是", "本人", "联系人", "收款人",
                "付款人", "收件人", "借款人", "担保人", "开户人", "代理人", "经办人", "投诉人", "来电人", "转账给", "转给",
                "汇给", "汇款给", "转账至", "回访", "致电", "联系", "告知", "通知", "提醒", "name", "客户经理",
                "法定代表人", "法人代表", "法人", "负责人", "代表人", "配偶", "监护人", "申请人", "受益人", "被保险人",
                "收款方", "付款方", "汇款人", "名叫", "叫", "丈夫", "妻子", "爱人", "儿子", "女儿", "父亲", "母亲",
                "老公", "老婆"]
_WEAK_LEFT = ["与", "和", "跟", "给", "向", "对", "让", "请", "帮", "替", "由", "是", "为", "及", "、", "，", "。", "：", ":"]
_TITLES = ["先生", "女士", "小姐", "经理", "老师", "同志", "师傅", "阿姨", "行长", "主任", "总监", "总"]
_VERBS = ["来电", "投诉", "反映", "咨询", "表示", "称", "要求", "办理", "申请", "致电", "到店", "来行", "来网点", "说",
          "认为", "确认", "同意", "拒绝", "询问", "在", "：", ":"]  # "：" after a clause-initial name: a chat speaker

_LEFT = regex.compile(rf"(?:{'|'.join(_STRONG_LEFT)})[:：]?\s?(?P<name>{_SURNAME}{_GIVEN})")
_TITLE = regex.compile(rf"(?P<name>{_SURNAME}\p{{Han}}{{1,2}}?)(?={'|'.join(_TITLES)})")
_VERB = regex.compile(rf"(?:^|(?<=[\s，。、；！？,.;!?：:“”\"']))(?P<name>{_SURNAME}\p{{Han}}{{1,2}}?)(?={'|'.join(_VERBS)})")
_WEAK = regex.compile(rf"(?:{'|'.join(map(regex.escape, _WEAK_LEFT))})(?P<name>{_SURNAME}{_GIVEN})")
_NAME_TAGS = {"nr", "nrfg", "nrt"}
_HAN = regex.compile(r"\p{Han}")
_STARTS_WITH_SURNAME = regex.compile(_SURNAME)
_COMMON_WORD_FREQ = 100


def _trim(name: str) -> str:
    """Cut a greedy surname + two characters back where a verb or particle clearly starts the next word."""
    surname = next((s for s in lexicon.CN_SURNAMES_COMPOUND if name.startswith(s)), name[0])
    given = name[len(surname):]
    if len(given) == 2 and given[1] in lexicon.CN_NAME_STOP:
        given = given[:1]
    return surname + given


def _is_ordinary_word(candidate: str) -> bool:
    """jieba's dictionary knows the candidate as a common word that is not a name: "满意", "关系", "项目".
    Rare dictionary words ("金诗", "江华") are names as often as not, so frequency decides."""
    tag = jieba.posseg.dt.word_tag_tab.get(candidate)
    return tag is not None and tag not in _NAME_TAGS and jieba.dt.FREQ.get(candidate, 0) >= _COMMON_WORD_FREQ


def _segment_name(text: str, start: int) -> str | None:
    """jieba's first word at `start`, when it looks like a whole name (surname + one or two characters)."""
    words = jieba.lcut(text[start:start + 6], HMM=True)
    if not words:
        return None
    first = words[0]
    if (first in lexicon.CN_SURNAMES_COMPOUND or len(first) == 1) and len(words) > 1 and len(words[1]) <= 2 \
            and words[1][0] not in lexicon.CN_NAME_STOP:
        return first + words[1]  # jieba split the surname from an unknown given name
    if 2 <= len(first) <= 4 and _STARTS_WITH_SURNAME.match(first):
        return first
    return None


class CnPersonRecognizer(LocalRecognizer):
    """Chinese person names: a known surname plus one or two characters, where the text says a person is meant:
    after 客户 / 我叫 / 收款人 / 转账给 ..., before 先生 / 女士 / 经理 ..., or at the start of a clause before a verb
    of speaking or asking (来电, 投诉, 咨询 ...). After weaker words (与, 给, 是 ...) jieba's part-of-speech
    tagger must also call it a person name. Word boundaries come from jieba's segmentation."""

    ENTITY = "CN_PERSON"
    CONTEXT = ["客户", "先生", "女士", "经理", "我叫", "姓名", "name"]

    def __init__(self, supported_language: str = "zh"):
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__,
                         supported_language=supported_language, context=list(self.CONTEXT))

    def load(self) -> None:
        jieba.initialize()

    def analyze(self, text, entities, nlp_artifacts=None):
        if self.ENTITY not in entities or not _HAN.search(text):
            return []
        found: dict[int, tuple[int, float]] = {}

        def add(start: int, name: str, score: float) -> None:
            if _is_ordinary_word(name):
                return
            if start not in found or found[start][1] < score:
                found[start] = (start + len(name), score)

        def longer_if_word(start: int, name: str) -> str:
            """After 户名/客户..., a two-character reading that is a common word ("王国") may be the start of a
            three-character name ("王国思")."""
            following = text[start + len(name):start + len(name) + 1]
            if len(name) == 2 and _is_ordinary_word(name) and _HAN.match(following) \
                    and following not in lexicon.CN_NAME_STOP:
                return name + following
            return name

        for match in _TITLE.finditer(text):
            add(match.start("name"), match.group("name"), 0.9)
        for match in _VERB.finditer(text):
            add(match.start("name"), match.group("name"), 0.75)
        for match in _LEFT.finditer(text):
            start = match.start("name")
            if start in found:
                continue
            add(start, longer_if_word(start, _segment_name(text, start) or _trim(match.group("name"))), 0.85)
        for match in _WEAK.finditer(text):
            start = match.start("name")
            if start in found:
                continue
            words = jieba.posseg.lcut(text[start:start + 6])
            if words and words[0].flag in _NAME_TAGS and 2 <= len(words[0].word) <= 4:
                add(start, words[0].word, 0.7)
        return [result(self, start, end, score) for start, (end, score) in sorted(found.items())]
