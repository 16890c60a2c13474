//! One thread per netcode socket: the expensive part of the transport
//! (the UDP syscalls, ChaCha20-Poly1305 for every packet, renet's
//! per-connection bookkeeping) runs on the socket's own thread, so a node
//! with several sockets uses several cores for it. The net loop keeps all
//! the logic (clients, limits, routing to worlds) on one thread and talks
//! to each socket thread through two channels, with the same calls it
//! would make on the socket itself.

use std::{
    net::SocketAddr,
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::{ClientId, ServerSocket, TransportError, TransportEvent};

/// Messages taken from one client per channel per pass: a flooding client
/// cannot stall the others.
const PER_CLIENT: usize = 64;

/// Batches of commands (a net-loop pass each) queued for a socket thread
/// before the net loop waits for it.
const COMMAND_BATCHES: usize = 2;

/// Batches read (a millisecond each) waiting for the net loop before the
/// socket thread stops reading.
const INCOMING_BATCHES: usize = 8;

/// How often the socket is read while it has clients.
const RECEIVE_EVERY: Duration = Duration::from_millis(1);

/// How often a socket nobody is connected to is read: a node waiting for
/// players should not wake a thousand times a second per socket (the
/// first handshake packet is answered up to this much later).
const IDLE_RECEIVE_EVERY: Duration = Duration::from_millis(10);

enum Command {
    Send(ClientId, u8, Vec<u8>),
    FlushClient(ClientId),
    Flush,
    Disconnect(ClientId),
    StopAnswering(ClientId),
    DisconnectAll,
}

enum Incoming {
    Event(TransportEvent),
    Message(ClientId, u8, bytes::Bytes),
    Failed(String),
}

/// A [`ServerSocket`] on a thread of its own.
pub struct SocketWorker {
    commands: Option<mpsc::SyncSender<Vec<Command>>>,
    /// Commands of the net loop's current pass, handed over together by
    /// [`SocketWorker::submit`]: one wake-up of the socket thread per pass,
    /// not one per message.
    pending: Vec<Command>,
    incoming: mpsc::Receiver<Vec<Incoming>>,
    local: SocketAddr,
    bound: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl SocketWorker {
    /// Moves `socket` onto a thread named after `index`.
    pub fn start(mut socket: ServerSocket, index: usize) -> std::io::Result<Self> {
        let (local, bound) = (socket.local_addr(), socket.bound_addr());
        // Both bounded, so neither side queues without end when the other
        // falls behind: the net loop waits for a socket thread that cannot
        // keep up with its sends, and a socket thread stops reading while the
        // net loop is behind (it never blocks, so they never wait on each
        // other).
        let (commands, command_rx) = mpsc::sync_channel::<Vec<Command>>(COMMAND_BATCHES);
        let (incoming_tx, incoming) = mpsc::sync_channel::<Vec<Incoming>>(INCOMING_BATCHES);
        let thread = std::thread::Builder::new()
            .name(format!("tessera-udp-{index}"))
            .spawn(move || {
                let mut reader = Reader {
                    incoming: incoming_tx,
                    held: None,
                    next_receive: Instant::now(),
                    events: Vec::new(),
                    messages: Vec::new(),
                };
                loop {
                    if reader.read_if_due(&mut socket).is_err() {
                        return;
                    }
                    // One batch of the net loop's commands (in order: sends
                    // go out with the flush that follows), or wait for one
                    // until the socket is due to be read again.
                    let wait = reader
                        .next_receive
                        .saturating_duration_since(Instant::now());
                    match command_rx.recv_timeout(wait) {
                        Ok(batch) => {
                            if apply(&mut socket, batch, &mut reader).is_err() {
                                return;
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        // The net loop is gone (everything it asked is done).
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })?;
        Ok(Self {
            commands: Some(commands),
            pending: Vec::new(),
            incoming,
            local,
            bound,
            thread: Some(thread),
        })
    }

    /// The address clients reach this socket at.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address the socket is bound to.
    pub fn bound_addr(&self) -> SocketAddr {
        self.bound
    }

    fn command(&mut self, command: Command) {
        self.pending.push(command);
    }

    /// Hands the socket thread what was asked since the last call.
    pub fn submit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        if let Some(commands) = &self.commands {
            let _ = commands.send(batch);
        }
    }

    /// What arrived since the last call (see [`ServerSocket::receive`]).
    pub fn receive(
        &mut self,
        events: &mut Vec<TransportEvent>,
        messages: &mut Vec<(ClientId, u8, bytes::Bytes)>,
    ) -> Result<(), TransportError> {
        let mut failed = None;
        for incoming in self.incoming.try_iter().flatten() {
            match incoming {
                Incoming::Event(event) => events.push(event),
                Incoming::Message(client, channel, bytes) => {
                    messages.push((client, channel, bytes))
                }
                Incoming::Failed(error) => failed = Some(error),
            }
        }
        match failed {
            Some(error) => Err(TransportError::Netcode(error)),
            None => Ok(()),
        }
    }

    /// Queues `bytes` for `client` on `channel`.
    pub fn send(&mut self, client: ClientId, channel: u8, bytes: Vec<u8>) {
        self.command(Command::Send(client, channel, bytes));
    }

    /// Sends what is queued for `client`.
    pub fn flush_client(&mut self, client: ClientId) {
        self.command(Command::FlushClient(client));
    }

    /// Sends everything queued (and renet's acknowledgements and resends).
    pub fn flush(&mut self) {
        self.command(Command::Flush);
    }

    /// Disconnects `client`.
    pub fn disconnect(&mut self, client: ClientId) {
        self.command(Command::Disconnect(client));
    }

    /// Stops answering `client`'s messages on the socket's thread
    /// ([`ServerSocket::stop_answering`]).
    pub fn stop_answering(&mut self, client: ClientId) {
        self.command(Command::StopAnswering(client));
    }

    /// Disconnects everyone (shutdown).
    pub fn disconnect_all(&mut self) {
        self.command(Command::DisconnectAll);
    }
}

/// The net loop is gone.
struct Gone;

/// The socket thread's reading side.
struct Reader {
    incoming: mpsc::SyncSender<Vec<Incoming>>,
    /// A batch read but not yet taken by the net loop.
    held: Option<Vec<Incoming>>,
    next_receive: Instant,
    events: Vec<TransportEvent>,
    messages: Vec<(ClientId, u8, bytes::Bytes)>,
}

impl Reader {
    /// Reads the socket when it is due. Reading walks every connection
    /// (renet's and netcode's timers) and answers latency probes, so it
    /// must not wait behind a backlog of sends: once a millisecond, even
    /// in the middle of a tick's worth of them.
    fn read_if_due(&mut self, socket: &mut ServerSocket) -> Result<(), Gone> {
        let now = Instant::now();
        if now < self.next_receive {
            return Ok(());
        }
        // The net loop has not taken the last batch yet: it is behind, so
        // read nothing more until it catches up (the socket's buffer holds
        // the rest, as it would for one thread doing both).
        let backlog = match self.held.take() {
            Some(batch) => self.hand_over(batch)?,
            None => false,
        };
        if !backlog {
            self.events.clear();
            self.messages.clear();
            let mut batch = Vec::new();
            if let Err(error) = socket.receive(&mut self.events, &mut self.messages, PER_CLIENT) {
                batch.push(Incoming::Failed(error.to_string()));
            }
            batch.extend(self.events.drain(..).map(Incoming::Event));
            batch.extend(
                self.messages
                    .drain(..)
                    .map(|(client, channel, bytes)| Incoming::Message(client, channel, bytes)),
            );
            if !batch.is_empty() {
                self.hand_over(batch)?;
            }
        }
        let every = if socket.idle() {
            IDLE_RECEIVE_EVERY
        } else {
            RECEIVE_EVERY
        };
        self.next_receive = now + every;
        Ok(())
    }

    /// Passes `batch` to the net loop, or holds it while the net loop's
    /// queue is full (returns whether it was).
    fn hand_over(&mut self, batch: Vec<Incoming>) -> Result<bool, Gone> {
        match self.incoming.try_send(batch) {
            Ok(()) => Ok(false),
            Err(mpsc::TrySendError::Full(batch)) => {
                self.held = Some(batch);
                Ok(true)
            }
            Err(mpsc::TrySendError::Disconnected(_)) => Err(Gone),
        }
    }
}

/// Commands carried out between two looks at the clock: a tick's sends
/// to a thousand clients take milliseconds, and reads must go on meanwhile.
const COMMANDS_BETWEEN_READS: usize = 32;

fn apply(socket: &mut ServerSocket, batch: Vec<Command>, reader: &mut Reader) -> Result<(), Gone> {
    for (done, command) in batch.into_iter().enumerate() {
        if done > 0 && done % COMMANDS_BETWEEN_READS == 0 {
            reader.read_if_due(socket)?;
        }
        match command {
            Command::Send(client, channel, bytes) => socket.send(client, channel, bytes),
            Command::FlushClient(client) => socket.flush_client(client),
            Command::Flush => socket.flush(),
            Command::Disconnect(client) => socket.disconnect(client),
            Command::StopAnswering(client) => socket.stop_answering(client),
            Command::DisconnectAll => socket.disconnect_all(),
        }
    }
    // The whole pass's datagrams in batched system calls.
    socket.transmit();
    Ok(())
}

impl Drop for SocketWorker {
    fn drop(&mut self) {
        // Closing the channel stops the thread once it has carried out
        // everything already asked (the goodbyes of a shutdown).
        self.submit();
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::transport::{NetcodeKeys, UNRELIABLE};

    /// Commands to a client nobody is: each costs the socket nothing.
    fn busywork(count: usize) -> Vec<Command> {
        (0..count)
            .map(|_| Command::Send(9_999, UNRELIABLE, vec![1]))
            .collect()
    }

    /// A batch of the net loop's commands (a tick's sends) reads the socket
    /// part way when a read falls due, so a ping waiting in the socket is
    /// answered before the batch is done; a read that is not due waits.
    #[test]
    fn a_long_batch_reads_the_socket_when_a_read_falls_due() {
        let keys = NetcodeKeys::random(7);
        let mut socket =
            ServerSocket::bind("127.0.0.1:0".parse().unwrap(), None, &keys, 4).unwrap();
        socket.answer_with(|bytes| (bytes == b"ping").then(|| b"pong".to_vec()));
        let (mut client, _) = super::super::server::tests::connect(&mut socket, &keys);
        let (incoming_tx, incoming) = mpsc::sync_channel(INCOMING_BATCHES);
        let mut reader = Reader {
            incoming: incoming_tx,
            held: None,
            next_receive: Instant::now() + Duration::from_secs(3_600),
            events: Vec::new(),
            messages: Vec::new(),
        };
        // On loopback the datagram is in the socket's buffer once sent.
        client.send(UNRELIABLE, b"ping".to_vec());
        client.flush().unwrap();

        assert!(apply(&mut socket, busywork(100), &mut reader).is_ok());
        assert!(incoming.try_recv().is_err(), "no read was due");

        reader.next_receive = Instant::now();
        assert!(apply(&mut socket, busywork(100), &mut reader).is_ok());
        let read = incoming.try_recv().expect("a read during the batch");
        assert!(
            read.iter().any(|incoming| matches!(
                incoming,
                Incoming::Event(TransportEvent::Answered { bytes: 4, .. })
            )),
            "the ping was answered"
        );
    }
}
