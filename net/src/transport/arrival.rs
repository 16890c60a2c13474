//! Reading a datagram together with when it arrived.
//!
//! A client that serves many connections from one thread (the load tool)
//! reads each socket only when its turn comes, milliseconds after the
//! datagram arrived; on Linux the kernel stamps each datagram as it is
//! queued (`SO_TIMESTAMPNS`), so a round trip can be measured to the
//! datagram's arrival rather than to the reader's turn.

use std::{
    net::{SocketAddr, UdpSocket},
    time::SystemTime,
};

/// Asks the kernel to stamp incoming datagrams (where it can).
pub fn enable(socket: &UdpSocket) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
        .map_err(std::io::Error::from)?;
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
    Ok(())
}

/// The standard library's form of an address the kernel gave.
#[cfg(target_os = "linux")]
pub fn socket_addr(address: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    address
        .as_sockaddr_in()
        .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
        .or_else(|| {
            address
                .as_sockaddr_in6()
                .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
        })
}

/// Reads one datagram: its length, sender and arrival time (now, where the
/// kernel gives no stamp).
#[cfg(target_os = "linux")]
pub fn recv(
    socket: &UdpSocket,
    buffer: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, SystemTime)> {
    use std::{io::IoSliceMut, os::fd::AsRawFd};

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};

    let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [IoSliceMut::new(buffer)];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .map_err(std::io::Error::from)?;
    let from = message
        .address
        .as_ref()
        .and_then(socket_addr)
        .ok_or_else(|| std::io::Error::other("a datagram without a sender address"))?;
    let mut arrived = None;
    if let Ok(messages) = message.cmsgs() {
        for control in messages {
            if let ControlMessageOwned::ScmTimestampns(stamp) = control {
                let since_epoch = std::time::Duration::from(stamp);
                arrived = SystemTime::UNIX_EPOCH.checked_add(since_epoch);
            }
        }
    }
    Ok((message.bytes, from, arrived.unwrap_or_else(SystemTime::now)))
}

/// Reads one datagram: its length, sender and arrival time (now: no kernel
/// stamps here).
#[cfg(not(target_os = "linux"))]
pub fn recv(
    socket: &UdpSocket,
    buffer: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, SystemTime)> {
    let (len, from) = socket.recv_from(buffer)?;
    Ok((len, from, SystemTime::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_is_read_with_its_sender_and_a_stamp_no_later_than_the_read() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(&receiver).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = SystemTime::now();
        sender
            .send_to(b"hello", receiver.local_addr().unwrap())
            .unwrap();
        // Waits until the datagram is queued (on a loaded machine the
        // kernel can deliver it well after `send_to` returns), then reads it
        // 30 ms later.
        let mut buffer = [0u8; 64];
        receiver.peek(&mut buffer).unwrap();
        let queued_by = SystemTime::now();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let (len, from, arrived) = recv(&receiver, &mut buffer).unwrap();
        let read_at = SystemTime::now();
        assert_eq!(&buffer[..len], b"hello");
        assert_eq!(from, sender.local_addr().unwrap());
        assert!(arrived >= before - std::time::Duration::from_millis(5));
        assert!(arrived <= queued_by, "stamped by the time it could be read");
        #[cfg(target_os = "linux")]
        assert!(
            read_at.duration_since(arrived).unwrap() >= std::time::Duration::from_millis(25),
            "the kernel's stamp is when the datagram arrived, not when it was read"
        );
    }
}
