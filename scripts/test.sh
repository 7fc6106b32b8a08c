#!/usr/bin/env bash
# Runs every check and test of Reveille, installing what is missing first. Idempotent.
# The whole suite runs inside scripts/desktop-session.sh, so the desktop app's end-to-end test
# has its display, session bus, sound server, keyring and notification daemon.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_install "${BUILD_PACKAGES[@]}" "${DESKTOP_PACKAGES[@]}" "${SESSION_PACKAGES[@]}" prometheus-alertmanager
ensure_rust
ensure_node
ensure_tauri_driver

export CARGO_TERM_COLOR=never
echo "==> building the desktop app's web UI"
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build)
echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> fuzzing every ingest parser (10 s each)"
scripts/fuzz.sh 10
echo "==> the feed-disconnect scenario, 20 runs in a row (scripts/repeat-disconnects.sh 200 for the full check)"
scripts/repeat-disconnects.sh 20
echo "==> building the binaries the end-to-end tests run"
cargo build --locked -p reveille-cli -p reveille-desktop
echo "==> cargo test (inside a desktop session)"
status=0
out=$(mktemp)
scripts/desktop-session.sh cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$out" || status=$?
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$out"
exit $status
