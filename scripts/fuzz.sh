#!/usr/bin/env bash
# Fuzzes every ingest parser (fuzz/fuzz_targets: pagerduty, alertmanager, opsgenie, generic) for
# SECONDS each (default 15), seeded with the vendor fixtures; exits non-zero on any crash, with
# the input that caused it in fuzz/artifacts/TARGET/. Installs cargo-fuzz if it is missing.
# cargo-fuzz needs nightly compiler flags: RUSTC_BOOTSTRAP=1 unlocks them on stable Rust.
# The default build is unoptimised, which builds in a third of the time for a tenth of the speed
# (about 10,000 runs a second): right for a short run in CI. For a long hunt, add --release.
# Usage: scripts/fuzz.sh [SECONDS] [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

seconds="${1:-15}"
profile="${2:---dev}"
ensure_rust
apt_install build-essential
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
# No debug info: it doubles the build, and a panic names its file and line without it.
export CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_RELEASE_DEBUG=0

# The corpora grow as the fuzzer learns; they live in fuzz/corpus (ignored by git), seeded
# every run from the fixtures so that a fresh clone starts from real bodies.
fixtures=crates/reveille-server/tests/fixtures
seed() {
    local target=$1
    shift
    mkdir -p "fuzz/corpus/$target"
    for name in "$@"; do cp "$fixtures/$name" "fuzz/corpus/$target/"; done
}
seed pagerduty pagerduty_trigger.json pagerduty_acknowledge.json pagerduty_resolve.json
seed alertmanager alertmanager_firing.json alertmanager_resolved.json grafana_firing.json grafana_resolved.json
seed opsgenie opsgenie_create.json opsgenie_ack.json
mkdir -p fuzz/corpus/generic
printf '%s' '{"summary": "Disk full on db-1", "severity": "critical", "dedup_key": "disk-db-1", "details": {"mount": "/var"}, "links": [{"href": "https://grafana.example/d/1", "text": "Dashboard"}], "runbook": "https://runbooks.example/disk"}' \
    >fuzz/corpus/generic/seed.json
printf '%s' '{"service": "web", "action": "resolve", "dedup_key": "disk-db-1"}' >fuzz/corpus/generic/resolve.json

# The parsers are safe Rust, so what the fuzzer hunts is panics and broken promises: no
# sanitizer, which keeps the build and the runs fast. Debug assertions are on either way.
flags=(--sanitizer none "$profile")
cd fuzz
# Its own workspace: the main `cargo fmt --all --check` does not reach it.
cargo fmt --check
echo "==> building the fuzz targets"
cargo fuzz build "${flags[@]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in pagerduty alertmanager opsgenie generic; do
    echo "==> fuzzing $target for ${seconds}s"
    if ! cargo fuzz run "${flags[@]}" "$target" -- -max_total_time="$seconds" -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        grep -E -A3 'panicked|ERROR|SUMMARY|Test unit written' "$log" || tail -40 "$log"
        echo "fuzz: $target crashed; the input is in fuzz/artifacts/$target/"
        exit 1
    fi
    grep -E 'stat::number_of_executed_units' "$log" || true
done
echo "fuzz: every ingest parser ran ${seconds}s without a crash"
