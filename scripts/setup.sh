#!/usr/bin/env bash
# Sets up a machine for Brook: checks the Rust toolchain and installs the
# components the project uses. Safe to run again.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust with rustup first" >&2
    exit 1
fi
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
echo "setup: $(cargo --version), ready"
