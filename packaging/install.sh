#!/usr/bin/env bash
# Install the appliance from an unpacked offline bundle, with no network: pip reads only the bundle's wheels,
# after checking each against SHA256SUMS.
#
#   packaging/install.sh                  as root: system user `appliance`, virtualenv in /opt/insight-appliance,
#                                         home in /var/lib/insight-appliance (0700), key file in
#                                         /etc/insight-appliance (0600, outside the home), systemd units
#   packaging/install.sh --venv DIR       only the virtualenv, in DIR (any user; for trying it out)
set -euo pipefail
bundle=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3.11}
[ -f "$bundle/wheels/SHA256SUMS" ] || { echo "no wheels/SHA256SUMS: run this from an unpacked offline bundle" >&2; exit 1; }
(cd "$bundle/wheels" && sha256sum --quiet --strict -c SHA256SUMS) || { echo "a wheel does not match SHA256SUMS: the bundle is damaged" >&2; exit 1; }
wheel=$(ls "$bundle"/wheels/insight_appliance-*.whl)

make_venv() {
  $python -m venv "$1"
  "$1/bin/pip" install --quiet --no-index --find-links "$bundle/wheels" "$wheel[train]"
}

if [ "${1:-}" = "--venv" ]; then
  [ -n "${2:-}" ] || { echo "usage: install.sh --venv DIR" >&2; exit 2; }
  make_venv "$2"
  echo "installed: $2/bin/appliance"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "run as root (or use --venv DIR)" >&2; exit 1; }
prefix=/opt/insight-appliance
home=/var/lib/insight-appliance
keydir=/etc/insight-appliance
id appliance >/dev/null 2>&1 || useradd --system --home-dir "$home" --shell /usr/sbin/nologin appliance
make_venv "$prefix"
install -d -m 0700 -o appliance -g appliance "$home"
install -d -m 0700 -o appliance -g appliance "$keydir"
install -m 0644 "$bundle"/packaging/systemd/*.service /etc/systemd/system/
if [ ! -e "$home/keyring.json" ]; then
  echo "first run: creating the home; choose the first admin's password"
  runuser -u appliance -- "$prefix/bin/appliance" init --home "$home" --new-key-file "$keydir/appliance.key"
fi
command -v systemctl >/dev/null && systemctl daemon-reload || true
echo "installed: $prefix/bin/appliance, home $home, key file $keydir/appliance.key (keep a copy off the box)"
echo "start: systemctl enable --now insight-appliance-scheduler insight-appliance-console"
