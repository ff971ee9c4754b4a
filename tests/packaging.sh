#!/usr/bin/env bash
# End-to-end check of the Debian packages that scripts/package builds, on this machine: installs
# coper-server, checks its user, files and units (`systemd-analyze verify` must print nothing),
# serves /healthz from the installed binary with the installed configuration as the user coper,
# runs the backup script and restores its backup, upgrades to LATER_SERVER.deb when given
# (settings, data and user kept), purges it and checks nothing is left but
# the data folder; inspects coper-kiosk, verifies its unit, and installs and purges it too when
# its Depends are installed. Always purges what it installed, even on failure.
#   COPER_PACKAGE_TEST=1 tests/packaging.sh target/debian/coper-server_*.deb target/debian/coper-kiosk_*.deb [LATER_SERVER.deb]
set -euo pipefail

fail() { echo "packaging test: FAIL: $*" >&2; exit 1; }
say() { echo "packaging test: $*"; }

[ $# -eq 2 ] || [ $# -eq 3 ] ||
  { echo "usage: COPER_PACKAGE_TEST=1 $0 SERVER.deb KIOSK.deb [LATER_SERVER.deb] (as root)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || fail "run it as root: it installs the packages on this machine"
[ "${COPER_PACKAGE_TEST:-}" = 1 ] || fail "it installs and purges packages on this machine: set COPER_PACKAGE_TEST=1"
server_deb=$(realpath "$1") && [ -f "$server_deb" ] || fail "no such package: $1"
kiosk_deb=$(realpath "$2") && [ -f "$kiosk_deb" ] || fail "no such package: $2"
later_deb=""
if [ $# -eq 3 ]; then later_deb=$(realpath "$3") && [ -f "$later_deb" ] || fail "no such package: $3"; fi
for name in coper-server coper-kiosk; do
  ! dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'installed' ||
    fail "$name is already installed here, and this test purges it: not touching it"
done
for user in coper coper-kiosk; do
  ! getent passwd "$user" >/dev/null || fail "the user $user exists already, and a purge removes it"
done

tmp=$(mktemp -d)
chmod 0711 "$tmp"
installed=() made=() server_pid=""
for dir in /var/lib/coper /var/lib/coper-kiosk; do [ -e "$dir" ] || made+=("$dir"); done
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  for name in "${installed[@]}"; do
    [ -n "$name" ] || continue
    dpkg --purge "$name" >/dev/null 2>&1 || echo "packaging test: could not purge $name" >&2
  done
  rm -rf "$tmp" "${made[@]}"
}
trap cleanup EXIT

# install DEB NAME: dpkg -i, its output shown only on failure.
install_deb() {
  installed+=("$2")
  dpkg -i "$1" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg -i $1 failed (missing Depends? apt-get install them)"; }
}
# verify UNIT…: systemd-analyze verify must print nothing.
verify() {
  local out
  out=$(systemd-analyze verify "$@" 2>&1) || fail "systemd-analyze verify $*: $out"
  [ -z "$out" ] || fail "systemd-analyze verify $* printed: $out"
}
# purged NAME USER PATH…: the package, its user and group, and the paths are gone.
purged() {
  local name=$1 user=$2 path
  shift 2
  dpkg --purge "$name" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg --purge $name failed"; }
  installed=("${installed[@]/$name/}")
  ! dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q installed || fail "$name is still installed"
  ! getent passwd "$user" >/dev/null || fail "the user $user is still there after the purge"
  ! getent group "$user" >/dev/null || fail "the group $user is still there after the purge"
  for path in "$@"; do [ ! -e "$path" ] || fail "$path is still there after the purge"; done
}

say "coper-server: install"
install_deb "$server_deb" coper-server
[ "$(getent passwd coper | cut -d: -f6)" = /var/lib/coper ] || fail "no system user coper with home /var/lib/coper"
for path in /usr/bin/coper-server /usr/lib/coper/backup; do [ -x "$path" ] || fail "$path is not installed"; done
[ "$(stat -c '%U:%G %a' /etc/coper/server.toml)" = "root:coper 640" ] || fail "/etc/coper/server.toml is not root:coper 640"
dpkg-query -W -f='${Conffiles}' coper-server | grep -q /etc/coper/server.toml || fail "server.toml is not a conffile"
[ "$(stat -c '%U %a' /var/lib/coper)" = "coper 700" ] || fail "/var/lib/coper is not coper's, mode 700"
units=(/lib/systemd/system/coper-server.service /lib/systemd/system/coper-backup.service /lib/systemd/system/coper-backup.timer)
verify "${units[@]}"
say "coper-server: units verified"

as_coper=(setpriv --reuid=coper --regid=coper --init-groups)
install -d -o coper -g coper -m 0700 "$tmp/data"
COPER_LOG_FORMAT=json "${as_coper[@]}" /usr/bin/coper-server serve --config /etc/coper/server.toml \
  --listen 127.0.0.1:0 --data-dir "$tmp/data" >"$tmp/out" 2>"$tmp/err" &
server_pid=$!
for _ in $(seq 120); do grep -q 'listening on' "$tmp/out" && break; sleep 0.5; done
address=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/out")
[ -n "$address" ] || { cat "$tmp/err" >&2; fail "the installed server did not start with /etc/coper/server.toml"; }
curl -fsS "$address/healthz" | grep -q '"status":"ok"' || fail "$address/healthz did not answer ok"
head -n1 "$tmp/err" | grep -q '^{' || fail "COPER_LOG_FORMAT=json did not give JSON logs: $(head -n1 "$tmp/err")"
say "coper-server: $address/healthz answers ok"

install -d -o coper -g coper "$tmp/data/backups"
touch -d '20 days ago' "$tmp/data/backups/coper-20000101-000000.sqlite"
"${as_coper[@]}" env COPER_DATA_DIR="$tmp/data" /usr/lib/coper/backup >"$tmp/backup.log" 2>&1 ||
  { cat "$tmp/backup.log" >&2; fail "/usr/lib/coper/backup failed"; }
backup=$(ls "$tmp"/data/backups/coper-2*.sqlite | grep -v 20000101 | head -n1)
[ -n "$backup" ] || fail "the backup script wrote no backup"
[ ! -e "$tmp/data/backups/coper-20000101-000000.sqlite" ] || fail "the backup script kept a 20-day-old backup"
say "coper-server: backup written while it runs, old one removed"
kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
server_pid=""

# The backup restores, with the server stopped, into a new data folder.
install -d -o coper -g coper -m 0700 "$tmp/restored"
"${as_coper[@]}" /usr/bin/coper-server restore --from "$backup" --data-dir "$tmp/restored" >"$tmp/restore.log" 2>&1 ||
  { cat "$tmp/restore.log" >&2; fail "coper-server restore failed"; }
[ -s "$tmp/restored/coper.sqlite3" ] || fail "restore wrote no database"
say "coper-server: backup restored"

if [ -n "$later_deb" ]; then
  # An upgrade keeps the technician's settings, the data and the user, and installs the new
  # binary and units.
  echo '# set by the technician before the upgrade' >>/etc/coper/server.toml
  install -o coper -g coper -m 600 /dev/null /var/lib/coper/kept-across-upgrade
  install_deb "$later_deb" coper-server
  [ "$(dpkg-query -W -f='${Version}' coper-server)" = "$(dpkg-deb -f "$later_deb" Version)" ] ||
    fail "the later package is not the one installed"
  grep -q 'set by the technician' /etc/coper/server.toml || fail "the upgrade replaced the edited server.toml"
  [ -e /var/lib/coper/kept-across-upgrade ] || fail "the upgrade lost the data folder's contents"
  getent passwd coper >/dev/null || fail "the upgrade removed the user coper"
  verify "${units[@]}"
  /usr/bin/coper-server --version >/dev/null || fail "the upgraded binary does not run"
  say "coper-server: upgraded to $(dpkg-deb -f "$later_deb" Version), settings and data kept"
fi

rm -f /var/lib/coper/kept-across-upgrade
purged coper-server coper /usr/bin/coper-server /usr/lib/coper /etc/coper "${units[@]}"
say "coper-server: purged, nothing left but the data folder"

say "coper-kiosk: inspect"
[ "$(dpkg-deb -f "$kiosk_deb" Package)" = coper-kiosk ] || fail "$kiosk_deb is not coper-kiosk"
depends=$(dpkg-deb -f "$kiosk_deb" Depends)
for need in cage cups-client poppler-utils fonts-noto-core fonts-noto-cjk espeak-ng libc6 libfontconfig1; do
  grep -qE "(^|, )$need( |,|$)" <<<"$depends" || fail "coper-kiosk does not depend on $need"
done
contents=$(dpkg-deb --contents "$kiosk_deb")
for path in ./usr/bin/coper-kiosk ./lib/systemd/system/coper-kiosk.service ./etc/default/coper-kiosk; do
  grep -q " $path\$" <<<"$contents" || fail "coper-kiosk does not ship $path"
done
dpkg-deb --ctrl-tarfile "$kiosk_deb" | tar -xO ./conffiles | grep -qx /etc/default/coper-kiosk ||
  fail "/etc/default/coper-kiosk is not a conffile"
dpkg-deb -x "$kiosk_deb" "$tmp/kiosk"
unit=$tmp/kiosk/lib/systemd/system/coper-kiosk.service
if [ -x /usr/bin/cage ]; then
  verify "$unit"
  say "coper-kiosk: unit verified"
else
  out=$(systemd-analyze verify "$unit" 2>&1 | grep -v 'Command /usr/bin/cage is not executable' || true)
  [ -z "$out" ] || fail "systemd-analyze verify coper-kiosk.service printed: $out"
  say "coper-kiosk: unit verified, but for /usr/bin/cage, not installed here"
fi

missing=$(tr ',' '\n' <<<"$depends" | sed 's/(.*)//; s/ //g' | while read -r need; do
  dpkg-query -W -f='${Status}' "$need" 2>/dev/null | grep -q 'ok installed' || echo "$need"
done | paste -sd' ')
if [ -n "$missing" ]; then
  say "coper-kiosk: not installed, its Depends are missing here: $missing"
else
  install_deb "$kiosk_deb" coper-kiosk
  groups=$(id -nG coper-kiosk)
  for group in lp video; do grep -qw "$group" <<<"$groups" || fail "coper-kiosk is not in the group $group"; done
  [ "$(stat -c '%U %a' /var/lib/coper-kiosk)" = "coper-kiosk 700" ] || fail "/var/lib/coper-kiosk is not coper-kiosk's, mode 700"
  verify /lib/systemd/system/coper-kiosk.service
  purged coper-kiosk coper-kiosk /usr/bin/coper-kiosk /etc/default/coper-kiosk /lib/systemd/system/coper-kiosk.service
  say "coper-kiosk: installed, verified and purged"
fi
say "all checks passed"
