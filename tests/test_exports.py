"""Exports end to end on a real home: generated data ingested, the nightly pipeline run with the shipped
models, then every report requested, approved by another user, written, signed and verified."""

import ast
import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from appliance import reports
from appliance.access import Actor
from appliance.demo_data import generate
from appliance.errors import AccessError, ExportError, PolicyError
from appliance.exports import verify
from appliance.home import EXPORT_PUBLIC_KEY, Home
from appliance.keys import Credentials, new_key_file
from tests.conftest import ADMIN, ADMIN_PASSWORD, ROOT, add_user, assert_one_line_error, run_cli, ingest_and_score

ANALYST, OFFICER = Actor("ana", "analyst"), Actor("olga", "compliance")
ALL_REPORTS = [(name, (dim,)) for name, report in reports.REPORTS.items() for dim in report.dimensions
               if not report.required_dimensions or (dim,) == report.required_dimensions] + [
    ("segment_profile", ("segment", "region")), ("churn_risk", ("segment", "risk_band")),
    ("tag_overlap", ("tag_a", "tag_b")), ("campaign_results", ("arm", "region")),
    ("product_holdings", ("product", "age_band"))]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """600 generated customers through ingestion and the nightly pipeline (shipped models)."""
    root = tmp_path_factory.mktemp("exports")
    data, key = root / "data", root / "keys" / "k.key"
    generate(data, 600, seed=5, months=14)
    key.parent.mkdir()
    new_key_file(key)
    with Home.init(root / "home", Credentials(key_file=key), admin=ADMIN, admin_password=ADMIN_PASSWORD) as home:
        ingest_and_score(home, data)
    return {"root": root, "data": data, "key": key, "home": root / "home"}


@pytest.fixture
def home(world):
    with Home.open(world["home"], Credentials(key_file=world["key"])) as opened:
        yield opened


def _approved(home, name, dims, **kwargs) -> Path:
    exports = home.exports()
    request = exports.request(ANALYST, name, dims, recipient="head_office", purpose="management_reporting", **kwargs)
    return exports.approve(OFFICER, request["request_id"])


def test_every_report_exports_only_cells_that_pass_k_and_dominance_and_verifies(home):
    policy = home.export_policy()
    public_key = home.export_signing_key().public_key()
    published = 0
    for name, dims in ALL_REPORTS:
        bundle = _approved(home, name, dims)
        assert verify(bundle, public_key).ok
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["approved_by"] == OFFICER.name and manifest["requested_by"] == ANALYST.name
        assert manifest["policy"]["sha256"] == policy.sha256
        # the true aggregates behind every published row: each one passes k and dominance
        request = home.exports().get(bundle.name)
        table = reports.compute(home.store, reports.get(name), dims, request["parameters"])
        truth = {json.dumps(sorted(a.key.items())): a for a in table.aggregates}
        rows = json.loads((bundle / "data.json").read_text(encoding="utf-8"))["rows"]
        for row in rows:
            if row["status"] != "published":
                assert row["units"] is None
                continue
            agg = truth[json.dumps(sorted((d, row[d]) for d in dims if row[d] != "*"))]
            assert agg.customers >= policy.min_cell_size
            for measure in manifest["measures"]:
                if reports.get(name).measure(measure).dominance and agg.sums[measure]:
                    assert agg.top_share[measure] <= policy.dominance_share
                if reports.get(name).measure(measure).kind == "count":  # a count inside a cell is a cell too
                    counted = round(agg.sums[measure])
                    assert counted == 0 or counted >= policy.min_cell_size, (name, measure, counted)
                    rest = agg.units - counted
                    assert rest == 0 or rest >= policy.min_cell_size, (name, measure, rest)
            published += 1
    assert published > 100  # the reports publish something worth checking


def test_no_canary_value_or_token_reaches_a_bundle(home, world):
    for name, dims in ALL_REPORTS[:8]:
        _approved(home, name, dims)
    customers = pd.read_csv(world["data"] / "customers.csv", dtype=str, encoding="utf-8-sig")
    raw = set()
    for column in ("客户号", "姓名", "证件号码", "手机号", "电子邮箱", "联系地址"):
        raw |= set(customers[column].dropna())
    tokens = set()
    for table, column in (("customers", "customer_id"), ("customers", "name"), ("customers", "phone"),
                          ("customers", "id_number"), ("accounts", "account_id"), ("transactions", "counterparty")):
        tokens |= {r[0] for r in home.store.rows(f"SELECT {column} FROM {table}") if r[0]}
    bundles = list((home.path / "outbox").iterdir())
    assert len(bundles) >= 8
    text = "\n".join(p.read_bytes().decode("utf-8") for b in bundles for p in b.iterdir())
    assert [v for v in raw if v in text] == []
    assert [t for t in tokens if t in text] == []


def test_the_requester_cannot_approve_and_nothing_leaves_without_approval(home):
    exports = home.exports()
    request = exports.request(ANALYST, "segment_profile", ("segment",), recipient="regulator", purpose="regulatory_reporting")
    assert not (home.path / "outbox" / request["request_id"]).exists()  # requested, not written
    promoted = Actor(ANALYST.name, "compliance")  # the same person, later given the compliance role
    with pytest.raises(AccessError, match="cannot also approve"):
        exports.approve(promoted, request["request_id"])
    with pytest.raises(AccessError, match="export.approve"):
        exports.approve(Actor("bob", "analyst"), request["request_id"])
    exports.reject(OFFICER, request["request_id"], "not needed")
    with pytest.raises(ExportError, match="rejected, not pending"):
        exports.approve(OFFICER, request["request_id"])
    assert not (home.path / "outbox" / request["request_id"]).exists()
    events = [e["event"] for e in home.audit.entries(limit=10_000)]
    assert "export.request" in events and "export.reject" in events


def test_any_byte_change_breaks_the_signature(home, tmp_path):
    bundle = _approved(home, "churn_risk", ("risk_band",))
    public_key = home.export_signing_key().public_key()
    for name in ("data.csv", "data.json", "manifest.json", "signature"):
        for position in (0, -2):
            copy = tmp_path / f"{name}{position}"
            shutil.copytree(bundle, copy)
            content = bytearray((copy / name).read_bytes())
            content[position] ^= 0x01
            (copy / name).write_bytes(bytes(content))
            assert not verify(copy, public_key).ok, (name, position)
    extra = tmp_path / "extra"
    shutil.copytree(bundle, extra)
    (extra / "notes.txt").write_text("x")
    assert not verify(extra, public_key).ok
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    assert not verify(bundle, Ed25519PrivateKey.generate().public_key()).ok  # another key


def test_no_single_bit_flip_of_a_signature_verifies(home, tmp_path):
    """Every bit of the signature file, the padding and the line end included (base64 is read in its one
    canonical spelling)."""
    bundle = _approved(home, "churn_risk", ("segment",))
    public_key = home.export_signing_key().public_key()
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    original = (bundle / "signature").read_bytes()
    verified = 0
    for position in range(len(original)):
        for bit in range(8):
            flipped = bytearray(original)
            flipped[position] ^= 1 << bit
            (copy / "signature").write_bytes(bytes(flipped))
            verified += verify(copy, public_key).ok
    assert verified == 0 and len(original) * 8 > 700


def test_cli_request_approve_verify(world, tmp_path):
    env = {"APPLIANCE_HOME": str(world["home"]), "APPLIANCE_KEY_FILE": str(world["key"]),
           "APPLIANCE_NEW_USER_PASSWORD": "password-cli-1"}
    for name, role in (("cli-ana", "analyst"), ("cli-olga", "compliance")):
        add_user(name, role, "password-cli-1", env=env)
    as_user = dict(env, APPLIANCE_USER_PASSWORD="password-cli-1")
    requested = run_cli("export", "request", "churn_risk", "--by", "segment", "--by", "risk_band",
                        "--recipient", "regulator", "--purpose", "regulatory_reporting", "--user", "cli-ana",
                        env_extra=as_user, check=True)
    request_id = requested.stdout.strip().splitlines()[-1]
    assert request_id.startswith("EXP-")
    shown = run_cli("export", "show", request_id, "--user", "cli-olga", env_extra=as_user, check=True)
    assert "suppressed [" in shown.stdout or "0 suppressed" in shown.stdout
    own = run_cli("export", "approve", request_id, "--user", "cli-ana", env_extra=as_user)
    assert_one_line_error(own, "export.approve")
    approved = run_cli("export", "approve", request_id, "--user", "cli-olga", env_extra=as_user, check=True)
    bundle = Path(approved.stdout.strip().splitlines()[-1])
    assert (bundle / "manifest.json").exists()
    # verified anywhere: no home, only the public key
    key_copy = tmp_path / "appliance-export.pem"
    shutil.copy(world["home"] / EXPORT_PUBLIC_KEY, key_copy)
    clean = {"APPLIANCE_HOME": "", "APPLIANCE_KEY_FILE": ""}
    ok = run_cli("export", "verify", bundle, "--public-key", key_copy, env_extra=clean)
    assert ok.returncode == 0 and "intact" in ok.stdout
    (bundle / "data.csv").write_text((bundle / "data.csv").read_text(encoding="utf-8") + "x\n", encoding="utf-8")
    assert_one_line_error(run_cli("export", "verify", bundle, "--public-key", key_copy, env_extra=clean),
                          "NOT intact")
    listed = run_cli("export", "list", "--status", "approved", "--user", "cli-olga", env_extra=as_user, check=True)
    assert request_id in listed.stdout
    assert "tag_overlap" in run_cli("report", "list", check=True).stdout


def test_a_request_is_stale_when_the_data_changes_before_approval(home):
    exports = home.exports()
    request = exports.request(ANALYST, "tag_counts", ("tag",), recipient="head_office", purpose="management_reporting")
    as_of = request["parameters"]["as_of"]
    moved = home.store.scalar("SELECT customer_id FROM customer_tags WHERE as_of = ? LIMIT 1", (as_of,))
    with home.store.transaction():
        home.store.execute("DELETE FROM customer_tags WHERE customer_id = ? AND as_of = ?", (moved, as_of))
    with pytest.raises(ExportError, match="changed since the request"):
        exports.approve(OFFICER, request["request_id"])
    assert exports.get(request["request_id"])["status"] == "stale"


def test_a_request_is_stale_when_the_policy_changes_before_approval(home):
    request = home.exports().request(ANALYST, "churn_risk", ("region",), recipient="head_office",
                                     purpose="management_reporting")
    policy_file = home.path / "policies" / "export.yaml"
    original = policy_file.read_text(encoding="utf-8")
    try:
        policy_file.write_text(original.replace("min_cell_size: 10", "min_cell_size: 11"), encoding="utf-8")
        with pytest.raises(ExportError, match="export policy changed"):
            home.exports().approve(OFFICER, request["request_id"])
    finally:
        policy_file.write_text(original, encoding="utf-8")
    assert home.exports().get(request["request_id"])["status"] == "stale"
    assert not (home.path / "outbox" / request["request_id"]).exists()


def test_the_dp_budget_refuses_an_over_budget_export(home):
    policy_file = home.path / "policies" / "export.yaml"
    original = policy_file.read_text(encoding="utf-8")
    try:
        policy_file.write_text(original.replace("mechanism: none", "mechanism: laplace")
                               .replace("regulator:   {budget_epsilon: 2.0}", "regulator:   {budget_epsilon: 2.5}"),
                               encoding="utf-8")
        exports = home.exports()
        spent_before = exports.spent("regulator")
        assert spent_before == 0
        for _ in range(2):
            request = exports.request(ANALYST, "segment_profile", ("segment",), recipient="regulator", purpose="regulatory_reporting")
            assert request["epsilon"] == 1.0
            exports.approve(OFFICER, request["request_id"])
        assert exports.spent("regulator") == 2.0
        with pytest.raises(PolicyError, match="spent epsilon 2 of 2.5"):
            exports.request(ANALYST, "segment_profile", ("region",), recipient="regulator", purpose="regulatory_reporting")
        manifest = json.loads(Path(home.exports().get(request["request_id"])["bundle"], "manifest.json").read_text())
        assert manifest["differential_privacy"] == {"mechanism": "laplace", "epsilon": 1.0, "delta": 0.0}
    finally:
        policy_file.write_text(original, encoding="utf-8")


def test_a_malformed_policy_is_refused_and_the_last_good_one_stays(home):
    policy_file = home.path / "policies" / "export.yaml"
    original = policy_file.read_text(encoding="utf-8")
    good = home.export_policy()
    try:
        policy_file.write_text(original.replace("min_cell_size: 10", "min_cell_size: two"), encoding="utf-8")
        kept = home.export_policy()
        assert kept.sha256 == good.sha256 and kept.min_cell_size == 10
        refusals = [e for e in home.audit.entries(event="policy.refuse", limit=100)]
        assert refusals and "min_cell_size" in refusals[-1]["details"] and "line" in refusals[-1]["details"]
        home.export_policy()  # the same bad version again: refused once in the log, not per use
        assert len(list(home.audit.entries(event="policy.refuse", limit=100))) == len(refusals)
        results = {name: error for name, error, _ in home.check_policies()}
        assert results["export.yaml"].startswith("export.yaml line ")
    finally:
        policy_file.write_text(original, encoding="utf-8")
    assert home.export_policy().sha256 == good.sha256


def test_a_malformed_policy_without_a_good_version_is_an_error(tmp_path):
    draft = tmp_path / "draft"
    shutil.copytree(ROOT / "policies", draft)
    (draft / "export.yaml").write_text((draft / "export.yaml").read_text(encoding="utf-8")
                                       .replace("tag_overlap:      {dimensions: [tag_a, tag_b]}",
                                                "tag_overlap:      {dimensions: [tag_a, customer_id]}"),
                                       encoding="utf-8")
    result = run_cli("policy", "check", "--dir", draft)
    assert "export.yaml" in result.stdout and "REFUSED" in result.stdout
    assert_one_line_error(result, "export.yaml line", "tag_overlap.dimensions")
    assert run_cli("policy", "check", "--dir", ROOT / "policies").returncode == 0


def test_reports_cannot_read_outside_their_tables(home):
    with home.store.reading_only({"customers"}):
        assert home.store.scalar("SELECT count(*) FROM customers") > 0
        with pytest.raises(Exception, match="not authorized"):
            home.store.scalar("SELECT count(*) FROM vault")
        with pytest.raises(Exception, match="not authorized"):
            home.store.execute("DELETE FROM customers")
    for report in reports.REPORTS.values():
        assert not report.tables & {"vault", "audit_log", "users", "quarantine", "export_requests"}
    # The one scratch table a report computes in: it may be filled from the allowed tables, never from the
    # vault, and nothing else may be written meanwhile, in the store or in another temporary table.
    with home.store.reading_only({"customers"}, scratch="units"):
        home.store.execute("CREATE TEMP TABLE units AS SELECT customer_id FROM customers")
        assert home.store.scalar("SELECT count(*) FROM temp.units") > 0
        with pytest.raises(Exception, match="vault.token is prohibited"):
            home.store.execute("INSERT INTO temp.units SELECT token FROM vault")
        with pytest.raises(Exception, match="not authorized"):
            home.store.execute("CREATE TEMP TABLE other AS SELECT customer_id FROM customers")
        with pytest.raises(Exception, match="not authorized"):
            home.store.execute("DELETE FROM customers")
        home.store.execute("DROP TABLE temp.units")


def test_the_export_modules_cannot_import_the_vault_or_keys():
    """exports, disclosure and reports, and everything of ours they import, stay clear of protect (the vault)
    and keys: signing keys and data come in as arguments."""
    forbidden = {"appliance.protect", "appliance.keys", "appliance.home", "appliance.subjects"}
    seen, queue = set(), ["appliance.exports", "appliance.disclosure", "appliance.reports"]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        path = ROOT / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / name.replace(".", "/") / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("appliance"):
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                           if (ROOT / node.module.replace(".", "/") / f"{a.name}.py").exists()]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("appliance")]
            else:
                continue
            queue.extend(targets)
    assert not (seen & forbidden), sorted(seen & forbidden)
    assert {"appliance.exports", "appliance.store", "appliance.audit"} <= seen  # the walk did walk


def test_differencing_across_two_real_exports_is_defeated(tmp_path, key_file):
    """A crafted population: one export by segment, then by segment and region, counts not rounded. Solving
    both bundles together must not give away any suppressed cell (one region cell holds a single customer)."""
    with Home.init(tmp_path / "h", Credentials(key_file=key_file), admin=ADMIN, admin_password=ADMIN_PASSWORD) as home:
        policy_file = home.path / "policies" / "export.yaml"
        policy_file.write_text(policy_file.read_text(encoding="utf-8").replace("counts: 5", "counts: 1"),
                               encoding="utf-8")
        people = [("s0", "r0")] * 40 + [("s1", "r0")] * 1 + [("s1", "r1")] * 40
        with home.store.transaction():
            for i, (segment, region) in enumerate(people):
                home.store.execute("INSERT INTO customers (customer_id, region, source, batch_id) VALUES (?,?,?,0)",
                                   (f"c{i}", region, "t"))
                home.store.execute("INSERT INTO customer_segments VALUES (?, '2026-01-01', ?, 'm')",
                                   (f"c{i}", int(segment[1])))
        rows = []
        for dims in (("segment",), ("segment", "region")):
            bundle = _approved(home, "segment_profile", dims, as_of=date(2026, 1, 1))
            rows += json.loads((bundle / "data.json").read_text())["rows"]
    finest = [("0", "r0"), ("1", "r0"), ("1", "r1")]

    def vector(row):
        return [1.0 if all(row.get(d, "*") in ("*", v) for d, v in zip(("segment", "region"), cell)) else 0.0
                for cell in finest]

    known = np.array([vector(row) for row in rows if row["status"] == "published"])
    rank = np.linalg.matrix_rank(known)
    hidden = [row for row in rows if row["status"] == "suppressed"]
    assert any(row.get("region") == "r0" and row["segment"] == "1" for row in hidden)
    recovered = [row for row in hidden if np.linalg.matrix_rank(np.vstack([known, vector(row)])) == rank]
    assert recovered == []
