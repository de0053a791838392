#!/usr/bin/env bash
# Build the offline install bundle on a machine that reaches the package registries (Linux x86-64,
# CPython 3.11, like the box). `make bundle` runs it after building the console's assets.
#   packaging/build-offline-bundle.sh [OUT_DIR]    -> OUT_DIR/insight-appliance-<version>.tar.gz
# Inside: the appliance's wheel (console assets, default models and policies included), a wheelhouse of every
# dependency (runtime and on-box training) listed in SHA256SUMS, the models and policies as files to read,
# the systemd units, install.sh and the operations guide.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
out=${1:-dist}
platform=$($python -c 'import sys, sysconfig; print(sysconfig.get_platform(), "%d.%d" % sys.version_info[:2])')
[ "$platform" = "linux-x86_64 3.11" ] || { echo "build on Linux x86-64 with CPython 3.11 (this is $platform)" >&2; exit 1; }
[ -f appliance/web/static/vendor/echarts.min.js ] || { echo "the console's assets are not built: make assets" >&2; exit 1; }
version=$($python -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
name="insight-appliance-$version"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/wheels" "$out"
# The appliance's own wheel from a clean copy of the committed tree plus the built assets.
mkdir -p "$stage/src" && git archive HEAD | tar -x -C "$stage/src"
cp -r appliance/web/static/vendor "$stage/src/appliance/web/static/"
# appliance/shipped/ links to the top-level models/ and policies/; the wheel needs the files themselves.
rm "$stage/src/appliance/shipped/models" "$stage/src/appliance/shipped/policies"
cp -r "$stage/src/models" "$stage/src/policies" "$stage/src/appliance/shipped/"
$python -m pip wheel --quiet --no-deps --wheel-dir "$stage/$name/wheels" "$stage/src"
wheel=$(ls "$stage/$name/wheels"/insight_appliance-*.whl)
# Every dependency as a wheel (source-only packages are built into wheels here, so the box compiles nothing).
$python -m pip wheel --quiet --wheel-dir "$stage/$name/wheels" "$wheel[train]"
(cd "$stage/$name/wheels" && sha256sum ./*.whl > SHA256SUMS)
cp -r models policies "$stage/$name/"
mkdir -p "$stage/$name/packaging"
cp -r packaging/install.sh packaging/smoke.sh packaging/systemd "$stage/$name/packaging/"
cp README.md "$stage/$name/"
mkdir -p "$stage/$name/docs" && cp docs/operations*.md "$stage/$name/docs/" 2>/dev/null || true
tar -C "$stage" -I "gzip -1" -cf "$out/$name.tar.gz" "$name"  # the wheels are compressed already
echo "$out/$name.tar.gz"
