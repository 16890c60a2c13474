//! Readiness of many client sockets at once, for a load tool that drives a
//! thousand connections from one thread: it reads the sockets that have
//! datagrams waiting instead of asking every socket on every pass (almost
//! all of those reads come back empty, and each is a system call).

use std::time::Duration;

use super::ClientSocket;

/// Client sockets registered under tokens; [`Poller::wait`] says which
/// have something to read.
pub struct Poller {
    #[cfg(target_os = "linux")]
    epoll: std::os::fd::OwnedFd,
    #[cfg(target_os = "linux")]
    events: Vec<rustix::event::epoll::Event>,
    /// Without epoll every registered socket is reported, every time.
    #[cfg(not(target_os = "linux"))]
    tokens: Vec<u64>,
}

/// Most readiness events taken per wait (the rest come with the next).
#[cfg(target_os = "linux")]
const EVENTS_PER_WAIT: usize = 1_024;

impl Poller {
    /// An empty poller.
    pub fn new() -> std::io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            use rustix::event::epoll;
            Ok(Self {
                epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
                events: Vec::with_capacity(EVENTS_PER_WAIT),
            })
        }
        #[cfg(not(target_os = "linux"))]
        Ok(Self { tokens: Vec::new() })
    }

    /// Reports `socket` under `token` whenever it has datagrams waiting
    /// (level-triggered: until they are read). A socket leaves the poller
    /// when it is closed.
    pub fn add(&mut self, socket: &ClientSocket, token: u64) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use rustix::event::epoll;
            epoll::add(
                &self.epoll,
                socket.socket_fd(),
                epoll::EventData::new_u64(token),
                epoll::EventFlags::IN,
            )?;
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = socket;
            self.tokens.push(token);
        }
        Ok(())
    }

    /// Waits up to `timeout` for a registered socket to have something to
    /// read, and appends the tokens of those that do to `ready`.
    pub fn wait(&mut self, timeout: Duration, ready: &mut Vec<u64>) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use rustix::event::epoll;
            let timeout = rustix::event::Timespec {
                tv_sec: timeout.as_secs() as i64,
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            self.events.clear();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut self.events),
                Some(&timeout),
            ) {
                Ok(_) => {}
                // A signal: as if nothing were ready yet.
                Err(rustix::io::Errno::INTR) => return Ok(()),
                Err(error) => return Err(error.into()),
            }
            ready.extend(self.events.iter().map(|event| event.data.u64()));
        }
        #[cfg(not(target_os = "linux"))]
        {
            std::thread::sleep(timeout);
            ready.extend_from_slice(&self.tokens);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use tessera_sim::PlayerId;

    use super::*;
    use crate::transport::NetcodeKeys;

    #[test]
    fn only_a_socket_with_a_datagram_waiting_is_reported() {
        let keys = NetcodeKeys::random(7);
        let server = "127.0.0.1:9".parse().unwrap();
        let token = |player: u64| {
            keys.connect_token(player, PlayerId(player), server, 60)
                .expect("a connect token")
        };
        let quiet = ClientSocket::connect(&token(1)).unwrap();
        let busy = ClientSocket::connect(&token(2)).unwrap();
        let mut poller = Poller::new().unwrap();
        poller.add(&quiet, 10).unwrap();
        poller.add(&busy, 20).unwrap();
        let mut ready = Vec::new();
        poller.wait(Duration::from_millis(20), &mut ready).unwrap();
        assert!(ready.is_empty(), "nothing was sent yet: {ready:?}");
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = ("127.0.0.1", busy.local_addr().unwrap().port());
        sender.send_to(b"hello", to).unwrap();
        poller.wait(Duration::from_secs(5), &mut ready).unwrap();
        assert_eq!(ready, vec![20]);
    }
}
