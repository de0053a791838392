#!/usr/bin/env bash
# Install the appliance on an air-gapped host from an unpacked offline bundle (run as root from its top).
# Creates a system user, a virtualenv under /opt, a home under /var/lib and a key file under /etc,
# outside the home. Nothing is downloaded: pip reads only the bundle's wheels.
set -euo pipefail
prefix=${PREFIX:-/opt/insight-appliance}
home=${APPLIANCE_HOME:-/var/lib/insight-appliance}
keydir=${KEY_DIR:-/etc/insight-appliance}
cd "$(dirname "$0")/.."
[ -d wheels ] || { echo "no wheels/ folder: run this from an unpacked offline bundle" >&2; exit 1; }
(cd wheels && sha256sum --quiet -c SHA256SUMS)
id appliance >/dev/null 2>&1 || useradd --system --home-dir "$home" --shell /usr/sbin/nologin appliance
python3.11 -m venv "$prefix"
"$prefix/bin/pip" install --quiet --no-index --find-links wheels .
install -d -m 0700 -o appliance -g appliance "$home"
install -d -m 0750 -o root -g appliance "$keydir"
if [ ! -e "$keydir/appliance.key" ]; then
  runuser -u appliance -- "$prefix/bin/appliance" init --home "$home" --new-key-file "$keydir/appliance.key.new"
  mv "$keydir/appliance.key.new" "$keydir/appliance.key"
fi
echo "installed: $prefix/bin/appliance, home $home, key file $keydir/appliance.key (keep a copy off the box)"
