#!/usr/bin/env bash
# Builds target/debian/hookrelay_<version>_<arch>.deb ($CARGO_TARGET_DIR/debian/ when that is
# set: cargo-deb follows it too). Optional: DEB_VERSION=0.1.1-1 to override.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --version '^3'
cargo build --release --locked
mkdir -p target/assets
bin=${CARGO_TARGET_DIR:-target}/release/hookrelay
"$bin" man > target/assets/hookrelay.1
"$bin" completions bash > target/assets/hookrelay.bash
"$bin" completions zsh > target/assets/_hookrelay
"$bin" completions fish > target/assets/hookrelay.fish
args=(--no-build)
if [ -n "${DEB_VERSION:-}" ]; then args+=(--deb-version "$DEB_VERSION"); fi
cargo deb "${args[@]}"
