#!/usr/bin/env bash
# After an install, prove the appliance works on this box with its own demo data, offline: a home with its
# key file outside it, ingestion, the nightly pipeline with the shipped models, an export requested by an
# analyst, approved by a compliance officer and verified against the home's public key, and the audit chain.
#   packaging/smoke.sh APPLIANCE_BIN WORK_DIR
set -euo pipefail
app=$1
work=$2
mkdir -p "$work"
cd "$work"
step() { echo "smoke: $*"; }
step "demo home: init, ingest, nightly"
"$app" demo --dir demo --customers 300 >demo.out
export APPLIANCE_HOME="$work/demo/home" APPLIANCE_KEY_FILE="$work/demo/demo.key"
admin=(env APPLIANCE_USER=admin APPLIANCE_USER_PASSWORD="$(cat demo/admin.password)")
officer=(env APPLIANCE_USER=smoke.officer APPLIANCE_USER_PASSWORD=smoke-officer-password-1)
analyst=(env APPLIANCE_USER=smoke.analyst APPLIANCE_USER_PASSWORD=smoke-analyst-password-1)
step "users"
APPLIANCE_NEW_USER_PASSWORD=smoke-officer-password-1 "${admin[@]}" "$app" user add smoke.officer --role compliance >/dev/null
APPLIANCE_NEW_USER_PASSWORD=smoke-officer-password-1 "${officer[@]}" "$app" user passwd >/dev/null
APPLIANCE_NEW_USER_PASSWORD=smoke-analyst-password-1 "${admin[@]}" "$app" user add smoke.analyst --role analyst >/dev/null
step "export: request, approve, verify"
request=$("${analyst[@]}" "$app" export request segment_profile --by segment --recipient head_office \
  --purpose management_reporting | tail -1)
bundle=$("${officer[@]}" "$app" export approve "$request" | tail -1)
"$app" export verify "$bundle" --public-key "$APPLIANCE_HOME/export-public-key.pem"
step "audit chain and doctor"
"${officer[@]}" "$app" audit verify
"$app" doctor >doctor.out || true   # no off-box checkpoint target on a smoke box: reported, not a failure here
grep -q "^ok       store" doctor.out
step "passed"
