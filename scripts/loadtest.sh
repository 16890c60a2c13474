#!/usr/bin/env bash
# Load-tests a release node on this machine: the node on CPU 0, the bots on
# CPU 1 (taskset), then prints the bots' report and the node's CPU per
# bot-second. Arguments go to tessera-bot, e.g.
#   scripts/loadtest.sh --bots 1000 --scenario fight --duration 60s
# Set UDP_SOCKETS for more than 1,024 bots (netcode's per-socket limit).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet -p tessera -p tessera-bot
work=$(mktemp -d)
node_log="$work/node.log"
pin_node=() pin_bots=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_node=(taskset -c 0) pin_bots=(taskset -c 1)
fi

"${pin_node[@]}" target/release/tessera --http 127.0.0.1:0 --udp 127.0.0.1:0 \
    --udp-sockets "${UDP_SOCKETS:-2}" --store-path "$work/players.redb" >"$node_log" 2>&1 &
node=$!
cleanup() { kill "$node" 2>/dev/null || true; wait "$node" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 100); do
    http=$(grep -o 'http listening on http://[0-9.:]*' "$node_log" | head -1 | sed 's|.*http://||') || true
    [ -n "$http" ] && break
    sleep 0.1
done
[ -n "${http:-}" ] || { cat "$node_log"; echo "the node did not start" >&2; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$node/stat"; }
hz=$(getconf CLK_TCK)
before=$(cpu_ticks)
status=0
"${pin_bots[@]}" target/release/tessera-bot --server "http://$http" "$@" || status=$?
after=$(cpu_ticks)
metrics=$(curl -s "http://$http/metrics" 2>/dev/null || true)
ticks=$(printf '%s\n' "$metrics" | awk '/^tessera_ticks_total /{print $2}')
tick_ns=$(printf '%s\n' "$metrics" | awk '/^tessera_tick_seconds_total_nanos /{print $2}')
overruns=$(printf '%s\n' "$metrics" | awk '/^tessera_tick_overruns_total /{print $2}')
echo "node cpu: $(( (after - before) * 1000 / hz )) ms over the run; ticks ${ticks:-?}, mean tick $(( ${tick_ns:-0} / ${ticks:-1} / 1000 )) us, overruns ${overruns:-?}"
exit "$status"
