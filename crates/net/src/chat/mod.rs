//! The chat protocol between nodes: `/starling/chat/2`, a request/response protocol on the
//! open network (libp2p, Noise-authenticated TCP).
//!
//! Requests (bounded, decoded by the node's own codec; anything malformed gets a
//! [`ChatResponse::Refused`] that says what was wrong):
//! - `Deposit`: ciphertext envelopes for an opaque mailbox id. It carries no sender.
//! - `Fetch`: mail of a mailbox after a sequence number, acknowledging what came before;
//!   signed by the mailbox key (the mailbox id is the hash of that key), fresh within
//!   [`FETCH_WINDOW`], and bound to the relay it is sent to.
//! - `PutKeyPackages`: a device's key packages, each checked against the device's signature
//!   key in the key directory on the ledger.
//! - `TakeKeyPackage`: one key package of a device, handed out once.
//! - `OrderCommit`: the delivery relay's ordering of group commits, one per epoch.

use futures::channel::{mpsc, oneshot};
use futures::SinkExt as _;
use starling_crypto::SecretKey;
use starling_types::{Decode, Encode, Endpoint, PublicKey};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod transport;
pub use transport::{
    behaviour, build_swarm, multiaddr, peer_id, Behaviour, Driver, Outgoing, RawCodec,
    MAX_ANSWERING,
};

pub use starling_protocol::chat::*;

/// Why a request to another node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    #[error("{0}: {1}")]
    Refused(String, String),
    #[error("malformed answer from {0}: {1}")]
    Malformed(String, String),
}

/// A node's handle on the chat protocol: sends requests to other nodes, and answers those
/// addressed to itself without the network.
#[derive(Clone, Debug)]
pub struct ChatNet {
    pub me: PublicKey,
    pub services: Option<Arc<dyn ChatService>>,
    tx: mpsc::Sender<Outgoing>,
}

impl ChatNet {
    pub fn new(
        me: PublicKey,
        services: Option<Arc<dyn ChatService>>,
        tx: mpsc::Sender<Outgoing>,
    ) -> ChatNet {
        ChatNet { me, services, tx }
    }

    /// Sends `req` to the node at `to` and waits for its answer; a `Refused` answer is an
    /// error.
    pub async fn request(
        &self,
        to: &Endpoint,
        req: &ChatRequest,
    ) -> Result<ChatResponse, NetError> {
        let name = to.address.clone();
        let bytes = if to.node == self.me {
            let Some(s) = self.services.clone() else {
                return Err(NetError::Refused(
                    "no_chat".into(),
                    "this node keeps no chat services".into(),
                ));
            };
            let req = req.to_bytes();
            tokio::task::spawn_blocking(move || s.serve(Requester::Local, &req).to_bytes())
                .await
                .map_err(|e| NetError::Unreachable(name.clone(), e.to_string()))?
        } else {
            self.raw(to, req.to_bytes()).await?
        };
        match ChatResponse::from_bytes(&bytes) {
            Ok(ChatResponse::Refused { code, message }) => Err(NetError::Refused(code, message)),
            Ok(r) => Ok(r),
            Err(e) => Err(NetError::Malformed(name, e.to_string())),
        }
    }

    /// Sends raw request bytes over the network and returns the raw answer.
    pub async fn raw(&self, to: &Endpoint, bytes: Vec<u8>) -> Result<Vec<u8>, NetError> {
        let name = to.address.clone();
        let unreachable = |e: String| NetError::Unreachable(name.clone(), e);
        let peer = peer_id(&to.node).map_err(unreachable)?;
        let addr: SocketAddr = tokio::net::lookup_host(&to.address)
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .next()
            .ok_or_else(|| unreachable("no address".into()))?;
        let (reply, rx) = oneshot::channel();
        let mut tx = self.tx.clone();
        tx.send(Outgoing {
            peer,
            address: multiaddr(addr),
            bytes,
            reply,
        })
        .await
        .map_err(|_| unreachable("the network has stopped".into()))?;
        match tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(1), rx).await {
            Ok(Ok(Ok(b))) => Ok(b),
            Ok(Ok(Err(e))) => Err(unreachable(e)),
            Ok(Err(_)) => Err(unreachable("the network has stopped".into())),
            Err(_) => Err(unreachable("timed out".into())),
        }
    }
}

/// The identity a node sends chat requests to other nodes from: a swarm under a random key,
/// replaced by a fresh one every `period`, so the nodes it deposits with can link its
/// requests to one sender for at most that long (they still see the address it connects
/// from).
#[derive(Debug)]
pub struct AnonNet {
    period: Duration,
    current: std::sync::Mutex<(ChatNet, std::time::Instant)>,
}

impl AnonNet {
    pub fn new(period: Duration) -> Result<AnonNet, starling_config::SetupError> {
        Ok(AnonNet {
            period,
            current: std::sync::Mutex::new((Self::fresh()?, std::time::Instant::now())),
        })
    }

    fn fresh() -> Result<ChatNet, starling_config::SetupError> {
        let key = SecretKey::generate(starling_types::KeyType::Ed25519, &mut rand_core::OsRng);
        standalone(&key, None, None)
    }

    /// The identity to send from now (a new one once the current one is `period` old).
    pub fn current(&self) -> Result<ChatNet, NetError> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.1.elapsed() >= self.period {
            let net = Self::fresh()
                .map_err(|e| NetError::Unreachable("anonymous swarm".into(), e.to_string()))?;
            *current = (net, std::time::Instant::now());
        }
        Ok(current.0.clone())
    }

    /// Sends `req` to `to` from the current anonymous identity.
    pub async fn request(
        &self,
        to: &Endpoint,
        req: &ChatRequest,
    ) -> Result<ChatResponse, NetError> {
        self.current()?.request(to, req).await
    }
}

/// A swarm that speaks only the chat protocol: the anonymous identity a node sends its chat
/// requests from (`listen` none: it only dials), and a peer for tools and benchmarks without
/// a ledger. The node's own swarm carries the protocol next to gossip and sync.
pub fn standalone(
    key: &SecretKey,
    listen: Option<SocketAddr>,
    services: Option<Arc<dyn ChatService>>,
) -> Result<ChatNet, starling_config::SetupError> {
    use futures::StreamExt as _;
    let bad = |what: &str, e: String| starling_config::SetupError::invalid("p2p", what, e);
    let mut swarm = build_swarm(key, |_| Ok(behaviour()))?;
    if let Some(listen) = listen {
        swarm
            .listen_on(multiaddr(listen))
            .map_err(|e| bad("listen", e.to_string()))?;
    }
    let (tx, mut rx) = mpsc::channel::<Outgoing>(1_024);
    let mut driver = Driver::new(services.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = swarm.select_next_some() => {
                    if let libp2p::swarm::SwarmEvent::Behaviour(e) = driver.on_swarm_event(event) {
                        driver.on_event(e);
                    }
                }
                out = rx.next() => match out {
                    Some(out) => driver.send(swarm.behaviour_mut(), out),
                    // Every handle is gone (an anonymous identity that was replaced, once
                    // its last request is answered): the swarm goes too.
                    None => break,
                },
                Some((channel, bytes)) = driver.answers.next() => {
                    let _ = swarm.behaviour_mut().send_response(channel, bytes);
                }
            }
        }
    });
    Ok(ChatNet::new(key.public_key(), services, tx))
}
