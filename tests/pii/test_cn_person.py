import pytest

from tests.pii.conftest import found


@pytest.mark.parametrize("text, expected", [
    ("客户张伟来电投诉", ["张伟"]),
    ("李娜女士反映转账失败", ["李娜"]),
    ("我叫王芳，想查询余额", ["王芳"]),
    ("回访欧阳娜娜，客户满意", ["欧阳娜娜"]),
    ("客户梁梓桂先生对理财不满", ["梁梓桂"]),
    ("张三投诉网点排队时间过长", ["张三"]),
    ("与李四确认还款", ["李四"]),
    ("转账给陈静 13812345678", ["陈静"]),
    ("法定代表人许霞，办公电话010-62345678", ["许霞"]),
    ("收款人：周杰，账号略", ["周杰"]),
    # No cue word: the statistical NER (LAC) finds these
    ("昨天和李娜一起去银行办理了业务", ["李娜"]),
    ("浙商银行企业信贷部叶老桂博士则从另一个角度进行了解读", ["叶老桂"]),
    ("我今天在地铁上遇到了周杰伦", ["周杰伦"]),
    ("穆里尼奥对比赛结果表示满意", ["穆里尼奥"]),                   # a foreign name in Chinese characters
])
def test_found(pii, text, expected):
    assert found(pii, text, "CN_PERSON") == expected


@pytest.mark.parametrize("text", [
    "客户对服务满意，无其他诉求",
    "高价值客户请走绿色通道",
    "超市购物",
    "金卡客户年费减免",
    "客户在北京市东城区支行办理业务",
    "新闻出版总署发布通知",      # 闻 is a surname, but here inside a word
])
def test_not_found(pii, text):
    assert found(pii, text, "CN_PERSON") == []
