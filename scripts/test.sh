#!/usr/bin/env bash
# Runs every Tessera test against real services.
#
# On a fresh Debian machine with only Rust, this installs what the tests need
# (redis-server; SecantusDB, a MongoDB wire-protocol server, into a venv under
# target/; rustfmt and clippy if the toolchain lacks them), starts the
# services on free loopback ports, exports TESSERA_TEST_REDIS_URL and
# TESSERA_TEST_MONGODB_URI, checks formatting and lints, runs
# `cargo test --workspace`, stops what it started by PID, and exits with the
# tests' status. Extra arguments go to `cargo test`.
set -euo pipefail

TESSERA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$TESSERA_ROOT"
# shellcheck source=scripts/services.sh
source scripts/services.sh

CHILD=""
# Runs a command in the background and waits, so a signal to this script is
# handled at once (bash defers traps until a foreground command returns).
run() {
    "$@" &
    CHILD=$!
    local status=0
    wait "$CHILD" || status=$?
    CHILD=""
    return "$status"
}
on_signal() {
    trap '' INT TERM
    if [ -n "$CHILD" ]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    services_stop
    exit "$1"
}
trap 'trap "" INT TERM; services_stop' EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
for component in rustfmt clippy; do
    subcommand=${component/rustfmt/fmt}
    if ! cargo "$subcommand" --version >/dev/null 2>&1; then
        command -v rustup >/dev/null || die "cargo $subcommand is missing and there is no rustup to add $component"
        log "adding the $component component"
        rustup component add "$component" >/dev/null || die "rustup component add $component failed"
    fi
done

started=$SECONDS
services_start

log "cargo fmt --check"
run cargo fmt --all -- --check || die "code is not formatted: run cargo fmt --all"

log "cargo clippy --all-targets -- -D warnings"
run cargo clippy --workspace --all-targets --quiet -- -D warnings || die "clippy found problems"

log "cargo test --workspace"
status=0
run cargo test --workspace "$@" || status=$?
log "tests finished with status $status in $((SECONDS - started)) s"
exit "$status"
