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

/// SIGINT (Ctrl-C) and SIGTERM handlers, installed when created.
///
/// Installing them up front matters: a handler installed lazily, when a
/// future is first polled, leaves a window in which a signal is lost (or,
/// for a process started in the background by a shell, ignored).
pub struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Installs the handlers. Needs a running tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on the first SIGINT or SIGTERM.
    pub async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("SIGINT received"),
            _ = self.terminate.recv() => tracing::info!("SIGTERM received"),
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C received");
        }
    }
}
