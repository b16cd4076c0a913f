//! Inbound connections per remote address on the open network: at most `max` from one IPv4
//! address or one IPv6 /64 (a host owns a whole /64), pending or established, so one host
//! cannot take every slot. Loopback is not limited (the operator's own processes).

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

/// Where a connection comes from, for counting: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

/// The origin a remote address counts against; `None` for loopback or a non-IP address.
pub fn origin(addr: &Multiaddr) -> Option<Origin> {
    let ip = addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })?;
    if ip.is_loopback() {
        return None;
    }
    Some(match ip {
        IpAddr::V4(v4) => Origin::V4(v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Origin::V4(v4.octets()),
            None => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Origin::V6Prefix(prefix)
            }
        },
    })
}

/// The limit, as a libp2p behaviour.
#[derive(Debug)]
pub struct Behaviour {
    max: usize,
    by_connection: HashMap<ConnectionId, Origin>,
    counts: HashMap<Origin, usize>,
}

impl Behaviour {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            by_connection: HashMap::new(),
            counts: HashMap::new(),
        }
    }

    /// Admits a new inbound connection from `remote`, or refuses it.
    pub fn admit(&mut self, id: ConnectionId, remote: &Multiaddr) -> Result<(), ConnectionDenied> {
        let Some(o) = origin(remote) else {
            return Ok(());
        };
        let n = self.counts.entry(o).or_default();
        if *n >= self.max {
            return Err(ConnectionDenied::new(format!(
                "at most {} connections from one address",
                self.max
            )));
        }
        *n += 1;
        self.by_connection.insert(id, o);
        Ok(())
    }

    /// Forgets a connection (closed, or failed before it was established).
    pub fn release(&mut self, id: ConnectionId) {
        if let Some(o) = self.by_connection.remove(&id) {
            if let Some(n) = self.counts.get_mut(&o) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.counts.remove(&o);
                }
            }
        }
    }

    /// Connections counted now.
    pub fn counted(&self) -> usize {
        self.by_connection.len()
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.admit(connection_id, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(c) => self.release(c.connection_id),
            FromSwarm::ListenFailure(f) => self.release(f.connection_id),
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn one_host_gets_at_most_max_and_slots_come_back() {
        let mut b = Behaviour::new(3);
        let ids: Vec<ConnectionId> = (0..5)
            .map(|_| ConnectionId::new_unchecked(rand_id()))
            .collect();
        let host = addr("/ip4/203.0.113.7/tcp/4000");
        for id in &ids[..3] {
            assert!(b.admit(*id, &host).is_ok());
        }
        assert!(b.admit(ids[3], &host).is_err());
        // Another host is counted apart; a different address in the same IPv6 /64 is not.
        assert!(b.admit(ids[3], &addr("/ip4/203.0.113.8/tcp/4000")).is_ok());
        let mut v6 = Behaviour::new(1);
        assert!(v6
            .admit(ids[0], &addr("/ip6/2001:db8:1:2::1/tcp/1"))
            .is_ok());
        assert!(v6
            .admit(ids[1], &addr("/ip6/2001:db8:1:2::ffff/tcp/1"))
            .is_err());
        assert!(v6
            .admit(ids[1], &addr("/ip6/2001:db8:1:3::1/tcp/1"))
            .is_ok());
        // Loopback is the operator's own.
        for id in &ids {
            assert!(v6.admit(*id, &addr("/ip4/127.0.0.1/tcp/1")).is_ok());
        }
        // A closed connection frees its slot.
        b.release(ids[0]);
        assert!(b.admit(ids[4], &host).is_ok());
        assert_eq!(b.counted(), 4);
    }

    fn rand_id() -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1_000_000);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}
