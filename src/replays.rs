//! Writes worlds' replays to files on a dedicated thread, so a world never
//! waits for a disk. A failing file stops that recording, never the world.

use std::{
    collections::BTreeMap,
    fs::File,
    io::BufWriter,
    path::{Path, PathBuf},
    sync::mpsc,
    thread::JoinHandle,
};

use tessera_sim::replay::{ReplayHeader, ReplayWriter, TickRecord};

use crate::scheduler::WorldId;

enum Message {
    Open(WorldId, PathBuf, Box<ReplayHeader>),
    Records(WorldId, Vec<TickRecord>),
    Close(WorldId),
    /// Every world has ended: write what is open and stop (sinks still
    /// held elsewhere, by room makers, must not keep the node from exiting).
    Finish,
}

/// Where worlds send their tick records. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ReplaySink {
    dir: PathBuf,
    tx: mpsc::Sender<Message>,
}

/// One world's open recording.
#[derive(Debug)]
pub struct Recording {
    id: WorldId,
    tx: mpsc::Sender<Message>,
}

impl Recording {
    /// Appends records (cheap: a channel send).
    pub fn write(&mut self, records: Vec<TickRecord>) {
        if !records.is_empty() {
            let _ = self.tx.send(Message::Records(self.id, records));
        }
    }

    /// Flushes and closes the file.
    pub fn close(self) {
        let _ = self.tx.send(Message::Close(self.id));
    }
}

impl ReplaySink {
    /// Starts recording a world into a new file in the sink's directory.
    pub fn open(&self, id: WorldId, header: ReplayHeader) -> Option<Recording> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name: String = header
            .spec
            .kind
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // World ids restart with the process: the pid keeps a restart within
        // the same second from reusing a name, and `create_new` never truncates.
        let path = self.dir.join(format!(
            "{name}-{}-{stamp}-{}.replay",
            id.0,
            std::process::id()
        ));
        self.tx
            .send(Message::Open(id, path, Box::new(header)))
            .ok()?;
        Some(Recording {
            id,
            tx: self.tx.clone(),
        })
    }
}

/// The replay writer thread.
pub struct ReplayStore {
    sink: ReplaySink,
    thread: JoinHandle<()>,
}

impl ReplayStore {
    /// Creates `dir` if needed and starts the writer thread.
    pub fn start(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tessera-replays".into())
            .spawn(move || write_loop(rx))?;
        tracing::info!(dir = %dir.display(), "recording replays");
        Ok(Self {
            sink: ReplaySink {
                dir: dir.to_path_buf(),
                tx,
            },
            thread,
        })
    }

    /// A sink to give to worlds.
    pub fn sink(&self) -> ReplaySink {
        self.sink.clone()
    }

    /// Writes every recording and stops the writer. Call after the
    /// scheduler has shut down: its worlds have closed their recordings by
    /// then, and anything sent after is dropped.
    pub fn finish(self) {
        let _ = self.sink.tx.send(Message::Finish);
        drop(self.sink);
        if self.thread.join().is_err() {
            tracing::error!("replay writer thread panicked");
        }
    }
}

type Writer = ReplayWriter<BufWriter<File>>;

fn write_loop(rx: mpsc::Receiver<Message>) {
    let mut open: BTreeMap<WorldId, (PathBuf, Writer)> = BTreeMap::new();
    let fail = |open: &mut BTreeMap<WorldId, (PathBuf, Writer)>,
                id: WorldId,
                error: &dyn std::fmt::Display| {
        if let Some((path, _)) = open.remove(&id) {
            tracing::error!(world = %id, path = %path.display(), %error, "replay recording stopped");
        }
    };
    'run: while let Ok(message) = rx.recv() {
        let mut next = Some(message);
        while let Some(message) = next.take() {
            match message {
                Message::Finish => break 'run,
                Message::Open(id, path, header) => {
                    match File::options()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map_err(Into::into)
                        .and_then(|f| Writer::new(BufWriter::new(f), &header))
                    {
                        Ok(writer) => {
                            tracing::info!(world = %id, path = %path.display(), "replay recording started");
                            open.insert(id, (path, writer));
                        }
                        Err(error) => {
                            tracing::error!(world = %id, path = %path.display(), %error, "cannot create replay file")
                        }
                    }
                }
                Message::Records(id, records) => {
                    if let Some((_, writer)) = open.get_mut(&id)
                        && let Err(error) = records.iter().try_for_each(|r| writer.append(r))
                    {
                        fail(&mut open, id, &error);
                    }
                }
                Message::Close(id) => {
                    if let Some((path, writer)) = open.remove(&id) {
                        match writer.finish() {
                            Ok(_) => {
                                tracing::info!(world = %id, path = %path.display(), "replay saved")
                            }
                            Err(error) => {
                                tracing::error!(world = %id, path = %path.display(), %error, "replay not flushed")
                            }
                        }
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        // Idle: push buffered records to the OS so a crash loses little.
        for (id, (_, writer)) in &mut open {
            if let Err(error) = writer.flush() {
                tracing::warn!(world = %id, %error, "replay flush failed");
            }
        }
    }
    for (id, (path, writer)) in open {
        if let Err(error) = writer.finish() {
            tracing::error!(world = %id, path = %path.display(), %error, "replay not flushed at exit");
        }
    }
}
