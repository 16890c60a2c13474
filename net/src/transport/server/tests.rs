//! The socket over real UDP: idleness, answers on the socket's thread,
//! kernel drops, the walk's skipping and the shards' admission.

use super::*;

/// A client connected to `server` over loopback, and its id there.
pub(in crate::transport) fn connect(
    server: &mut ServerSocket,
    keys: &NetcodeKeys,
) -> (super::super::ClientSocket, ClientId) {
    let token = keys
        .connect_token(1, PlayerId(9), server.local_addr(), 30)
        .unwrap();
    let mut client = super::super::ClientSocket::connect(&token).unwrap();
    let (mut events, mut messages) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut connected = None;
    while (connected.is_none() || !client.is_connected()) && Instant::now() < deadline {
        client.update().unwrap();
        client.flush().unwrap();
        server.receive(&mut events, &mut messages, 64).unwrap();
        connected = connected.or(events.iter().find_map(|event| match event {
            TransportEvent::Connected { client, .. } => Some(*client),
            _ => None,
        }));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(client.is_connected());
    (client, connected.expect("a connection event"))
}

/// Over real UDP: a socket of many shards still lets one connect token
/// connect once. A copy used from an address another shard serves
/// (which never saw the token) is refused by the socket, again and
/// again, and the first connection carries on.
#[test]
fn a_token_copied_to_an_address_of_another_shard_is_refused() {
    let keys = NetcodeKeys::random(7);
    let mut server =
        ServerSocket::bind("127.0.0.1:0".parse().unwrap(), None, &keys, 1_024).unwrap();
    let token = keys
        .connect_token(77, PlayerId(9), server.local_addr(), 30)
        .unwrap();
    let mut first = super::super::ClientSocket::connect(&token).unwrap();
    // As the server sees the client: from loopback, at its port.
    let shard_of = |client: &super::super::ClientSocket, server: &ServerSocket| {
        let port = client.local_addr().unwrap().port();
        server
            .netcode
            .shard_of(SocketAddr::from(([127, 0, 0, 1], port)))
    };
    let mut copy = loop {
        let copy = super::super::ClientSocket::connect(&token).unwrap();
        if shard_of(&copy, &server) != shard_of(&first, &server) {
            break copy;
        }
    };
    let (mut events, mut messages) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !first.is_connected() && Instant::now() < deadline {
        first.update().unwrap();
        first.flush().unwrap();
        server.receive(&mut events, &mut messages, 64).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(first.is_connected());
    // A handshake takes a few of netcode's 250 ms sends; the copy's is
    // refused each time it completes, and like a client netcode denies
    // it keeps trying until its own timeout.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !copy.is_connected() && Instant::now() < deadline {
        for client in [&mut first, &mut copy] {
            client.update().unwrap();
            client.flush().unwrap();
        }
        server.receive(&mut events, &mut messages, 64).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!copy.is_connected(), "the copy was refused");
    let connected: Vec<_> = events
        .iter()
        .filter(|event| matches!(event, TransportEvent::Connected { .. }))
        .collect();
    assert_eq!(connected.len(), 1, "{events:?}");
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, TransportEvent::Disconnected { .. })),
        "{events:?}"
    );
    assert_eq!(server.connected(), 1);
    let (first_shard, copy_shard) = (shard_of(&first, &server), shard_of(&copy, &server));
    assert_eq!(server.io.peers[&77].shard, first_shard);
    assert!(
        !server.netcode.server(copy_shard).is_client_connected(77),
        "the copy's shard let it go"
    );
    first.update().unwrap();
    assert!(first.is_connected());
}

/// A connection is left out of the walk only while netcode surely has
/// nothing to do for it: something went to it within the keep-alive
/// margin and something came from it well within the timeout.
#[test]
fn only_a_connection_quiet_either_way_is_walked() {
    let now = Instant::now();
    let ago = |ms: u64| Some(now - Duration::from_millis(ms));
    let peer = |sent, heard| Peer {
        last_sent: sent,
        last_heard: heard,
        ..Peer::default()
    };
    assert!(peer(ago(100), ago(500)).busy(now));
    assert!(!peer(None, None).busy(now), "new: owed its keep-alives");
    assert!(
        !peer(ago(200), ago(500)).busy(now),
        "a keep-alive may be due"
    );
    assert!(!peer(ago(100), ago(1_500)).busy(now), "quiet: may time out");
    assert!(!peer(None, ago(10)).busy(now));
    assert!(!peer(ago(10), None).busy(now));
}

/// Over real UDP: a flush that sends to a client, and a read that hears
/// from it, are what marks it busy; a client nothing went to is walked.
#[test]
fn sends_and_reads_mark_a_connection_busy() {
    let keys = NetcodeKeys::random(7);
    let mut server = ServerSocket::bind("127.0.0.1:0".parse().unwrap(), None, &keys, 4).unwrap();
    let (mut client, connected) = connect(&mut server, &keys);
    let (mut events, mut messages) = (Vec::new(), Vec::new());
    client.send(UNRELIABLE, b"move".to_vec());
    client.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while messages.is_empty() && Instant::now() < deadline {
        server.receive(&mut events, &mut messages, 64).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let peer = &server.io.peers[&connected];
    assert!(peer.last_heard.is_some(), "heard");
    assert!(!peer.busy(Instant::now()), "nothing sent since connecting");

    server.send(connected, UNRELIABLE, b"snapshot".to_vec());
    server.flush_client(connected);
    server.transmit();
    assert!(server.io.peers[&connected].busy(Instant::now()));
}

/// A socket with nobody connected is idle (read less often) until a
/// datagram comes, and again once a read finds nothing.
#[test]
fn a_socket_is_idle_until_a_datagram_comes() {
    let keys = NetcodeKeys::random(7);
    let mut server = ServerSocket::bind("127.0.0.1:0".parse().unwrap(), None, &keys, 4).unwrap();
    let (mut events, mut messages) = (Vec::new(), Vec::new());
    assert!(server.idle(), "new");
    server.receive(&mut events, &mut messages, 64).unwrap();
    assert!(server.idle(), "nothing came");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(&[0xee; 40], server.bound_addr()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.idle() && Instant::now() < deadline {
        server.receive(&mut events, &mut messages, 64).unwrap();
    }
    assert!(!server.idle(), "a datagram (a handshake, say) was read");
    server.receive(&mut events, &mut messages, 64).unwrap();
    assert!(server.idle(), "and nothing since");
}

/// Over real UDP: what the answerer answers goes back from the read
/// that found it, with nobody flushing, and is counted as an event,
/// not passed on; everything else is passed on as before. The read
/// sends the answer alone: what the net loop queued for the client
/// waits for its flush. Once the client is not to be answered, its
/// pings are passed on like the rest.
#[test]
fn a_socket_answers_what_its_answerer_answers_in_the_same_read() {
    let keys = NetcodeKeys::random(7);
    let mut server = ServerSocket::bind("127.0.0.1:0".parse().unwrap(), None, &keys, 4).unwrap();
    server.answer_with(|bytes| {
        bytes
            .starts_with(b"ping")
            .then(|| [b"pong", &bytes[4..]].concat())
    });
    let (mut client, connected) = connect(&mut server, &keys);
    let (mut events, mut messages) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    // Half a tick's sends, not flushed yet.
    server.send(connected, UNRELIABLE, b"snapshot".to_vec());
    client.send(UNRELIABLE, b"ping-42".to_vec());
    client.send(UNRELIABLE, b"move".to_vec());
    client.flush().unwrap();
    let mut pong = None;
    while pong.is_none() && Instant::now() < deadline {
        server.receive(&mut events, &mut messages, 64).unwrap();
        client.update().unwrap();
        pong = client.receive(UNRELIABLE);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(pong.as_deref(), Some(&b"pong-42"[..]));
    assert_eq!(client.receive(UNRELIABLE), None, "the snapshot waits");
    server.flush_client(connected);
    server.transmit();
    let mut snapshot = None;
    while snapshot.is_none() && Instant::now() < deadline {
        client.update().unwrap();
        snapshot = client.receive(UNRELIABLE);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(snapshot.as_deref(), Some(&b"snapshot"[..]));
    assert_eq!(
        events,
        vec![TransportEvent::Answered {
            client: connected,
            bytes: 7
        }]
    );
    let passed: Vec<_> = messages
        .iter()
        .filter(|(_, channel, _)| *channel == UNRELIABLE)
        .map(|(client, _, bytes)| (*client, bytes.to_vec()))
        .collect();
    assert_eq!(passed, vec![(connected, b"move".to_vec())]);

    server.stop_answering(connected);
    events.clear();
    messages.clear();
    client.send(UNRELIABLE, b"ping-43".to_vec());
    client.flush().unwrap();
    while messages.is_empty() && Instant::now() < deadline {
        server.receive(&mut events, &mut messages, 64).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let passed: Vec<_> = messages
        .iter()
        .map(|(_, _, bytes)| bytes.to_vec())
        .collect();
    assert_eq!(passed, vec![b"ping-43".to_vec()]);
    assert!(events.is_empty(), "{events:?}");
}

/// Over real UDP: datagrams the kernel drops while the socket's buffer
/// is full are counted once a later datagram is read.
#[test]
fn the_datagrams_the_kernel_dropped_are_counted() {
    let keys = NetcodeKeys::random(7);
    let mut server = ServerSocket::bind("127.0.0.1:0".parse().unwrap(), None, &keys, 4).unwrap();
    let dropped = server.dropped();
    let tiny = BufferSizes {
        receive: 4096,
        send: 4096,
    };
    assert!(server.resize_buffers(tiny).unwrap().receive <= 8192);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = 500;
    // Not netcode: the server reads them and ignores them.
    for _ in 0..sent {
        sender.send_to(&[0xee; 200], server.bound_addr()).unwrap();
    }
    let (mut events, mut messages) = (Vec::new(), Vec::new());
    server.receive(&mut events, &mut messages, 64).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while dropped.get() == 0 && Instant::now() < deadline {
        sender.send_to(&[0xee; 200], server.bound_addr()).unwrap();
        server.receive(&mut events, &mut messages, 64).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        dropped.get() > 0 && dropped.get() < sent,
        "{} dropped",
        dropped.get()
    );
    assert!(events.is_empty() && messages.is_empty());
}
