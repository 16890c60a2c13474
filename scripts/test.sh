#!/usr/bin/env bash
# Runs every Tessera test against real services.
#
# On a fresh Debian machine with only Rust, this installs what the tests need
# (redis-server; SecantusDB, a MongoDB wire-protocol server, into a venv under
# target/), starts both on free loopback ports, exports
# TESSERA_TEST_REDIS_URL and TESSERA_TEST_MONGODB_URI, checks formatting and
# lints, runs `cargo test --workspace`, stops what it started by PID, and
# exits with the tests' status. Extra arguments go to `cargo test`.
set -euo pipefail

TESSERA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$TESSERA_ROOT"
# shellcheck source=scripts/services.sh
source scripts/services.sh

trap services_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"

started=$SECONDS
services_start

log "cargo fmt --check"
cargo fmt --all -- --check || die "code is not formatted: run cargo fmt --all"

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings || die "clippy found problems"

log "cargo test --workspace"
status=0
cargo test --workspace "$@" || status=$?
log "tests finished with status $status in $((SECONDS - started)) s"
exit "$status"
