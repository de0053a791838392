#!/usr/bin/env bash
# Build an offline install bundle on a machine that reaches the package registries:
# the appliance source plus every wheel it needs, for a box with no internet.
#   packaging/build-offline-bundle.sh [OUT_DIR]    -> OUT_DIR/insight-appliance-<version>.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
version=$(python3.11 -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
name="insight-appliance-$version"
mkdir -p "$stage/$name/wheels" "$out"
git archive HEAD | tar -x -C "$stage/$name"
python3.11 -m pip wheel --quiet --wheel-dir "$stage/$name/wheels" ".[train]"
(cd "$stage/$name/wheels" && sha256sum ./*.whl > SHA256SUMS)
tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
