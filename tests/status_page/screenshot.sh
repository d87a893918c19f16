#!/usr/bin/env bash
# Browser check of the status page (issue 5): starts the relay on a temp config with
# `[admin] local_status_page = true`, sends a few example notifications (one of them to a region
# whose webhook refuses connections, so it becomes a dead letter), then loads `/` in headless
# Chromium: the screenshot must be a real PNG larger than a blank page, and the rendered DOM must
# show every region, the recent deliveries and the dead letter's replay button.
#
# Run from anywhere:  bash tests/status_page/screenshot.sh
# CI runs it as root on Debian 12; Chromium (and curl) are installed with apt when missing.
# The screenshot is kept at target/status-page/status-page.png (outside the repo's tracked files).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out_dir="$repo/target/status-page"
png="$out_dir/status-page.png"
dom="$out_dir/status-page.html"
started=$SECONDS

fail() {
    echo "FAIL: status page browser check: $*" >&2
    if [[ -n "${work:-}" && -s "$work/relay.log" ]]; then
        echo "--- relay log (last 30 lines) ---" >&2
        tail -n 30 "$work/relay.log" >&2
    fi
    exit 1
}

relay_pid=""
work=""
cleanup() {
    if [[ -n "$relay_pid" ]] && kill -0 "$relay_pid" 2>/dev/null; then
        kill "$relay_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$relay_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$relay_pid" 2>/dev/null || true
    fi
    if [[ -n "$work" ]]; then
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# --- tools -------------------------------------------------------------------------------------
chromium_bin="${CHROMIUM:-/usr/bin/chromium}"
missing=()
[[ -x "$chromium_bin" ]] || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    echo "Installing ${missing[*]} with apt-get..."
    if [[ $(id -u) -ne 0 ]]; then
        fail "${missing[*]} missing and not running as root to install it (apt-get install ${missing[*]})"
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || fail "apt-get update failed"
    apt-get install -y -qq "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]} failed"
    [[ -x "$chromium_bin" ]] || chromium_bin="$(command -v chromium)" || fail "no chromium after install"
fi

# --- the relay ---------------------------------------------------------------------------------
binary="$repo/target/debug/hookrelay"
if command -v cargo >/dev/null; then
    echo "Building the debug binary..."
    (cd "$repo" && cargo build --quiet --bin hookrelay) || fail "cargo build failed"
fi
[[ -x "$binary" ]] || fail "no $binary (and no cargo to build it)"

work="$(mktemp -d)"
mkdir -p "$out_dir" "$work/outbox"

# A free port: the first of a few random ones nothing answers on.
port=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port=$candidate
        break
    fi
done
[[ -n "$port" ]] || fail "no free port found"

token="screenshot-admin-token-$RANDOM$RANDOM-0123456789"

# The repo's config with the port, a temp store and outbox, one attempt per message, a region
# whose webhook refuses connections (port 9 on loopback), and the local status page on.
sed -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" \
    -e "s|^path = \"data\".*|path = \"$work/store\"|" \
    -e "s|^max_attempts = .*|max_attempts = 1|" \
    -e "s|^initial_backoff = .*|initial_backoff = \"10ms\"|" \
    -e "s|file://outbox/|file://$work/outbox/|" \
    "$repo/config.toml" >"$work/config.toml"
cat >>"$work/config.toml" <<EOF

[regions.APAC]
webhook_url = "http://127.0.0.1:9/services/T0SCREEN/B0SCREEN/not-a-real-secret"
countries = ["JP", "SG"]
rate = "10/s"
burst = 3

[admin]
local_status_page = true
tokens = ["$token"]
EOF
grep -q "^listen = \"127.0.0.1:$port\"" "$work/config.toml" || fail "could not set the port in the config"
grep -q "^path = \"$work/store\"" "$work/config.toml" || fail "could not set the store path in the config"

(cd "$work" && exec "$binary" serve --config "$work/config.toml") >"$work/relay.log" 2>&1 &
relay_pid=$!

base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break
    kill -0 "$relay_pid" 2>/dev/null || fail "the relay exited at start"
    sleep 0.1
done
curl -fsS -o /dev/null "$base/healthz" || fail "the relay did not answer on $base/healthz"

# --- example traffic ---------------------------------------------------------------------------
# UK is paused first so the page shows a queue, its age and the pause reason.
curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $token" "$base/v1/regions/UK/pause" ||
    fail "pausing UK through the admin API failed"
example="$repo/examples/opportunity.json"
post() { # id country
    local body
    body="$(sed -e "s|\"id\": \"[^\"]*\"|\"id\": \"$1\"|" -e "s|\"country\": \"[^\"]*\"|\"country\": \"$2\"|" "$example")"
    curl -fsS -o /dev/null -H 'Content-Type: application/json' --data-binary "$body" \
        "$base/hooks/salesforce" || fail "posting example $1 ($2) failed"
}
curl -fsS -o /dev/null -H 'Content-Type: application/json' --data-binary "@$example" \
    "$base/hooks/salesforce" || fail "posting $example failed"
post "0065800000Screen2" "DE"
post "0065800000Screen3" "US"
post "0065800000Screen4" "JP"
post "0065800000Screen5" "GB"

# Wait until the page shows the dead letter (the JP one) and the two deliveries.
for _ in $(seq 1 100); do
    page="$(curl -fsS "$base/")" || fail "GET / from localhost was refused"
    if grep -q 'class="replay"' <<<"$page" && [[ $(grep -o '>delivered</span>' <<<"$page" | wc -l) -ge 2 ]]; then
        break
    fi
    sleep 0.1
done

# --- the browser -------------------------------------------------------------------------------
chrome_flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --hide-scrollbars --window-size=1280,900)
rm -f "$png" "$dom"
profile="$work/chromium-profile"
timeout 90 "$chromium_bin" "${chrome_flags[@]}" --user-data-dir="$profile-1" \
    --screenshot="$png" "$base/" >"$work/chromium.log" 2>&1 ||
    fail "chromium --screenshot failed: $(tail -n 5 "$work/chromium.log")"
timeout 90 "$chromium_bin" "${chrome_flags[@]}" --user-data-dir="$profile-2" \
    --dump-dom "$base/" >"$dom" 2>"$work/chromium-dom.log" ||
    fail "chromium --dump-dom failed: $(tail -n 5 "$work/chromium-dom.log")"

# --- checks ------------------------------------------------------------------------------------
[[ -s "$png" ]] || fail "no screenshot at $png"
[[ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] || fail "$png is not a PNG"
size=$(wc -c <"$png")
((size > 10240)) || fail "screenshot is only $size bytes: a blank page?"

for want in 'data-region="UK"' 'data-region="US"' 'data-region="EU"' 'data-region="APAC"' \
    '<h2>Regions</h2>' 'id="recent"' 'id="dead-letters"' 'class="replay"' '>delivered</span>' \
    'salesforce/0065800000Screen2' 'http://127.0.0.1:9/services/***' 'paused by an operator' \
    '<td class="n queue">2</td>'; do
    grep -qF -- "$want" "$dom" || fail "the rendered page lacks $want (DOM saved at $dom)"
done
! grep -q 'not-a-real-secret' "$dom" || fail "the page shows a webhook secret"
! grep -qi 'unauthorized\|missing_token' "$dom" || fail "the browser got an auth error instead of the page"

# What the replay button calls: the admin API, with the id the page rendered.
dead_id="$(grep -o 'class="replay" data-id="[0-9]*"' "$dom" | head -n 1 | grep -o '[0-9][0-9]*')" ||
    fail "no dead letter id on the replay button"
grep -q "class=\"replay\" data-id=\"$dead_id\">" "$dom" || fail "the replay button is disabled"
replay="$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
    "$base/v1/dead-letters/$dead_id/replay")"
[[ "$replay" == 200 ]] || fail "replaying dead letter $dead_id answered $replay"

echo "PASS: status page renders in headless Chromium ($size-byte screenshot at ${png#"$repo"/}, DOM at ${dom#"$repo"/}, $((SECONDS - started))s)"
