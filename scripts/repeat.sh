#!/usr/bin/env bash
# Runs one test target RUNS times in a row (default 200) and stops at the first failure: a page
# missed once in a hundred runs is a page missed at 3 a.m. The test binary is built once (by the
# workspace build, so it shares the artifacts and features of `cargo test`) and run directly.
# Targets that need the desktop session (the alarm's `output`) run inside scripts/desktop-session.sh.
# With --busy, another core is kept busy meanwhile: a race that loses under load is a page that
# is silent or late on a busy laptop.
# Usage: scripts/repeat.sh TARGET [RUNS] [--busy]      e.g. scripts/repeat.sh output 200 --busy
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

target="${1:?test target, e.g. disconnects or output}"
runs="${2:-200}"
busy="${3:-}"
ensure_rust
bin=$(cargo test --workspace --locked --no-run --message-format=json 2>/dev/null |
    python3 -c "import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get('executable') and m.get('target', {}).get('name') == '$target': print(m['executable'])" | tail -1)
[ -x "$bin" ] || { echo "no test target '$target'" >&2; exit 1; }
if [ "$busy" = "--busy" ]; then
    ( while :; do :; done ) & hog=$!
    trap 'kill $hog 2>/dev/null' EXIT
fi
for run in $(seq 1 "$runs"); do
    if ! out=$("$bin" --quiet 2>&1); then
        echo "$out"
        echo "$target: run $run of $runs failed"
        echo "$target runs: $((run - 1)) passed, 1 failed"
        exit 1
    fi
done
echo "$target runs: $runs passed, 0 failed"
