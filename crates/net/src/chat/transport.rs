//! The chat protocol on libp2p: a bounded length-prefixed codec, the request-response
//! behaviour, and the driver that answers requests off the swarm's event loop.

use super::{
    ChatResponse, ChatService, Requester, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PROTOCOL,
    REQUEST_TIMEOUT,
};
use async_trait::async_trait;
use futures::channel::{mpsc, oneshot};
use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use starling_types::{Encode as _, PublicKey};
use std::collections::HashMap;
use std::sync::Arc;

/// The protocol's codec: length-prefixed bytes, bounded; decoding happens above it so a
/// malformed request still gets an answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawCodec;

async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over {max}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> std::io::Result<()> {
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

#[async_trait]
impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await
    }
}

pub type Behaviour = request_response::Behaviour<RawCodec>;

pub fn behaviour() -> Behaviour {
    request_response::Behaviour::with_codec(
        RawCodec,
        [(
            StreamProtocol::new(PROTOCOL),
            request_response::ProtocolSupport::Full,
        )],
        request_response::Config::default()
            .with_request_timeout(REQUEST_TIMEOUT)
            .with_max_concurrent_streams(1_024),
    )
}

/// A request for the swarm to send.
#[derive(Debug)]
pub struct Outgoing {
    pub peer: PeerId,
    pub address: Multiaddr,
    pub bytes: Vec<u8>,
    pub reply: oneshot::Sender<Result<Vec<u8>, String>>,
}

/// The swarm side of the protocol: requests in flight, and answers being prepared.
pub struct Driver {
    services: Option<Arc<dyn ChatService>>,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, String>>>,
    answers_tx: mpsc::Sender<(request_response::ResponseChannel<Vec<u8>>, Vec<u8>)>,
    pub answers: mpsc::Receiver<(request_response::ResponseChannel<Vec<u8>>, Vec<u8>)>,
    /// Requests being answered off the event loop now.
    answering: Arc<tokio::sync::Semaphore>,
    /// Where each open connection comes from (`None`: loopback or not IP), so limits count
    /// a remote host (an IPv4 address or IPv6 /64), not the peer ids it can make for free.
    origins: HashMap<libp2p::swarm::ConnectionId, Option<crate::iplimit::Origin>>,
}

/// Who a request on a connection from `origin` by `peer` counts as: the remote host, or
/// (on loopback: the operator's own processes) the peer.
pub fn requester_of(origin: Option<crate::iplimit::Origin>, peer: &PeerId) -> Requester {
    use crate::iplimit::Origin;
    match origin {
        Some(Origin::V4(a)) => Requester::peer("ipv4", &a),
        Some(Origin::V6Prefix(p)) => Requester::peer("ipv6/64", &p),
        None => Requester::peer("libp2p", &peer.to_bytes()),
    }
}

/// Most requests a node answers at once (each on a blocking thread); more are dropped, and
/// their senders see the request fail and may retry.
pub const MAX_ANSWERING: usize = 256;

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Driver {
    pub fn new(services: Option<Arc<dyn ChatService>>) -> Driver {
        let (answers_tx, answers) = mpsc::channel(MAX_ANSWERING);
        Driver {
            services,
            pending: HashMap::new(),
            answers_tx,
            answers,
            answering: Arc::new(tokio::sync::Semaphore::new(MAX_ANSWERING)),
            origins: HashMap::new(),
        }
    }

    /// Notes where a connection that opened comes from, and forgets one that closed; hands
    /// the event on.
    pub fn on_swarm_event<E>(
        &mut self,
        event: libp2p::swarm::SwarmEvent<E>,
    ) -> libp2p::swarm::SwarmEvent<E> {
        use libp2p::swarm::SwarmEvent;
        match &event {
            SwarmEvent::ConnectionEstablished {
                connection_id,
                endpoint,
                ..
            } => {
                let origin = crate::iplimit::origin(endpoint.get_remote_address());
                self.origins.insert(*connection_id, origin);
            }
            SwarmEvent::ConnectionClosed { connection_id, .. } => {
                self.origins.remove(connection_id);
            }
            _ => {}
        }
        event
    }

    /// Sends a request (dialing the peer at `address` if need be).
    pub fn send(&mut self, b: &mut Behaviour, out: Outgoing) {
        let id = b.send_request_with_addresses(&out.peer, out.bytes, vec![out.address]);
        self.pending.insert(id, out.reply);
    }

    /// Handles an event of the protocol: answers requests (off the event loop, since
    /// deposits sync to disk) and completes the requests this node sent.
    pub fn on_event(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                connection_id,
                message,
            } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    // A permit per answer being prepared, given back however the task ends.
                    let Ok(permit) = self.answering.clone().try_acquire_owned() else {
                        tracing::debug!("too many chat requests at once; one dropped");
                        return;
                    };
                    let services = self.services.clone();
                    let from =
                        requester_of(self.origins.get(&connection_id).copied().flatten(), &peer);
                    let mut tx = self.answers_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let answer = match services {
                            Some(s) => s.serve(from, &request),
                            None => {
                                ChatResponse::refused("no_chat", "this node keeps no chat services")
                            }
                        };
                        // At most MAX_ANSWERING answers wait in the channel, as many as are
                        // being prepared.
                        let _ = tx.try_send((channel, answer.to_bytes()));
                        drop(permit);
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            request_response::Event::InboundFailure { error, .. } => {
                tracing::debug!(%error, "a chat request could not be read or answered");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

/// The libp2p peer id of a node key.
pub fn peer_id(node: &PublicKey) -> Result<PeerId, String> {
    let k = libp2p::identity::ed25519::PublicKey::try_from_bytes(&node.bytes)
        .map_err(|e| e.to_string())?;
    Ok(PeerId::from_public_key(&libp2p::identity::PublicKey::from(
        k,
    )))
}

/// The one way a node builds a libp2p swarm (its own, and the chat-only ones): `key`'s
/// identity, TCP with Noise and yamux, the behaviour `behaviour` makes, idle connections
/// kept an hour. Not yet listening.
pub fn build_swarm<B: libp2p::swarm::NetworkBehaviour>(
    key: &starling_crypto::SecretKey,
    behaviour: impl FnOnce(
        &libp2p::identity::Keypair,
    ) -> Result<B, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<libp2p::Swarm<B>, starling_config::SetupError> {
    let bad = |what: &str, e: String| starling_config::SetupError::invalid("p2p", what, e);
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(*key.to_seed())
        .map_err(|e| bad("key", e.to_string()))?;
    Ok(libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|e| bad("transport", e.to_string()))?
        .with_behaviour(behaviour)
        .map_err(|e| bad("behaviour", e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(std::time::Duration::from_secs(3600)))
        .build())
}

/// The libp2p address of a TCP socket address.
pub fn multiaddr(a: std::net::SocketAddr) -> Multiaddr {
    let ip = match a.ip() {
        std::net::IpAddr::V4(ip) => libp2p::multiaddr::Protocol::Ip4(ip),
        std::net::IpAddr::V6(ip) => libp2p::multiaddr::Protocol::Ip6(ip),
    };
    Multiaddr::empty()
        .with(ip)
        .with(libp2p::multiaddr::Protocol::Tcp(a.port()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::iplimit::origin;

    #[test]
    fn requests_count_by_remote_host_not_by_peer_id() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let at = |s: &str| origin(&s.parse::<Multiaddr>().unwrap());
        // Two peer ids from one IPv4 address, or from one IPv6 /64: one requester.
        let v4 = at("/ip4/203.0.113.7/tcp/4001");
        assert_eq!(requester_of(v4, &a), requester_of(v4, &b));
        assert_eq!(
            requester_of(at("/ip6/2001:db8:1:2::1/tcp/1"), &a),
            requester_of(at("/ip6/2001:db8:1:2:ffff::9/tcp/2"), &b)
        );
        // Another host is another requester.
        assert_ne!(
            requester_of(v4, &a),
            requester_of(at("/ip4/203.0.113.8/tcp/4001"), &a)
        );
        // On loopback (this machine's own processes) each peer counts alone.
        let local = at("/ip4/127.0.0.1/tcp/4001");
        assert_ne!(requester_of(local, &a), requester_of(local, &b));
    }
}
