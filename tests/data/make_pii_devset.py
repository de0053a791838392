"""Writes tests/data/pii_dev.jsonl: labelled bank sentences, Chinese and English, for `appliance pii eval`.

    .venv/bin/python tests/data/make_pii_devset.py

Deterministic (seeded). Each line: {"text": ..., "spans": [{"type", "start", "end"}]}. Values are synthetic but
valid (resident ID check digits, Luhn, MOD 97, GB 32100 check characters). Hard negatives carry numbers that
look like PII and are not: order numbers shaped like mobiles, Luhn-valid reference numbers, amounts, trade
dates, product codes, version strings.
"""

import json
import random
import string
from pathlib import Path

from appliance.demo_data import REGIONS, id_check_digit, luhn_complete

OUT = Path(__file__).with_name("pii_dev.jsonl")
R = random.Random(20261123)

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤") + ["欧阳", "司马", "诸葛", "上官"]
GIVEN = list("伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红玲芬燕鹏辉晨宇浩然轩梓涵诺欣怡佳琪思远雨桐博文俊嘉诗晓婷雪慧建国志")
EN_FIRST = ["James", "Mary", "John", "Linda", "David", "Sarah", "Michael", "Emily", "Peter", "Grace", "Kevin", "Helen"]
EN_LAST = ["Smith", "Brown", "Taylor", "Wilson", "Johnson", "Lee", "Walker", "Harris", "Clark", "Green"]
PY_FIRST = ["Wei", "Fang", "Na", "Min", "Jing", "Lei", "Jun", "Yang", "Jie", "Tao", "Ming", "Hui", "Xin", "Yu"]
PY_LAST = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu"]
EXTRA_PLACES = [("浙江省", "宁波市", "鄞州区", ["天童南路", "四明中路"]), ("福建省", "厦门市", "思明区", ["湖滨南路", "厦禾路"]),
                ("山东省", "青岛市", "市南区", ["香港中路", "东海西路"]), ("湖南省", "长沙市", "岳麓区", ["麓山南路", "枫林一路"]),
                ("天津市", "", "和平区", ["南京路", "滨江道"]), ("重庆市", "", "渝中区", ["解放碑步行街", "中山三路"])]
ESTATES = ["阳光花园", "锦绣家园", "世纪公寓", "金地新村", "碧桂苑", "国贸大厦"]
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def digits(n: int) -> str:
    return "".join(R.choice(string.digits) for _ in range(n))


def resident_id() -> str:
    region = R.choice(REGIONS)[0]
    year, month, day = R.randint(1950, 2004), R.randint(1, 12), R.randint(1, 28)
    first17 = f"{region}{year}{month:02d}{day:02d}{digits(3)}"
    return first17 + id_check_digit(first17)


def mobile() -> str:
    number = R.choice(["138", "139", "135", "150", "158", "186", "188", "177", "199", "131"]) + digits(8)
    style = R.random()
    if style < 0.45:
        return number
    if style < 0.6:
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    if style < 0.7:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if style < 0.8:
        return "+86 " + number
    if style < 0.87:
        return "0086" + number
    if style < 0.94:
        return "+86-" + number
    return number.translate(FULLWIDTH)


def landline() -> str:
    area = R.choice(["010", "021", "020", "0755", "0571", "025", "028", "027"])
    number = R.choice("2345678") + digits(7 if len(area) == 3 else R.choice([6, 7]))
    return R.choice([f"{area}-{number}", f"({area}){number}", f"{area} {number}", f"{area}{number}"])


def bank_card() -> str:
    kind = R.random()
    if kind < 0.6:
        number = luhn_complete("62" + digits(R.choice([13, 14, 15, 16])))
    elif kind < 0.8:
        number = luhn_complete("4" + digits(14))
    else:
        number = luhn_complete("5" + str(R.randint(1, 5)) + digits(13))
    if R.random() < 0.35 and len(number) in (16, 19):
        return " ".join(number[i:i + 4] for i in range(0, len(number), 4))
    return number


def uscc() -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    body = "91" + R.choice(REGIONS)[0] + "".join(R.choice(alphabet) for _ in range(9))
    total = sum(alphabet.index(c) * w for c, w in zip(body, weights))
    return body + alphabet[(31 - total % 31) % 31]


def iban() -> str:
    country, bank = R.choice([("GB", "NWBK" + digits(6) + digits(8)), ("DE", digits(18)), ("FR", digits(23))])
    bban = bank if country != "FR" else digits(23)
    checksum = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    value = f"{country}{checksum:02d}{bban}"
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if R.random() < 0.5 else value


def cn_name() -> str:
    return R.choice(SURNAMES) + "".join(R.choice(GIVEN) for _ in range(R.choice([1, 2, 2])))


def en_name() -> str:
    return f"{R.choice(PY_FIRST)} {R.choice(PY_LAST)}" if R.random() < 0.5 else f"{R.choice(EN_FIRST)} {R.choice(EN_LAST)}"


def email() -> str:
    user = R.choice(["zhang.wei", "lina", "wangfang88", "chen_jie", "liu.min2020", "hui.xu", "peter.lee", "grace_w"])
    return f"{user}{R.randint(1, 999)}@{R.choice(['qq.com', '163.com', '126.com', 'sina.com.cn', 'gmail.com', 'outlook.com', 'icbc.com.cn'])}"


def cn_address() -> str:
    if R.random() < 0.7:
        code, province, city, district, roads = R.choice(REGIONS)
        city = "" if city == province else city
    else:
        province, city, district, roads = R.choice(EXTRA_PLACES)
    road = R.choice(roads)
    tail = f"{road}{R.randint(1, 999)}号"
    if R.random() < 0.35:
        tail += f"{R.choice(ESTATES)}{R.randint(1, 30)}栋{R.randint(1, 30)}0{R.randint(1, 9)}室"
    return f"{province}{city}{district}{tail}" if R.random() < 0.8 else f"{city or province}{district}{tail}"


def en_address() -> str:
    return (f"{R.choice(['', 'Room 1203, ', 'Flat 5, '])}{R.randint(1, 999)} {R.choice(['Century', 'Nanjing', 'Huaihai', 'Jianguo', 'Queen'])} "
            f"{R.choice(['Avenue', 'Road', 'Street'])}, {R.choice(['Pudong', 'Chaoyang', 'Xuhui', 'Central'])}, "
            f"{R.choice(['Shanghai', 'Beijing', 'Hong Kong'])}")


def dob() -> str:
    y, m, d = R.randint(1950, 2004), R.randint(1, 12), R.randint(1, 28)
    return R.choice([f"{y}-{m:02d}-{d:02d}", f"{y}年{m}月{d}日", f"{y}/{m:02d}/{d:02d}", f"{d:02d}/{m:02d}/{y}"])


def ipv4() -> str:
    return ".".join(str(R.randint(1, 254)) for _ in range(4))


def ipv6() -> str:
    return ":".join(f"{R.randint(0, 65535):x}" for _ in range(8))


VALUES = {
    "CN_RESIDENT_ID": resident_id, "CN_MOBILE": mobile, "CN_LANDLINE": landline, "BANK_CARD": bank_card,
    "EMAIL": email, "CN_PERSON": cn_name, "EN_PERSON": en_name, "CN_ADDRESS": cn_address, "EN_ADDRESS": en_address,
    "CN_USCC": uscc, "IBAN": iban, "DATE_OF_BIRTH": dob, "IP_ADDRESS": lambda: ipv4() if R.random() < 0.7 else ipv6(),
    "CN_PASSPORT": lambda: "E" + digits(8), "CN_TRAVEL_PERMIT": lambda: "C" + digits(8),
    "SWIFT_CODE": lambda: R.choice(["BKCHCNBJ", "ICBKCNBJ", "PCBCCNBJ", "ABOCCNBJ", "CMBCCNBS", "HSBCHKHH"]),
    "ACCOUNT_NUMBER": lambda: R.choice(["3100", "1100", "4400"]) + digits(R.choice([12, 14, 16])),
}

ZH = [
    "客户{CN_PERSON}来电投诉，称信用卡{BANK_CARD}被重复扣款，联系电话{CN_MOBILE}，要求尽快退款。",
    "{CN_PERSON}女士反映手机银行转账失败，身份证号{CN_RESIDENT_ID}，已登记工单，回拨{CN_MOBILE}。",
    "客户{CN_PERSON}先生对理财产品亏损不满，住址{CN_ADDRESS}，要求经理回访。",
    "{CN_PERSON}投诉网点排队时间过长，并表示考虑将资金转出我行。",
    "客户来电：我叫{CN_PERSON}，卡号{BANK_CARD}的年费为什么没有减免？电话{CN_MOBILE}。",
    "回访{CN_PERSON}，客户对服务满意，推荐了定期存款产品。",
    "{CN_PERSON}咨询房贷提前还款事宜，已告知所需材料，手机{CN_MOBILE}。",
    "与客户{CN_PERSON}沟通信用卡分期，客户暂不需要。邮箱{EMAIL}。",
    "客户{CN_PERSON}更新联系地址为{CN_ADDRESS}。",
    "转账给{CN_PERSON} {CN_MOBILE}",
    "收款人：{CN_PERSON}，收款账号：{ACCOUNT_NUMBER}，开户行：工商银行。",
    "持卡人{CN_PERSON}，身份证{CN_RESIDENT_ID}，出生日期{DATE_OF_BIRTH}。",
    "客户表示身份证号码是{CN_RESIDENT_ID}，手机{CN_MOBILE}已停用，新号码{CN_MOBILE}。",
    "请将对账单寄到{CN_ADDRESS}，收件人{CN_PERSON}，电话{CN_MOBILE}。",
    "企业客户统一社会信用代码{CN_USCC}，法定代表人{CN_PERSON}，办公电话{CN_LANDLINE}。",
    "客户{CN_PERSON}办理出国金融业务，护照号码{CN_PASSPORT}，生日{DATE_OF_BIRTH}。",
    "{CN_PERSON}先生持港澳通行证{CN_TRAVEL_PERMIT}办理开户。",
    "客户境外汇款，收款行SWIFT代码{SWIFT_CODE}，IBAN {IBAN}。",
    "手机银行异常登录，登录IP {IP_ADDRESS}，已通知客户{CN_PERSON}。",
    "客户邮箱{EMAIL}无法接收电子账单，已为其更换邮箱。",
    "座机{CN_LANDLINE}无人接听，改拨手机{CN_MOBILE}联系上{CN_PERSON}女士。",
    "{CN_PERSON}经理已与客户约定面谈时间。",
    "客户称其借记卡{BANK_CARD}在ATM被吞，网点已登记。",
    "我的手机号是{CN_MOBILE}，身份证{CN_RESIDENT_ID}，麻烦帮我查一下。",
    "客户家住{CN_ADDRESS}，希望就近网点办理。",
    "致电{CN_PERSON}确认还款计划，客户同意分三期还款。",
    "工单：客户{CN_PERSON}（手机：{CN_MOBILE}）反映短信验证码收不到。",
    "账户{ACCOUNT_NUMBER}已冻结，户名{CN_PERSON}。",
]
EN = [
    "Customer {EN_PERSON} called about a duplicate charge on card {BANK_CARD}; call back on {CN_MOBILE}.",
    "Complaint from {EN_PERSON} ({EMAIL}): mobile banking login keeps failing.",
    "Follow-up call with {EN_PERSON}: interested in wealth products, email {EMAIL}.",
    "Mr. {EN_PERSON} moved to {EN_ADDRESS} and asked us to update his records.",
    "Client date of birth: {DATE_OF_BIRTH}; ID number {CN_RESIDENT_ID}.",
    "Please send the statement to {EN_ADDRESS}, attention {EN_PERSON}.",
    "Wire transfer to IBAN {IBAN}, SWIFT {SWIFT_CODE}, beneficiary {EN_PERSON}.",
    "Suspicious login from IP {IP_ADDRESS} on the account of {EN_PERSON}.",
    "The customer's mobile is {CN_MOBILE} and the office phone is {CN_LANDLINE}.",
    "Card {BANK_CARD} reported lost by cardholder {EN_PERSON}.",
    "Spoke to {EN_PERSON}, who confirmed the passport number {CN_PASSPORT}.",
    "Ms. {EN_PERSON} asked to close account {ACCOUNT_NUMBER}.",
    "DOB {DATE_OF_BIRTH}, mobile {CN_MOBILE}, email {EMAIL}.",
    "客户{EN_PERSON}来电，邮箱{EMAIL}，卡号{BANK_CARD}。",
]
NEGATIVES = [
    "订单号{NEG_ORDER}已发货，预计三天内送达。",
    "交易流水号{NEG_LUHN}，金额{NEG_AMOUNT}元，交易日期{NEG_DATE}。",
    "本月代发工资{NEG_AMOUNT}元，已于{NEG_DATE}入账。",
    "理财产品编号{NEG_ORDER}，年化收益率3.15%，期限182天。",
    "Order no. {NEG_ORDER} shipped on {NEG_DATE}, amount {NEG_AMOUNT}.",
    "Reference {NEG_LUHN} for the payment of {NEG_AMOUNT} CNY.",
    "手机银行版本1.2.3.4已上线，请客户升级。",
    "网点编号{NEG_SHORT}，柜员号{NEG_SHORT}，今日办理业务{NEG_SMALL}笔。",
    "合同号{NEG_LUHN}，贷款金额{NEG_AMOUNT}元，利率4.2%。",
    "客户对服务满意，无其他诉求。",
    "Invoice {NEG_ORDER} for {NEG_AMOUNT} was paid on {NEG_DATE}.",
    "批次号{NEG_LUHN}的代扣文件已处理完毕。",
    "产品代码{NEG_PRODUCT}暂停申购，恢复时间另行通知。",
    "Meeting with the branch team on {NEG_DATE} about Q3 targets.",
    "单号{NEG_ORDER}的快递已签收。",
]


def negative_value(slot: str) -> str:
    if slot == "NEG_ORDER":
        return R.choice(["13", "15", "18"]) + digits(9)  # shaped like a mobile
    if slot == "NEG_LUHN":
        return luhn_complete(R.choice(["62", "43", "55"]) + digits(R.choice([14, 15, 16])))  # Luhn-valid, not a card
    if slot == "NEG_AMOUNT":
        return f"{R.randint(100, 999999):,}.{R.randint(0, 99):02d}"
    if slot == "NEG_DATE":
        return f"2025-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}"
    if slot == "NEG_SHORT":
        return digits(5)
    if slot == "NEG_SMALL":
        return str(R.randint(10, 300))
    return "P" + digits(7)


def fill(template: str) -> dict:
    text, spans = "", []
    for literal, slot in _parts(template):
        text += literal
        if slot is None:
            continue
        if slot.startswith("NEG_"):
            text += negative_value(slot)
            continue
        value = VALUES[slot]()
        spans.append({"type": slot, "start": len(text), "end": len(text) + len(value)})
        text += value
    return {"text": text, "spans": spans}


def _parts(template: str):
    rest = template
    while "{" in rest:
        before, _, after = rest.partition("{")
        slot, _, rest = after.partition("}")
        yield before, slot
    yield rest, None


def main() -> None:
    rows = [fill(R.choice(ZH)) for _ in range(700)] + [fill(R.choice(EN)) for _ in range(300)]
    rows += [fill(R.choice(NEGATIVES)) for _ in range(200)]
    R.shuffle(rows)
    with open(OUT, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} sentences -> {OUT}")


if __name__ == "__main__":
    main()
