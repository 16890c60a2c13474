//! How much a server socket's kernel buffers hold, and what the kernel
//! dropped when the receive buffer was full.
//!
//! A socket thread reads once a millisecond, but a tick on the same core or
//! the scheduler can hold it off for longer; meanwhile the clients' inputs
//! queue in the socket's receive buffer, and once that is full the kernel
//! drops whatever arrives, silently. Linux's default (208 KiB, ~100
//! datagrams as the kernel accounts them) is under ten milliseconds of a
//! thousand players' inputs: in roam100 at 1,000 bots the node's two
//! sockets dropped ~245 datagrams a second. So a node asks for larger
//! buffers, says when the kernel grants less, and counts the drops
//! (`SO_RXQ_OVFL`) for `/metrics`.

use std::{
    net::UdpSocket,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

/// Kernel buffer sizes of a socket, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSizes {
    /// Datagrams waiting to be read.
    pub receive: usize,
    /// Datagrams waiting to go out (a tick's snapshots leave together).
    pub send: usize,
}

impl BufferSizes {
    /// What a node asks for: a few thousand small datagrams (on the order
    /// of 200 ms of a thousand players' inputs) waiting to be read, and a
    /// tick's snapshots for a thousand players several times over.
    pub const DEFAULT: Self = Self {
        receive: 4 << 20,
        send: 1 << 20,
    };
}

impl Default for BufferSizes {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The most a size may be (the kernel takes an `int` and doubles it).
pub const MAX_BUFFER_BYTES: usize = (i32::MAX / 2) as usize;

/// Asks the kernel for `wanted` and returns what it granted. Linux caps
/// an unprivileged request at `net.core.rmem_max` / `wmem_max`; a process
/// with `CAP_NET_ADMIN` may pass them. Elsewhere the sizes are left as
/// they are and reported as asked (nothing is set, nothing warns).
pub fn resize(socket: &UdpSocket, wanted: BufferSizes) -> std::io::Result<BufferSizes> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{setsockopt, sockopt};

        if setsockopt(socket, sockopt::RcvBufForce, &wanted.receive).is_err() {
            setsockopt(socket, sockopt::RcvBuf, &wanted.receive)?;
        }
        if setsockopt(socket, sockopt::SndBufForce, &wanted.send).is_err() {
            setsockopt(socket, sockopt::SndBuf, &wanted.send)?;
        }
        current(socket)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        Ok(wanted)
    }
}

/// The sizes the kernel gives `socket` now.
#[cfg(target_os = "linux")]
pub fn current(socket: &UdpSocket) -> std::io::Result<BufferSizes> {
    use nix::sys::socket::{getsockopt, sockopt};

    // Linux reports twice what it grants: the other half is its own
    // bookkeeping of each datagram.
    Ok(BufferSizes {
        receive: getsockopt(socket, sockopt::RcvBuf)? / 2,
        send: getsockopt(socket, sockopt::SndBuf)? / 2,
    })
}

/// Asks the kernel to tell, with each datagram read, how many it has
/// dropped on this socket so far (where it can).
pub fn count_drops(socket: &UdpSocket) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RxqOvfl, &1)
        .map_err(std::io::Error::from)?;
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
    Ok(())
}

/// Datagrams the kernel dropped on a socket (almost always because its
/// receive buffer was full; also memory pressure or a socket filter), as
/// of the socket thread's last read; shared with whoever reports them.
#[derive(Clone, Debug, Default)]
pub struct Dropped(Arc<AtomicU64>);

impl Dropped {
    /// Dropped so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Follows the kernel's drop counter, a 32-bit count since the socket was
/// made that comes with each datagram read after the first drop.
#[derive(Debug, Default)]
pub(super) struct DropTracker {
    last: u32,
    total: Dropped,
}

impl DropTracker {
    /// The counter a datagram came with; returns how many were dropped
    /// since the one before.
    pub(super) fn saw(&mut self, counter: u32) -> u64 {
        let new = counter.wrapping_sub(self.last);
        // Datagrams are read in the order they were queued, so the counter
        // only grows (modulo 2^32); one from before the last is ignored.
        if new == 0 || new > u32::MAX / 2 {
            return 0;
        }
        self.last = counter;
        self.total.0.fetch_add(u64::from(new), Ordering::Relaxed);
        u64::from(new)
    }

    /// A handle on the total.
    pub(super) fn total(&self) -> Dropped {
        self.total.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracker_follows_the_kernels_counter_across_its_wrap() {
        let mut tracker = DropTracker::default();
        let total = tracker.total();
        assert_eq!(tracker.saw(5), 5);
        assert_eq!(tracker.saw(5), 0);
        // A datagram queued before the last one read carries an older count.
        assert_eq!(tracker.saw(4), 0);
        assert_eq!(tracker.saw(u32::MAX / 2), u64::from(u32::MAX / 2 - 5));
        assert_eq!(tracker.saw(u32::MAX - 2), u64::from(u32::MAX / 2 - 1));
        // Past 2^32 the kernel's count starts again from zero.
        assert_eq!(tracker.saw(2), 5);
        assert_eq!(total.get(), (1 << 32) + 2);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_grants_what_it_allows_of_what_was_asked() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let wanted = BufferSizes {
            receive: 1 << 20,
            send: 512 << 10,
        };
        let granted = resize(&socket, wanted).unwrap();
        let limit = |name: &str| -> usize {
            std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        // Unprivileged, capped at the limit; with CAP_NET_ADMIN, all of it.
        assert!(
            granted.receive >= wanted.receive.min(limit("rmem_max")),
            "{granted:?}"
        );
        assert!(granted.receive <= wanted.receive, "{granted:?}");
        assert!(
            granted.send >= wanted.send.min(limit("wmem_max")),
            "{granted:?}"
        );
        assert!(granted.send <= wanted.send, "{granted:?}");
        // Smaller than the default works too (the drop test relies on it).
        let small = resize(
            &socket,
            BufferSizes {
                receive: 4096,
                send: 4096,
            },
        )
        .unwrap();
        assert!(small.receive < granted.receive, "{small:?}");
    }
}
