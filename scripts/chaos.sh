#!/usr/bin/env bash
# The chaos check of the cluster (tests/tests/chaos.rs) for MINUTES minutes (default 30): three
# nodes on PostgreSQL behind haproxy, senders and devices through the balancer, while a nemesis
# kills, freezes and cuts nodes off the database and restarts PostgreSQL. Prints what it did and
# what it measured; fails if any promise broke (a lost 2xx event, a gap or duplicate on a device,
# an escalation fired twice or never, a node that stalled without being disrupted).
# CHAOS_SEED=N replays a run. Usage: scripts/chaos.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

minutes="${1:-30}"
apt_install "${BUILD_PACKAGES[@]}" "${SERVER_PACKAGES[@]}"
ensure_rust
export RUSTFLAGS="-D warnings"
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
export RUSTC_WORKSPACE_WRAPPER
cargo build --workspace --all-targets --locked
set +e
CHAOS_SECONDS=$((minutes * 60)) cargo test --workspace --locked --test chaos -- --nocapture 2>&1 |
    grep --line-buffered -E '^(chaos|nemesis)|test result|panicked|FAILED|assert'
exit "${PIPESTATUS[0]}"
