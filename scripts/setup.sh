#!/usr/bin/env bash
# Sets up a machine for Brook: checks the Rust toolchain and installs the
# components the project uses. Safe to run again.
#
# Usage: scripts/setup.sh [--python] [--browser]
#   --python  also install the Python packages the dev tools need, from
#             scripts/requirements-dev.txt (the same as BROOK_SETUP_PYTHON=1).
#             Off by default: building and testing need no Python, and CI
#             runs without it.
#   --browser also install Chromium from the distribution's packages (apt),
#             for the web UI's test in a headless browser
#             (BROOK_BROWSER_TESTS=1 cargo test --test integration web_ui).
set -euo pipefail

python=${BROOK_SETUP_PYTHON:-0}
browser=${BROOK_SETUP_BROWSER:-0}
for arg in "$@"; do
    case "$arg" in
        --python) python=1 ;;
        --browser) browser=1 ;;
        -h | --help)
            sed -n '2,12s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *)
            echo "setup: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust with rustup first" >&2
    exit 1
fi
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
echo "setup: $(cargo --version), ready"

if [ "$python" = 1 ]; then
    reqs="$(dirname "$0")/requirements-dev.txt"
    if ! command -v python3 >/dev/null 2>&1; then
        echo "setup: python3 not found; install it to use --python" >&2
        exit 1
    fi
    # The import name of each requirement: the name before any version
    # specifier, with '-' as '_' (confluent-kafka imports as confluent_kafka).
    modules=$(sed -e 's/#.*//' -e 's/[<>=!~;[ ].*//' -e '/^$/d' -e 's/-/_/g' "$reqs")
    missing=""
    for m in $modules; do
        python3 -c "import $m" >/dev/null 2>&1 || missing="$missing $m"
    done
    if [ -z "$missing" ]; then
        echo "setup: python packages already installed:" $modules
    else
        echo "setup: installing python packages for:$missing"
        # --user, unless in a virtualenv, where user site-packages are hidden.
        user=--user
        if python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
            user=""
        fi
        python3 -m pip install $user -r "$reqs"
        for m in $missing; do
            if ! python3 -c "import $m" >/dev/null 2>&1; then
                echo "setup: python package '$m' installed but not importable" >&2
                exit 1
            fi
        done
        echo "setup: python packages ready:" $modules
    fi
fi

if [ "$browser" = 1 ]; then
    if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
        echo "setup: chromium already installed"
    elif command -v apt-get >/dev/null 2>&1; then
        sudo=""
        if [ "$(id -u)" != 0 ]; then
            sudo=sudo
        fi
        echo "setup: installing chromium with apt"
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq chromium
        echo "setup: chromium ready: $(chromium --version 2>/dev/null || true)"
    else
        echo "setup: no apt-get here; install Chromium with the system's package manager" >&2
        exit 1
    fi
fi
