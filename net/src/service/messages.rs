//! What the net thread does with a client's messages: rate limits before
//! decoding, then inputs to the client's world, commands to the host, and
//! typed refusals back.

use std::sync::{Arc, atomic::Ordering};

use tessera_sim::{Input, InputEnvelope};

use super::{Host, net_loop::Loop};
use crate::{
    codec::{Command, decode_client, encode_pong, encode_server},
    proto::{self, server_message::Body},
    transport::{ClientId, ORDERED, UNRELIABLE},
};

impl<H: Host> Loop<H> {
    /// Sends a typed refusal on the ordered channel.
    pub(super) fn respond(
        &mut self,
        socket: usize,
        client: ClientId,
        request: u32,
        code: proto::ResultCode,
        reason: &str,
    ) {
        self.stats.rejected.count(match code {
            proto::ResultCode::NotInWorld => "not_in_world",
            proto::ResultCode::Malformed => "malformed",
            _ => "refused",
        });
        let response = proto::Response {
            request,
            code: code as i32,
            reason: reason.to_string(),
            ..proto::Response::default()
        };
        self.send_response(socket, client, response);
    }

    /// A join or room command on a connection whose player left its world:
    /// rejoining needs a new login (which loads what was saved since).
    pub(super) fn refuse_after_leave(&mut self, socket: usize, client: ClientId, request: u32) {
        self.respond(
            socket,
            client,
            request,
            proto::ResultCode::NotInWorld,
            "log in again to rejoin",
        );
    }

    pub(super) fn send_response(
        &mut self,
        socket: usize,
        client: ClientId,
        response: proto::Response,
    ) {
        let bytes = encode_server(&proto::ServerMessage {
            body: Some(Body::Response(response)),
        });
        self.send_to(socket, client, ORDERED, bytes);
    }

    /// Hands an input to the client's world, or tells the client why not.
    pub(super) fn forward(&mut self, socket: usize, client: ClientId, request: u32, input: Input) {
        let Some(state) = self.clients.get(&(socket, client)) else {
            return;
        };
        let envelope = InputEnvelope {
            request,
            ..InputEnvelope::new(state.player, input)
        };
        let refused = match &state.sink {
            Some(sink) => sink.send(envelope).err(),
            None => Some("not in a world".into()),
        };
        if let Some(reason) = refused {
            self.respond(
                socket,
                client,
                request,
                proto::ResultCode::NotInWorld,
                &reason,
            );
        }
    }

    /// Counts a message of `len` bytes against the client's rate limits;
    /// false (and the client kicked) when it is over them, or unknown.
    pub(super) fn admit(&mut self, socket: usize, client: ClientId, len: usize) -> bool {
        let now = self.now_nanos();
        let Some(state) = self.clients.get_mut(&(socket, client)) else {
            return false;
        };
        self.stats.messages_in.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
        if !state.messages.try_take(1, now) || !state.bytes.try_take(len as u64, now) {
            self.forget(socket, client, true);
            self.drop_client(
                socket,
                client,
                proto::KickReason::Flooding,
                "over the message rate limit",
            );
            return false;
        }
        true
    }

    pub(super) fn on_message(
        &mut self,
        socket: usize,
        client: ClientId,
        channel: u8,
        bytes: &[u8],
    ) {
        if !self.admit(socket, client, bytes.len()) {
            return;
        }
        let Some(state) = self.clients.get_mut(&(socket, client)) else {
            return;
        };
        match decode_client(bytes) {
            Ok((request, Command::Join { class, world })) => {
                if state.left {
                    return self.refuse_after_leave(socket, client, request);
                }
                if !world.is_empty() {
                    match self.host.world_for_join(state.player, &world) {
                        Ok(sink) => {
                            let player = state.player;
                            let old = state.sink.replace(sink.clone());
                            // A different world: the avatar in the old one
                            // leaves, or it would be left behind.
                            if state.joined
                                && let Some(old) = old
                                && !Arc::ptr_eq(&old, &sink)
                            {
                                let _ = old.send(InputEnvelope::new(player, Input::Leave));
                            }
                        }
                        Err(reason) => {
                            return self.respond(
                                socket,
                                client,
                                request,
                                proto::ResultCode::NotInWorld,
                                &reason,
                            );
                        }
                    }
                }
                state.joined = true;
                state.class.clone_from(&class);
                let input = self.host.adapt_join(state.player, Input::Join { class });
                self.forward(socket, client, request, input);
            }
            Ok((_, Command::Frames(uplink))) => {
                if let Some(sink) = &state.sink
                    && let Err(reason) = sink.send_frames(state.player, uplink)
                {
                    tracing::debug!(socket, client, reason, "frame commands dropped");
                    self.stats.rejected.count("frames_not_taken");
                }
            }
            Ok((request, Command::World(input))) => {
                let leaving = matches!(input, Input::Leave).then_some(state.player);
                if leaving.is_some() {
                    state.left = true;
                }
                self.forward(socket, client, request, input);
                // Out of play until a new login: a queue ticket or anything
                // else kept for the player goes now.
                if let Some(player) = leaving {
                    self.host.departed(player);
                }
            }
            // A ping the socket did not answer (over a reliable channel,
            // or with its key spelled oddly).
            Ok((_, Command::Ping(client_time_us))) => {
                self.send_to(socket, client, UNRELIABLE, encode_pong(client_time_us));
            }
            Ok((request, Command::Room(command))) => {
                if state.left {
                    return self.refuse_after_leave(socket, client, request);
                }
                let (player, current) = (state.player, state.sink.clone());
                match self.host.room(player, current, command) {
                    Ok(outcome) => {
                        for (moved, sink, input) in outcome.moves {
                            let number = if moved == player { request } else { 0 };
                            self.reassign(moved, sink, input, number);
                        }
                        self.send_response(
                            socket,
                            client,
                            proto::Response {
                                request,
                                code: proto::ResultCode::Ok as i32,
                                rooms: outcome.rooms,
                                room: outcome.room,
                                ..proto::Response::default()
                            },
                        );
                    }
                    Err(reason) => self.respond(
                        socket,
                        client,
                        request,
                        proto::ResultCode::Rejected,
                        &reason,
                    ),
                }
            }
            Ok((_, Command::Ack(id))) => {
                if let Some(sink) = &state.sink {
                    sink.ack(state.player, id);
                }
            }
            Err(error) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                self.stats.rejected.count("malformed");
                state.malformed += 1;
                let too_many = state.malformed > self.limits.malformed_allowed;
                tracing::debug!(socket, client, channel, %error, "malformed message");
                if too_many {
                    self.forget(socket, client, true);
                    self.drop_client(
                        socket,
                        client,
                        proto::KickReason::Malformed,
                        "too many malformed messages",
                    );
                }
            }
        }
    }
}
