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

use tessera_net::replication::ReplicationPlugin;
use tessera_persistence::{
    dirty::PersistencePlugin,
    flush::{ChangeSender, Flusher},
};

use crate::{
    config::NodeConfig,
    http::{HttpState, router},
    login::LoginService,
    persist,
    play::{self, ZoneHost},
    replays::ReplayStore,
    scheduler::{EndReason, NodeEvent, Scheduler, SchedulerConfig, WorldOptions},
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
    std::thread::Builder::new().name("tessera-events".into()).spawn(move || {
        for event in events {
            if let NodeEvent::WorldEnded { world, last_tick, reason: EndReason::Panicked(message) } = event {
                tracing::error!(%world, last_tick, panic = %message, "world crashed and was removed");
            }
        }
    })?;

    // Whatever happens from here (a world that cannot start, a busy HTTP
    // port), the scheduler is shut down and the replays are flushed.
    let flusher = Arc::new(persist::start(&config).await?);
    let served = start_and_serve(
        &config,
        &scheduler,
        replays.as_ref(),
        &tables,
        &flusher,
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
    served?;
    tracing::info!("node stopped");
    Ok(())
}

async fn start_and_serve(
    config: &NodeConfig,
    scheduler: &Scheduler,
    replays: Option<&ReplayStore>,
    tables: &TablesHandle,
    flusher: &Arc<Flusher>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let keys = play::keys(config)?;
    let host = ZoneHost::default();
    let (net, udp) = play::start_net(play::bind_sockets(config, &keys)?, host.clone(), config)?;

    let current = tables.current();
    let skills: Vec<&str> = current.skills.iter().map(|s| s.id.0.as_str()).collect();
    for spec in persistent_zones(&current, config.seed)? {
        let (kind, tick_hz, seed) = (spec.kind.clone(), spec.tick_hz, spec.seed);
        let sim = SimWorld::build(spec, |app| {
            app.add_plugins((ReplicationPlugin::default(), PersistencePlugin));
        })
        .with_context(|| format!("world {kind}"))?;
        let mut options = WorldOptions {
            record: replays.map(ReplayStore::sink),
            tables: Some(tables.clone()),
            after_tick: Some(after_tick(
                net.outgoing(),
                flusher.sender(),
                host.profiles.clone(),
            )),
            ..Default::default()
        };
        if config.bots > 0 {
            let max_target = config.bots + 1_000;
            let mut driver = RandomInputs::new(seed, config.bots).fighting(&skills, max_target);
            options.driver = Some(Box::new(move |tick| driver.inputs_for(tick)));
        }
        let handle = scheduler.add_world(sim, options)?;
        tracing::info!(world = %handle.id, %kind, tick_hz, bots = config.bots, "world started");
        host.add(handle);
    }

    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http))?;
    let http_addr = listener.local_addr()?;
    tracing::info!(%http_addr, "http listening on http://{http_addr}");
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
    to_store: ChangeSender,
    profiles: play::Profiles,
) -> crate::scheduler::AfterTick {
    let mut forward = play::forward_output(to_net);
    Box::new(move |sim: &mut SimWorld| {
        play::consume_profiles(sim, &profiles);
        forward(sim);
        persist::hand_over(sim, &to_store);
    })
}
