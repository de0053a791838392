"""The product as bank IT receives it: the offline bundle installs into a fresh virtualenv inside a network
namespace with no interfaces and passes the smoke run (init, ingest, nightly, export); the .deb installs into
a scratch root with the files where docs/operations.md says, and its hardened units verify."""

import hashlib
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = shutil.which("python3.11") or "/usr/bin/python3.11"


def _no_network_namespace() -> bool:
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    if not (ROOT / "appliance/web/static/vendor/echarts.min.js").exists():
        pytest.fail("the console's assets are not built (make assets; make test does it)")
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(["packaging/build-offline-bundle.sh", str(out)], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHON": PYTHON}, timeout=1800)
    assert built.returncode == 0, built.stderr[-2000:]
    tarball = Path(built.stdout.strip().splitlines()[-1])
    unpacked = tmp_path_factory.mktemp("bundle")
    with tarfile.open(tarball) as archive:
        archive.extractall(unpacked, filter="data")
    return tarball, next(unpacked.iterdir())


def test_the_bundle_holds_everything_listed_and_checksummed(bundle):
    _, top = bundle
    sums = dict(reversed(line.split("  ./")) for line in (top / "wheels/SHA256SUMS").read_text().splitlines())
    wheels = sorted(p.name for p in (top / "wheels").glob("*.whl"))
    assert sorted(sums) == wheels and len(wheels) > 50
    for name in wheels:
        assert hashlib.sha256((top / "wheels" / name).read_bytes()).hexdigest() == sums[name], name
    # Linux x86-64 / CPython 3.11 or pure Python: nothing the box would have to compile or fetch.
    assert all(w.endswith("-none-any.whl") or "cp311" in w or "abi3" in w for w in wheels), wheels
    assert all("manylinux" in w or "linux_x86_64" in w or w.endswith("-any.whl") for w in wheels)
    appliance = zipfile.ZipFile(next((top / "wheels").glob("insight_appliance-*.whl"))).namelist()
    for shipped in ["appliance/web/static/vendor/echarts.min.js", "appliance/shipped/policies/export.yaml",
                    "appliance/shipped/models/" + next((ROOT / "models").glob("churn-*.onnx")).name]:
        assert shipped in appliance
    for part in ["packaging/install.sh", "packaging/smoke.sh", "models", "policies", "docs/operations.md",
                 "docs/operations.zh.md", "packaging/systemd/insight-appliance-console.service"]:
        assert (top / part).exists(), part


@pytest.mark.skipif(not _no_network_namespace(), reason="the kernel refuses a private network namespace")
def test_the_bundle_installs_and_runs_with_no_network_at_all(bundle, tmp_path):
    _, top = bundle
    script = f"""
set -e
if ip -o link 2>/dev/null | grep -v ' lo:' | grep -q .; then echo "an interface besides lo"; exit 3; fi
python3.11 -c 'import socket; socket.create_connection(("pypi.org", 443), timeout=3)' 2>/dev/null && exit 4
{top}/packaging/install.sh --venv {tmp_path}/venv
{top}/packaging/smoke.sh {tmp_path}/venv/bin/appliance {tmp_path}/work
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "PIP_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{Path(PYTHON).parent}:/usr/sbin:/usr/bin:/sbin:/bin"
    ran = subprocess.run(["unshare", "-rn", "bash", "-c", script], capture_output=True, text=True, env=env,
                         timeout=1800, cwd=tmp_path)
    assert ran.returncode == 0, (ran.stdout[-3000:], ran.stderr[-3000:])
    assert "smoke: passed" in ran.stdout
    # The installed appliance is the bundle's, not this checkout's.
    found = subprocess.run([f"{tmp_path}/venv/bin/python", "-c", "import appliance; print(appliance.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert found.stdout.startswith(str(tmp_path / "venv"))


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("dpkg"), reason="dpkg --root needs root and dpkg")
def test_the_deb_lays_out_the_files_and_its_units_verify(bundle, tmp_path):
    tarball, _ = bundle
    built = subprocess.run(["packaging/build-deb.sh", str(tarball), str(tmp_path / "out")], cwd=ROOT,
                           capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stderr
    deb = Path(built.stdout.strip().splitlines()[-1])
    scratch = tmp_path / "root"
    (scratch / "var/lib/dpkg/info").mkdir(parents=True)
    (scratch / "var/lib/dpkg/updates").mkdir()
    (scratch / "var/lib/dpkg/status").touch()
    installed = subprocess.run(["dpkg", f"--root={scratch}", "--force-script-chrootless", "--force-depends", "-i",
                                str(deb)], capture_output=True, text=True, timeout=1800)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    for path, mode in [("opt/insight-appliance/bin/appliance", None), ("opt/insight-appliance/wheels/SHA256SUMS", None),
                       ("lib/systemd/system/insight-appliance-console.service", 0o644),
                       ("lib/systemd/system/insight-appliance-scheduler.service", 0o644),
                       ("etc/default/insight-appliance", 0o644), ("var/lib/insight-appliance", 0o700),
                       ("etc/insight-appliance", 0o700), ("usr/share/doc/insight-appliance/operations.md", 0o644),
                       ("usr/share/doc/insight-appliance/operations.zh.md", 0o644)]:
        assert (scratch / path).exists(), path
        if mode is not None:
            assert (scratch / path).stat().st_mode & 0o777 == mode, path
    version = subprocess.run([str(scratch / "opt/insight-appliance/bin/appliance"), "--version"], capture_output=True,
                             text=True)
    assert version.returncode == 0 and "0.1.0" in version.stdout
    for unit in ("console", "scheduler"):
        text = (scratch / f"lib/systemd/system/insight-appliance-{unit}.service").read_text()
        for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                          "ReadWritePaths=/var/lib/insight-appliance\n", "Restart=on-failure", "User=appliance"):
            assert hardening in text, (unit, hardening)
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (make test installs systemd)")
    # The scratch root stands for a system with systemd: its own units, so that ours resolve their targets.
    shutil.copytree("/usr/lib/systemd/system", scratch / "lib/systemd/system", dirs_exist_ok=True, symlinks=True)
    units = sorted(str(p.relative_to(scratch).as_posix()) for p in (scratch / "lib/systemd/system").glob("insight-*"))
    verified = subprocess.run(["systemd-analyze", "verify", f"--root={scratch}"] + ["/" + u for u in units],
                              capture_output=True, text=True, cwd=tmp_path)
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr
    removed = subprocess.run(["dpkg", f"--root={scratch}", "--force-script-chrootless", "--purge",
                              "insight-appliance"], capture_output=True, text=True)
    assert removed.returncode == 0, removed.stderr
    assert not (scratch / "opt/insight-appliance/bin").exists()
    assert (scratch / "var/lib/insight-appliance").is_dir()  # the home is never removed with the package
