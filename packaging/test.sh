#!/usr/bin/env bash
# Packaging test: builds the .deb (versions N and N+1), lints it, checks its contents and the
# unit's sandbox score, then installs it into a Debian chroot and exercises install, the running
# relay, upgrade with a queued backlog, remove and purge. Needs root, network access to the
# Debian mirror, and about 5 minutes. Run: sudo bash packaging/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

failures=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

need=()
command -v lintian >/dev/null || need+=(lintian)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

# ---- build N and N+1 -------------------------------------------------------------------------
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
out=target/packaging-test
rm -rf "$out" && mkdir -p "$out"
# Where cargo and cargo-deb put their output: ./target unless CARGO_TARGET_DIR says otherwise.
target=${CARGO_TARGET_DIR:-target}
# cargo-deb clears its debian/ on every run, so each build is moved aside.
bash packaging/build-deb.sh >/dev/null && mv "$target/debian/hookrelay_${version}-1_${arch}.deb" "$out/"
DEB_VERSION="${version}-2" bash packaging/build-deb.sh >/dev/null && mv "$target/debian/hookrelay_${version}-2_${arch}.deb" "$out/"
deb_n="$out/hookrelay_${version}-1_${arch}.deb"
deb_n1="$out/hookrelay_${version}-2_${arch}.deb"
check "both packages were built" test -f "$deb_n" -a -f "$deb_n1"

# ---- lintian -----------------------------------------------------------------------------------
# Accepted: initial-upload-closes-no-bugs only matters for an upload to Debian's archive (an ITP
# bug); this package is distributed by its makers.
lint=$(lintian --allow-root "$deb_n" 2>&1 | grep -E '^[EW]:' | grep -v 'initial-upload-closes-no-bugs' || true)
if [ -z "$lint" ]; then pass "lintian: no errors or warnings beyond the accepted list"; else fail "lintian:"; echo "$lint"; fi

# ---- contents ----------------------------------------------------------------------------------
listing=$(dpkg-deb -c "$deb_n")
for path in ./usr/bin/hookrelay ./etc/hookrelay/config.toml ./usr/lib/systemd/system/hookrelay.service \
    ./usr/share/man/man1/hookrelay.1.gz ./usr/share/bash-completion/completions/hookrelay \
    ./usr/share/zsh/vendor-completions/_hookrelay ./usr/share/fish/vendor_completions.d/hookrelay.fish \
    ./usr/share/doc/hookrelay/copyright ./usr/share/doc/hookrelay/changelog.Debian.gz; do
  check "package ships $path" grep -q " $path\$" <<<"$listing"
done
check "/usr/bin/hookrelay is 0755" grep -qE '^-rwxr-xr-x .* \./usr/bin/hookrelay$' <<<"$listing"
check "config is a conffile" bash -c "dpkg-deb -f '$deb_n' >/dev/null && dpkg-deb --ctrl-tarfile '$deb_n' | tar -xO ./conffiles | grep -qx /etc/hookrelay/config.toml"

# ---- the unit ----------------------------------------------------------------------------------
score=$(systemd-analyze security --offline=true systemd/hookrelay.service 2>/dev/null | sed -n 's/.*Overall exposure level for hookrelay.service: \([0-9.]*\).*/\1/p')
echo "     unit exposure score: $score"
check "unit exposure score <= 2.0" awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }'

# ---- chroot ------------------------------------------------------------------------------------
root=$(mktemp -d /tmp/hookrelay-chroot.XXXXXX)
chmod 755 "$root"   # mktemp makes it 0700; the relay runs as the hookrelay user in it
relay_pid=""
cleanup() {
  [ -n "$relay_pid" ] && kill -9 "$relay_pid" 2>/dev/null || true
  umount "$root/proc" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
debootstrap --variant=minbase "$suite" "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
mount -t proc proc "$root/proc"
# No services start in the chroot (there is no systemd as PID 1); the relay is run by hand below.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
cp "$deb_n" "$deb_n1" "$root/tmp/"
in_root() { chroot "$root" "$@"; }

check "install: maintainer scripts succeed" in_root apt-get install -y -qq -o Dpkg::Use-Pty=0 "/tmp/$(basename "$deb_n")"
check "installed config passes check-config" in_root hookrelay check-config --config /etc/hookrelay/config.toml
check "system user hookrelay exists" in_root getent passwd hookrelay
check "config is root:hookrelay 0640" test "$(in_root stat -c '%U:%G %a' /etc/hookrelay/config.toml)" = "root:hookrelay 640"
check "state dir is hookrelay:hookrelay 0750" test "$(in_root stat -c '%U:%G %a' /var/lib/hookrelay)" = "hookrelay:hookrelay 750"
check "TLS dir is root:hookrelay 0750" test "$(in_root stat -c '%U:%G %a' /etc/hookrelay/tls)" = "root:hookrelay 750"
# The README's way to put a certificate there (what its certbot deploy hook does), then the
# config that uses it, checked as the service's user: it can read a root:hookrelay 0640 key.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$out/privkey.pem" -out "$out/fullchain.pem" 2>/dev/null
cp "$out/fullchain.pem" "$out/privkey.pem" "$root/tmp/"
in_root install -m 0640 -o root -g hookrelay /tmp/fullchain.pem /tmp/privkey.pem /etc/hookrelay/tls/
sed 's|^\[server\]$|[server]\ntls_cert = "/etc/hookrelay/tls/fullchain.pem"\ntls_key = "/etc/hookrelay/tls/privkey.pem"|' \
  "$root/etc/hookrelay/config.toml" > "$root/tmp/tls.toml" && chmod 644 "$root/tmp/tls.toml"
check "the service user reads a root:hookrelay 0640 key in the TLS dir" \
  chroot --userspec=hookrelay:hookrelay "$root" sh -c 'cat /etc/hookrelay/tls/privkey.pem >/dev/null'
check "check-config, as hookrelay, accepts the TLS files there" \
  chroot --userspec=hookrelay:hookrelay "$root" hookrelay check-config --config /tmp/tls.toml
check "a key in the TLS dir is not readable by others" \
  bash -c "! chroot --userspec=nobody:nogroup '$root' cat /etc/hookrelay/tls/privkey.pem 2>/dev/null"
check "man page is installed" test -s "$root/usr/share/man/man1/hookrelay.1.gz"
# The unit as installed, checked by this host's systemd (the chroot has none); only the binary's
# path points at the build, and the man page check is skipped (it is not installed on the host).
unit_dir=$(mktemp -d)
sed "s|/usr/bin/hookrelay|$(cd "$target/release" && pwd)/hookrelay|g" "$root/usr/lib/systemd/system/hookrelay.service" > "$unit_dir/hookrelay.service"
verify=$(systemd-analyze verify "$unit_dir/hookrelay.service" 2>&1 | grep -v "man hookrelay" || true)
rm -rf "$unit_dir"
if [ -z "$verify" ]; then pass "systemd-analyze verify of the installed unit"; else fail "systemd-analyze verify:"; echo "$verify"; fi

# An operator's edit: another port. Upgrades must keep it.
port=18080
sed -i "s/^listen = \"127.0.0.1:8080\"/listen = \"127.0.0.1:$port\"/" "$root/etc/hookrelay/config.toml"

start_relay() {  # $1: log file inside the root
  chroot --userspec=hookrelay:hookrelay "$root" /usr/bin/hookrelay serve --config /etc/hookrelay/config.toml \
    >"$root/$1" 2>&1 &
  relay_pid=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
    kill -0 "$relay_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "relay did not start:"; cat "$root/$1"; return 1
}
stop_relay() {
  kill -TERM "$relay_pid"; local rc=0; wait "$relay_pid" || rc=$?; relay_pid=""; return $rc
}

check "relay starts as hookrelay in the chroot" start_relay run1.log
for i in 1 2 3; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/hooks/salesforce" \
    -H 'Content-Type: application/json' \
    -d "{\"id\":\"pkg-$i\",\"name\":\"Package test $i\",\"country\":\"UK\",\"amount\":100}")
  check "notification pkg-$i accepted (202)" test "$code" = 202
done
# What `systemctl reload hookrelay` sends (ExecReload): the relay must keep serving.
kill -HUP "$relay_pid"; sleep 0.5
check "still serving after SIGHUP (reload)" curl -sf "http://127.0.0.1:$port/healthz" -o /dev/null
check "stops with exit 0 on SIGTERM" stop_relay
check "journal says the placeholder region is not configured" grep -q "Region UK is not configured yet" "$root/run1.log"

# ---- upgrade N -> N+1 with a queued backlog ----------------------------------------------------
# An admin's own mode for the TLS dir, recorded the Debian way: upgrades must keep it.
in_root dpkg-statoverride --update --add root hookrelay 0710 /etc/hookrelay/tls
check "upgrade: maintainer scripts succeed" in_root apt-get install -y -qq "/tmp/$(basename "$deb_n1")"
check "upgrade: version is N+1" test "$(in_root dpkg-query -W -f '${Version}' hookrelay)" = "${version}-2"
check "upgrade kept the edited config" grep -q "127.0.0.1:$port" "$root/etc/hookrelay/config.toml"
check "upgrade kept config modes" test "$(in_root stat -c '%U:%G %a' /etc/hookrelay/config.toml)" = "root:hookrelay 640"
check "upgrade kept the TLS dir's statoverride" test "$(in_root stat -c '%U:%G %a' /etc/hookrelay/tls)" = "root:hookrelay 710"
check "upgrade kept the certificate" test -s "$root/etc/hookrelay/tls/fullchain.pem"
in_root dpkg-statoverride --remove /etc/hookrelay/tls
check "relay starts after the upgrade" start_relay run2.log
check "the queued deliveries are still there" grep -q "Resuming 3 pending deliveries for region UK" "$root/run2.log"
check "stops with exit 0 after the upgrade" stop_relay

# ---- remove keeps config and state; purge removes them ----------------------------------------
check "remove succeeds" in_root apt-get remove -y -qq hookrelay
check "remove keeps the config" test -f "$root/etc/hookrelay/config.toml"
check "remove keeps the store" test -d "$root/var/lib/hookrelay"
check "remove takes the binary" test ! -e "$root/usr/bin/hookrelay"
check "purge succeeds" in_root apt-get purge -y -qq hookrelay
check "purge removes the config" test ! -e "$root/etc/hookrelay"
check "purge removes the store" test ! -e "$root/var/lib/hookrelay"

echo
if [ "$failures" -eq 0 ]; then echo "packaging: all checks passed"; else echo "packaging: $failures checks failed"; exit 1; fi
