# Shared by the project's scripts: install what is missing, idempotently, on Debian 12.

# Runs a command as root (directly, or through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages given that are not installed yet.
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

# Makes sure a Rust toolchain with clippy and rustfmt is on PATH.
ensure_rust() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    if ! command -v cargo >/dev/null; then
        echo "==> installing Rust with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        . "$HOME/.cargo/env"
    fi
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
}

# Makes sure Node.js (20 or newer) and npm are there, for the desktop app's web UI.
ensure_node() {
    if ! command -v npm >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)'; then
        apt_install nodejs npm
    fi
}

# tauri-driver, the WebDriver bridge the desktop tests use (pinned to 2: 3.x is alpha).
ensure_tauri_driver() {
    command -v tauri-driver >/dev/null || cargo install tauri-driver --version '^2' --locked
}

# A Python virtual environment in target/python with the PyPI programs the tests drive
# (tests/requirements.txt: Apprise, PagerDuty's client), made again when that file changes.
ensure_python_tools() {
    apt_install python3 python3-venv
    local venv=target/python
    if ! cmp -s tests/requirements.txt "$venv/requirements.txt"; then
        echo "==> installing tests/requirements.txt into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
        cp tests/requirements.txt "$venv/requirements.txt"
    fi
    TESTS_PYTHON_BIN="$(pwd)/$venv/bin"
    export TESTS_PYTHON_BIN
}

# Packages every build needs.
BUILD_PACKAGES=(build-essential pkg-config ca-certificates curl git libssl-dev)
# What the desktop app (Tauri 2, rodio, the keyring) builds against.
DESKTOP_PACKAGES=(libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libasound2-dev)
# Real servers the tests start as ordinary processes (never their system services): Alertmanager,
# PostgreSQL 15 for the Postgres store and the cluster, haproxy in front of the cluster. The
# packages' own services are not used; where the machine starts them, they stay idle.
SERVER_PACKAGES=(prometheus-alertmanager postgresql-15 haproxy)
# What calls speak with (espeak-ng renders the speech, sox makes it 8 kHz G.711-ready): the server
# runs them whenever [sip] is set.
VOICE_PACKAGES=(espeak-ng sox)
# The phone network the telephony tests start as processes: Kamailio as the PBX, SIPp and baresip
# as phones, gammu-smsd with its dummy modem. (No daemon of theirs is started by installing them.)
TELEPHONY_PACKAGES=(kamailio sip-tester baresip-core gammu gammu-smsd)
# The browser the web console's tests drive (through playwright-core from npm).
BROWSER_PACKAGES=(chromium)
# The headless desktop session the tests run in (see scripts/desktop-session.sh).
SESSION_PACKAGES=(xvfb xauth dbus dbus-x11 fonts-dejavu-core pulseaudio pulseaudio-utils gnome-keyring
    libsecret-tools webkit2gtk-driver dunst imagemagick xdotool trayer)
