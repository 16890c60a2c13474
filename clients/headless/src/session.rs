//! A client session: log in over HTTP, connect over UDP with the token,
//! send commands, and keep what the server said.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use base64::Engine;
use serde::Deserialize;
use tessera_net::{
    codec::{decode_server, encode_client},
    proto::{self, client_message::Body, event, server_message},
    transport::{ClientSocket, ORDERED, RELIABLE, TransportError, UNRELIABLE},
};

/// What `POST /v1/login` answered.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Login {
    /// The player.
    pub player_id: u64,
    /// The session: fresh connect tokens from `POST /v1/token` until it expires.
    #[serde(default)]
    pub session: String,
    /// The connect token, base64.
    pub connect_token: String,
    /// The UDP address it is for.
    pub udp: String,
}

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// HTTP failed.
    #[error("login: {0}")]
    Login(String),
    /// UDP failed.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// The connection did not come up in time, or was refused.
    #[error("connect: {0}")]
    Connect(String),
    /// The node does not know the login session (it expired, or the node
    /// restarted without Redis): log in again.
    #[error("login: the node does not know this session; log in again")]
    UnknownSession,
}

/// Logs `device_id` in (a guest login) at the node's HTTP address (`host:port`).
pub fn login(http: &str, device_id: &str) -> Result<Login, SessionError> {
    let body = serde_json::json!({
        "device_id": device_id,
        "protocol": tessera_net::PROTOCOL_VERSION,
    });
    let (_, body) = post(http, "/v1/login", &body, 200)?;
    serde_json::from_str(&body).map_err(|e| SessionError::Login(e.to_string()))
}

/// Logs an account in at the node's HTTP address.
pub fn login_account(http: &str, username: &str, password: &str) -> Result<Login, SessionError> {
    let body = serde_json::json!({
        "username": username,
        "password": password,
        "protocol": tessera_net::PROTOCOL_VERSION,
    });
    let (_, body) = post(http, "/v1/login", &body, 200)?;
    serde_json::from_str(&body).map_err(|e| SessionError::Login(e.to_string()))
}

/// A fresh connect token for `login`'s session (`POST /v1/token`), as a
/// new [`Login`] of the same player and session: how a client comes back
/// after a drop without its credentials. A node that no longer knows the
/// session (it expired, or the node restarted without Redis) refuses it
/// with 401 `invalid_session`: log in again.
pub fn refresh(http: &str, login: &Login) -> Result<Login, SessionError> {
    let body = serde_json::json!({
        "session": login.session,
        "protocol": tessera_net::PROTOCOL_VERSION,
    });
    let (status, body) = post_any(http, "/v1/token", &body)?;
    match status {
        200 => serde_json::from_str(&body).map_err(|e| SessionError::Login(e.to_string())),
        401 => Err(SessionError::UnknownSession),
        _ => Err(SessionError::Login(format!("{status}: {body}"))),
    }
}

/// Registers an account; returns its player id.
pub fn register(http: &str, username: &str, password: &str) -> Result<u64, SessionError> {
    let body = serde_json::json!({ "username": username, "password": password });
    let (_, body) = post(http, "/v1/register", &body, 201)?;
    let reply: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| SessionError::Login(e.to_string()))?;
    reply["player_id"]
        .as_u64()
        .ok_or_else(|| SessionError::Login(format!("no player_id in {body}")))
}

/// Why a session cannot go on with a server that sent `welcome`, if it
/// speaks another wire protocol than this client.
fn protocol_mismatch(welcome: &proto::Welcome) -> Option<String> {
    (welcome.protocol != tessera_net::PROTOCOL_VERSION).then(|| {
        format!(
            "protocol mismatch: the server speaks {}, this client {}",
            welcome.protocol,
            tessera_net::PROTOCOL_VERSION
        )
    })
}

/// How long an HTTP request may take to connect, and then to answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// POSTs JSON over a fresh connection; anything but `expect` is an error
/// carrying the status line and the body (the node's typed error).
fn post(
    http: &str,
    path: &str,
    body: &serde_json::Value,
    expect: u16,
) -> Result<(u16, String), SessionError> {
    let (status, body) = post_any(http, path, body)?;
    if status != expect {
        return Err(SessionError::Login(format!("{status}: {body}")));
    }
    Ok((status, body))
}

/// POSTs JSON over a fresh connection; the status and the body.
fn post_any(
    http: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<(u16, String), SessionError> {
    use std::net::ToSocketAddrs;

    let fail = |e: &dyn std::fmt::Display| SessionError::Login(e.to_string());
    let body = body.to_string();
    let addr = http
        .to_socket_addrs()
        .map_err(|e| fail(&e))?
        .next()
        .ok_or_else(|| fail(&format!("no address for {http}")))?;
    // A host that drops packets must not hold the caller for minutes.
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).map_err(|e| fail(&e))?;
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .map_err(|e| fail(&e))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| fail(&e))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| fail(&e))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail(&"no HTTP body"))?;
    let status_line = head.lines().next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| fail(&format!("bad status line {status_line:?}")))?;
    Ok((status, body.to_string()))
}

/// A pong, with the ping's send time it echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PongSeen {
    /// When the ping was sent, µs since the Unix epoch (echoed).
    pub sent_us: u64,
    /// When the pong's datagram arrived, µs since the Unix epoch, where the
    /// transport knows (see `ClientSocket::last_arrival`).
    pub arrived_us: Option<u64>,
}

/// A connected player.
pub struct Session {
    socket: ClientSocket,
    /// The player id.
    pub player: u64,
    /// The last snapshot received.
    pub snapshot: Option<proto::Snapshot>,
    /// Events received, oldest first.
    pub events: Vec<proto::Event>,
    /// Responses received, oldest first.
    pub responses: Vec<proto::Response>,
    /// The welcome, once the avatar is in a world (its tables hash and
    /// skills kept current by `TablesChanged` events).
    pub welcome: Option<proto::Welcome>,
    /// A kick, if the server kicked this session.
    pub kicked: Option<proto::Kick>,
    /// Snapshots received so far.
    pub snapshots: u64,
    /// Over the snapshots applied: entities they brought news of (entered,
    /// changed or moved), and entities in the views they built. Their
    /// ratio is how fresh the view is kept.
    pub view_updates: u64,
    /// See `view_updates`.
    pub view_entries: u64,
    /// Why the connection ended, once it has.
    pub disconnected: Option<String>,
    /// The connection was lost, or the server closed it: not this client's
    /// goodbye, and not a protocol it cannot speak.
    dropped: bool,
    /// Pongs received and not yet taken.
    pub pongs: Vec<PongSeen>,
    /// Messages received.
    pub messages_in: u64,
    /// Message bytes received.
    pub bytes_in: u64,
    /// Message bytes sent.
    pub bytes_out: u64,
    /// Frame-sync messages (bundles, catch-ups, desyncs) not yet taken.
    pub frame_messages: Vec<server_message::Body>,
    next_request: u32,
    /// Something was queued since the last flush.
    unsent: bool,
    /// Recent views by snapshot id: the baselines deltas refer to.
    views: std::collections::VecDeque<(u32, tessera_net::delta::View)>,
    /// Snapshots that could not be applied (unknown baseline or entity).
    pub bad_deltas: u64,
    /// Server messages that could not be decoded.
    pub undecodable: u64,
    last_flush: Instant,
}

/// Views kept for resolving baselines (the server keeps fewer).
const VIEWS_KEPT: usize = 16;

/// How often a session flushes with nothing new to send (acknowledgements,
/// resends): flushing on every pump would send the server an
/// acknowledgement packet per pump.
const IDLE_FLUSH: Duration = Duration::from_millis(50);

impl Session {
    /// Connects with a login's token, waiting up to `timeout`.
    pub fn connect(login: &Login, timeout: Duration) -> Result<Self, SessionError> {
        let token = base64::engine::general_purpose::STANDARD
            .decode(&login.connect_token)
            .map_err(|e| SessionError::Connect(format!("bad token: {e}")))?;
        Self::connect_with_token(&token, login.player_id, timeout)
    }

    /// Connects with raw token bytes (tests forge these), waiting up to `timeout`.
    pub fn connect_with_token(
        token: &[u8],
        player: u64,
        timeout: Duration,
    ) -> Result<Self, SessionError> {
        let mut session = Self::begin_with_token(token, player)?;
        let deadline = Instant::now() + timeout;
        while !session.socket.is_connected() {
            session.socket.update()?;
            session.socket.flush()?;
            if session.socket.is_disconnected() {
                return Err(SessionError::Connect(
                    session
                        .socket
                        .disconnect_reason()
                        .unwrap_or_else(|| "refused".into()),
                ));
            }
            if Instant::now() > deadline {
                return Err(SessionError::Connect("timed out".into()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(session)
    }

    /// Starts connecting and returns at once; [`Session::pump`] completes
    /// the handshake (load tests drive many sessions from one thread).
    pub fn begin(login: &Login) -> Result<Self, SessionError> {
        let token = base64::engine::general_purpose::STANDARD
            .decode(&login.connect_token)
            .map_err(|e| SessionError::Connect(format!("bad token: {e}")))?;
        Self::begin_with_token(&token, login.player_id)
    }

    fn begin_with_token(token: &[u8], player: u64) -> Result<Self, SessionError> {
        Ok(Self {
            socket: ClientSocket::connect(token)?,
            player,
            snapshot: None,
            events: Vec::new(),
            responses: Vec::new(),
            welcome: None,
            kicked: None,
            snapshots: 0,
            disconnected: None,
            dropped: false,
            pongs: Vec::new(),
            messages_in: 0,
            bytes_in: 0,
            bytes_out: 0,
            frame_messages: Vec::new(),
            unsent: false,
            views: std::collections::VecDeque::new(),
            bad_deltas: 0,
            undecodable: 0,
            view_updates: 0,
            view_entries: 0,
            last_flush: Instant::now(),
            next_request: 1,
        })
    }

    /// Sends a command on its channel (inputs unreliable, the rest reliable).
    pub fn send(&mut self, body: Body) {
        let channel = match body {
            Body::Move(_) | Body::Ping(_) | Body::Ack(_) | Body::Frames(_) => UNRELIABLE,
            _ => ORDERED,
        };
        let request = self.next_request;
        self.next_request += 1;
        let bytes = encode_client(request, body);
        self.bytes_out += bytes.len() as u64;
        self.socket.send(channel, bytes);
        self.unsent = true;
    }

    /// The request number of the last message sent with [`Session::send`]
    /// (responses to it carry the same number).
    pub fn last_request(&self) -> u32 {
        self.next_request.wrapping_sub(1)
    }

    /// Sends a room or matchmaking command; returns its request number.
    pub fn room(&mut self, kind: proto::room_command::Kind) -> u32 {
        self.send(Body::Room(proto::RoomCommand { kind: Some(kind) }));
        self.last_request()
    }

    /// The response to request `request`, once it has arrived.
    pub fn response_to(&self, request: u32) -> Option<&proto::Response> {
        self.responses.iter().find(|r| r.request == request)
    }

    /// Loses datagrams on purpose from now on, both ways (bad networks).
    pub fn simulate_loss(&mut self, loss: tessera_net::transport::Loss) {
        self.socket.simulate_loss(loss);
    }

    /// What was lost on purpose so far.
    pub fn loss(&self) -> &tessera_net::transport::Loss {
        self.socket.loss()
    }

    /// Sends raw bytes (tests send garbage).
    pub fn send_raw(&mut self, channel: u8, bytes: Vec<u8>) {
        self.socket.send(channel, bytes);
        self.unsent = true;
    }

    /// Says goodbye to the server and closes the connection.
    pub fn disconnect(&mut self) {
        self.socket.disconnect();
        self.disconnected = Some("disconnected by the client".into());
    }

    /// Whether a client should come back ([`refresh`], then connect and
    /// join again) now that the session has ended: the connection was lost
    /// or closed under it, or the node is shutting down (it may be back, or
    /// another take its players). Not after a kick for logging in elsewhere,
    /// flooding or garbage, its own goodbye, or a protocol mismatch.
    pub fn may_reconnect(&self) -> bool {
        match &self.kicked {
            Some(kick) => kick.reason == proto::KickReason::Shutdown as i32,
            None => self.dropped,
        }
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.socket.is_connected()
    }

    /// Exchanges packets and applies what arrived. A connection the server
    /// closed is recorded in `disconnected`, not returned as an error.
    pub fn pump(&mut self) -> Result<(), SessionError> {
        self.receive()?;
        self.flush()
    }

    /// Reports this session's socket to `poller` under `token` whenever
    /// datagrams wait for [`Session::receive`].
    pub fn watch(
        &self,
        poller: &mut tessera_net::transport::Poller,
        token: u64,
    ) -> std::io::Result<()> {
        poller.add(&self.socket, token)
    }

    /// The receiving half of [`Session::pump`]: advances the connection
    /// and applies what arrived. Only netcode's own packets (handshake,
    /// keep-alives) go out here, so a caller that queues messages next
    /// sends them all with one [`Session::flush`].
    pub fn receive(&mut self) -> Result<(), SessionError> {
        if self.disconnected.is_some() {
            return Ok(());
        }
        if let Err(error) = self.socket.update() {
            if !self.socket.is_disconnected() {
                return Err(error.into());
            }
            // Read what arrived with the goodbye (a kick says why) first.
            self.dropped = true;
            self.disconnected = Some(
                self.socket
                    .disconnect_reason()
                    .unwrap_or_else(|| error.to_string()),
            );
        }
        // Ordered first: a welcome resets the view before this pump's snapshots.
        for channel in [ORDERED, RELIABLE, UNRELIABLE] {
            while let Some(bytes) = self.socket.receive(channel) {
                self.messages_in += 1;
                self.bytes_in += bytes.len() as u64;
                let Ok(message) = decode_server(&bytes) else {
                    self.undecodable += 1;
                    continue;
                };
                match message.body {
                    Some(server_message::Body::Snapshot(snapshot)) => {
                        self.snapshots += 1;
                        self.take_snapshot(snapshot);
                    }
                    Some(server_message::Body::Event(event)) => {
                        if let (Some(event::Kind::TablesChanged(changed)), Some(welcome)) =
                            (&event.kind, self.welcome.as_mut())
                        {
                            // What the welcome said of the tables is stale.
                            welcome.tables_hash.clone_from(&changed.tables_hash);
                            welcome.skills.clone_from(&changed.skills);
                        }
                        self.events.push(event);
                    }
                    Some(server_message::Body::Response(response)) => self.responses.push(response),
                    Some(server_message::Body::Welcome(welcome))
                        if let Some(mismatch) = protocol_mismatch(&welcome) =>
                    {
                        // Whatever follows would be misread: the session
                        // ends here, saying why, and for good.
                        self.dropped = false;
                        self.disconnected = Some(mismatch);
                        self.socket.disconnect();
                        return Ok(());
                    }
                    Some(server_message::Body::Welcome(welcome)) => {
                        // A new world (or the same one again): its snapshot
                        // ids and ticks have nothing to do with the last.
                        self.views.clear();
                        self.snapshot = None;
                        self.welcome = Some(welcome);
                    }
                    Some(server_message::Body::Kick(kick)) => self.kicked = Some(kick),
                    Some(server_message::Body::Pong(pong)) => self.pongs.push(PongSeen {
                        sent_us: pong.client_time_us,
                        arrived_us: self.socket.last_arrival().and_then(|at| {
                            at.duration_since(std::time::UNIX_EPOCH)
                                .ok()
                                .map(|d| d.as_micros() as u64)
                        }),
                    }),
                    Some(
                        body @ (server_message::Body::Frames(_)
                        | server_message::Body::CatchUp(_)
                        | server_message::Body::Desync(_)),
                    ) => self.frame_messages.push(body),
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// Sends what was queued since the last flush, and now and then
    /// renet's acknowledgements and resends even with nothing new.
    pub fn flush(&mut self) -> Result<(), SessionError> {
        if self.disconnected.is_some() {
            return Ok(());
        }
        if self.unsent || self.last_flush.elapsed() >= IDLE_FLUSH {
            if let Err(error) = self.socket.flush() {
                if !self.socket.is_disconnected() {
                    return Err(error.into());
                }
                self.dropped = true;
                self.disconnected = Some(
                    self.socket
                        .disconnect_reason()
                        .unwrap_or_else(|| error.to_string()),
                );
                return Ok(());
            }
            self.unsent = false;
            self.last_flush = Instant::now();
        }
        Ok(())
    }

    /// Pumps until `done` says so or `timeout` passes; `false` on timeout.
    pub fn pump_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Session) -> bool,
    ) -> Result<bool, SessionError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump()?;
            if done(self) {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Rebuilds the view a (delta) snapshot describes, keeps it as the
    /// latest full snapshot if it is newer, and acknowledges it so the
    /// server can use it as the next baseline. One whose baseline this
    /// session no longer has is dropped unacknowledged (the server then
    /// falls back to an older baseline or a full snapshot).
    fn take_snapshot(&mut self, snapshot: proto::Snapshot) {
        let base = self
            .views
            .iter()
            .find(|(id, _)| *id == snapshot.baseline)
            .map(|(_, view)| view);
        let Ok(view) = tessera_net::delta::apply(base, &snapshot) else {
            self.bad_deltas += 1;
            return;
        };
        self.view_updates +=
            (snapshot.entities.len() + snapshot.changed.len() + snapshot.moves.len() / 3) as u64;
        self.view_entries += view.len() as u64;
        // The ack rides with the next input (or the idle flush): a packet
        // of its own per snapshot would double the packets sent.
        let ack = encode_client(
            0,
            Body::Ack(proto::SnapshotAck {
                snapshot: snapshot.id,
            }),
        );
        self.bytes_out += ack.len() as u64;
        self.socket.send(UNRELIABLE, ack);
        if self
            .snapshot
            .as_ref()
            .is_none_or(|s| s.tick < snapshot.tick)
        {
            let avatar = snapshot.avatar;
            let mut entities: Vec<proto::EntityState> =
                view.iter().map(|(id, seen)| seen.to_state(*id)).collect();
            // The avatar first, the rest in id order (as a stable sort on
            // "is not the avatar" would leave them, without sorting).
            if let Some(at) = entities.iter().position(|e| e.id == avatar) {
                entities[..=at].rotate_right(1);
            }
            self.snapshot = Some(proto::Snapshot {
                entities,
                removed: Vec::new(),
                changed: Vec::new(),
                moves: Vec::new(),
                baseline: 0,
                ..snapshot.clone()
            });
        }
        self.views.push_back((snapshot.id, view));
        while self.views.len() > VIEWS_KEPT {
            self.views.pop_front();
        }
    }

    /// The state of entity `id` in the last snapshot.
    pub fn entity(&self, id: u64) -> Option<&proto::EntityState> {
        self.snapshot.as_ref()?.entities.iter().find(|e| e.id == id)
    }

    /// The avatar's entity id, from the last snapshot.
    pub fn avatar(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.avatar)
    }
}

#[cfg(test)]
mod tests;
