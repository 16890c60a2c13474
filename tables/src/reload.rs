//! Shared, atomically swappable tables with background hot reload.
//!
//! Readers take an `Arc<Tables>` and keep it as long as they like (a world
//! takes a new one only at a tick boundary). A reload loads and validates
//! on the calling thread (the watcher's, or an admin task's) and swaps only
//! if the whole load is valid; a bad file keeps the old tables and leaves
//! its report in [`TablesHandle::last_error`].

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, SystemTime},
};

use crate::{
    TablesHash,
    error::Report,
    load::{LoadOptions, load_dir_with, workbook_files},
    tables::Tables,
};

/// A reload that was refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadFailure {
    /// Every problem found.
    pub report: Report,
    /// When it failed.
    pub at: SystemTime,
}

struct Shared {
    dir: PathBuf,
    options: LoadOptions,
    current: RwLock<Arc<Tables>>,
    version: AtomicU64,
    last_error: Mutex<Option<ReloadFailure>>,
    /// Serialises reloads so two cannot interleave their swaps.
    reloading: Mutex<()>,
    /// The files as they were just before the last load read them: the
    /// watcher reloads when they differ, so a save that lands during a load
    /// is never mistaken for what was loaded.
    loaded_from: Mutex<Fingerprint>,
    /// Called after each swap (see [`TablesHandle::on_change`]).
    listeners: Mutex<Vec<Listener>>,
}

/// Told that new tables were swapped in.
type Listener = Box<dyn Fn() + Send + Sync>;

/// Loads, turning a panic anywhere in the loader (a calamine bug on a
/// hostile file) into a report instead of a dead thread.
fn load_guarded(dir: &Path, options: &LoadOptions) -> Result<Tables, Report> {
    std::panic::catch_unwind(|| load_dir_with(dir, options)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let mut report = Report::default();
        report.push(
            crate::error::CellRef {
                file: dir.display().to_string(),
                sheet: String::new(),
                row: 0,
                column: None,
            },
            format!("a crash while reading the files ({message})"),
            "workbooks the reader can handle",
        );
        Err(report)
    })
}

/// The node's tables: cheap to clone, shared by every world.
#[derive(Clone)]
pub struct TablesHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TablesHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TablesHandle")
            .field("dir", &self.shared.dir)
            .field("version", &self.version())
            .field("hash", &self.current().hash())
            .finish()
    }
}

impl TablesHandle {
    /// Loads `dir`; fails with the full report if anything is invalid.
    pub fn load(dir: &Path, options: LoadOptions) -> Result<Self, Report> {
        let loaded_from = fingerprint(dir);
        let tables = load_guarded(dir, &options)?;
        Ok(Self {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                options,
                current: RwLock::new(Arc::new(tables)),
                version: AtomicU64::new(1),
                last_error: Mutex::new(None),
                reloading: Mutex::new(()),
                loaded_from: Mutex::new(loaded_from),
                listeners: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The directory the tables come from.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The current tables.
    pub fn current(&self) -> Arc<Tables> {
        self.shared
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Bumped by every successful swap; compare to notice a new version.
    pub fn version(&self) -> u64 {
        self.shared.version.load(Ordering::Acquire)
    }

    /// Calls `listener` after every reload that swaps in new tables (on the
    /// reloading thread, once the new version is readable): whoever follows
    /// the tables wakes on a change instead of polling for one. It must
    /// return quickly (wake a task, set a flag); listeners stay for the
    /// handle's life.
    pub fn on_change(&self, listener: impl Fn() + Send + Sync + 'static) {
        self.shared
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(listener));
    }

    /// The last refused reload, cleared by the next successful one.
    pub fn last_error(&self) -> Option<ReloadFailure> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Loads and validates the directory again. On success the new tables
    /// replace the old (unless nothing a world can see changed) and their hash
    /// is returned; on failure the old tables stay and the report is kept.
    pub fn reload(&self) -> Result<TablesHash, Report> {
        let _one_at_a_time = self
            .shared
            .reloading
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let old = self.current().hash();
        let print = fingerprint(&self.shared.dir);
        let loaded = load_guarded(&self.shared.dir, &self.shared.options);
        // Failed or not, these files have been looked at: the watcher waits
        // for the next change rather than retrying the same broken save.
        *self
            .shared
            .loaded_from
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = print;
        match loaded {
            Ok(tables) => {
                let new = tables.hash();
                *self
                    .shared
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
                if new != old {
                    *self
                        .shared
                        .current
                        .write()
                        .unwrap_or_else(|p| p.into_inner()) = Arc::new(tables);
                    self.shared.version.fetch_add(1, Ordering::AcqRel);
                    tracing::info!(%old, %new, "tables reloaded");
                    for listener in self
                        .shared
                        .listeners
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                    {
                        listener();
                    }
                } else {
                    tracing::debug!(hash = %new, "tables reloaded without changes");
                }
                Ok(new)
            }
            Err(report) => {
                tracing::error!(dir = %self.shared.dir.display(), "tables reload refused, keeping {old}:\n{report}");
                *self
                    .shared
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(ReloadFailure {
                    report: report.clone(),
                    at: SystemTime::now(),
                });
                Err(report)
            }
        }
    }

    /// Watches the directory, polling every `interval`, and reloads when the
    /// set of workbooks or their sizes or times change and then stay the same
    /// for one more poll (so a half-written file is not read). Stops when the
    /// returned watcher is dropped.
    pub fn watch(&self, interval: Duration) -> std::io::Result<Watcher> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let handle = self.clone();
        let thread = std::thread::Builder::new()
            .name("tessera-tables-watch".into())
            .spawn(move || {
                let mut pending: Option<Fingerprint> = None;
                // Wakes every `interval`, and at once when the watcher is dropped.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(interval)
                {
                    let now = fingerprint(handle.dir());
                    let loaded = handle
                        .shared
                        .loaded_from
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    if now == loaded {
                        pending = None;
                    } else if pending.as_ref() == Some(&now) {
                        pending = None;
                        let _ = handle.reload();
                    } else {
                        pending = Some(now);
                    }
                }
            })?;
        Ok(Watcher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    workbook_files(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect()
}

/// A running directory watcher; dropping it stops the thread promptly.
pub struct Watcher {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
