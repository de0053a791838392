"""A realistic, deterministic Chinese retail-bank dataset for demos, tests and benchmarks.

Customers carry valid-looking PII (resident IDs with MOD 11-2 check digits, mobile numbers, UnionPay
cards with Luhn digits, addresses), so the protection on the way in has something real to protect.
Activity has seasonality (Spring Festival, Double 11), salary days, and churners whose activity decays
over the months before they close their accounts. Balances run forward in time: every customer has money
coming in (a salary, or transfers from elsewhere) that roughly matches what goes out, so a stayer's balance
holds; a churner's inflows fall away while they wind down. Churn goes on past the end of the data: some
customers are winding down when it ends and close in the months after, which `truth/churn.csv` records
(outside what any mapping reads), so a model scored on the last day can be judged against what happened.
Transactions fall on every day of the month. Written block by block: memory stays flat for
N = 1,000,000 customers. The files are those the `demo` source mapping reads; `branches.csv` is
GB18030 and `customers.csv` is UTF-8 with a BOM, as Chinese core systems export them.
"""

import csv
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

PERIOD_START = date(2025, 1, 1)
PERIOD_MONTHS = 18
BLOCK = 5_000
TRUTH_MONTHS = 3  # churners may close up to this many months after the data ends

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤") + ["欧阳", "司马", "诸葛"]
GIVEN = list("伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬燕鹏辉晨宇浩然子轩梓涵一诺欣怡佳琪思远雨桐博文俊杰嘉怡诗涵")
REGIONS = [  # (resident-ID area code, province, city, district, roads)
    ("110101", "北京市", "北京市", "东城区", ["东长安街", "王府井大街", "建国门内大街"]),
    ("110105", "北京市", "北京市", "朝阳区", ["建国路", "朝阳北路", "望京街"]),
    ("310101", "上海市", "上海市", "黄浦区", ["南京东路", "淮海中路", "西藏中路"]),
    ("310115", "上海市", "上海市", "浦东新区", ["世纪大道", "张杨路", "陆家嘴环路"]),
    ("440103", "广东省", "广州市", "荔湾区", ["中山七路", "康王中路", "龙津西路"]),
    ("440305", "广东省", "深圳市", "南山区", ["深南大道", "科技园路", "南海大道"]),
    ("330106", "浙江省", "杭州市", "西湖区", ["文三路", "天目山路", "曙光路"]),
    ("510107", "四川省", "成都市", "武侯区", ["人民南路", "科华北路", "武侯祠大街"]),
    ("420106", "湖北省", "武汉市", "武昌区", ["中南路", "中北路", "武珞路"]),
    ("320102", "江苏省", "南京市", "玄武区", ["中山路", "北京东路", "珠江路"]),
]
BRANCHES = [(f"BR{i:03d}", f"{r[2]}{r[3]}支行", r[1], r[2]) for i, r in enumerate(REGIONS, 1)]
MOBILE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159",
                   "177", "180", "181", "186", "187", "188", "189", "199"]
MAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "outlook.com", "gmail.com"]
PRODUCTS = [  # code, name, category
    ("DEP01", "活期储蓄", "deposit"), ("TD12", "定期存款一年", "deposit"), ("WM01", "稳健理财", "wealth"),
    ("WM02", "进取理财", "wealth"), ("FD01", "货币基金", "fund"), ("CC01", "信用卡金卡", "credit_card"),
    ("ML01", "个人住房贷款", "loan"), ("CL01", "消费贷", "loan"), ("INS1", "意外保险", "insurance"),
]
# Who a bank's retail customers are, roughly: (persona, share, mean age, activity, digital beta a, b, balance
# multiplier, share paid their salary here). Segments have something real to find.
PERSONAS = [
    ("young_digital", 0.30, 28, 1.4, 8.0, 2.0, 0.4, 0.55),
    ("salaried_family", 0.35, 41, 1.0, 3.0, 3.0, 1.0, 0.75),
    ("affluent", 0.10, 50, 0.8, 3.0, 3.0, 8.0, 0.40),
    ("senior_branch", 0.25, 66, 0.6, 1.2, 6.0, 2.5, 0.15),
]
SEASON = {1: 1.35, 2: 1.25, 3: 0.95, 4: 0.95, 5: 1.0, 6: 1.05, 7: 0.95, 8: 0.95, 9: 1.0, 10: 1.1, 11: 1.3,
          12: 1.15}
CATEGORIES = [  # category, channel weights (branch, atm, pos, app, web), memo, amount scale
    ("grocery", "超市购物", 120), ("dining", "餐饮", 90), ("online_shopping", "网购", 260), ("utilities", "水电燃气费", 180),
    ("transfer_out", "转账", 1500), ("cash_withdrawal", "ATM取款", 800), ("rent", "房租", 3500),
    ("travel", "差旅出行", 900), ("education", "教育缴费", 2000),
]
COMPLAINT_ZH = [
    "客户{name}来电投诉，称信用卡{card}被重复扣款，联系电话{mobile}，要求尽快退款。",
    "{name}女士反映手机银行转账失败，身份证号{id}，已登记工单，回拨{mobile}。",
    "客户{name}先生对理财产品亏损不满，住址{address}，要求经理回访。",
    "{name}投诉网点排队时间过长，并表示考虑将资金转出我行。",
    "客户来电：我叫{name}，卡号{card}的年费为什么没有减免？电话{mobile}。",
]
COMPLAINT_EN = [
    "Customer {pinyin} called about a duplicate charge on card {card}; call back on {mobile}.",
    "Complaint from {pinyin} ({email}): mobile banking login keeps failing, considering closing the account.",
]
NOTE_ZH = [
    "回访{name}，客户对服务满意，推荐了定期存款产品。",
    "{name}咨询房贷提前还款事宜，已告知所需材料，手机{mobile}。",
    "与客户{name}沟通信用卡分期，客户暂不需要。邮箱{email}。",
    "客户{name}更新联系地址为{address}。",
]
NOTE_EN = [
    "Follow-up call with {pinyin}: interested in wealth products, email {email}.",
    "Spoke to {pinyin} about the new savings rate; no action needed.",
]
PINYIN = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu"]
GIVEN_PINYIN = ["Wei", "Fang", "Na", "Min", "Jing", "Lei", "Jun", "Yang", "Yong", "Jie", "Tao", "Ming", "Chao"]

_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS)) % 11]


def luhn_complete(partial: str) -> str:
    """Append the Luhn check digit."""
    total = 0
    for i, d in enumerate(reversed(partial)):
        n = int(d)
        if i % 2 == 0:
            n *= 2
            n -= 9 if n > 9 else 0
        total += n
    return partial + str((10 - total % 10) % 10)


def month_start(offset: int, first: date = PERIOD_START) -> date:
    y, m = divmod(first.month - 1 + offset, 12)
    return date(first.year + y, m + 1, 1)


@dataclass
class Counts:
    customers: int = 0
    accounts: int = 0
    transactions: int = 0
    holdings: int = 0
    interactions: int = 0
    events: int = 0
    campaign_responses: int = 0


def generate(out: Path, customers: int, seed: int = 7, months: int = PERIOD_MONTHS,
             tx_per_month: float = 4.0, first: date = PERIOD_START) -> Counts:
    """Write the dataset for `customers` over `months` months from `first` (a month's first day)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    truth_dir = out / "truth"  # a folder: ingesting `out` reads only the files beside it
    truth_dir.mkdir(exist_ok=True)
    counts = Counts()
    with open(out / "branches.csv", "w", encoding="gb18030", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["网点编号", "网点名称", "省份", "城市"])
        writer.writerows(BRANCHES)
    campaigns = [("CMP01", "春节理财节", "app", "deposit_growth", "2026-01-10", "2026-02-28"),
                 ("CMP02", "流失挽留关怀", "phone", "retention", "2026-03-01", "2026-04-30")]
    with open(out / "campaigns.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["campaign_code", "campaign_name", "channel", "objective", "start_date", "end_date"])
        writer.writerows(campaigns)
    files = {
        "customers": open(out / "customers.csv", "w", encoding="utf-8-sig", newline=""),
        "accounts": open(out / "accounts.csv", "w", encoding="utf-8", newline=""),
        "transactions": open(out / "transactions.csv", "w", encoding="utf-8", newline=""),
        "holdings": open(out / "holdings.csv", "w", encoding="utf-8", newline=""),
        "interactions": open(out / "interactions.csv", "w", encoding="utf-8", newline=""),
        "responses": open(out / "campaign_responses.csv", "w", encoding="utf-8", newline=""),
        "events": open(out / "events.jsonl", "w", encoding="utf-8"),
        "truth": open(truth_dir / "churn.csv", "w", encoding="utf-8", newline=""),
    }
    try:
        for start in range(0, customers, BLOCK):
            rng = np.random.default_rng([seed, start])
            _block(rng, first, start, min(BLOCK, customers - start), months, tx_per_month, files, counts,
                   header=start == 0)
    finally:
        for handle in files.values():
            handle.close()
    return counts


def _write(frame: pd.DataFrame, handle, header: bool) -> None:
    frame.to_csv(handle, index=False, header=header, lineterminator="\n")


def _block(rng: np.random.Generator, first: date, start: int, n: int, months: int, tx_per_month: float, files: dict,
           counts: Counts, header: bool) -> None:
    period_end = month_start(months, first) - timedelta(days=1)
    ids = [f"C{start + i + 1:09d}" for i in range(n)]
    region_idx = rng.integers(0, len(REGIONS), n)
    male = rng.random(n) < 0.5
    persona = rng.choice(len(PERSONAS), n, p=[p[1] for p in PERSONAS])
    age = np.clip(rng.normal(np.array([p[2] for p in PERSONAS])[persona], 6).round(), 18, 85).astype(int)
    birth_offsets = rng.integers(0, 365, n)
    joined_days = rng.integers(0, 365 * 12, n)  # joined up to 12 years before the period ends
    churner = rng.random(n) < 0.18
    # Closing from the middle of the period to three months after its end (those close after the data).
    close_month = np.where(churner, rng.integers(months // 2, months + TRUTH_MONTHS, n), -1)
    traits = np.array([p[3:] for p in PERSONAS])[persona]  # activity, digital a, digital b, balance, payroll
    activity = rng.lognormal(0.0, 0.35, n) * tx_per_month * traits[:, 0]
    digital = rng.beta(traits[:, 1], traits[:, 2])
    payroll = rng.random(n) < traits[:, 4]
    wealthy = (np.array([p[0] for p in PERSONAS])[persona] == "affluent") & (rng.random(n) < 0.6)

    cust_rows, acct_rows, hold_rows, people, truth_rows = [], [], [], [], []
    for i in range(n):
        region = REGIONS[region_idx[i]]
        birth = date(period_end.year - age[i], 1, 1) + timedelta(days=int(birth_offsets[i]))
        sequence = int(rng.integers(0, 500)) * 2 + (1 if male[i] else 0)
        first17 = f"{region[0]}{birth:%Y%m%d}{sequence:03d}"
        id_number = first17 + id_check_digit(first17)
        surname = SURNAMES[rng.integers(0, len(SURNAMES))]
        name = surname + "".join(GIVEN[j] for j in rng.integers(0, len(GIVEN), 1 + int(rng.random() < 0.7)))
        mobile = MOBILE_PREFIXES[rng.integers(0, len(MOBILE_PREFIXES))] + f"{int(rng.integers(0, 10**8)):08d}"
        pinyin = f"{GIVEN_PINYIN[rng.integers(0, len(GIVEN_PINYIN))]} {PINYIN[rng.integers(0, len(PINYIN))]}"
        email = f"{pinyin.replace(' ', '.').lower()}{int(rng.integers(1, 999))}@{MAIL_DOMAINS[rng.integers(0, 6)]}"
        address = (f"{region[1]}{region[2] if region[2] != region[1] else ''}{region[3]}"
                   f"{region[4][rng.integers(0, 3)]}{int(rng.integers(1, 999))}号")
        joined = period_end - timedelta(days=int(joined_days[i]))
        close_day = (month_start(int(close_month[i]), first) + timedelta(days=int(rng.integers(0, 27)))
                     if churner[i] else None)
        truth_rows.append((ids[i], close_day.isoformat() if close_day else ""))
        closed = close_day if close_day is not None and close_month[i] < months else None
        branch = BRANCHES[region_idx[i]][0]
        segment = "私行" if wealthy[i] else ("财富" if rng.random() < 0.2 else "大众")
        card = luhn_complete("62" + "".join(str(d) for d in rng.integers(0, 10, 15)))
        cust_rows.append((ids[i], name, id_number, mobile, email, address, branch, region[2], joined.isoformat(),
                          segment, "销户" if closed else "正常", closed.isoformat() if closed else ""))
        people.append({"name": name, "id": id_number, "mobile": mobile, "email": email, "address": address,
                       "card": card, "pinyin": pinyin})
        base = 5_000 * rng.lognormal(0, 0.8) * traits[i, 3] * (3 if wealthy[i] else 1)
        accounts = [("current", "DEP01", card, base)]
        if rng.random() < 0.45:
            accounts.append(("savings", "TD12", "6" + "".join(str(d) for d in rng.integers(0, 10, 18)), base * 2))
        if rng.random() < 0.35:
            accounts.append(("credit_card", "CC01", luhn_complete("6258" + "".join(
                str(d) for d in rng.integers(0, 10, 11))), 0.0))
        for kind, product, number, balance in accounts:
            # The current account opens on joining, others within about a year after; one that would open
            # after the data ends is not in it (capping it at the end would make every account open then).
            opened = joined if kind == "current" else joined + timedelta(days=int(rng.integers(0, 400)))
            if opened > period_end:
                continue
            acct_rows.append((number, ids[i], product, kind, "CNY", branch, opened.isoformat(),
                              closed.isoformat() if closed else "", "closed" if closed else "active",
                              round(0.0 if closed else balance, 2), 50_000 if kind == "credit_card" else ""))
            hold_rows.append((f"H{counts.holdings + len(hold_rows) + 1:010d}", ids[i], number, product,
                              dict((p[0], p[1]) for p in PRODUCTS)[product],
                              dict((p[0], p[2]) for p in PRODUCTS)[product], opened.isoformat(),
                              closed.isoformat() if closed else "", round(balance, 2)))
        for code, pname, category in PRODUCTS[2:5] + PRODUCTS[6:]:
            if rng.random() < (0.25 if wealthy[i] else 0.06):
                opened = joined + timedelta(days=int(rng.integers(0, 300)))
                if opened <= period_end:
                    hold_rows.append((f"H{counts.holdings + len(hold_rows) + 1:010d}", ids[i], "", code, pname,
                                      category, opened.isoformat(), "", round(float(rng.lognormal(10, 1)), 2)))

    _write(pd.DataFrame(cust_rows, columns=["客户号", "姓名", "证件号码", "手机号", "电子邮箱", "联系地址", "开户网点", "城市",
                                            "入行日期", "客户分层", "客户状态", "销户日期"]), files["customers"], header)
    _write(pd.DataFrame(acct_rows, columns=["account_no", "customer_no", "product_code", "account_type", "currency",
                                            "branch_code", "open_date", "close_date", "status", "balance",
                                            "credit_limit"]), files["accounts"], header)
    _write(pd.DataFrame(hold_rows, columns=["holding_id", "customer_no", "account_no", "product_code", "product_name",
                                            "category", "start_date", "end_date", "amount"]), files["holdings"], header)
    _write(pd.DataFrame(truth_rows, columns=["customer_no", "closes_on"]), files["truth"], header)
    counts.customers += n
    counts.accounts += len(acct_rows)
    counts.holdings += len(hold_rows)
    current = {row[1]: row[0] for row in reversed(acct_rows) if row[3] == "current"}

    _transactions(rng, first, start, ids, current, activity, digital, payroll, churner, close_month, months, files,
                  counts, header, people, traits[:, 3] * np.where(wealthy, 3.0, 1.0))
    _interactions(rng, first, ids, people, churner, close_month, months, files, counts, header)
    _events(rng, first, ids, digital, churner, close_month, months, files, counts)
    _responses(rng, ids, churner, files, counts, header)


def _active_months(churner: np.ndarray, close_month: np.ndarray, months: int) -> np.ndarray:
    """(customers x months) weight: 1 while active, decaying over the 4 months before a churner leaves."""
    month = np.arange(months)[None, :]
    until = np.where(churner, close_month, months)[:, None]
    decay = np.clip((until - month) / 5.0, 0, 1)
    return np.where(churner[:, None], decay, 1.0) * (month <= until)


def _transactions(rng, first, start, ids, current, activity, digital, payroll, churner, close_month, months, files,
                  counts, header, people, balance_scale) -> None:
    n = len(ids)
    season = np.array([SEASON[month_start(m, first).month] for m in range(months)])
    weight = _active_months(churner, close_month, months) * season[None, :]
    per_month = rng.poisson(activity[:, None] * weight)
    cust, month = np.nonzero(per_month)
    reps = per_month[cust, month]
    cust, month = np.repeat(cust, reps), np.repeat(month, reps)
    # salary credits on the 10th or 15th, while active
    pay_c, pay_m = np.nonzero((weight > 0.6) & payroll[:, None])
    m_total = len(cust)
    cat = rng.integers(0, len(CATEGORIES), m_total)
    scale = np.array([c[2] for c in CATEGORIES])[cat]
    amount = np.round(rng.lognormal(0, 0.7, m_total) * scale, 2)
    days_in_month = np.array([(month_start(m + 1, first) - month_start(m, first)).days for m in range(months)])
    day = np.floor(rng.random(m_total) * days_in_month[month]).astype(int)
    digital_pick = rng.random(m_total) < digital[cust]
    channel = np.where(digital_pick, np.where(rng.random(m_total) < 0.75, "app", "web"),
                       np.where(rng.random(m_total) < 0.5, "pos", np.where(rng.random(m_total) < 0.6, "atm", "branch")))
    channel = np.where(np.array([c[0] for c in CATEGORIES])[cat] == "cash_withdrawal", "atm", channel)
    # Money in matches a month's spending (90-120%), as a salary or, for those paid elsewhere, as transfers
    # from another bank: a stayer's balance holds, it neither drains nor piles up; a churner winding down
    # brings in half of what goes out.
    spent = pd.Series(amount).groupby([cust, month]).sum()
    pay_spend = spent.reindex(pd.MultiIndex.from_arrays([pay_c, pay_m])).to_numpy()
    salary = np.round(np.where(np.isnan(pay_spend), rng.lognormal(8.0, 0.4, len(pay_c)),
                               np.nan_to_num(pay_spend) * rng.uniform(0.9, 1.2, len(pay_c))), 2)
    in_c, in_m = (spent.index.get_level_values(0).to_numpy(), spent.index.get_level_values(1).to_numpy())
    takes = ~payroll[in_c]
    in_c, in_m, spent = in_c[takes], in_m[takes], spent.to_numpy()[takes]
    winding = weight[in_c, in_m] / season[in_m] < 0.999
    transfer_in = np.round(spent * rng.uniform(0.9, 1.2, len(spent)) * np.where(winding, 0.5, 1.0), 2)
    in_day = np.floor(rng.random(len(in_c)) * days_in_month[in_m]).astype(int)
    all_cust = np.concatenate([cust, pay_c, in_c])
    all_month = np.concatenate([month, pay_m, in_m])
    all_day = np.concatenate([day, np.where(pay_c % 2 == 0, 9, 14), in_day])
    seconds = rng.integers(8 * 3600, 22 * 3600, len(all_cust))
    stamps = (np.array([np.datetime64(month_start(m, first)) for m in range(months)])[all_month]
              + all_day.astype("timedelta64[D]")).astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    frame = pd.DataFrame({
        "cust": all_cust, "booked": stamps,
        "amount": np.concatenate([amount, salary, transfer_in]),
        "direction": np.concatenate([np.full(m_total, "D"), np.full(len(pay_c) + len(in_c), "C")]),
        "channel": np.concatenate([channel, np.full(len(pay_c), "transfer"),
                                   np.where(rng.random(len(in_c)) < 0.7, "app", "branch")]),
        "category": np.concatenate([np.array([c[0] for c in CATEGORIES])[cat], np.full(len(pay_c), "salary"),
                                    np.full(len(in_c), "transfer_in")]),
        "memo": np.concatenate([np.array([c[1] for c in CATEGORIES])[cat], np.full(len(pay_c), "代发工资"),
                                np.full(len(in_c), "他行转入")]),
    }).sort_values(["cust", "booked"], kind="stable").reset_index(drop=True)
    memo = frame["memo"].to_numpy(dtype=object)
    for row in np.nonzero(rng.random(len(frame)) < 0.01)[0]:  # some memos name the payee: PII in free text
        payee = people[rng.integers(0, n)]
        memo[row] = f"转账给{payee['name']} {payee['mobile']}"
    frame["memo"] = memo
    signed = np.where(frame["direction"] == "C", frame["amount"], -frame["amount"])
    running = pd.Series(signed).groupby(frame["cust"]).cumsum()
    # Forward from an opening balance; an overdraft at some point is covered by a larger opening balance
    # (the flows have no drift, so this shifts a balance, it does not tilt it).
    floor = running.groupby(frame["cust"]).transform("min").clip(upper=0)
    opening = pd.Series(rng.lognormal(8.5, 0.6, n) * balance_scale)[frame["cust"]].to_numpy()
    frame["balance_after"] = np.round(opening - floor + running, 2)
    frame.insert(0, "txn_id", [f"T{start:09d}{i:08d}" for i in range(len(frame))])
    frame.insert(1, "account_no", [current[ids[c]] for c in frame["cust"]])
    frame.insert(2, "customer_no", [ids[c] for c in frame["cust"]])
    frame["booked"] = frame["booked"].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame = frame.drop(columns="cust")[["txn_id", "account_no", "customer_no", "booked", "amount", "direction",
                                        "balance_after", "channel", "category", "memo"]]
    frame.columns = ["txn_id", "account_no", "customer_no", "txn_time", "amount", "dc_flag", "balance_after",
                     "channel", "category", "memo"]
    _write(frame, files["transactions"], header)
    counts.transactions += len(frame)


def _interactions(rng, first, ids, people, churner, close_month, months, files, counts, header) -> None:
    rows = []
    for i, cid in enumerate(ids):
        expected = 0.35 + (1.2 if churner[i] else 0.0)
        for _ in range(rng.poisson(expected)):
            last = min(close_month[i], months) if churner[i] else months
            m = int(rng.integers(max(0, last - 6), max(1, last)))
            length = (month_start(m + 1, first) - month_start(m, first)).days
            when = month_start(m, first) + timedelta(days=int(rng.integers(0, length)),
                                                     seconds=int(rng.integers(32400, 64800)))
            complaint = rng.random() < (0.6 if churner[i] else 0.25)
            english = rng.random() < 0.2
            pool = (COMPLAINT_EN if english else COMPLAINT_ZH) if complaint else (NOTE_EN if english else NOTE_ZH)
            text = pool[rng.integers(0, len(pool))].format(**people[i])
            kind = "complaint" if complaint else "call_note"
            rows.append((f"I{counts.interactions + len(rows) + 1:010d}", cid,
                         f"{when:%Y-%m-%d} {int(rng.integers(9, 18)):02d}:{int(rng.integers(0, 60)):02d}:00", kind,
                         "phone" if rng.random() < 0.7 else "branch", "服务" if not complaint else "投诉", text,
                         "Y" if rng.random() < 0.7 else "N"))
    _write(pd.DataFrame(rows, columns=["interaction_id", "customer_no", "occurred_at", "type", "channel", "category",
                                       "content", "resolved"]), files["interactions"], header)
    counts.interactions += len(rows)


def _events(rng, first, ids, digital, churner, close_month, months, files, counts) -> None:
    weight = _active_months(churner, close_month, months)
    per_month = rng.poisson(digital[:, None] * 2.0 * weight)
    cust, month = np.nonzero(per_month)
    reps = per_month[cust, month]
    cust, month = np.repeat(cust, reps), np.repeat(month, reps)
    kinds = np.array(["login", "view_balance", "transfer", "bill_pay", "view_product", "apply_product"])
    kind = kinds[rng.choice(len(kinds), len(cust), p=[0.35, 0.3, 0.15, 0.1, 0.08, 0.02])]
    chan = np.where(rng.random(len(cust)) < 0.8, "app", "web")
    days_in_month = np.array([(month_start(m + 1, first) - month_start(m, first)).days for m in range(months)])
    day = np.floor(rng.random(len(cust)) * days_in_month[month]).astype(int)
    secs = rng.integers(0, 86400, len(cust))
    device = rng.integers(0, 3, len(cust))
    handle = files["events"]
    for j in range(len(cust)):
        when = month_start(int(month[j]), first) + timedelta(days=int(day[j]))
        handle.write(json.dumps({
            "event_id": f"E{counts.events + j + 1:011d}", "customer_no": ids[cust[j]],
            "ts": f"{when:%Y-%m-%d}T{secs[j] // 3600:02d}:{secs[j] % 3600 // 60:02d}:{secs[j] % 60:02d}",
            "channel": str(chan[j]), "event": str(kind[j]), "device_id": f"DEV-{ids[cust[j]]}-{device[j]}"},
            ensure_ascii=False) + "\n")
    counts.events += len(cust)


def _responses(rng, ids, churner, files, counts, header) -> None:
    rows = []
    for i, cid in enumerate(ids):
        if rng.random() < 0.15:
            treated = rng.random() < 0.8
            responded = rng.random() < (0.12 if treated else 0.05)
            rows.append((f"R{counts.campaign_responses + len(rows) + 1:010d}", "CMP01", cid,
                         "treatment" if treated else "control", "2026-01-15 10:00:00",
                         "2026-01-20 12:00:00" if responded else "", "accepted" if responded else "no_response"))
    _write(pd.DataFrame(rows, columns=["response_id", "campaign_code", "customer_no", "group", "contacted_at",
                                       "responded_at", "outcome"]), files["responses"], header)
    counts.campaign_responses += len(rows)
