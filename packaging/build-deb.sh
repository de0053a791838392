#!/usr/bin/env bash
# Build the Debian package from an offline bundle (make bundle):
#   packaging/build-deb.sh dist/insight-appliance-<version>.tar.gz [OUT_DIR]  -> OUT_DIR/insight-appliance_<version>_amd64.deb
# It carries the bundle's wheels to /opt/insight-appliance/wheels (postinst builds the virtualenv from them,
# offline), the hardened systemd units and the operations guide.
set -euo pipefail
bundle=$(realpath "$1")
out=$(realpath -m "${2:-dist}")
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
tar -xzf "$bundle" -C "$stage"
src=$(ls -d "$stage"/insight-appliance-*)
version=${src##*/insight-appliance-}
root="$stage/root"
install -d "$root/DEBIAN" "$root/opt/insight-appliance/wheels" "$root/lib/systemd/system" \
  "$root/usr/share/doc/insight-appliance" "$root/etc/default"
cp "$src"/wheels/* "$root/opt/insight-appliance/wheels/"
install -m 0644 "$src"/packaging/systemd/*.service "$root/lib/systemd/system/"
install -m 0644 "$src"/docs/operations*.md "$root/usr/share/doc/insight-appliance/"
printf '# Where the console listens (see insight-appliance-console.service).\nCONSOLE_HOST=0.0.0.0\nCONSOLE_PORT=8443\n' \
  > "$root/etc/default/insight-appliance"
echo "/etc/default/insight-appliance" > "$root/DEBIAN/conffiles"
install -m 0755 "$here"/debian/postinst "$here"/debian/prerm "$here"/debian/postrm "$root/DEBIAN/"
size=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: insight-appliance
Version: $version
Architecture: amd64
Maintainer: Insight Appliance <ops@insight-appliance.invalid>
Depends: python3.11, python3.11-venv, adduser | passwd
Installed-Size: $size
Section: misc
Priority: optional
Description: Privacy-first, on-prem customer insight for banks
 Ingests core-banking and CRM data, pseudonymises and masks PII on the way in, keeps it in an encrypted
 store, scores churn and segments on the box and exports only aggregated, approved insights. Installs and
 runs with no network: every dependency is in the package.
CONTROL
mkdir -p "$out"
dpkg-deb --root-owner-group -Zgzip -z1 --build "$root" "$out/insight-appliance_${version}_amd64.deb" >/dev/null
echo "$out/insight-appliance_${version}_amd64.deb"
