//! What the simulation tests share: the committee, links, and the simulated network.
#![allow(dead_code, clippy::unwrap_used)]

use commonware_cryptography::{ed25519, Signer as _};
use commonware_p2p::simulated::{self, Link, Network};
use commonware_runtime::{deterministic, Quota, Supervisor as _};
use commonware_utils::{ordered::Set, NZUsize, NZU32};
use std::time::Duration;

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

/// A simulated network of `participants`, every pair linked.
pub async fn network(
    context: &deterministic::Context,
    participants: &Set<ed25519::PublicKey>,
) -> simulated::Oracle<ed25519::PublicKey, deterministic::Context> {
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: 8 * 1024 * 1024,
            max_peers_per_set: NZUsize!(4),
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
