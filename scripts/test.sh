#!/usr/bin/env bash
# Runs every check and test of Reveille, installing what is missing first. Idempotent.
# The whole suite runs inside scripts/desktop-session.sh, so the desktop app's end-to-end test
# has its display, session bus, sound server, keyring and notification daemon.
#
# Everything is compiled once. The workspace's crates are compiled by clippy-driver (rustc with
# Clippy's lints) with warnings as errors, so the lint pass and the build the tests run are one
# compilation (a separate `cargo clippy` checked every dependency again: 9 minutes on 2 cores).
# And everything the tests run is built with the features `cargo test --workspace` resolves:
# building the binaries on their own (`cargo build -p …`) resolves other features for shared
# crates and compiled the whole Tauri stack a second time. Each step says when it started.
# The fuzzers are not part of it (their own build took 3 minutes): scripts/fuzz.sh runs them.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

began=$SECONDS
step() { echo "==> $* (at $((SECONDS - began)) s)"; }

step "installing what is missing"
apt_install "${BUILD_PACKAGES[@]}" "${DESKTOP_PACKAGES[@]}" "${SESSION_PACKAGES[@]}" "${SERVER_PACKAGES[@]}" \
    "${BROWSER_PACKAGES[@]}" "${VOICE_PACKAGES[@]}" "${TELEPHONY_PACKAGES[@]}"
ensure_rust
ensure_node
ensure_tauri_driver
ensure_python_tools

export CARGO_TERM_COLOR=never
step "building the desktop app's web UI"
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build)
step "building the web console (embedded in the server)"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build)
step "cargo fmt --check"
cargo fmt --all --check
export RUSTFLAGS="-D warnings"
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
export RUSTC_WORKSPACE_WRAPPER
step "building every binary and test, with Clippy's lints (warnings are errors)"
cargo build --workspace --all-targets --locked
step "the desktop app's .deb (the Tauri bundler, from ui/'s npm packages), installed with dpkg -i"
ui/node_modules/.bin/tauri bundle --debug --bundles deb
as_root dpkg -i target/debug/bundle/deb/Reveille_0.1.0_amd64.deb >/dev/null
# The two loops run side by side: each is the other's load (the alarm's also keeps a core busy),
# and the run is shorter by the length of the shorter loop.
step "the feed-disconnect scenario and the alarm on a real sound server, 20 runs each in a row, side by side with another core busy (scripts/repeat.sh disconnects 200, … output 200 --busy for the full check)"
scripts/repeat.sh disconnects 20 & disconnects=$!
scripts/desktop-session.sh scripts/repeat.sh output 20 --busy
wait $disconnects
step "cargo test (inside a desktop session)"
status=0
out=$(mktemp)
scripts/desktop-session.sh cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$out" || status=$?
step "done"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$out"
exit $status
