import logging

import jieba
import jieba.posseg
import regex
from presidio_analyzer import LocalRecognizer

from appliance.pii import lexicon
from appliance.pii.chinese_ner import ChineseNer
from appliance.pii.recognizers.base import found as result

jieba.setLogLevel(logging.WARNING)  # jieba announces its dictionary on stderr otherwise

_SURNAME = "(?:" + "|".join(lexicon.CN_SURNAMES_COMPOUND) + "|[" + "".join(sorted(lexicon.CN_SURNAMES_SINGLE)) + "])"
_GIVEN = r"\p{Han}{1,2}"
# Words right before a name that say "a person follows" (after weaker words, 与 / 给 / 是, the NER decides).
_STRONG_LEFT = ["客户", "顾客", "用户", "储户", "持卡人", "户名", "姓名", "名字", "我叫", "我是", "本人", "联系人", "收款人",
                "付款人", "收件人", "借款人", "担保人", "开户人", "代理人", "经办人", "投诉人", "来电人", "转账给", "转给",
                "汇给", "汇款给", "转账至", "回访", "致电", "联系", "告知", "通知", "提醒", "name", "客户经理",
                "法定代表人", "法人代表", "法人", "负责人", "代表人", "配偶", "监护人", "申请人", "受益人", "被保险人",
                "收款方", "付款方", "汇款人", "名叫", "叫", "丈夫", "妻子", "爱人", "儿子", "女儿", "父亲", "母亲",
                "老公", "老婆"]
_TITLES = ["先生", "女士", "小姐", "经理", "老师", "同志", "师傅", "阿姨", "行长", "主任", "总监", "总"]
_VERBS = ["来电", "投诉", "反映", "咨询", "表示", "称", "要求", "办理", "申请", "致电", "到店", "来行", "来网点", "说",
          "认为", "确认", "同意", "拒绝", "询问", "在", "：", ":"]  # "：" after a clause-initial name: a chat speaker

_LEFT = regex.compile(rf"(?:{'|'.join(_STRONG_LEFT)})[:：]?\s?(?P<name>{_SURNAME}{_GIVEN})")
_TITLE = regex.compile(rf"(?P<name>{_SURNAME}\p{{Han}}{{1,2}}?)(?={'|'.join(_TITLES)})")
_VERB = regex.compile(rf"(?:^|(?<=[\s，。、；！？,.;!?：:“”\"']))(?P<name>{_SURNAME}\p{{Han}}{{1,2}}?)(?={'|'.join(_VERBS)})")
_NAME_TAGS = {"nr", "nrfg", "nrt"}
_HAN = regex.compile(r"\p{Han}")
_STARTS_WITH_SURNAME = regex.compile(_SURNAME)
_COMMON_WORD_FREQ = 100
# What the NER may call a name: Chinese characters (a foreign name may hold a middle dot), or a Latin name
# written inside Chinese text; never a single character.
_NER_NAME = regex.compile(r"\p{Han}[\p{Han}·•]{1,9}|[A-Za-z][A-Za-z .\-]{2,30}")


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
    """Person names in Chinese text. The statistical NER (LAC) finds names wherever they stand, foreign
    names in Chinese characters included. The rules add what a bank's text says outright and a news-trained
    model may miss: a known surname plus one or two characters after 客户 / 我叫 / 收款人 / 转账给 ..., before
    先生 / 女士 / 经理 ..., or at the start of a clause before a verb of speaking or asking (来电, 投诉, 咨询 ...).
    A rule's name must start where the NER's segmentation starts a word ("新闻出版" holds no 闻). Where both
    find a name, the rule's score stands (it has the context)."""

    ENTITY = "CN_PERSON"
    CONTEXT = ["客户", "先生", "女士", "经理", "我叫", "姓名", "name"]
    USES_CHINESE_NER = True
    NER_SCORE = 0.65
    NER_SCORE_WITH_SURNAME = 0.75

    def __init__(self, supported_language: str = "zh", ner: ChineseNer | None = None):
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__,
                         supported_language=supported_language, context=list(self.CONTEXT))
        self.ner = ner

    def load(self) -> None:
        jieba.initialize()

    def analyze(self, text, entities, nlp_artifacts=None):
        if self.ENTITY not in entities or not _HAN.search(text):
            return []
        found: dict[int, tuple[int, float]] = {}
        tagged = self.ner.tag(text) if self.ner else []
        # A name starts where a word starts: a surname character inside another word ("新闻出版") is not one.
        word_starts = {w.start for w in tagged} if tagged else None

        def add(start: int, name: str, score: float) -> None:
            if _is_ordinary_word(name) or (word_starts is not None and start not in word_starts):
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
        for word in tagged:
            name = text[word.start:word.end]
            if word.tag != "PER" or word.start in found or not _NER_NAME.fullmatch(name):
                continue
            score = self.NER_SCORE_WITH_SURNAME if _STARTS_WITH_SURNAME.match(name) else self.NER_SCORE
            found[word.start] = (word.end, score)
        return [result(self, start, end, score) for start, (end, score) in sorted(found.items())]
