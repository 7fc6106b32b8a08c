#!/usr/bin/env bash
# Sets up and runs Reveille for real on this machine: builds the server and the desktop app,
# writes an example config with a runbook into ./demo (once), creates an integration key and a
# token for alice (once), starts the server on 127.0.0.1:8080 with its embedded SQLite database,
# starts the desktop app (when there is a display) for alice to sign in to, and follows alice's
# pages in the terminal until Ctrl-C. Idempotent: run it again and it reuses ./demo.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_install "${BUILD_PACKAGES[@]}" "${DESKTOP_PACKAGES[@]}" "${VOICE_PACKAGES[@]}"
ensure_rust
ensure_node
echo "==> building the desktop app's web UI"
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build)
echo "==> building the web console (embedded in the server)"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build)
echo "==> building reveille and the desktop app (release)"
cargo build --release --locked -p reveille-cli -p reveille-desktop
reveille="$PWD/target/release/reveille"

demo="$PWD/demo"
mkdir -p "$demo/runbooks"
if [ ! -f "$demo/reveille.toml" ]; then
    # The example ships with its runbook line commented out; the demo has the file, so switch it on.
    "$reveille" default-config | sed "s/^# runbook = /runbook = /" > "$demo/reveille.toml"
    cp assets/runbooks/payments.md "$demo/runbooks/payments.md"
fi
"$reveille" check-config -c "$demo/reveille.toml"

# The demo keeps its key and token in a private file so a second run can reuse them.
# (The server itself stores only their hashes.)
secrets="$demo/credentials.env"
if [ ! -f "$secrets" ]; then
    key=$("$reveille" key create -c "$demo/reveille.toml" --service payments | tail -1)
    token=$("$reveille" token create -c "$demo/reveille.toml" --user alice --scope read,respond,ingest | tail -1)
    (umask 077 && printf 'REVEILLE_KEY=%s\nREVEILLE_TOKEN=%s\n' "$key" "$token" > "$secrets")
fi
. "$secrets"
export REVEILLE_TOKEN REVEILLE_SERVER=http://127.0.0.1:8080

"$reveille" serve -c "$demo/reveille.toml" > "$demo/server.out" 2> "$demo/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
until grep -q "listening on" "$demo/server.out" 2>/dev/null; do
    kill -0 $server 2>/dev/null || { cat "$demo/server.log"; exit 1; }
    sleep 0.2
done

desktop=""
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    ./target/release/reveille-desktop > "$demo/desktop.log" 2>&1 &
    desktop=$!
    trap 'kill $server $desktop 2>/dev/null; wait $server 2>/dev/null' EXIT
fi

cat <<MSG

Reveille is running on $REVEILLE_SERVER (database $demo/reveille.db, log $demo/server.log).
The web console: open this one-time sign-in link (valid 15 minutes) in a browser:

  $("$reveille" web-link -c "$demo/reveille.toml" --user alice)

Page alice from another terminal:

  curl -sS -X POST $REVEILLE_SERVER/api/v1/events \\
    -H 'Authorization: Bearer $REVEILLE_KEY' -H 'Content-Type: application/json' \\
    -d '{"summary": "Disk full on db-1", "severity": "critical"}'

and acknowledge it:   . $secrets && REVEILLE_TOKEN=\$REVEILLE_TOKEN $reveille ack <id>

${desktop:+The desktop app is running (tray icon; its window asks you to sign in): server $REVEILLE_SERVER,
token \$REVEILLE_TOKEN from $secrets. It keeps the token in your system keyring.}
Following alice's pages below (Ctrl-C stops everything).

MSG
"$reveille" watch
