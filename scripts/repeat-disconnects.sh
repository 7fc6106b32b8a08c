#!/usr/bin/env bash
# Runs the feed-disconnect scenario (crates/reveille-client/tests/disconnects.rs) RUNS times in a
# row (default 200) and stops at the first failure: a page missed once in a hundred runs is a
# page missed at 3 a.m. The test binary is built once and run directly.
# Usage: scripts/repeat-disconnects.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

runs="${1:-200}"
ensure_rust
# Found through the workspace build, so it shares the artifacts (and features) of `cargo test`.
bin=$(cargo test --workspace --locked --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*disconnects[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$bin" ] || { echo "cannot build the disconnects test" >&2; exit 1; }
for run in $(seq 1 "$runs"); do
    if ! out=$("$bin" --quiet 2>&1); then
        echo "$out"
        echo "disconnects: run $run of $runs failed"
        echo "disconnect runs: $((run - 1)) passed, 1 failed"
        exit 1
    fi
done
echo "disconnect runs: $runs passed, 0 failed"
