//! Accounts over HTTP against a running node: register, sign in, play with
//! the token; and every way a registration or sign-in must be refused, each
//! with its status and stable error code.

mod support;

use std::time::Duration;

use support::*;
use tessera_bot::session::{Session, login_account, register};
use tessera_net::proto::{self, client_message::Body};

fn post(node: &Node, path: &str, body: &str) -> (u16, serde_json::Value) {
    post_json(&node.http, path, body)
}

/// `body` (a JSON object) naming the protocol this build speaks, as every
/// client's login does.
fn versioned(body: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(body).expect("a JSON object");
    value["protocol"] = tessera_net::PROTOCOL_VERSION.into();
    value.to_string()
}

#[test]
fn an_account_registers_signs_in_and_plays() {
    let node = start(&[]);
    let player = register(&node.http, "Alice", "correct horse battery").expect("registered");

    let (status, body) = post(
        &node,
        "/v1/register",
        r#"{"username":"alice","password":"another password"}"#,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("username_taken")),
        "{body}"
    );

    let login = login_account(&node.http, "ALICE", "correct horse battery").expect("signed in");
    assert_eq!(login.player_id, player, "usernames are case-insensitive");

    let mut session = Session::connect(&login, Duration::from_secs(20)).expect("connect");
    session.send(Body::Join(proto::JoinWorld {
        class: "warrior".into(),
        world: String::new(),
    }));
    assert!(
        session
            .pump_until(Duration::from_secs(20), |s| s.welcome.is_some())
            .unwrap(),
        "the account's token gets it into a world"
    );
    assert_eq!(session.player, player);

    // The session gets fresh connect tokens without the password.
    let (status, reply) = post(
        &node,
        "/v1/token",
        &versioned(&format!(r#"{{"session":"{}"}}"#, login.session)),
    );
    assert_eq!(
        (status, reply["player_id"].as_u64()),
        (200, Some(player)),
        "{reply}"
    );
    assert!(
        reply["connect_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let (status, reply) = post(&node, "/v1/token", &versioned(r#"{"session":"0123"}"#));
    assert_eq!(
        (status, reply["code"].as_str()),
        (401, Some("invalid_session"))
    );
}

#[test]
fn wrong_passwords_unknown_names_and_bad_requests_are_refused_with_codes() {
    let node = start(&[]);
    register(&node.http, "bob", "hunter2hunter2").expect("registered");
    let cases = [
        (
            r#"{"username":"bob","password":"hunter3hunter3"}"#,
            401,
            "invalid_credentials",
        ),
        (
            r#"{"username":"nobody","password":"hunter2hunter2"}"#,
            401,
            "invalid_credentials",
        ),
        (r#"{"username":"bob"}"#, 400, "bad_request"),
        (
            r#"{"device_id":"d","username":"bob","password":"hunter2hunter2"}"#,
            400,
            "bad_request",
        ),
        (r#"{}"#, 400, "bad_request"),
        (r#"{"device_id":""}"#, 400, "bad_device_id"),
    ];
    for (body, status, code) in cases {
        let (got, reply) = post(&node, "/v1/login", &versioned(body));
        assert_eq!(
            (got, reply["code"].as_str()),
            (status, Some(code)),
            "{body}: {reply}"
        );
        assert!(
            reply["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{reply}"
        );
    }
    let registrations = [
        (
            r#"{"username":"x","password":"hunter2hunter2"}"#,
            400,
            "bad_username",
        ),
        (
            r#"{"username":"bob smith","password":"hunter2hunter2"}"#,
            400,
            "bad_username",
        ),
        (
            r#"{"username":"carol","password":"short"}"#,
            400,
            "bad_password",
        ),
    ];
    for (body, status, code) in registrations {
        let (got, reply) = post(&node, "/v1/register", body);
        assert_eq!(
            (got, reply["code"].as_str()),
            (status, Some(code)),
            "{body}: {reply}"
        );
    }
    // A refused registration created nothing.
    let (status, _) = post(
        &node,
        "/v1/login",
        &versioned(r#"{"username":"carol","password":"short"}"#),
    );
    assert_eq!(status, 401);
    // Guest logins still work next to accounts.
    tessera_bot::session::login(&node.http, "a-device").expect("device login");
}

/// A client that speaks another wire protocol, or predates protocol
/// versions and names none, is refused before anything else in its request
/// is looked at, for a login and for a session's fresh token alike (426,
/// saying which protocol the node speaks, in the body and in `Upgrade`);
/// the same login naming this build's protocol gets in.
#[test]
fn a_client_in_another_protocol_is_refused_with_426() {
    let node = start(&[]);
    let server = tessera_net::PROTOCOL_VERSION;
    let login = tessera_bot::session::login(&node.http, "current-client").expect("login");
    for (path, body) in [
        ("/v1/login", r#"{"device_id":"old-client"}"#.to_string()),
        (
            "/v1/login",
            format!(r#"{{"device_id":"old-client","protocol":{}}}"#, server - 1),
        ),
        // A newer client, with a field this node does not know.
        (
            "/v1/login",
            format!(
                r#"{{"device_id":"new-client","protocol":{},"locale":"fr"}}"#,
                server + 1
            ),
        ),
        (
            "/v1/login",
            r#"{"device_id":"x","protocol":"2"}"#.to_string(),
        ),
        // Even a malformed login is told about the protocol first.
        ("/v1/login", r#"{"device_id":""}"#.to_string()),
        // A session outlives a node's upgrade: its old client is refused too.
        ("/v1/token", format!(r#"{{"session":"{}"}}"#, login.session)),
    ] {
        let (status, head, reply) = post_json_with_head(&node.http, path, &body);
        assert_eq!(
            (status, reply["code"].as_str()),
            (426, Some("protocol_mismatch")),
            "{path} {body}: {reply}"
        );
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("speaks protocol {server}")),
            "{path} {body}: {reply}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("upgrade: tessera/{server}")),
            "{head}"
        );
    }
    // In this protocol, a field this node does not know is a typed refusal.
    let (status, reply) = post(
        &node,
        "/v1/login",
        &versioned(r#"{"device_id":"client","locale":"fr"}"#),
    );
    assert_eq!(
        (status, reply["code"].as_str()),
        (400, Some("bad_request")),
        "{reply}"
    );
    let (status, reply) = post(
        &node,
        "/v1/login",
        &versioned(r#"{"device_id":"old-client"}"#),
    );
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["connect_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
}
