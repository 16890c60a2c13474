# Test services for Tessera: sourced by scripts/test.sh (and usable by hand:
# `source scripts/services.sh && services_start`, then `services_stop`).
#
# Installs what is missing (redis-server via apt-get when root; SecantusDB, a
# MongoDB wire-protocol server, via pip into a local venv), starts both on
# free loopback ports, exports their URLs, and stops exactly the PIDs it
# started.

TESSERA_ROOT="${TESSERA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
SERVICES_DIR="${TESSERA_SERVICES_DIR:-$TESSERA_ROOT/target/test-services}"
VENV_DIR="${TESSERA_VENV_DIR:-$TESSERA_ROOT/target/test-venv}"
SECANTUS_VERSION="0.7.0b3"
SERVICE_PIDS=()

log() { printf '[test.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        die "missing $*; install it (apt-get install -y $*) or run this script as root"
    fi
    command -v apt-get >/dev/null || die "missing $* and no apt-get to install it"
    log "installing $* with apt-get"
    if [ -z "${APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

ensure_redis() {
    command -v redis-server >/dev/null || apt_install redis-server
}

ensure_secantus() {
    if [ -x "$VENV_DIR/bin/secantusd-py" ]; then
        return
    fi
    if ! command -v python3 >/dev/null; then
        apt_install python3 python3-venv python3-pip
    fi
    if ! python3 -m venv --help >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    log "installing SecantusDB==$SECANTUS_VERSION into $VENV_DIR"
    rm -rf "$VENV_DIR"
    python3 -m venv "$VENV_DIR" || { apt_install python3-venv && python3 -m venv "$VENV_DIR"; } || die "cannot create a venv"
    "$VENV_DIR/bin/pip" install --quiet --disable-pip-version-check "SecantusDB==$SECANTUS_VERSION" \
        || die "pip install SecantusDB==$SECANTUS_VERSION failed"
    [ -x "$VENV_DIR/bin/secantusd-py" ] || die "SecantusDB installed but secantusd-py is missing"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_port NAME PID PORT LOG: until PORT accepts connections, or fail with LOG.
wait_port() {
    local name=$1 pid=$2 port=$3 logfile=$4 tries=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during start-up; its log:"
            cat "$logfile" >&2
            die "$name did not start"
        fi
        tries=$((tries + 1))
        [ "$tries" -le 600 ] || { cat "$logfile" >&2; die "$name not listening on port $port after 60 s"; }
        sleep 0.1
    done
}

start_redis() {
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        >"$SERVICES_DIR/redis.log" 2>&1 &
    REDIS_PID=$!
    SERVICE_PIDS+=("$REDIS_PID")
    wait_port redis "$REDIS_PID" "$port" "$SERVICES_DIR/redis.log"
    export TESSERA_TEST_REDIS_URL="redis://127.0.0.1:$port"
    log "redis-server pid $REDIS_PID at $TESSERA_TEST_REDIS_URL"
}

start_mongodb() {
    local port
    port=$(free_port)
    # --config points at an empty file so no secantusd.toml lying around is picked up.
    : >"$SERVICES_DIR/secantusd.toml"
    "$VENV_DIR/bin/secantusd-py" --config "$SERVICES_DIR/secantusd.toml" --host 127.0.0.1 --port "$port" \
        --storage-path :memory: --log-level WARNING >"$SERVICES_DIR/mongodb.log" 2>&1 &
    MONGODB_PID=$!
    SERVICE_PIDS+=("$MONGODB_PID")
    wait_port secantusd-py "$MONGODB_PID" "$port" "$SERVICES_DIR/mongodb.log"
    export TESSERA_TEST_MONGODB_URI="mongodb://127.0.0.1:$port/?directConnection=true"
    export TESSERA_TEST_MONGODB_PORT="$port"
    export TESSERA_TEST_MONGODB_BIN="$VENV_DIR/bin/secantusd-py"
    log "secantusd-py pid $MONGODB_PID at $TESSERA_TEST_MONGODB_URI"
}

services_start() {
    mkdir -p "$SERVICES_DIR"
    ensure_redis
    ensure_secantus
    start_redis
    start_mongodb
}

services_stop() {
    local pid
    for pid in "${SERVICE_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${SERVICE_PIDS[@]}"; do
        # Give each a moment to exit, then insist.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SERVICE_PIDS=()
}
