"""The LAC runner: a padded batch gives what texts one at a time give, and the batch decode is the plain
Viterbi."""

import numpy as np
import pytest

from appliance.pii.chinese_ner import ChineseNer, viterbi


@pytest.fixture(scope="module")
def ner():
    return ChineseNer()


def test_batches_equal_single_texts(ner):
    texts = ["张三在北京市工作", "客户李华来电反映其信用卡在上海市浦东新区被盗刷，要求冻结并请王经理回电。", "好",
             "请联系王小明先生"]
    batched = ner.tag_many(texts)
    for text, words in zip(texts, batched):
        ner._cache.clear()
        assert ner.tag(text) == words


def test_tags_names_and_places(ner):
    text = "张三在北京市工作"
    assert [(text[w.start:w.end], w.tag) for w in ner.tag(text)][:3] == [("张三", "PER"), ("在", "p"), ("北京市", "LOC")]


def test_long_texts_are_cut_and_offsets_stay_right(ner):
    text = "客户张伟来电。" * 60  # 420 characters
    words = ner.tag(text)
    assert words[0].start == 0 and words[-1].end == len(text)
    assert all(a.end == b.start for a, b in zip(words, words[1:]))
    assert sum(1 for w in words if w.tag == "PER" and text[w.start:w.end] == "张伟") == 60


def _viterbi_one(emissions, transitions):
    score, back = emissions[0], []
    for t in range(1, len(emissions)):
        candidates = score[:, None] + transitions
        back.append(candidates.argmax(0))
        score = candidates.max(0) + emissions[t]
    path = [int(score.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1]


def test_batch_viterbi_is_the_plain_one():
    rng = np.random.default_rng(3)
    transitions = rng.normal(size=(6, 6)).astype(np.float32)
    lengths = np.array([5, 1, 3, 5])
    emissions = rng.normal(size=(4, 5, 6)).astype(np.float32)
    paths = viterbi(emissions, lengths, transitions)
    for row, n in enumerate(lengths):
        assert list(paths[row, :n]) == _viterbi_one(emissions[row, :n], transitions)
