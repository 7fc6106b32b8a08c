#!/usr/bin/env bash
# Runs a command inside a private desktop session, as the desktop tests need it: a virtual
# display (Xvfb, via xvfb-run), a private D-Bus session bus, PulseAudio with a null sink "alarm"
# as the default output, an unlocked gnome-keyring, and the dunst notification daemon.
# HOME, XDG_* and TMPDIR point at a scratch directory; everything started is stopped at the end.
# Usage: scripts/desktop-session.sh COMMAND [ARGS...]
set -euo pipefail
if [ -z "${IN_DESKTOP_SESSION:-}" ]; then
    scratch=$(mktemp -d /tmp/reveille-session.XXXXXX)
    export DESKTOP_SESSION_DIR="$scratch" IN_DESKTOP_SESSION=1
    export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
    export HOME="$scratch/home" XDG_RUNTIME_DIR="$scratch/run" XDG_CONFIG_HOME="$scratch/home/.config" \
        XDG_DATA_HOME="$scratch/home/.local/share" XDG_CACHE_HOME="$scratch/home/.cache" TMPDIR="$scratch/tmp" \
        NO_AT_BRIDGE=1
    mkdir -p "$HOME" "$XDG_RUNTIME_DIR" "$TMPDIR" && chmod 700 "$XDG_RUNTIME_DIR"
    exec xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" dbus-run-session -- "$0" "$@"
fi

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_for() { # wait_for DESCRIPTION COMMAND...: polls a readiness check, up to 20 s
    local what=$1; shift
    for _ in $(seq 1 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "desktop-session: $what did not start" >&2; return 1
}
has_owner() { dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner "string:$1" | grep -q "boolean true"; }

pulseaudio --daemonize=no --exit-idle-time=-1 --disallow-exit >"$DESKTOP_SESSION_DIR/pulse.log" 2>&1 & pids+=($!)
wait_for PulseAudio pactl info
pactl load-module module-null-sink sink_name=alarm >/dev/null
pactl set-default-sink alarm

echo -n reveille | gnome-keyring-daemon --foreground --unlock --components=secrets >"$DESKTOP_SESSION_DIR/keyring.log" 2>&1 & pids+=($!)
wait_for gnome-keyring has_owner org.freedesktop.secrets

dunst -config /dev/null >"$DESKTOP_SESSION_DIR/dunst.log" 2>&1 & pids+=($!)
wait_for dunst has_owner org.freedesktop.Notifications

# A tray host (XEmbed), top right, so the app's tray icon is on screen at 1240,0 (40×40).
trayer --edge top --align right --widthtype pixel --width 40 --heighttype pixel --height 40 \
    --SetDockType true --transparent false >"$DESKTOP_SESSION_DIR/trayer.log" 2>&1 & pids+=($!)
wait_for trayer xdotool search --class trayer

"$@"
