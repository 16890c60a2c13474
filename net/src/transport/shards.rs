//! Several netcode servers behind one UDP socket.
//!
//! renetcode finds a connection by a linear scan over its slots, by
//! address for every datagram in and by client id for every datagram out:
//! at a thousand clients on a socket that is hundreds of slot reads per
//! datagram (measured at 3,000 roam100 bots on three sockets: ~8 % of the
//! node). Split over shards of about [`CLIENTS_PER_SHARD`], picked by a
//! keyed hash of the client's address (every datagram of one address,
//! handshake included, goes to one shard), a scan covers a few dozen.
//!
//! Netcode refuses a connect token used from a second address, and a
//! second connection of one client id; each shard knows only its own
//! connections and tokens, so [`Admission`] checks both across the socket.

use std::{
    collections::{HashMap, VecDeque, hash_map::RandomState},
    hash::BuildHasher,
    net::SocketAddr,
    time::Duration,
};

use renet_netcode::ServerConfig;
use renetcode::{NetcodeServer, ServerResult};

use super::ClientId;

/// About how many clients a shard holds when the socket is full.
pub(super) const CLIENTS_PER_SHARD: usize = 64;

/// A shard's index.
pub(super) type Shard = usize;

/// The netcode servers of one socket.
pub(super) struct Shards {
    servers: Vec<NetcodeServer>,
    /// Keyed per socket, so nobody can aim many addresses at one shard.
    hasher: RandomState,
}

impl Shards {
    /// Enough shards for `max_clients`, each built from `config(capacity)`.
    /// A shard takes up to twice its share, so an uneven spread of
    /// addresses does not turn clients away while the socket has room (the
    /// socket's own limit is [`Admission`]'s).
    pub fn new(max_clients: usize, config: impl Fn(usize) -> ServerConfig) -> Self {
        let count = max_clients.div_ceil(CLIENTS_PER_SHARD).max(1);
        let capacity = if count == 1 {
            max_clients
        } else {
            (2 * max_clients.div_ceil(count)).min(max_clients)
        };
        Self {
            servers: (0..count)
                .map(|_| NetcodeServer::new(config(capacity)))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    /// The shard that serves `addr`.
    pub fn shard_of(&self, addr: SocketAddr) -> Shard {
        (self.hasher.hash_one(addr) % self.servers.len() as u64) as Shard
    }

    /// Shard `shard`'s server.
    pub fn server(&mut self, shard: Shard) -> &mut NetcodeServer {
        &mut self.servers[shard]
    }

    /// The addresses clients connect to (every shard's are the same).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.servers[0].addresses()
    }

    /// Advances every shard's clock.
    pub fn update(&mut self, elapsed: Duration) {
        for server in &mut self.servers {
            server.update(elapsed);
        }
    }

    /// Processes a datagram from `addr` in its shard.
    pub fn process_packet<'a, 's>(
        &'s mut self,
        addr: SocketAddr,
        datagram: &'a mut [u8],
    ) -> (Shard, ServerResult<'a, 's>) {
        let shard = self.shard_of(addr);
        (shard, self.servers[shard].process_packet(addr, datagram))
    }

    /// Every connection, with its shard.
    pub fn clients(&self) -> Vec<(Shard, ClientId)> {
        self.servers
            .iter()
            .enumerate()
            .flat_map(|(shard, server)| server.clients_id_iter().map(move |id| (shard, id)))
            .collect()
    }
}

/// Client ids remembered with the address they connected from: netcode
/// keeps twice its slot count of used tokens, and so does this.
const REMEMBERED: usize = 2 * super::MAX_CLIENTS_PER_SOCKET;

/// Why a connection a shard accepted is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The socket has its clients.
    Full,
    /// The client id is connected already (through another shard).
    Connected,
    /// Its token was used from another address.
    OtherAddress,
}

/// The socket's own checks on a new connection, over all its shards.
pub(super) struct Admission {
    max_clients: usize,
    /// Where each recent client id connected from, and in what order.
    from: HashMap<ClientId, SocketAddr>,
    order: VecDeque<ClientId>,
}

impl Admission {
    pub fn new(max_clients: usize) -> Self {
        Self {
            max_clients,
            from: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `client`, just connected from `addr` in some shard, may
    /// stay, the socket having `connected` clients and `client` being
    /// one of them already or not.
    pub fn admit(
        &mut self,
        client: ClientId,
        addr: SocketAddr,
        connected: usize,
        already: bool,
    ) -> Result<(), Refusal> {
        if already {
            return Err(Refusal::Connected);
        }
        let known = self.from.get(&client);
        if known.is_some_and(|first| *first != addr) {
            return Err(Refusal::OtherAddress);
        }
        if connected >= self.max_clients {
            return Err(Refusal::Full);
        }
        if known.is_none() {
            if self.order.len() == REMEMBERED
                && let Some(oldest) = self.order.pop_front()
            {
                self.from.remove(&oldest);
            }
            self.from.insert(client, addr);
            self.order.push_back(client);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_token_used_from_a_second_address_or_twice_at_once_is_refused() {
        let mut admission = Admission::new(10);
        assert_eq!(admission.admit(1, addr(5000), 0, false), Ok(()));
        assert_eq!(
            admission.admit(1, addr(5001), 1, false),
            Err(Refusal::OtherAddress)
        );
        assert_eq!(
            admission.admit(1, addr(5000), 1, true),
            Err(Refusal::Connected)
        );
        // Back from the same address once the first connection is gone.
        assert_eq!(admission.admit(1, addr(5000), 0, false), Ok(()));
        assert_eq!(admission.admit(2, addr(5001), 1, false), Ok(()));
    }

    #[test]
    fn a_full_socket_refuses_and_old_ids_are_forgotten_in_order() {
        let mut admission = Admission::new(2);
        assert_eq!(admission.admit(1, addr(1), 2, false), Err(Refusal::Full));
        for id in 0..REMEMBERED as u64 + 1 {
            assert_eq!(admission.admit(id, addr(1), 0, false), Ok(()));
        }
        // Id 0 was the oldest: forgotten, so another address may use it;
        // id 1 is still remembered.
        assert_eq!(
            admission.admit(1, addr(2), 0, false),
            Err(Refusal::OtherAddress)
        );
        assert_eq!(admission.admit(0, addr(2), 0, false), Ok(()));
    }

    #[test]
    fn shards_split_the_socket_and_an_address_keeps_its_shard() {
        let keys = super::super::NetcodeKeys::random(7);
        let config = |capacity| ServerConfig {
            current_time: super::super::unix_now(),
            max_clients: capacity,
            protocol_id: keys.protocol_id,
            public_addresses: vec![addr(9)],
            authentication: renet_netcode::ServerAuthentication::Secure {
                private_key: keys.private_key,
            },
        };
        let shards = Shards::new(1_024, config);
        assert_eq!(shards.servers.len(), 16);
        assert!(shards.servers.iter().all(|s| s.max_clients() == 128));
        let mut used = vec![0; 16];
        for port in 1..=1_024 {
            let shard = shards.shard_of(addr(port));
            assert_eq!(shard, shards.shard_of(addr(port)));
            used[shard] += 1;
        }
        assert!(used.iter().all(|&n| n > 0 && n < 128), "{used:?}");
        let small = Shards::new(4, config);
        assert_eq!(small.servers.len(), 1);
        assert_eq!(small.servers[0].max_clients(), 4);
    }
}
