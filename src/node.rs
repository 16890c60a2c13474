//! A running node: scheduler, configured worlds, replay recording and HTTP,
//! until a shutdown signal.
//!
//! Start-up order: replay writer -> scheduler -> worlds -> HTTP. Shutdown runs
//! it backwards, so every world's last tick is recorded before exit.

use std::future::Future;

use anyhow::Context;
use tessera_sim::{SimWorld, driver::RandomInputs};

use crate::{
    config::NodeConfig,
    http::{HttpState, router},
    replays::ReplayStore,
    scheduler::{EndReason, NodeEvent, Scheduler, SchedulerConfig, WorldOptions},
};

/// Runs a node until `shutdown` resolves, then stops cleanly.
pub async fn serve(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
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
            match event {
                NodeEvent::WorldEnded { world, last_tick, reason: EndReason::Panicked(message) } => {
                    tracing::error!(%world, last_tick, panic = %message, "world crashed and was removed");
                }
                NodeEvent::WorldEnded { .. } => {}
            }
        }
    })?;

    for world in &config.worlds {
        let sim = SimWorld::new(world.spec()).with_context(|| format!("world {}", world.kind))?;
        let mut options = WorldOptions {
            record: replays.as_ref().map(ReplayStore::sink),
            ..Default::default()
        };
        if world.bots > 0 {
            let mut driver = RandomInputs::new(world.seed, world.bots);
            options.driver = Some(Box::new(move |tick| driver.inputs_for(tick)));
        }
        let handle = scheduler.add_world(sim, options)?;
        tracing::info!(world = %handle.id, kind = %world.kind, tick_hz = world.tick_hz, bots = world.bots, "world started");
    }

    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http))?;
    let http_addr = listener.local_addr()?;
    tracing::info!(%http_addr, "http listening on http://{http_addr}");
    let app = router(HttpState {
        stats: scheduler.stats(),
        workers: scheduler.worker_count(),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("http server failed")?;

    tracing::info!("shutting down: ending worlds");
    tokio::task::spawn_blocking(move || {
        scheduler.shutdown();
        if let Some(replays) = replays {
            replays.finish();
        }
    })
    .await?;
    tracing::info!("node stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
