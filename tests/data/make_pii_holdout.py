"""Writes tests/data/pii_holdout.jsonl: hand-written sentences in styles the dev-set templates do not use
(chat transcripts, letters, shorthand, already-masked values), for an honest figure beside the dev set.

    .venv/bin/python tests/data/make_pii_holdout.py

Markup: [[TYPE:value]] is a labelled span. Numbers were made valid (check digits) when written.
"""

import json
import re
from pathlib import Path

OUT = Path(__file__).with_name("pii_holdout.jsonl")

SENTENCES = """
坐席：您好，请问怎么称呼？客户：我姓周，叫[[CN_PERSON:周建国]]，身份证后四位是1234。
客户：我的卡[[BANK_CARD:6217002870012345672]]昨天在商场被盗刷了两笔。
[[CN_PERSON:刘晓燕]]来行办理挂失，新卡已寄往[[CN_ADDRESS:广东省深圳市福田区深南大道6008号]]。
备注：联系人[[CN_PERSON:陈光明]]，TEL：[[CN_MOBILE:13602345678]]
请于三日内回电[[CN_LANDLINE:020-87654321]]，找[[CN_PERSON:黄丽]]女士。
客户微信同号[[CN_MOBILE:186 0211 3344]]，邮箱[[EMAIL:hl_1988@126.com]]
尊敬的[[CN_PERSON:孙志强]]先生：您尾号5678的信用卡本期账单已出。
已核实客户身份（证件号[[CN_RESIDENT_ID:320102198506120034]]），同意调整额度。
客户反馈：手机号[[CN_MOBILE:+86 159 1234 5678]]收不到验证码，怀疑被运营商拦截。
收款方：[[CN_PERSON:郭美玲]]，开户行：建设银行杭州分行，账号：[[ACCOUNT_NUMBER:33050161234500001234]]
客户[[CN_PERSON:何欢]]要求把账单地址改成[[CN_ADDRESS:浙江省杭州市滨江区江南大道3688号]]。
已电话通知[[CN_PERSON:罗振宇]]，对方表示下周来网点签字。
[[CN_PERSON:马云飞]]：我上个月的工资怎么还没到账？
客户的手机138****5678已脱敏，无需处理。
交易参考号4514617583912345，金额3,280.00元。
今日柜面共办理开户23户，销户4户，挂失7笔。
客户生日[[DATE_OF_BIRTH:1979年11月23日]]，可推送生日礼遇。
他说他的身份证是[[CN_RESIDENT_ID:440106199001012350]]，护照是[[CN_PASSPORT:E98765432]]。
外籍客户[[EN_PERSON:Michael Johnson]]申请开立外币账户，护照号码为[[CN_PASSPORT:EB1234567]]。
Hi team, [[EN_PERSON:Linda Chen]] from the Xuhui branch says the customer never received card [[BANK_CARD:4532015112830366]].
Please call [[EN_PERSON:Mr. Wang]] back at [[CN_MOBILE:13911112222]] before 5pm.
The client ([[EMAIL:j.smith@example.org]]) disputes a charge of USD 49.99.
Customer [[EN_PERSON:Zhou Min]] lives at [[EN_ADDRESS:Room 502, 18 Xinhua Road, Changning, Shanghai]].
Beneficiary: [[EN_PERSON:Anna Schmidt]], IBAN [[IBAN:DE89370400440532013000]], BIC [[SWIFT_CODE:COBADEFFXXX]].
Login attempts from [[IP_ADDRESS:203.0.113.45]] were blocked.
Ticket 88213: password reset requested, no PII attached.
Order 13812345678 was cancelled by the merchant.
[[CN_PERSON:赵敏]]在APP上投诉理财赎回到账慢。
经查，[[CN_PERSON:钱小红]]名下共有三张借记卡。
请客户经理[[CN_PERSON:吴迪]]跟进此事。
客户[[CN_PERSON:司马光]]本人到柜台办理密码重置。
客户住址：[[CN_ADDRESS:武汉市洪山区珞喻路1037号]]，邮编430074。
企业名称：某某商贸有限公司，统一社会信用代码：[[CN_USCC:91420100MA4KA7B2X3]]。
港澳居民来往内地通行证号码[[CN_TRAVEL_PERMIT:H12345678]]。
客户来电说卡号是[[BANK_CARD:6228 4800 1234 5678 911]]，要求冻结。
座机[[CN_LANDLINE:0755-26781234]]转分机8021。
[[CN_PERSON:欧阳修文]]先生的大额存单已到期。
出生年月：[[DATE_OF_BIRTH:1992-07-08]]；性别：女。
产品代码SH600519不属于本行代销范围。
请勿将验证码告知他人，客服电话95588。
客户[[CN_PERSON:林静]]和她丈夫[[CN_PERSON:郑浩]]一起来办理房贷。
联系人：[[CN_PERSON:高峰]] [[CN_MOBILE:15800001111]]
我是[[CN_PERSON:谢霆]]，我的邮箱是[[EMAIL:xieting@qq.com]]。
Dear [[EN_PERSON:Ms. Li]], your statement for account [[ACCOUNT_NUMBER:6222600110012345679]] is ready.
DOB: [[DATE_OF_BIRTH:03/04/1988]], ID [[CN_RESIDENT_ID:110105198804030010]].
Customer says the app crashes on Android 14.
客户余额不足，扣款失败，已短信提醒。
投诉人：[[CN_PERSON:唐嫣然]]；被投诉网点：南京新街口支行。
[[CN_PERSON:曹操]]说他昨天转错了钱，对方账户是[[ACCOUNT_NUMBER:6214830212345671]]。
收件地址[[CN_ADDRESS:四川省成都市高新区天府大道北段1700号环球中心]]
The customer's new address is [[EN_ADDRESS:21 Queen's Road Central, Hong Kong]].
"""


def parse(line: str) -> dict:
    text, spans, position = "", [], 0
    for match in re.finditer(r"\[\[([A-Z_]+):(.+?)\]\]", line):
        text += line[position:match.start()]
        kind, value = match.group(1), match.group(2)
        if kind == "EN_PERSON" and value.split(" ")[0].rstrip(".") in ("Mr", "Ms", "Mrs", "Dr"):
            title, value = value.split(" ", 1)
            text += title + " "
        spans.append({"type": kind, "start": len(text), "end": len(text) + len(value)})
        text += value
        position = match.end()
    return {"text": text + line[position:], "spans": spans}


def main() -> None:
    rows = [parse(line) for line in SENTENCES.strip().splitlines() if line.strip()]
    with open(OUT, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} sentences -> {OUT}")


if __name__ == "__main__":
    main()
