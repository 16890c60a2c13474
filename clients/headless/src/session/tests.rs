//! The session against a server on a real UDP socket, and its checks.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tessera_net::{
    codec::encode_server,
    transport::{NetcodeKeys, ServerSocket, TransportEvent},
};

use super::*;

/// What a test server does once it has welcomed a client.
#[derive(Clone, Copy)]
enum Then {
    /// Keeps serving it.
    Stay,
    /// 100 ms later, kicks it for the reason (if any) and closes the
    /// connection.
    Part(Option<proto::KickReason>),
}

/// A server on a real UDP socket that welcomes whoever connects in
/// protocol `protocol`, then does `then`, until `stop`.
fn test_server(
    protocol: u32,
    then: Then,
    stop: Arc<AtomicBool>,
) -> (Vec<u8>, std::thread::JoinHandle<()>) {
    let keys = NetcodeKeys::random(7);
    let mut server = ServerSocket::bind("127.0.0.1:0".parse().unwrap(), None, &keys, 4)
        .expect("a server socket");
    let token = keys
        .connect_token(1, tessera_sim::PlayerId(9), server.local_addr(), 30)
        .expect("a token");
    let message = |body| encode_server(&proto::ServerMessage { body: Some(body) });
    let welcome = message(server_message::Body::Welcome(proto::Welcome {
        player: 9,
        protocol,
        ..proto::Welcome::default()
    }));
    let thread = std::thread::spawn(move || {
        let (mut events, mut messages) = (Vec::new(), Vec::new());
        let mut parting = None;
        while !stop.load(Ordering::Relaxed) {
            events.clear();
            server
                .receive(&mut events, &mut messages, 64)
                .expect("reading");
            for event in &events {
                if let TransportEvent::Connected { client, .. } = event {
                    server.send(*client, ORDERED, welcome.clone());
                    if let Then::Part(kick) = then {
                        parting =
                            Some((*client, kick, Instant::now() + Duration::from_millis(100)));
                    }
                }
            }
            if let Some((client, kick, at)) = parting
                && Instant::now() >= at
            {
                if let Some(reason) = kick {
                    let kick = message(server_message::Body::Kick(proto::Kick {
                        reason: reason as i32,
                        detail: "parting".into(),
                    }));
                    server.send(client, ORDERED, kick);
                    server.flush();
                    server.transmit();
                }
                server.disconnect(client);
                parting = None;
            }
            server.flush();
            server.transmit();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    (token, thread)
}

/// Over real UDP: a session whose connection the server closed, or that
/// the server kicked because it is shutting down, may come back; one
/// kicked for logging in elsewhere or flooding may not, nor one that said
/// goodbye itself.
#[test]
fn a_session_may_come_back_after_a_drop_or_a_shutdown_but_not_after_a_kick() {
    use proto::KickReason;
    for (kick, comes_back) in [
        (None, true),
        (Some(KickReason::Shutdown), true),
        (Some(KickReason::LoggedInElsewhere), false),
        (Some(KickReason::Flooding), false),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let (token, server) = test_server(
            tessera_net::PROTOCOL_VERSION,
            Then::Part(kick),
            stop.clone(),
        );
        let mut session =
            Session::connect_with_token(&token, 9, Duration::from_secs(10)).expect("connected");
        let ended = session
            .pump_until(Duration::from_secs(10), |s| s.disconnected.is_some())
            .expect("pumping");
        stop.store(true, Ordering::Relaxed);
        server.join().expect("the server thread");
        assert!(ended, "{kick:?}: the connection did not end");
        assert!(session.welcome.is_some(), "{kick:?}: welcomed first");
        assert_eq!(
            session.kicked.as_ref().map(|k| k.reason),
            kick.map(|k| k as i32)
        );
        assert_eq!(session.may_reconnect(), comes_back, "{kick:?}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (token, server) = test_server(tessera_net::PROTOCOL_VERSION, Then::Stay, stop.clone());
    let mut session =
        Session::connect_with_token(&token, 9, Duration::from_secs(10)).expect("connected");
    session.disconnect();
    stop.store(true, Ordering::Relaxed);
    server.join().expect("the server thread");
    assert!(!session.may_reconnect(), "it left on its own");
}

/// Over real UDP: a session whose server welcomes it in another
/// protocol ends, saying why, and takes nothing from that welcome; one
/// welcomed in its own protocol goes on.
#[test]
fn a_session_welcomed_in_another_protocol_ends_saying_why() {
    let ours = tessera_net::PROTOCOL_VERSION;
    for (protocol, ends) in [(ours + 1, true), (ours, false)] {
        let stop = Arc::new(AtomicBool::new(false));
        let (token, server) = test_server(protocol, Then::Stay, stop.clone());
        let mut session =
            Session::connect_with_token(&token, 9, Duration::from_secs(10)).expect("connected");
        let settled = session
            .pump_until(Duration::from_secs(10), |s| {
                s.welcome.is_some() || s.disconnected.is_some()
            })
            .expect("pumping");
        stop.store(true, Ordering::Relaxed);
        server.join().expect("the server thread");
        assert!(settled, "protocol {protocol}: neither welcomed nor ended");
        if ends {
            let why = session.disconnected.clone().unwrap_or_default();
            assert!(why.contains("protocol mismatch"), "{why}");
            assert!(session.welcome.is_none());
            assert!(!session.may_reconnect(), "another protocol stays another");
        } else {
            assert_eq!(session.disconnected, None);
            assert_eq!(session.welcome.as_ref().map(|w| w.protocol), Some(ours));
        }
    }
}

#[test]
fn a_welcome_in_another_protocol_ends_the_session_saying_why() {
    let ours = tessera_net::PROTOCOL_VERSION;
    let welcome = |protocol| proto::Welcome {
        protocol,
        ..proto::Welcome::default()
    };
    assert_eq!(protocol_mismatch(&welcome(ours)), None);
    for other in [0, ours - 1, ours + 1] {
        let why = protocol_mismatch(&welcome(other)).expect("a mismatch");
        assert!(
            why.contains(&format!("server speaks {other}, this client {ours}")),
            "{why}"
        );
    }
}
