//! The net thread's counters, read by `/metrics` and `/readyz`.

use std::{
    collections::BTreeMap,
    sync::{Arc, atomic::AtomicU64},
};

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct NetStats {
    /// Clients connected now.
    pub connected: AtomicU64,
    /// Messages received.
    pub messages_in: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Messages sent.
    pub messages_out: AtomicU64,
    /// Bytes sent.
    pub bytes_out: AtomicU64,
    /// Messages refused as malformed.
    pub malformed: AtomicU64,
    /// Clients kicked for flooding or garbage.
    pub kicked: AtomicU64,
    /// Messages refused, by reason (the net thread's and the worlds').
    pub rejected: Rejections,
    /// Datagrams the kernel dropped on each socket because its receive
    /// buffer was full.
    pub udp_dropped: Vec<crate::transport::Dropped>,
}

impl NetStats {
    /// Datagrams the kernel dropped on all sockets.
    pub fn udp_dropped(&self) -> u64 {
        self.udp_dropped.iter().map(|d| d.get()).sum()
    }
}

/// Refused messages by reason: the net thread's own ("malformed",
/// "rate_limited", "not_in_world", ...) and the worlds' (the sim's
/// rejection names). Refusals are bounded by the rate limits, so a short
/// lock per refusal is cheap.
#[derive(Debug, Default, Clone)]
pub struct Rejections(Arc<std::sync::Mutex<BTreeMap<String, u64>>>);

impl Rejections {
    /// Counts one refusal.
    pub fn count(&self, reason: &str) {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match counts.get_mut(reason) {
            Some(count) => *count += 1,
            None => {
                counts.insert(reason.to_string(), 1);
            }
        }
    }

    /// Every reason's count, by reason.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        counts.iter().map(|(r, c)| (r.clone(), *c)).collect()
    }
}
