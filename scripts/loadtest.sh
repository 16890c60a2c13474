#!/usr/bin/env bash
# Load-tests a release node on this machine: the node on CPU 0, the bots on
# CPU 1 (taskset), then prints the bots' report and the node's CPU per
# bot-second. Arguments go to tessera-bot, e.g.
#   scripts/loadtest.sh --bots 1000 --scenario fight --duration 60s
# Set UDP_SOCKETS for more than 2,048 bots (netcode's per-socket limit is
# 1,024). `--scenario roam100` runs the node on the roam100 benchmark tables
# (one group of 100 per 100 bots) with views of up to 128 entities.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet -p tessera -p tessera-bot
work=$(mktemp -d)
scenario="" bots=0 prev=""
for arg in "$@"; do
    case "$prev" in
        --scenario) scenario=$arg ;;
        --bots) bots=$arg ;;
    esac
    prev=$arg
done
node_args=()
if [ "$scenario" = roam100 ]; then
    groups=$(( (bots + 99) / 100 ))
    target/release/tessera tables init "$work/tables" --roam100 "$((groups > 0 ? groups : 1))" >/dev/null
    node_args=(--tables "$work/tables" --view-entities 128)
fi
node_log="$work/node.log"
pin_node=() pin_bots=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_node=(taskset -c 0) pin_bots=(taskset -c 1)
fi

"${pin_node[@]}" target/release/tessera --http 127.0.0.1:0 --udp 127.0.0.1:0 \
    --udp-sockets "${UDP_SOCKETS:-2}" --store-path "$work/players.redb" "${node_args[@]}" >"$node_log" 2>&1 &
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
dropped=$(printf '%s\n' "$metrics" | awk '/^tessera_net_udp_receive_dropped_total /{print $2}')
thinned=$(printf '%s\n' "$metrics" | awk '/^tessera_snapshot_thinned_ticks_total /{print $2}')
echo "node cpu: $(( (after - before) * 1000 / hz )) ms over the run; ticks ${ticks:-?}, mean tick $(( ${tick_ns:-0} / ${ticks:-1} / 1000 )) us, overruns ${overruns:-?}"
echo "ticks that thinned snapshots (the node overloaded): ${thinned:-?} of ${ticks:-?}"
echo "datagrams the kernel dropped for the node's sockets (receive buffer full): ${dropped:-?}"
# Tick p99 per world kind, from the histogram's buckets (an upper bound).
printf '%s\n' "$metrics" | awk '
    /^tessera_tick_duration_seconds_bucket/ {
        match($0, /kind="[^"]*"/); kind = substr($0, RSTART + 6, RLENGTH - 7)
        match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
        n[kind]++; les[kind, n[kind]] = le; counts[kind, n[kind]] = $NF
    }
    END {
        for (kind in n) {
            total = counts[kind, n[kind]]; p99 = "?"
            for (i = 1; i <= n[kind]; i++) if (counts[kind, i] >= 0.99 * total) { p99 = les[kind, i]; break }
            printf "tick p99 (%s): <= %s s over %d ticks\n", kind, p99, total
        }
    }'
exit "$status"
