//! Datagrams sent and read together.
//!
//! A tick hands a socket thread hundreds of snapshots at once, and a
//! thousand clients send it twenty inputs a second each; on Linux they go
//! through `sendmmsg(2)` and `recvmmsg(2)` calls of up to [`CHUNK`]
//! datagrams instead of one system call each (STACK_NOTES: the syscalls
//! are a large share of what UDP costs here). Elsewhere, one by one.
//! Sends use rustix, whose `sendmmsg` says how many went (nix's reports it
//! only through an iterator that reads address slots a send never fills).

use std::net::{SocketAddr, UdpSocket};

use renetcode::NETCODE_MAX_PACKET_BYTES;

/// Datagrams per `sendmmsg` or `recvmmsg` call.
const CHUNK: usize = 64;

/// Datagrams read by one [`RecvBatch::recv`].
pub struct RecvBatch {
    buffers: Vec<[u8; NETCODE_MAX_PACKET_BYTES]>,
    /// Buffer index, length and sender of each datagram read.
    read: Vec<(usize, usize, SocketAddr)>,
    /// The last read took as many datagrams as one call can: more may wait.
    filled: bool,
    /// The kernel's count of datagrams dropped on the socket, as the last
    /// datagram read that carried it said ([`super::buffers::count_drops`]).
    drops: Option<u32>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            buffers: vec![[0; NETCODE_MAX_PACKET_BYTES]; CHUNK],
            read: Vec::with_capacity(CHUNK),
            filled: false,
            drops: None,
        }
    }
}

impl RecvBatch {
    /// Reads what is waiting, up to a chunk; how many datagrams that was
    /// (an error of kind `WouldBlock` when nothing was).
    pub fn recv(&mut self, socket: &UdpSocket) -> std::io::Result<usize> {
        self.read.clear();
        self.filled = false;
        self.drops = None;
        self.filled = recv_into(socket, &mut self.buffers, &mut self.read, &mut self.drops)?;
        Ok(self.read.len())
    }

    /// The kernel's drop counter as of the last read, when a datagram it
    /// took carried one (none does before the socket's first drop).
    pub fn drops(&self) -> Option<u32> {
        self.drops
    }

    /// Whether the last read may have left datagrams waiting. One that
    /// took fewer than a call can emptied the socket's queue, so asking
    /// again at once would only cost a system call that finds nothing.
    pub fn filled(&self) -> bool {
        self.filled
    }

    /// Datagram `index` of the last read: its sender and bytes.
    pub fn get(&mut self, index: usize) -> Option<(SocketAddr, &mut [u8])> {
        let &(buffer, len, from) = self.read.get(index)?;
        Some((from, &mut self.buffers[buffer][..len]))
    }
}

#[cfg(target_os = "linux")]
fn recv_into(
    socket: &UdpSocket,
    buffers: &mut [[u8; NETCODE_MAX_PACKET_BYTES]],
    read: &mut Vec<(usize, usize, SocketAddr)>,
    drops: &mut Option<u32>,
) -> std::io::Result<bool> {
    use std::{io::IoSliceMut, os::fd::AsRawFd};

    use nix::sys::socket::{
        ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg,
    };

    // Fresh headers each call: nix leaves the kernel's last address length
    // in reused ones, which would cut a longer address short.
    let mut headers =
        MultiHeaders::<SockaddrStorage>::preallocate(CHUNK, Some(nix::cmsg_space!(u32)));
    let mut slices: Vec<[IoSliceMut<'_>; 1]> = buffers
        .iter_mut()
        .map(|buffer| [IoSliceMut::new(&mut buffer[..])])
        .collect();
    let received = recvmmsg(
        socket.as_raw_fd(),
        &mut headers,
        slices.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map_err(std::io::Error::from)?;
    let mut count = 0;
    for (index, message) in received.enumerate() {
        count += 1;
        if let Ok(controls) = message.cmsgs() {
            for control in controls {
                if let ControlMessageOwned::RxqOvfl(counter) = control {
                    *drops = Some(counter);
                }
            }
        }
        // A datagram whose sender cannot be named cannot be answered or
        // matched to a client.
        if let Some(from) = message
            .address
            .as_ref()
            .and_then(super::arrival::socket_addr)
        {
            read.push((index, message.bytes, from));
        }
    }
    Ok(count == CHUNK)
}

#[cfg(not(target_os = "linux"))]
fn recv_into(
    socket: &UdpSocket,
    buffers: &mut [[u8; NETCODE_MAX_PACKET_BYTES]],
    read: &mut Vec<(usize, usize, SocketAddr)>,
    _drops: &mut Option<u32>,
) -> std::io::Result<bool> {
    let (len, from) = socket.recv_from(&mut buffers[0])?;
    read.push((0, len, from));
    // One at a time: only a read that finds nothing says the queue is empty.
    Ok(true)
}

/// Datagrams waiting to be sent, copied into one buffer.
#[derive(Debug, Default)]
pub struct SendBatch {
    data: Vec<u8>,
    /// Destination, start in `data`, length.
    items: Vec<(SocketAddr, usize, usize)>,
}

impl SendBatch {
    /// Queues a datagram.
    pub fn push(&mut self, addr: SocketAddr, datagram: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(datagram);
        self.items.push((addr, start, datagram.len()));
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sends everything queued; returns how many datagrams were dropped (a
    /// buffer that stayed full, an unreachable address). UDP promises
    /// nothing more: what must arrive is resent by renet.
    pub fn send(&mut self, socket: &UdpSocket) -> usize {
        let dropped = send_all(socket, &self.data, &self.items);
        self.data.clear();
        self.items.clear();
        dropped
    }
}

/// How long a send waits for room in a full socket buffer before the rest
/// of the pass is dropped.
#[cfg(target_os = "linux")]
const FULL_BUFFER_WAIT_MS: i64 = 5;

#[cfg(target_os = "linux")]
fn send_all(socket: &UdpSocket, data: &[u8], items: &[(SocketAddr, usize, usize)]) -> usize {
    use std::io::IoSlice;

    use rustix::{
        event::{PollFd, PollFlags, Timespec, poll},
        io::Errno,
        net::{
            MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, addr::SocketAddrArg, sendmmsg,
        },
    };

    let mut dropped = 0;
    let mut rest = items;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(CHUNK)];
        let addrs: Vec<SocketAddrAny> = chunk.iter().map(|(addr, ..)| addr.as_any()).collect();
        let iovs: Vec<[IoSlice<'_>; 1]> = chunk
            .iter()
            .map(|&(_, start, len)| [IoSlice::new(&data[start..start + len])])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = chunk
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut messages: Vec<MMsgHdr<'_>> = addrs
            .iter()
            .zip(&iovs)
            .zip(controls.iter_mut())
            .map(|((addr, iov), control)| MMsgHdr::new_with_addr(addr, iov, control))
            .collect();
        match sendmmsg(socket, &mut messages, SendFlags::empty()) {
            // The kernel stops early at a full buffer or at a datagram it
            // cannot send; the loop goes on from there.
            Ok(sent) if sent > 0 => rest = &rest[sent..],
            Ok(_) => {
                dropped += 1;
                rest = &rest[1..];
            }
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                // A full buffer (a burst of a tick's snapshots): wait a
                // little for room rather than drop a pass's datagrams.
                let mut fds = [PollFd::new(socket, PollFlags::OUT)];
                let wait = Timespec {
                    tv_sec: 0,
                    tv_nsec: FULL_BUFFER_WAIT_MS * 1_000_000,
                };
                if !matches!(poll(&mut fds, Some(&wait)), Ok(n) if n > 0) {
                    tracing::warn!(dropped = rest.len(), "udp send buffer stayed full");
                    dropped += rest.len();
                    break;
                }
            }
            // The first datagram of the chunk could not be sent (an
            // unreachable address, say): skip it, keep the others.
            Err(error) => {
                tracing::debug!(addr = %rest[0].0, %error, "udp send failed");
                dropped += 1;
                rest = &rest[1..];
            }
        }
    }
    dropped
}

#[cfg(not(target_os = "linux"))]
fn send_all(socket: &UdpSocket, data: &[u8], items: &[(SocketAddr, usize, usize)]) -> usize {
    let mut dropped = 0;
    for &(addr, start, len) in items {
        if let Err(error) = socket.send_to(&data[start..start + len], addr) {
            tracing::debug!(%addr, %error, "udp send failed");
            dropped += 1;
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn datagrams_are_read_in_chunks_with_their_senders_and_a_short_read_says_the_queue_is_empty() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        let senders: Vec<UdpSocket> = (0..2)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let total = CHUNK + 10;
        for i in 0..total as u32 {
            senders[i as usize % 2]
                .send_to(&i.to_le_bytes(), receiver.local_addr().unwrap())
                .unwrap();
        }
        let mut batch = RecvBatch::default();
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen.len() < total && std::time::Instant::now() < deadline {
            let n = match batch.recv(&receiver) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            };
            assert!(n <= CHUNK);
            // A read short of a chunk emptied the queue: the socket thread
            // stops asking until its next turn.
            #[cfg(target_os = "linux")]
            assert_eq!(batch.filled(), n == CHUNK, "{n} datagrams read");
            for index in 0..n {
                let (from, bytes) = batch.get(index).unwrap();
                let i = u32::from_le_bytes(bytes.try_into().unwrap());
                assert_eq!(from, senders[i as usize % 2].local_addr().unwrap());
                seen.push(i);
            }
        }
        assert_eq!(seen, (0..total as u32).collect::<Vec<_>>());
        let nothing = batch.recv(&receiver).unwrap_err();
        assert_eq!(nothing.kind(), std::io::ErrorKind::WouldBlock);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn datagrams_a_full_receive_buffer_dropped_are_counted_by_the_next_one_read() {
        use crate::transport::buffers::{self, BufferSizes, DropTracker};

        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        let tiny = BufferSizes {
            receive: 4096,
            send: 4096,
        };
        buffers::resize(&receiver, tiny).unwrap();
        buffers::count_drops(&receiver).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let sent = 500;
        for i in 0..sent {
            sender.send_to(&[i as u8; 200], to).unwrap();
        }
        let mut batch = RecvBatch::default();
        let mut tracker = DropTracker::default();
        let mut received = 0;
        let mut read_all = |batch: &mut RecvBatch, tracker: &mut DropTracker| loop {
            match batch.recv(&receiver) {
                Ok(n) => {
                    received += n;
                    if let Some(counter) = batch.drops() {
                        tracker.saw(counter);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return received,
                Err(e) => panic!("{e}"),
            }
        };
        let queued = read_all(&mut batch, &mut tracker);
        assert!(queued > 0 && queued < sent, "{queued} of {sent} fit");
        // The datagrams queued before the first drop carry no count: one
        // queued after the drops does.
        sender.send_to(b"after", to).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while read_all(&mut batch, &mut tracker) as u64 + tracker.total().get() < sent as u64 + 1
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let received = read_all(&mut batch, &mut tracker);
        assert_eq!(
            received as u64 + tracker.total().get(),
            sent as u64 + 1,
            "{received} read, {} dropped",
            tracker.total().get()
        );
        assert!(tracker.total().get() > 0);
    }

    #[test]
    fn every_datagram_reaches_its_own_destination_in_order() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let receivers: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for receiver in &receivers {
            receiver
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
        }
        let mut batch = SendBatch::default();
        // More than one sendmmsg call's worth, spread over three sockets.
        for i in 0..(2 * CHUNK + 5) as u32 {
            let to = receivers[i as usize % 3].local_addr().unwrap();
            batch.push(to, &i.to_le_bytes());
        }
        assert!(!batch.is_empty());
        assert_eq!(batch.send(&sender), 0);
        assert!(batch.is_empty());
        let mut buffer = [0u8; 16];
        for i in 0..(2 * CHUNK + 5) as u32 {
            let (len, from) = receivers[i as usize % 3].recv_from(&mut buffer).unwrap();
            assert_eq!(from, sender.local_addr().unwrap());
            assert_eq!(&buffer[..len], &i.to_le_bytes());
        }
    }
}
