//! Bytes <-> messages. Every decoder is total: any byte string yields a
//! message or a [`DecodeError`], never a panic, and size is checked before
//! any decoding work is done.

use prost::Message;
use tessera_sim::{
    ChatChannel, Input, PlayerId, SimId, SkillTarget, TeamCommand, TeamId, input::RoomCommand,
};

use crate::proto::{self, client_message::Body, skill_target, team_command};

/// Largest client message accepted, bytes (renet slices larger ones; a
/// client has nothing legitimate to send that is this big).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 2_048;
/// Longest skill or class id accepted.
pub const MAX_ID_BYTES: usize = 64;
/// Longest chat text accepted on the wire (the world applies its own, lower, limit).
pub const MAX_CHAT_BYTES: usize = 1_024;

/// Why a client message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Over [`MAX_CLIENT_MESSAGE_BYTES`].
    #[error("message of {len} bytes is over the {MAX_CLIENT_MESSAGE_BYTES}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not valid protobuf for `ClientMessage`.
    #[error("not a ClientMessage: {0}")]
    Protobuf(String),
    /// Valid protobuf, but missing what the message kind needs.
    #[error("incomplete message: {0}")]
    Missing(&'static str),
    /// A field outside what the game accepts.
    #[error("invalid field: {0}")]
    Invalid(&'static str),
}

/// What a client asked for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Join a world: `world` names a zone or a room kind ("" = the default).
    Join {
        /// The class to play.
        class: String,
        /// The `zones` row id asked for.
        world: String,
    },
    /// Frame-sync inputs for the client's room.
    Frames(crate::frames::Uplink),
    /// An input for the client's world.
    World(Input),
    /// The client has snapshot `id`.
    Ack(u32),
    /// Latency probe; answer with a pong.
    Ping(u64),
    /// A room or matchmaking command, for the host.
    Room(RoomRequest),
}

/// Longest room password accepted.
pub const MAX_PASSWORD_BYTES: usize = 64;

/// A room or matchmaking command, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomRequest {
    /// Open rooms of a kind ("" for all).
    List {
        /// A `zones` row id, or empty.
        kind: String,
    },
    /// Open a room and enter it.
    Create {
        /// A `zones` row id of kind room.
        kind: String,
        /// Needed to join it (none: open to all).
        password: Option<String>,
        /// Class to play (empty: the last one joined with).
        class: String,
    },
    /// Enter a room by id.
    Join {
        /// Its id.
        room: u64,
        /// Its password, if it has one.
        password: Option<String>,
        /// Class to play (empty: the last one joined with).
        class: String,
    },
    /// Leave the room or queue, back to the zone.
    Leave,
    /// Queue for a match (a team leader queues the team).
    Queue {
        /// A state-sync room kind.
        kind: String,
        /// Class to play (empty: the last one joined with).
        class: String,
    },
}

fn optional_id(text: String, what: &'static str) -> Result<String, DecodeError> {
    if text.is_empty() {
        Ok(text)
    } else {
        id_string(text, what)
    }
}

fn password(text: String) -> Result<Option<String>, DecodeError> {
    if text.len() > MAX_PASSWORD_BYTES {
        return Err(DecodeError::Invalid("room password over 64 bytes"));
    }
    Ok(Some(text).filter(|p| !p.is_empty()))
}

fn room_request(command: proto::RoomCommand) -> Result<RoomRequest, DecodeError> {
    use proto::room_command::Kind;
    Ok(
        match command.kind.ok_or(DecodeError::Missing("room command"))? {
            Kind::List(kind) => RoomRequest::List {
                kind: optional_id(kind, "room kind")?,
            },
            Kind::Create(create) => RoomRequest::Create {
                kind: id_string(create.kind, "room kind")?,
                password: password(create.password)?,
                class: optional_id(create.class, "class id")?,
            },
            Kind::Join(join) => RoomRequest::Join {
                room: join.room,
                password: password(join.password)?,
                class: optional_id(join.class, "class id")?,
            },
            Kind::Leave(_) => RoomRequest::Leave,
            Kind::Queue(queue) => RoomRequest::Queue {
                kind: id_string(queue.kind, "room kind")?,
                class: optional_id(queue.class, "class id")?,
            },
        },
    )
}

/// Decodes and validates one client message: its request number and command.
pub fn decode_client(bytes: &[u8]) -> Result<(u32, Command), DecodeError> {
    if bytes.len() > MAX_CLIENT_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge { len: bytes.len() });
    }
    let message =
        proto::ClientMessage::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    let request = message.request;
    Ok((
        request,
        command(message.body.ok_or(DecodeError::Missing("body"))?)?,
    ))
}

fn id_string(text: String, what: &'static str) -> Result<String, DecodeError> {
    if text.is_empty() || text.len() > MAX_ID_BYTES {
        return Err(DecodeError::Invalid(what));
    }
    Ok(text)
}

/// A skill target from the wire.
pub(crate) fn skill_target(target: Option<proto::SkillTarget>) -> Result<SkillTarget, DecodeError> {
    Ok(
        match target
            .and_then(|t| t.kind)
            .ok_or(DecodeError::Missing("skill target"))?
        {
            skill_target::Kind::Entity(id) => SkillTarget::Entity(SimId(id)),
            skill_target::Kind::Point(p) => SkillTarget::Point { x: p.x, y: p.y },
            skill_target::Kind::Caster(_) => SkillTarget::Caster,
        },
    )
}

/// A validated id (skill, class, world) from the wire.
pub(crate) fn wire_id(text: String, what: &'static str) -> Result<String, DecodeError> {
    id_string(text, what)
}

pub(crate) fn direction(value: i32) -> Result<i16, DecodeError> {
    i16::try_from(value)
        .map_err(|_| DecodeError::Invalid("direction component outside -32768..=32767"))
}

fn command(body: Body) -> Result<Command, DecodeError> {
    let input = match body {
        Body::Join(join) => {
            let world = if join.world.is_empty() {
                String::new()
            } else {
                id_string(join.world, "world id")?
            };
            return Ok(Command::Join {
                class: id_string(join.class, "class id")?,
                world,
            });
        }
        Body::Frames(frames) => return Ok(Command::Frames(crate::frames::Uplink::decode(frames)?)),
        Body::Leave(_) => Input::Leave,
        Body::Move(m) => Input::Move {
            seq: m.seq,
            dir_x: direction(m.dir_x)?,
            dir_y: direction(m.dir_y)?,
        },
        Body::UseSkill(use_skill) => {
            let target = skill_target(use_skill.target)?;
            Input::UseSkill {
                skill: id_string(use_skill.skill, "skill id")?,
                target,
            }
        }
        Body::Team(team) => Input::Team(
            match team.kind.ok_or(DecodeError::Missing("team command"))? {
                team_command::Kind::Create(_) => TeamCommand::Create,
                team_command::Kind::Invite(p) => TeamCommand::Invite(PlayerId(p)),
                team_command::Kind::Accept(t) => TeamCommand::Accept(TeamId(t)),
                team_command::Kind::Decline(t) => TeamCommand::Decline(TeamId(t)),
                team_command::Kind::Leave(_) => TeamCommand::Leave,
                team_command::Kind::Kick(p) => TeamCommand::Kick(PlayerId(p)),
                team_command::Kind::Promote(p) => TeamCommand::Promote(PlayerId(p)),
            },
        ),
        Body::Chat(chat) => {
            if chat.text.len() > MAX_CHAT_BYTES {
                return Err(DecodeError::Invalid("chat text over 1024 bytes"));
            }
            let channel = match proto::ChatChannel::try_from(chat.channel) {
                Ok(proto::ChatChannel::Say) => ChatChannel::Say,
                Ok(proto::ChatChannel::Team) => ChatChannel::Team,
                Err(_) => return Err(DecodeError::Invalid("unknown chat channel")),
            };
            Input::Chat {
                channel,
                text: chat.text,
            }
        }
        Body::RoomStart(_) => Input::Room(RoomCommand::Start),
        Body::Ack(ack) => return Ok(Command::Ack(ack.snapshot)),
        Body::Ping(ping) => return Ok(Command::Ping(ping.client_time_us)),
        Body::Room(room) => return Ok(Command::Room(room_request(room)?)),
    };
    Ok(Command::World(input))
}

/// A ping's field key in `ClientMessage` (field 18, length-delimited), as
/// it is on the wire.
const PING_KEY: [u8; 2] = [18 << 3 | 2, 1];

/// The pong for `bytes` when they are a ping, else `None`: what a socket
/// thread answers itself ([`crate::transport::ServerSocket::answer_with`]),
/// so the probe measures the network and the socket, not a queue of a
/// tick's snapshots. Anything else (inputs, mostly) is left after a scan
/// for the ping's key, not decoded.
pub fn answer_ping(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.windows(2).any(|pair| pair == PING_KEY) {
        return None;
    }
    let Ok((_, Command::Ping(client_time_us))) = decode_client(bytes) else {
        return None;
    };
    Some(encode_pong(client_time_us))
}

/// The answer to a ping sent at `client_time_us` (the client's clock).
pub fn encode_pong(client_time_us: u64) -> Vec<u8> {
    encode_server(&proto::ServerMessage {
        body: Some(proto::server_message::Body::Pong(proto::Pong {
            client_time_us,
            server_tick: 0,
        })),
    })
}

/// Encodes a server message.
pub fn encode_server(message: &proto::ServerMessage) -> Vec<u8> {
    message.encode_to_vec()
}

/// Decodes a server message (clients, bots, tests).
pub fn decode_server(bytes: &[u8]) -> Result<proto::ServerMessage, DecodeError> {
    proto::ServerMessage::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Encodes a client message (clients, bots, tests).
pub fn encode_client(request: u32, body: Body) -> Vec<u8> {
    proto::ClientMessage {
        request,
        body: Some(body),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_move_round_trips_into_a_sim_input() {
        let bytes = encode_client(
            7,
            Body::Move(proto::MoveInput {
                seq: 3,
                dir_x: -5,
                dir_y: 9,
            }),
        );
        assert_eq!(
            decode_client(&bytes),
            Ok((
                7,
                Command::World(Input::Move {
                    seq: 3,
                    dir_x: -5,
                    dir_y: 9
                })
            ))
        );
    }

    #[test]
    fn bad_messages_get_typed_errors() {
        assert_eq!(
            decode_client(&[0u8; 4_096]),
            Err(DecodeError::TooLarge { len: 4_096 })
        );
        assert!(matches!(
            decode_client(&[0xff, 0xff, 0xff]),
            Err(DecodeError::Protobuf(_))
        ));
        let no_body = proto::ClientMessage {
            request: 1,
            body: None,
        }
        .encode_to_vec();
        assert_eq!(decode_client(&no_body), Err(DecodeError::Missing("body")));
        let too_far = encode_client(
            1,
            Body::Move(proto::MoveInput {
                seq: 1,
                dir_x: 40_000,
                dir_y: 0,
            }),
        );
        assert!(matches!(
            decode_client(&too_far),
            Err(DecodeError::Invalid(_))
        ));
        let no_target = encode_client(
            1,
            Body::UseSkill(proto::UseSkill {
                skill: "slash".into(),
                target: None,
            }),
        );
        assert_eq!(
            decode_client(&no_target),
            Err(DecodeError::Missing("skill target"))
        );
        let long_class = encode_client(
            1,
            Body::Join(proto::JoinWorld {
                class: "x".repeat(65),
                world: String::new(),
            }),
        );
        assert!(matches!(
            decode_client(&long_class),
            Err(DecodeError::Invalid(_))
        ));
    }

    fn room(kind: proto::room_command::Kind) -> Result<(u32, Command), DecodeError> {
        decode_client(&encode_client(
            9,
            Body::Room(proto::RoomCommand { kind: Some(kind) }),
        ))
    }

    #[test]
    fn room_commands_decode_with_their_limits() {
        use proto::room_command::Kind;
        assert_eq!(
            room(Kind::Create(proto::RoomCreate {
                kind: "duel".into(),
                password: "s3cret".into(),
                class: String::new(),
            })),
            Ok((
                9,
                Command::Room(RoomRequest::Create {
                    kind: "duel".into(),
                    password: Some("s3cret".into()),
                    class: String::new(),
                })
            ))
        );
        // An empty password is no password.
        assert_eq!(
            room(Kind::Join(proto::RoomJoin {
                room: 4,
                password: String::new(),
                class: "mage".into(),
            })),
            Ok((
                9,
                Command::Room(RoomRequest::Join {
                    room: 4,
                    password: None,
                    class: "mage".into(),
                })
            ))
        );
        assert_eq!(
            room(Kind::List(String::new())),
            Ok((
                9,
                Command::Room(RoomRequest::List {
                    kind: String::new()
                })
            ))
        );
        assert!(matches!(
            room(Kind::Create(proto::RoomCreate {
                kind: "duel".into(),
                password: "p".repeat(65),
                class: String::new(),
            })),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            room(Kind::Queue(proto::RoomQueue {
                kind: String::new(),
                class: String::new(),
            })),
            Err(DecodeError::Invalid(_))
        ));
        assert_eq!(
            decode_client(&encode_client(
                9,
                Body::Room(proto::RoomCommand { kind: None })
            )),
            Err(DecodeError::Missing("room command"))
        );
    }

    /// The time a pong echoes, if `bytes` are a pong.
    fn pong_time(bytes: &[u8]) -> Option<u64> {
        match decode_server(bytes).ok()?.body {
            Some(proto::server_message::Body::Pong(pong)) => Some(pong.client_time_us),
            _ => None,
        }
    }

    #[test]
    fn a_ping_is_answered_with_its_time_and_nothing_else_is() {
        let pong = |bytes: &[u8]| pong_time(&answer_ping(bytes)?);
        let ping = |request, client_time_us| {
            encode_client(request, Body::Ping(proto::Ping { client_time_us }))
        };
        assert_eq!(pong(&ping(0, 1_234_567)), Some(1_234_567));
        // A request number before the ping's field.
        assert_eq!(pong(&ping(300, 9)), Some(9));
        // A move whose direction is the ping key's bytes on the wire.
        let sneaky = encode_client(
            0,
            Body::Move(proto::MoveInput {
                seq: 1,
                dir_x: 73, // zigzag: 146, the key's bytes
                dir_y: 0,
            }),
        );
        assert!(sneaky.windows(2).any(|pair| pair == PING_KEY));
        assert_eq!(answer_ping(&sneaky), None);
        // A ping cut short.
        let whole = ping(0, u64::MAX);
        assert_eq!(answer_ping(&whole[..whole.len() - 2]), None);
        // A ping whose key is spelled in three bytes: a ping all the same,
        // left to the net loop, which answers it.
        let odd = [[0x92, 0x81, 0x00].as_slice(), &whole[2..]].concat();
        assert_eq!(whole[..2], PING_KEY);
        assert!(matches!(
            decode_client(&odd),
            Ok((0, Command::Ping(u64::MAX)))
        ));
        assert_eq!(answer_ping(&odd), None);
    }

    proptest! {
        #[test]
        fn any_bytes_decode_to_a_message_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..3_000)) {
            let _ = decode_client(&bytes);
            let _ = decode_server(&bytes);
        }

        /// Every ping is answered with its own time; what the socket
        /// answers decodes as a ping, with that time, for the net loop too.
        #[test]
        fn pings_are_answered_with_their_own_time(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            time in any::<u64>(),
            request in any::<u32>(),
        ) {
            let ping = encode_client(request, Body::Ping(proto::Ping { client_time_us: time }));
            prop_assert_eq!(answer_ping(&ping).and_then(|pong| pong_time(&pong)), Some(time));
            if let Some(pong) = answer_ping(&bytes) {
                let decoded = match decode_client(&bytes) {
                    Ok((_, Command::Ping(time))) => Some(time),
                    _ => None,
                };
                prop_assert_eq!(pong_time(&pong), decoded);
            }
        }
    }
}
