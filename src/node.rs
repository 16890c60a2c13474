//! A running node: tables, scheduler, zone worlds, replay recording and
//! HTTP, until a shutdown signal.
//!
//! Start-up order: tables -> replay writer -> scheduler -> worlds -> HTTP.
//! Shutdown runs it backwards, so every world's last tick is recorded
//! before the process exits.

use std::time::Duration;

use anyhow::Context;
use tessera_tables::{LoadOptions, TablesHandle};

use std::sync::Arc;

use tessera_persistence::flush::Flusher;

use tessera_persistence::redis_state::{NodeInfo, RedisState};

use crate::{
    cluster::Cluster,
    config::NodeConfig,
    http::{HttpState, router},
    login::LoginService,
    login::random_u64,
    persist,
    play::{self, ZoneHost},
    replays::ReplayStore,
    rooms::Rooms,
    scheduler::{EndReason, NodeEvent, Scheduler, SchedulerConfig},
    sessions::Sessions,
    signals::{Shutdown, Signals},
    zone_worlds::{self, ZoneWorlds},
};

/// Runs a node until SIGINT or SIGTERM, then stops cleanly.
pub async fn serve(config: NodeConfig, signals: Signals) -> anyhow::Result<()> {
    config.validate()?;
    let (shutdown, mut reloads) = signals.split();
    let dir = &config.tables_dir;
    let tables = TablesHandle::load(dir, LoadOptions::default()).map_err(|report| {
        anyhow::anyhow!(
            "cannot start: the tables in {} are invalid (run `tessera tables check {}`):\n{report}",
            dir.display(),
            dir.display()
        )
    })?;
    tracing::info!(dir = %dir.display(), hash = %tables.current().hash(), "tables loaded");
    let _watcher = match config.tables_poll_ms {
        0 => None,
        ms => Some(tables.watch(Duration::from_millis(ms))?),
    };
    let on_hangup = tables.clone();
    tokio::spawn(async move {
        while reloads.next().await {
            tracing::info!("SIGHUP received: reloading tables");
            let handle = on_hangup.clone();
            // Loading is file I/O and parsing: keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || handle.reload()).await;
        }
    });

    let replays = if config.record_dir.as_os_str().is_empty() {
        None
    } else {
        Some(
            ReplayStore::start(&config.record_dir)
                .with_context(|| format!("replay dir {}", config.record_dir.display()))?,
        )
    };
    let (scheduler, events) = Scheduler::start(SchedulerConfig {
        workers: config.workers,
        max_snapshot_every: config.max_snapshot_interval_ticks,
        ..Default::default()
    })?;
    let scheduler = Arc::new(scheduler);
    let crashed = crate::crashes::CrashedWorlds::default();
    let noted = crashed.clone();
    std::thread::Builder::new().name("tessera-events".into()).spawn(move || {
        for event in events {
            if let NodeEvent::WorldEnded { world, last_tick, reason: EndReason::Panicked(message) } = event {
                tracing::error!(%world, last_tick, panic = %message, "world crashed and was removed");
                noted.push(world, message);
            }
        }
    })?;

    // Whatever happens from here (a world that cannot start, a busy HTTP
    // port), the scheduler is shut down and the replays are flushed.
    let cluster = match config.redis_url.as_str() {
        "" => None,
        url => {
            let redis = RedisState::connect(url, &config.redis_prefix)
                .await
                .with_context(|| format!("cannot reach redis at {url}"))?;
            let node = match config.node_id.as_str() {
                "" => format!("node-{:016x}", random_u64()),
                id => id.to_string(),
            };
            tracing::info!(node = %node, "sharing sessions, presence and routing through redis");
            Some(Cluster::new(redis, node))
        }
    };
    let cache = cluster.as_ref().map(|c| c.redis().clone());
    let flusher = Arc::new(persist::start(&config, cache).await?);
    let served = start_and_serve(
        &config,
        &scheduler,
        replays.as_ref(),
        &tables,
        &flusher,
        cluster.clone(),
        crashed,
        shutdown,
    )
    .await;
    tracing::info!("shutting down: ending worlds");
    tokio::task::spawn_blocking(move || {
        scheduler.shutdown();
        if let Some(replays) = replays {
            replays.finish();
        }
    })
    .await?;
    // Worlds have ended and handed over their last changes: write them.
    let unsaved = flusher.shutdown(std::time::Duration::from_secs(15)).await;
    if unsaved > 0 {
        tracing::error!(
            players = unsaved,
            "could not save every player's last changes before exit"
        );
    }
    if let Some(cluster) = &cluster {
        cluster.deregister().await;
    }
    flusher
        .backend()
        .close(std::time::Duration::from_secs(5))
        .await;
    served?;
    tracing::info!("node stopped");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn start_and_serve(
    config: &NodeConfig,
    scheduler: &Arc<Scheduler>,
    replays: Option<&ReplayStore>,
    tables: &TablesHandle,
    flusher: &Arc<Flusher>,
    cluster: Option<Cluster>,
    crashed: crate::crashes::CrashedWorlds,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let keys = play::keys(config)?;
    let chaos = crate::chaos::Chaos::from_env(scheduler.clone())?;
    let mut host = ZoneHost::default();
    host.crashed = crashed;
    host.profiles_unused_for =
        Some(Duration::from_secs(config.connect_token_secs) + crate::profiles::LATE_CONNECT);
    let (net, udp) = play::start_net(play::bind_sockets(config, &keys)?, host.clone(), config)?;
    let _ = host
        .arena
        .set(Arc::new(std::sync::Mutex::new(crate::arena::Arena::new(
            scheduler.clone(),
            tables.clone(),
            net.outgoing(),
            net.stats().rejected.clone(),
            config.seed,
            replays.map(ReplayStore::sink),
        ))));
    let _ = host.rooms.set(Arc::new(std::sync::Mutex::new(Rooms::new(
        scheduler.clone(),
        tables.clone(),
        net.outgoing(),
        config.seed,
        replays.map(ReplayStore::sink),
    ))));
    let presence = cluster.as_ref().map(|cluster| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(cluster.clone().follow(rx, flusher.clone()));
        tx
    });

    let mut zones = ZoneWorlds::new(
        config,
        zone_worlds::Wiring {
            scheduler: scheduler.clone(),
            tables: tables.clone(),
            replays: replays.map(ReplayStore::sink),
            to_net: net.outgoing(),
            rejections: net.stats().rejected.clone(),
            flusher: flusher.clone(),
            host: host.clone(),
            presence,
        },
    );
    zones.start_all()?;
    let zone_directory = zones.directory();
    // Ended with the HTTP server, or on any early return: it holds a replay
    // sink and senders that shutdown waits on.
    let follower = AbortOnDrop(tokio::spawn(zones.follow()));

    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http))?;
    let http_addr = listener.local_addr()?;
    tracing::info!(%http_addr, "http listening on http://{http_addr}");
    if let Some(cluster) = &cluster {
        let net_stats = net.stats();
        let udp: Vec<String> = udp.iter().map(ToString::to_string).collect();
        let node = cluster.node().to_string();
        let started_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let info = move || NodeInfo {
            id: node.clone(),
            http: http_addr.to_string(),
            udp: udp.clone(),
            players: net_stats
                .connected
                .load(std::sync::atomic::Ordering::Relaxed),
            started_unix_ms,
        };
        tokio::spawn(cluster.clone().heartbeat(info, net.evictions()));
    }
    let sessions = match &cluster {
        Some(cluster) => Sessions::Redis(cluster.redis().clone()),
        None => Sessions::local(),
    };
    let app = router(HttpState {
        stats: scheduler.stats(),
        scheduler: scheduler.clone(),
        tables: tables.clone(),
        login: Arc::new(LoginService::new(
            keys,
            udp.clone(),
            config.connect_token_secs,
            flusher.stats(),
            config.max_pending_players,
        )),
        net: net.stats(),
        udp,
        store: flusher.stats(),
        flusher: flusher.clone(),
        profiles: host.profiles.clone(),
        lockstep: host
            .rooms
            .get()
            .map(|rooms| rooms.lock().unwrap_or_else(|p| p.into_inner()).stats())
            .unwrap_or_default(),
        sessions,
        session_ttl: Duration::from_secs(config.session_ttl_secs),
        cluster,
        zones: zone_directory,
        accounts: crate::accounts::Accounts::new(
            flusher.backend().clone(),
            scheduler.worker_count().max(2),
        ),
    });
    let app = match chaos {
        Some(chaos) => app.merge(chaos.router()),
        None => app,
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.wait())
        .await
        .context("http server failed");
    follower.0.abort();
    // Clients hear "shutting down" before their worlds end.
    tokio::task::spawn_blocking(move || net.shutdown()).await?;
    served
}

/// A task that ends when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
