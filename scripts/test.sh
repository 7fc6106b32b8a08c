#!/usr/bin/env bash
# Runs every check and test of Reveille, installing what is missing first. Idempotent.
# The whole suite runs inside scripts/desktop-session.sh, so the desktop app's end-to-end test
# has its display, session bus, sound server, keyring and notification daemon.
#
# Everything the tests run is built once, with the features `cargo test --workspace` resolves:
# building the binaries on their own (`cargo build -p …`) resolves other features for shared
# crates and compiled the whole Tauri stack a second time. Each step says how long it took.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

began=$SECONDS
step() { echo "==> $* (at $((SECONDS - began)) s)"; }

step "installing what is missing"
apt_install "${BUILD_PACKAGES[@]}" "${DESKTOP_PACKAGES[@]}" "${SESSION_PACKAGES[@]}" "${SERVER_PACKAGES[@]}"
ensure_rust
ensure_node
ensure_tauri_driver

export CARGO_TERM_COLOR=never
step "building the desktop app's web UI"
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build)
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "fuzzing every ingest parser (10 s each)"
scripts/fuzz.sh 10
step "building every binary and test"
cargo build --workspace --all-targets --locked
step "the feed-disconnect scenario, 20 runs in a row (scripts/repeat-disconnects.sh 200 for the full check)"
scripts/repeat-disconnects.sh 20
step "cargo test (inside a desktop session)"
status=0
out=$(mktemp)
scripts/desktop-session.sh cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$out" || status=$?
step "done"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$out"
exit $status
