//! Several messages in one datagram.
//!
//! renet sends each of its packets as a datagram of its own, including an
//! acknowledgement packet on every flush in both directions, and every
//! datagram costs a syscall and a ChaCha20-Poly1305 seal or open on each
//! end (STACK_NOTES: what UDP costs here). A pack carries, in one netcode
//! payload, renet's packets for a connection together with small
//! unreliable messages that skip renet altogether: snapshots are
//! acknowledged by the game protocol itself and inputs are superseded by
//! the next, so they need neither renet's sequence numbers nor its
//! acknowledgements.
//!
//! A netcode payload is either one bare renet packet (its first byte is a
//! renet packet type, 0 to 4) or a pack: [`PACK`], then entries of
//! `kind: u8, len: u16 LE, bytes`.

use std::time::{Duration, Instant};

use renetcode::NETCODE_MAX_PAYLOAD_BYTES;

/// First byte of a pack; renet's packet types are 0 to 4.
pub const PACK: u8 = 0xA5;

/// renet's acknowledgement packet type (its first byte).
const RENET_ACK: u8 = 4;
/// renet's packet types that carry reliable messages (small, and a slice):
/// only these wait for an acknowledgement.
const RENET_RELIABLE: [u8; 2] = [0, 2];
/// The highest packet type renet writes.
const RENET_LAST_TYPE: u8 = 4;

const KIND_RENET: u8 = 0;
const KIND_MESSAGE: u8 = 1;
const ENTRY_HEADER: usize = 3;

/// The most a netcode payload carries.
pub const MAX_PAYLOAD: usize = NETCODE_MAX_PAYLOAD_BYTES;

/// Unreliable messages up to this size travel in packs; larger ones go
/// through renet, which slices them.
pub const MAX_DIRECT: usize = MAX_PAYLOAD - 1 - ENTRY_HEADER;

/// How often an acknowledgement nobody is waiting for is still sent, so
/// that renet's acknowledgements of acknowledgements keep its pending
/// ranges short.
const ACK_EVERY: Duration = Duration::from_millis(250);

/// One thing a pack carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A renet packet, for renet.
    Renet(&'a [u8]),
    /// An unreliable message, for the application.
    Message(&'a [u8]),
}

/// Why a payload is not a pack or a renet packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// Nothing at all.
    #[error("empty payload")]
    Empty,
    /// The first byte is neither a renet packet type nor a pack.
    #[error("unknown payload type {0:#04x}")]
    Type(u8),
    /// An entry of a kind this version does not know.
    #[error("unknown pack entry kind {0}")]
    Kind(u8),
    /// An entry runs past the end of the payload.
    #[error("pack entry truncated")]
    Truncated,
}

/// The entries of `payload`, checked whole before any is handed out, so a
/// malformed payload delivers nothing.
pub fn unpack(payload: &[u8]) -> Result<Entries<'_>, PackError> {
    match payload.first() {
        None => Err(PackError::Empty),
        Some(&t) if t <= RENET_LAST_TYPE => Ok(Entries {
            rest: payload,
            bare: true,
        }),
        Some(&PACK) => {
            let body = &payload[1..];
            let mut rest = body;
            while !rest.is_empty() {
                let (_, tail) = next_entry(rest)?;
                rest = tail;
            }
            Ok(Entries {
                rest: body,
                bare: false,
            })
        }
        Some(&t) => Err(PackError::Type(t)),
    }
}

fn next_entry(rest: &[u8]) -> Result<(Entry<'_>, &[u8]), PackError> {
    let [kind, lo, hi, tail @ ..] = rest else {
        return Err(PackError::Truncated);
    };
    let len = usize::from(u16::from_le_bytes([*lo, *hi]));
    if tail.len() < len {
        return Err(PackError::Truncated);
    }
    let (bytes, tail) = tail.split_at(len);
    let entry = match *kind {
        KIND_RENET => Entry::Renet(bytes),
        KIND_MESSAGE => Entry::Message(bytes),
        other => return Err(PackError::Kind(other)),
    };
    Ok((entry, tail))
}

/// The entries of a checked payload, in order.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    rest: &'a [u8],
    bare: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.bare {
            self.bare = false;
            let packet = std::mem::take(&mut self.rest);
            return Some(Entry::Renet(packet));
        }
        if self.rest.is_empty() {
            return None;
        }
        // Checked by `unpack`.
        let (entry, tail) = next_entry(self.rest).ok()?;
        self.rest = tail;
        Some(entry)
    }
}

/// Fills packs up to [`MAX_PAYLOAD`] and hands each one over when full.
#[derive(Debug, Default)]
pub struct Packer {
    buf: Vec<u8>,
}

impl Packer {
    /// Adds a renet packet.
    pub fn renet(&mut self, packet: &[u8], emit: &mut impl FnMut(&[u8])) {
        self.push(KIND_RENET, packet, emit);
    }

    /// Adds an unreliable message of at most [`MAX_DIRECT`] bytes (longer
    /// ones are the caller's mistake and are dropped).
    pub fn message(&mut self, message: &[u8], emit: &mut impl FnMut(&[u8])) {
        self.push(KIND_MESSAGE, message, emit);
    }

    fn push(&mut self, kind: u8, bytes: &[u8], emit: &mut impl FnMut(&[u8])) {
        if bytes.len() > MAX_DIRECT {
            tracing::warn!(
                len = bytes.len(),
                "a message too large for a pack was dropped"
            );
            return;
        }
        if !self.buf.is_empty() && self.buf.len() + ENTRY_HEADER + bytes.len() > MAX_PAYLOAD {
            self.finish(emit);
        }
        if self.buf.is_empty() {
            self.buf.push(PACK);
        }
        self.buf.push(kind);
        self.buf
            .extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(bytes);
    }

    /// Packs one flush of a connection: renet's `packets` that `gate`
    /// lets through, then `messages`, handing over every pack (the last
    /// one too).
    pub fn flush(
        &mut self,
        gate: &mut AckGate,
        now: Instant,
        packets: &[Vec<u8>],
        messages: impl IntoIterator<Item = Vec<u8>>,
        emit: &mut impl FnMut(&[u8]),
    ) {
        for packet in packets {
            if gate.admit(packet, now) {
                self.renet(packet, emit);
            }
        }
        for message in messages {
            self.message(&message, emit);
        }
        self.finish(emit);
    }

    /// Hands over the pack being filled, if any.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

/// Decides which of renet's acknowledgement packets are sent.
///
/// renet acknowledges every packet it receives, acknowledgements included,
/// and sends an acknowledgement on every flush while any range is pending,
/// so two peers that flush 20 times a second acknowledge each other's
/// acknowledgements 20 times a second forever. Only an acknowledgement of
/// reliable data is needed at once (the peer's reliable channels wait for
/// it; the sequence gaps the unsent ones leave matter only to renet's loss
/// statistics, which nothing here reads);
/// the rest go out every [`ACK_EVERY`], which is enough for renet to prune
/// its pending ranges.
#[derive(Debug, Default, Clone)]
pub struct AckGate {
    owed: bool,
    last: Option<Instant>,
}

impl AckGate {
    /// Notes a renet packet received from the peer.
    pub fn received(&mut self, packet: &[u8]) {
        if packet.first().is_some_and(|t| RENET_RELIABLE.contains(t)) {
            self.owed = true;
        }
    }

    /// Whether the peer sent data that has not been acknowledged yet.
    pub fn owed(&self) -> bool {
        self.owed
    }

    /// Whether an acknowledgement would go out at `now`: one is owed, or
    /// the periodic one is due.
    pub fn wants_ack(&self, now: Instant) -> bool {
        self.owed || self.last.is_none_or(|last| now >= last + ACK_EVERY)
    }

    /// Whether renet's outgoing `packet` should be sent.
    pub fn admit(&mut self, packet: &[u8], now: Instant) -> bool {
        if packet.first() != Some(&RENET_ACK) {
            return true;
        }
        if self.wants_ack(now) {
            self.owed = false;
            self.last = Some(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pack_all(entries: &[(bool, Vec<u8>)]) -> Vec<Vec<u8>> {
        let mut packer = Packer::default();
        let mut out = Vec::new();
        let mut emit = |p: &[u8]| out.push(p.to_vec());
        for (renet, bytes) in entries {
            if *renet {
                packer.renet(bytes, &mut emit);
            } else {
                packer.message(bytes, &mut emit);
            }
        }
        packer.finish(&mut emit);
        out
    }

    #[test]
    fn a_bare_renet_packet_is_one_entry() {
        let packet = [1u8, 9, 9];
        let entries: Vec<_> = unpack(&packet).unwrap().collect();
        assert_eq!(entries, vec![Entry::Renet(&packet)]);
    }

    #[test]
    fn malformed_payloads_are_refused_whole() {
        assert_eq!(unpack(&[]).unwrap_err(), PackError::Empty);
        assert_eq!(unpack(&[0x77, 1]).unwrap_err(), PackError::Type(0x77));
        // One good entry, then one that runs past the end.
        let bad = [PACK, KIND_MESSAGE, 1, 0, 42, KIND_MESSAGE, 5, 0, 1];
        assert_eq!(unpack(&bad).unwrap_err(), PackError::Truncated);
        assert_eq!(unpack(&[PACK, 9, 0, 0]).unwrap_err(), PackError::Kind(9));
        assert_eq!(unpack(&[PACK, 1, 0]).unwrap_err(), PackError::Truncated);
    }

    #[test]
    fn acknowledgements_go_out_when_owed_or_due() {
        let now = Instant::now();
        let ack = [RENET_ACK, 0];
        let data = [0u8, 1];
        let mut gate = AckGate::default();
        assert!(gate.admit(&ack, now), "the first is due");
        assert!(!gate.admit(&ack, now + Duration::from_millis(10)));
        assert!(gate.admit(&data, now), "data always goes");
        gate.received(&ack);
        assert!(
            !gate.admit(&ack, now + Duration::from_millis(20)),
            "acks of acks wait"
        );
        gate.received(&[1u8, 1]);
        assert!(
            !gate.admit(&ack, now + Duration::from_millis(25)),
            "unreliable data waits for nothing"
        );
        gate.received(&data);
        assert!(
            gate.admit(&ack, now + Duration::from_millis(30)),
            "reliable data is acknowledged at once"
        );
        assert!(!gate.admit(&ack, now + Duration::from_millis(40)));
        assert!(
            gate.admit(&ack, now + Duration::from_millis(300)),
            "and the rest every 250 ms"
        );
    }

    /// A socket skips asking renet for packets when no acknowledgement
    /// would go out, so `wants_ack` must say exactly what `admit` would.
    #[test]
    fn an_acknowledgement_is_wanted_exactly_when_one_would_be_admitted() {
        let now = Instant::now();
        let ack = [RENET_ACK, 0];
        let mut gate = AckGate::default();
        for (ms, received) in [
            (0, None),
            (10, None),
            (20, Some(0u8)),
            (30, None),
            (280, None),
        ] {
            let at = now + Duration::from_millis(ms);
            if let Some(kind) = received {
                gate.received(&[kind, 1]);
            }
            let wanted = gate.wants_ack(at);
            assert_eq!(wanted, gate.admit(&ack, at), "at {ms} ms");
            assert_eq!(wanted, [0, 20, 280].contains(&ms), "at {ms} ms");
        }
    }

    proptest! {
        #[test]
        fn packs_carry_every_entry_in_order_within_the_payload_limit(
            entries in prop::collection::vec(
                (any::<bool>(), prop::collection::vec(any::<u8>(), 0..MAX_DIRECT + 1)),
                0..12,
            )
        ) {
            let packs = pack_all(&entries);
            let mut seen = Vec::new();
            for pack in &packs {
                prop_assert!(pack.len() <= MAX_PAYLOAD);
                for entry in unpack(pack).unwrap() {
                    seen.push(match entry {
                        Entry::Renet(b) => (true, b.to_vec()),
                        Entry::Message(b) => (false, b.to_vec()),
                    });
                }
            }
            prop_assert_eq!(seen, entries);
        }

        #[test]
        fn any_bytes_unpack_or_fail_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(entries) = unpack(&bytes) {
                for entry in entries {
                    let (Entry::Renet(b) | Entry::Message(b)) = entry;
                    prop_assert!(b.len() <= bytes.len());
                }
            }
        }
    }
}
