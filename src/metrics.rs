//! `GET /metrics`: the node's counters, gauges and histograms in the
//! Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::{extract::State, http::header, response::IntoResponse};

use crate::http::HttpState;

/// Renders every metric.
pub async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let s = &state.stats;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "tessera_ticks_total",
        "counter",
        "World ticks simulated.",
        s.ticks.load(Ordering::Relaxed),
    );
    metric(
        "tessera_tick_overruns_total",
        "counter",
        "Ticks that started a full period or more after their deadline.",
        s.overruns.load(Ordering::Relaxed),
    );
    metric(
        "tessera_dropped_ticks_total",
        "counter",
        "Ticks given up when a world fell too far behind and was re-anchored.",
        s.dropped_ticks.load(Ordering::Relaxed),
    );
    metric(
        "tessera_worlds",
        "gauge",
        "Worlds ticking.",
        s.worlds.load(Ordering::Relaxed),
    );
    metric(
        "tessera_panicked_worlds_total",
        "counter",
        "Worlds ended by a panic in their tick.",
        s.panicked_worlds.load(Ordering::Relaxed),
    );
    metric(
        "tessera_tick_seconds_total_nanos",
        "counter",
        "Nanoseconds spent inside world ticks.",
        s.tick_nanos.load(Ordering::Relaxed),
    );
    metric(
        "tessera_snapshot_thinned_ticks_total",
        "counter",
        "World ticks that sent snapshots to only some players, their worker being overloaded.",
        s.thinned_ticks.load(Ordering::Relaxed),
    );
    metric(
        "tessera_tables_version",
        "gauge",
        "Tables versions loaded since start (1 = the start-up load).",
        state.tables.version(),
    );
    metric(
        "tessera_tables_reload_failing",
        "gauge",
        "1 while the last tables reload was refused.",
        u64::from(state.tables.last_error().is_some()),
    );
    let f = &state.store;
    metric(
        "tessera_flush_batches_total",
        "counter",
        "Player data batches written.",
        f.batches.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_written_total",
        "counter",
        "Player records written.",
        f.written.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_stale_total",
        "counter",
        "Writes refused as not newer.",
        f.stale.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_failures_total",
        "counter",
        "Failed batch writes (retried).",
        f.failures.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_pending_players",
        "gauge",
        "Players with unsaved changes.",
        f.pending.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_last_batch",
        "gauge",
        "Players in the last batch.",
        f.last_batch.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_last_latency_microseconds",
        "gauge",
        "Latency of the last write.",
        f.last_latency_us.load(Ordering::Relaxed),
    );
    metric(
        "tessera_store_outage",
        "gauge",
        "1 while the store is failing.",
        f.outage.load(Ordering::Relaxed),
    );
    if let Some(cluster) = &state.cluster {
        metric(
            "tessera_redis_outage",
            "gauge",
            "1 while Redis does not answer the node's heartbeat (logins are refused).",
            u64::from(!cluster.reachable()),
        );
    }
    let l = &state.lockstep;
    metric(
        "tessera_lockstep_frames_total",
        "counter",
        "Frame bundles built by frame-sync rooms.",
        l.frames.load(Ordering::Relaxed),
    );
    metric(
        "tessera_lockstep_desyncs_total",
        "counter",
        "Client state hashes that differed from the server's.",
        l.desyncs.load(Ordering::Relaxed),
    );
    metric(
        "tessera_lockstep_catch_ups_total",
        "counter",
        "Frame-sync catch-ups sent (late joins, reconnects, resyncs, far-behind clients).",
        l.catch_ups.load(Ordering::Relaxed),
    );
    metric(
        "tessera_lockstep_repeated_inputs_total",
        "counter",
        "Frame commands that arrived late and were repeated from the last one.",
        l.repeated.load(Ordering::Relaxed),
    );
    let n = &state.net;
    metric(
        "tessera_clients",
        "gauge",
        "Clients connected.",
        n.connected.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_messages_in_total",
        "counter",
        "Client messages received.",
        n.messages_in.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_bytes_in_total",
        "counter",
        "Client message bytes received.",
        n.bytes_in.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_messages_out_total",
        "counter",
        "Messages sent to clients.",
        n.messages_out.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_bytes_out_total",
        "counter",
        "Message bytes sent to clients.",
        n.bytes_out.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_malformed_total",
        "counter",
        "Client messages refused as malformed.",
        n.malformed.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_kicked_total",
        "counter",
        "Clients kicked for flooding or garbage.",
        n.kicked.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_udp_receive_dropped_total",
        "counter",
        "Datagrams the kernel dropped because a node socket's receive buffer was full (udp_receive_buffer_bytes, net.core.rmem_max).",
        n.udp_dropped(),
    );
    out.push_str("# HELP tessera_snapshot_interval_ticks Ticks between a player's snapshots, by worker (1: every tick; more: the worker is overloaded and thins them).\n# TYPE tessera_snapshot_interval_ticks gauge\n");
    for (worker, every) in state.scheduler.snapshot_intervals().iter().enumerate() {
        let _ = writeln!(
            out,
            "tessera_snapshot_interval_ticks{{worker=\"{worker}\"}} {every}"
        );
    }
    let kinds = s.tick_histograms();
    if !kinds.is_empty() {
        out.push_str("# HELP tessera_tick_duration_seconds Time inside one world tick, by world kind.\n# TYPE tessera_tick_duration_seconds histogram\n");
        for (kind, histogram) in kinds {
            histogram.render(
                &mut out,
                "tessera_tick_duration_seconds",
                &format!("kind=\"{kind}\""),
                1e6,
            );
        }
    }
    out.push_str("# HELP tessera_flush_latency_seconds Time to write one batch of player data.\n# TYPE tessera_flush_latency_seconds histogram\n");
    state
        .store
        .latency_us
        .render(&mut out, "tessera_flush_latency_seconds", "", 1e6);
    out.push_str("# HELP tessera_flush_batch_players Players per written batch.\n# TYPE tessera_flush_batch_players histogram\n");
    state
        .store
        .batch_sizes
        .render(&mut out, "tessera_flush_batch_players", "", 1.0);
    let rejected = state.net.rejected.snapshot();
    if !rejected.is_empty() {
        out.push_str("# HELP tessera_rejected_messages_total Client messages refused, by reason.\n# TYPE tessera_rejected_messages_total counter\n");
        for (reason, count) in rejected {
            let _ = writeln!(
                out,
                "tessera_rejected_messages_total{{reason=\"{reason}\"}} {count}"
            );
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
