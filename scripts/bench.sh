#!/usr/bin/env bash
# Runs Reveille's benchmarks on release builds, prints the table and writes
# target/bench/results.json. Idempotent; installs what it needs.
# Usage: scripts/bench.sh [SCENARIO...] [-- OPTIONS]
#   SCENARIO: latency ingest fanout storm desktop cluster channels console calls, or server (all
#   but desktop, cluster, channels, console and calls; the default). calls: 100 people called
#   through Kamailio (SIPp phones) and texted through gammu-smsd at once. cluster: several nodes on PostgreSQL
#   behind haproxy, beside SQLite. channels: email and webhooks under load (aiosmtpd from
#   tests/requirements.txt). console: the incident list over 100,000 incidents.
#   e.g. scripts/bench.sh server desktop    scripts/bench.sh fanout --subscribers 5000
# The desktop scenario runs the real app inside scripts/desktop-session.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

args=("$@")
[ ${#args[@]} -eq 0 ] && args=(server)
apt_install "${BUILD_PACKAGES[@]}"
ensure_rust
if printf '%s\n' "${args[@]}" | grep -qx cluster; then
    apt_install "${SERVER_PACKAGES[@]}"
fi
if printf '%s\n' "${args[@]}" | grep -qx calls; then
    apt_install "${VOICE_PACKAGES[@]}" "${TELEPHONY_PACKAGES[@]}"
fi
if printf '%s\n' "${args[@]}" | grep -qx channels; then
    ensure_python_tools
fi
cargo build --release --locked -p reveille-cli -p reveille-bench
if printf '%s\n' "${args[@]}" | grep -qx desktop; then
    apt_install "${DESKTOP_PACKAGES[@]}" "${SESSION_PACKAGES[@]}"
    ensure_node
    (cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build)
    cargo build --release --locked -p reveille-desktop
    exec scripts/desktop-session.sh target/release/reveille-bench "${args[@]}"
fi
exec target/release/reveille-bench "${args[@]}"
