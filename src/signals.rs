//! Process signals: SIGINT/SIGTERM stop the node, SIGHUP reloads its tables.
//!
//! Handlers are installed when [`Signals::install`] runs, at the very start:
//! a handler installed lazily (when a future is first polled) leaves a window
//! in which a signal is lost or, for a process a shell started in the
//! background, ignored.

/// Installed signal handlers.
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

/// Resolves when the node should stop.
pub struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

/// Yields once per reload request (SIGHUP).
pub struct ReloadRequests {
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers. Needs a running tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
                hangup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Splits into the shutdown and reload halves.
    pub fn split(self) -> (Shutdown, ReloadRequests) {
        #[cfg(unix)]
        {
            let Self {
                interrupt,
                terminate,
                hangup,
            } = self;
            (
                Shutdown {
                    interrupt,
                    terminate,
                },
                ReloadRequests { hangup },
            )
        }
        #[cfg(not(unix))]
        (Shutdown {}, ReloadRequests {})
    }
}

impl Shutdown {
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

impl ReloadRequests {
    /// Waits for the next request; `false` when no more can come.
    pub async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            self.hangup.recv().await.is_some()
        }
        #[cfg(not(unix))]
        {
            std::future::pending::<bool>().await
        }
    }
}
