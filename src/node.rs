//! A running node: tables, scheduler, zone worlds, replay recording and
//! HTTP, until a shutdown signal.
//!
//! Start-up order: tables -> replay writer -> scheduler -> worlds -> HTTP.
//! Shutdown runs it backwards, so every world's last tick is recorded
//! before the process exits.

use std::time::Duration;

use anyhow::Context;
use tessera_sim::{SimWorld, driver::RandomInputs};
use tessera_tables::{LoadOptions, TablesHandle};

use std::sync::Arc;

use tessera_net::replication::{AckBoard, ReplicationPlugin};
use tessera_persistence::{
    dirty::PersistencePlugin,
    flush::{ChangeSender, Flusher},
};

use tessera_persistence::redis_state::{NodeInfo, RedisState};

use crate::{
    cluster::{Cluster, Presence, presence_events},
    config::NodeConfig,
    http::{HttpState, router},
    login::LoginService,
    login::random_u64,
    persist,
    play::{self, ZoneHost},
    replays::ReplayStore,
    rooms::Rooms,
    scheduler::{EndReason, NodeEvent, Scheduler, SchedulerConfig, WorldOptions},
    sessions::Sessions,
    signals::{Shutdown, Signals},
    zones::persistent_zones,
};

/// Runs a node until SIGINT or SIGTERM, then stops cleanly.
pub async fn serve(config: NodeConfig, signals: Signals) -> anyhow::Result<()> {
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
        ..Default::default()
    })?;
    let scheduler = Arc::new(scheduler);
    std::thread::Builder::new().name("tessera-events".into()).spawn(move || {
        for event in events {
            if let NodeEvent::WorldEnded { world, last_tick, reason: EndReason::Panicked(message) } = event {
                tracing::error!(%world, last_tick, panic = %message, "world crashed and was removed");
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
    served?;
    tracing::info!("node stopped");
    Ok(())
}

async fn start_and_serve(
    config: &NodeConfig,
    scheduler: &Arc<Scheduler>,
    replays: Option<&ReplayStore>,
    tables: &TablesHandle,
    flusher: &Arc<Flusher>,
    cluster: Option<Cluster>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let keys = play::keys(config)?;
    let host = ZoneHost::default();
    let (net, udp) = play::start_net(play::bind_sockets(config, &keys)?, host.clone(), config)?;
    let _ = host
        .arena
        .set(Arc::new(std::sync::Mutex::new(crate::arena::Arena::new(
            scheduler.clone(),
            tables.clone(),
            net.outgoing(),
            net.stats().rejected.clone(),
            config.seed,
        ))));
    let _ = host.rooms.set(Arc::new(std::sync::Mutex::new(Rooms::new(
        scheduler.clone(),
        tables.clone(),
        net.outgoing(),
        config.seed,
    ))));
    let presence = cluster.as_ref().map(|cluster| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(cluster.clone().follow(rx, flusher.clone()));
        tx
    });

    let current = tables.current();
    let skills: Vec<&str> = current.skills.iter().map(|s| s.id.0.as_str()).collect();
    for (index, spec) in persistent_zones(&current, config.seed)?
        .into_iter()
        .enumerate()
    {
        let (kind, tick_hz, seed) = (spec.kind.clone(), spec.tick_hz, spec.seed);
        let acks = AckBoard::default();
        let replication = ReplicationPlugin {
            acks: acks.clone(),
            rejections: net.stats().rejected.clone(),
            max_entities: config.view_entities,
            bytes_per_sec: config.snapshot_bytes_per_sec,
            ..ReplicationPlugin::default()
        };
        let sim = SimWorld::build(spec, |app| {
            app.add_plugins((replication, PersistencePlugin));
        })
        .with_context(|| format!("world {kind}"))?;
        // Known once the scheduler has the world; its first tick comes after.
        let world_id = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut options = WorldOptions {
            record: replays.map(ReplayStore::sink),
            tables: Some(tables.clone()),
            after_tick: Some(after_tick(
                net.outgoing(),
                (
                    flusher.sender(),
                    persist::CaptureTicks::new(
                        persist::capture_ticks(
                            tick_hz,
                            Duration::from_millis(config.flush_interval_ms.max(1)),
                        ),
                        index as u64,
                    ),
                ),
                host.profiles.clone(),
                host.teams.clone(),
                presence.clone().map(|tx| (tx, world_id.clone())),
            )),
            at_end: Some({
                let to_store = flusher.sender();
                Box::new(move |sim: &mut SimWorld| persist::hand_over_all(sim, &to_store))
            }),
            ..Default::default()
        };
        if config.bots > 0 {
            let max_target = config.bots + 1_000;
            let mut driver = RandomInputs::new(seed, config.bots).fighting(&skills, max_target);
            options.driver = Some(Box::new(move |tick| driver.inputs_for(tick)));
        }
        let handle = scheduler.add_world(sim, options)?;
        world_id.store(handle.id.0, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(world = %handle.id, %kind, tick_hz, bots = config.bots, "world started");
        host.add(
            &kind,
            play::ZoneSink {
                world: handle,
                acks,
            },
        );
    }

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
        workers: scheduler.worker_count(),
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
        accounts: crate::accounts::Accounts::new(
            flusher.backend().clone(),
            scheduler.worker_count().max(2),
        ),
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.wait())
        .await
        .context("http server failed");
    // Clients hear "shutting down" before their worlds end.
    tokio::task::spawn_blocking(move || net.shutdown()).await?;
    served
}

/// After each tick of a zone world: replication output to the net thread,
/// changed player data to the flush worker.
fn after_tick(
    to_net: std::sync::mpsc::Sender<Vec<(tessera_sim::PlayerId, u8, Vec<u8>)>>,
    (to_store, capture): (ChangeSender, persist::CaptureTicks),
    profiles: play::Profiles,
    teams: play::Teams,
    presence: Option<(
        tokio::sync::mpsc::UnboundedSender<Presence>,
        Arc<std::sync::atomic::AtomicU64>,
    )>,
) -> crate::scheduler::AfterTick {
    let mut forward = play::forward_output(to_net);
    Box::new(move |sim: &mut SimWorld| {
        play::observe_zone(sim, &profiles, &teams);
        // Changes first: a `Left` makes the cluster flush the player and
        // release their route, and the flush must find the leaver's last
        // parts (captured as the avatar went) already queued ahead of it.
        persist::hand_over(sim, &to_store, capture);
        if let Some((tx, world)) = &presence {
            let events = sim.world().resource::<tessera_sim::Outbox>().events();
            let world = world.load(std::sync::atomic::Ordering::Relaxed);
            for event in presence_events(events, world) {
                let _ = tx.send(event);
            }
        }
        forward(sim);
    })
}
