//! What the simulation tests share: the committee, links, and the simulated network.
#![allow(dead_code, clippy::unwrap_used)]

use commonware_actor::{Feedback, Unreliable};
use commonware_cryptography::{ed25519, Signer as _};
use commonware_p2p::simulated::{self, Link, Network};
use commonware_p2p::{CheckedSender, LimitedSender, Recipients, Sender};
use commonware_runtime::{deterministic, IoBufs, Quota, Supervisor as _};
use commonware_utils::{ordered::Set, NZUsize, NZU32};
use starling_consensus::engine::Channels;
use std::time::Duration;

pub mod edge;

/// Per-peer, per-channel message rate on the simulated network.
pub const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

/// Four validators' consensus keys and their set.
pub fn committee() -> (Vec<ed25519::PrivateKey>, Set<ed25519::PublicKey>) {
    let keys: Vec<ed25519::PrivateKey> = (0..4u64).map(ed25519::PrivateKey::from_seed).collect();
    let participants = Set::from_iter_dedup(keys.iter().map(|k| k.public_key()));
    (keys, participants)
}

/// A link between two validators: 20 ms, a little jitter, nothing lost.
pub fn link() -> Link {
    Link {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(1),
        success_rate: commonware_utils::probability!(1.0),
    }
}

/// A simulated network of `participants` (every validator, in a committee or not), every pair
/// linked.
pub async fn network(
    context: &deterministic::Context,
    participants: &Set<ed25519::PublicKey>,
) -> simulated::Oracle<ed25519::PublicKey, deterministic::Context> {
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: 8 * 1024 * 1024,
            max_peers_per_set: std::num::NonZeroUsize::new(participants.len()).unwrap(),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        participants.clone(),
    )
    .await;
    network.start();
    for a in participants.iter() {
        for b in participants.iter() {
            if a != b {
                oracle.add_link(a.clone(), b.clone(), link()).await.unwrap();
            }
        }
    }
    oracle
}

/// What an [`Equivocating`] sender adds after a message it sent (nothing, for an honest one).
pub type Twin = std::sync::Arc<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// A validator's channels on the simulated network.
pub type SimChannels = Channels<
    Equivocating<simulated::Sender<ed25519::PublicKey, deterministic::Context>>,
    simulated::Receiver<ed25519::PublicKey>,
>;

/// Registers the five channels of one validator in one shard, numbered from `base`; the vote
/// channel adds what `votes` makes of each vote (see [`equivocation`]), the others are honest.
pub async fn channels(
    control: &simulated::Control<ed25519::PublicKey, deterministic::Context>,
    base: u64,
    votes: Twin,
) -> SimChannels {
    let honest: Twin = std::sync::Arc::new(|_| None);
    let register = |id: u64, twin: Twin| async move {
        let (inner, receiver) = control.register(base + id, QUOTA).await.unwrap();
        (Equivocating { inner, twin }, receiver)
    };
    Channels {
        votes: register(0, votes).await,
        certificates: register(1, honest.clone()).await,
        resolver: register(2, honest.clone()).await,
        backfill: register(3, honest.clone()).await,
        broadcast: register(4, honest).await,
    }
}

/// A vote sender that equivocates: after each message it sends, it sends whatever `twin`
/// makes of that message (if anything) to the same recipients. Wraps a Byzantine validator's
/// vote channel so that, next to its honest vote, it signs a conflicting one.
#[derive(Clone)]
pub struct Equivocating<S> {
    pub inner: S,
    pub twin: Twin,
}

/// One checked send of an [`Equivocating`] sender.
pub struct EquivocatingSend<'a, S: LimitedSender + 'a> {
    checked: S::Checked<'a>,
    again: S,
    twin: Twin,
}

impl<S: LimitedSender> LimitedSender for Equivocating<S> {
    type PublicKey = S::PublicKey;
    type Checked<'a>
        = EquivocatingSend<'a, S>
    where
        Self: 'a;

    fn check(
        &mut self,
        recipients: Recipients<Self::PublicKey>,
    ) -> Result<Self::Checked<'_>, std::time::SystemTime> {
        let again = self.inner.clone();
        let twin = self.twin.clone();
        let checked = self.inner.check(recipients)?;
        Ok(EquivocatingSend {
            checked,
            again,
            twin,
        })
    }
}

impl<'a, S: LimitedSender + 'a> CheckedSender for EquivocatingSend<'a, S> {
    type PublicKey = S::PublicKey;

    fn recipients(&self) -> Vec<Self::PublicKey> {
        self.checked.recipients()
    }

    fn send(self, message: impl Into<IoBufs> + Send, priority: bool) -> Unreliable<Feedback> {
        let recipients = self.checked.recipients();
        let message: IoBufs = message.into();
        let bytes = message.clone().coalesce();
        let feedback = self.checked.send(message, priority);
        if let Some(second) = (self.twin)(bytes.as_ref()) {
            let mut again = self.again;
            let _ = Sender::send(&mut again, Recipients::Some(recipients), second, priority);
        }
        feedback
    }
}

/// What a Byzantine validator adds to its vote channel: for each notarize vote it casts for a
/// block it proposed itself, a second notarize vote, same round and parent view, for a sibling
/// block built by [`starling_consensus::ShardApp::sibling`] (valid, different digest).
pub fn equivocation(
    app: starling_consensus::ShardApp,
    namespace: &[u8],
    participants: &Set<ed25519::PublicKey>,
    key: &ed25519::PrivateKey,
) -> Twin {
    use commonware_codec::{DecodeExt as _, Encode as _};
    use commonware_consensus::simplex::types::{Notarize, Proposal};
    use commonware_consensus::simplex::{scheme::ed25519::Scheme, types::Vote};
    use starling_types::Hash;
    let scheme = Scheme::signer(namespace, participants.clone(), key.clone()).unwrap();
    let me = starling_consensus::account_of(&key.public_key());
    std::sync::Arc::new(move |bytes: &[u8]| {
        // Votes travel on one sub-channel per epoch: `varint(epoch) || vote`.
        let (_, vote) = commonware_p2p::utils::mux::parse(bytes.to_vec().into()).ok()?;
        let prefix = &bytes[..bytes.len() - vote.len()];
        let Ok(Vote::Notarize(vote)) =
            Vote::<Scheme, commonware_cryptography::blake3::Digest>::decode(vote)
        else {
            return None;
        };
        let proposal = &vote.proposal;
        let sibling = app.sibling(&Hash(proposal.payload.0))?;
        if sibling.block().header.proposer != me {
            return None;
        }
        let second = Proposal::new(
            proposal.round,
            proposal.parent,
            starling_consensus::digest_of(&sibling.id()),
        );
        let vote = Notarize::sign(&scheme, second)?;
        Some([prefix, &Vote::Notarize(vote).encode()[..]].concat())
    })
}
