"""The console's server time per page at bank scale: p50 and p95 of each page and API call, at 10,000 and at
1,000,000 customers in the same run.

    .venv/bin/python benchmarks/console.py [--sizes 10000 1000000] [--requests 40]

Target (issue 13): every page's p95 under 300 ms with 1,000,000 customers loaded.

The store is filled straight into the real schema, with its real indexes: customers, accounts, 8 transactions,
a balance feature, churn scores with reasons on two dates, segments and about 6 tags each; then the pipeline's own summaries are made by its own code
(scoring.summarise_risk, tagging's overlap and flow summaries, segment profiles). Filling this way takes
minutes where ingesting and scoring a million customers takes most of an hour; the pages read the same tables
either way. Requests go through the real Flask app (test client, no network), signed in as the role the page
needs; the time is from request to full response body.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
AS_OF = date(2026, 11, 1)
BRANCHES = [f"BR{i:03d}" for i in range(1, 61)]
TAGS = ["payroll", "dormant_90", "recently_active", "affluent", "mass_market", "digital_first", "branch_reliant",
        "app_engaged", "activity_falling", "balance_growing", "net_outflow", "big_spender"]
STAGES = ["lapsed", "new", "declining", "growing", "mature"]
CHUNK = 100_000


def fill(home, customers: int, seed: int = 5) -> None:
    from appliance import tagging
    from appliance.scoring import summarise_risk

    rng = np.random.default_rng(seed)
    store = home.store
    day, before = AS_OF.isoformat(), (AS_OF - timedelta(30)).isoformat()
    reasons_zh = json.dumps(["近90天无交易", "余额较6个月前下降62%"], ensure_ascii=False)
    reasons_en = json.dumps(["no transactions in 90 days", "balance down 62% on 6 months ago"])
    stages_before, tagged_parts, stage_parts = [], [], []
    for start in range(0, customers, CHUNK):
        n = min(CHUNK, customers - start)
        ids = [f"{i:032x}" for i in range(start, start + n)]
        p = rng.beta(0.6, 6, n)
        band = np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low"))
        branch = rng.choice(BRANCHES, n)
        segment = rng.integers(0, 8, n)
        with store.transaction():
            store.executemany(
                "INSERT INTO customers (customer_id, name, phone, gender, age, region, city, branch, segment, "
                "joined_on, status, source, batch_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,'bench',1)",
                [(c, f"n{c[:16]}", f"p{c[:16]}", "F" if i % 2 else "M", int(20 + i % 60), "华东", "上海市", b,
                  "retail", "2019-03-01", "active") for i, (c, b) in enumerate(zip(ids, branch))])
            store.executemany("INSERT INTO accounts (account_id, customer_id, product, currency, opened_on, status, "
                              "balance, source, batch_id) VALUES (?,?,'DEP01','CNY','2019-03-01','active',?,"
                              "'bench',1)", [(f"a{c}", c, float(b)) for c, b in zip(ids, rng.gamma(2, 20000, n))])
            store.executemany(
                "INSERT INTO transactions (transaction_id, account_id, customer_id, booked_at, amount, direction, "
                "currency, channel, category, memo, source, batch_id) VALUES (?,?,?,?,?,?,'CNY','app',"
                "'transfer_in','他行转入','bench',1)",
                [(f"t{c}{k}", f"a{c}", c, f"2026-{1 + k:02d}-15T10:00:00", 100.0 * (k + 1), "credit")
                 for c in ids for k in range(8)])
            store.executemany("INSERT INTO customer_features (customer_id, as_of, balance_now, computed_at) "
                              "VALUES (?,?,?,'2026-11-01')",
                              [(c, day, float(b)) for c, b in zip(ids, rng.gamma(1.2, 40000, n))])
            for as_of in (before, day):
                store.executemany("INSERT INTO customer_scores VALUES (?,?,'bench',?,?,?,?,'2026-11-01')",
                                  [(c, as_of, float(q), b, reasons_zh, reasons_en) for c, q, b in zip(ids, p, band)])
                store.executemany("INSERT INTO customer_segments VALUES (?,?,?,'bench')",
                                  [(c, as_of, int(s)) for c, s in zip(ids, segment)])
            tagged_parts.append(pd.DataFrame(rng.random((n, len(TAGS))) < 0.4, index=ids, columns=TAGS))
            stage_parts.append(pd.Series(rng.choice(STAGES, n), index=ids))
            stages_before.append(pd.Series(rng.choice(STAGES, n), index=ids))
            for as_of, tagged, stage in ((before, tagged_parts[-1].iloc[:, :0], stages_before[-1]),
                                         (day, tagged_parts[-1], stage_parts[-1])):
                store.executemany("INSERT INTO customer_tags VALUES (?,?,?,'2026-11-01')",
                                  ((as_of, c, held) for c, held in tagging._tag_sets(tagged, stage)[0]))
    with store.transaction():
        profiles = [{"segment": s, "name_zh": f"客群{s}", "name_en": f"segment {s}", "size": customers // 8,
                     "recency_days": 20.0 + s, "frequency_365": 40.0 + s, "monetary_365": 50000.0 + s,
                     "balance_median": 30000.0 * (s + 1), "products_mean": 2.0, "churn_rate": 0.05 * s}
                    for s in range(8)]
        store.executemany("INSERT INTO segment_profiles VALUES (?,?,?)",
                          [(day, p["segment"], json.dumps(p, ensure_ascii=False)) for p in profiles])
    for as_of in (before, day):
        summarise_risk(home.store, date.fromisoformat(as_of))
    # The tag summaries, by the pipeline's own code, over what was just stored.
    with store.transaction():
        tagging._summarise(store, day, pd.concat(tagged_parts), pd.concat(stage_parts))
    store.execute("ANALYZE")


def measure(home, requests: int, seed: int = 9) -> dict[str, tuple[float, float]]:
    from appliance.api_tokens import ApiTokens
    from appliance.web import create_app
    from tests.web.test_console import HTTPS, _sign_in

    rng = np.random.default_rng(seed)
    app = create_app(home, testing=True)
    for name, role in (("bench.staff", "staff"), ("bench.analyst", "analyst")):
        if not home.store.scalar("SELECT 1 FROM users WHERE name = ?", (name,)):
            with home.store.transaction():
                home.users().add(name, role, "bench-password-1")
    staff, analyst = app.test_client(), app.test_client()
    _sign_in(staff, "bench.staff", "bench-password-1")
    _sign_in(analyst, "bench.analyst", "bench-password-1")
    with home.store.transaction():
        token = ApiTokens(home.store).create("bench.staff", "benchmark", 1)[0]
    customers = home.store.scalar("SELECT count(*) FROM customers")
    middle = home.store.query("SELECT probability, customer_id FROM customer_scores WHERE as_of = ? ORDER BY "
                              "probability DESC, customer_id LIMIT 1 OFFSET ?", (AS_OF.isoformat(), customers // 2))[0]

    def some_customer():
        return f"{int(rng.integers(0, customers)):032x}"

    pages = {
        "overview": (staff, lambda: "/"),
        "churn": (staff, lambda: "/churn"),
        "churn, high band": (staff, lambda: "/churn?band=high"),
        "churn, one branch": (staff, lambda: f"/churn?branch={rng.choice(BRANCHES)}"),
        "churn, branch + segment": (staff, lambda: f"/churn?branch={rng.choice(BRANCHES)}&segment=3"),
        "churn, branch + value": (staff, lambda: f"/churn?branch={rng.choice(BRANCHES)}&value=high"),
        "churn, page halfway down": (staff, lambda: f"/churn?after_key={middle[0]!r}&after_id={middle[1]}"),
        "churn, by value": (staff, lambda: "/churn?sort=value"),
        "churn, high value, high risk": (staff, lambda: "/churn?value=high&band=high"),
        "customer 360": (staff, lambda: f"/customers/{some_customer()}"),
        "segments": (staff, lambda: "/segments?a=1&b=2"),
        "tags": (staff, lambda: "/tags"),
        "lifecycle": (staff, lambda: "/lifecycle"),
        "models": (analyst, lambda: "/models"),
        "jobs": (analyst, lambda: "/jobs"),
        "campaigns": (analyst, lambda: "/campaigns"),
        "exports": (analyst, lambda: "/exports"),
        "data": (analyst, lambda: "/data"),
        "api churn": (None, lambda: "/api/v1/churn?limit=50"),
        "api customer": (None, lambda: f"/api/v1/customers/{some_customer()}"),
    }
    results = {}
    for page, (client, path) in pages.items():
        times = []
        for _ in range(requests):
            url = path()
            started = time.perf_counter()
            if client is None:
                response = app.test_client().get(url, base_url=HTTPS, headers={"Authorization": f"Bearer {token}"})
            else:
                response = client.get(url, base_url=HTTPS)
            response.get_data()
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{page}: {url} answered {response.status_code}")
        results[page] = (float(np.percentile(times, 50)), float(np.percentile(times, 95)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    from appliance.home import Home
    from appliance.keys import Credentials, new_key_file

    table = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            key = Path(folder) / "bench.key"
            new_key_file(key)
            with Home.init(Path(folder) / "home", Credentials(key_file=key), admin="admin",
                           admin_password="admin-password-1") as home:
                (home.path / "models").mkdir()
                for path in (ROOT / "models").glob("*-*.*"):
                    shutil.copy(path, home.path / "models" / path.name)
                started = time.perf_counter()
                fill(home, size)
                print(f"{size:,} customers filled in {time.perf_counter() - started:.0f} s", flush=True)
                table[size] = measure(home, args.requests)
    print(f"\nserver time per page, ms (p50 / p95 over {args.requests} requests)")
    print(f"{'page':28}" + "".join(f"{f'{s:,} customers':>24}" for s in args.sizes))
    for page in table[args.sizes[0]]:
        print(f"{page:28}" + "".join(f"{table[s][page][0]:>11.1f} / {table[s][page][1]:>8.1f}" for s in args.sizes))
    worst = max(p95 for p50, p95 in table[args.sizes[-1]].values())
    print(f"\nworst p95 at {args.sizes[-1]:,} customers: {worst:.0f} ms (target 300 ms)")


if __name__ == "__main__":
    main()
