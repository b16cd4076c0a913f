//! A relay fed forged blocks over the open network. A peer speaking the real protocols
//! (libp2p gossipsub and `/starling/sync/1`) connects to a running relay and offers block 1 of
//! shard 1 with: a certificate from keys outside the committee, another block's certificate, a
//! certificate of the wrong epoch, a genuine committee certificate for a block whose state
//! root was tampered with, and bytes that are not a block at all. The relay applies none of
//! them, and cuts off every peer that sent a certificate that does not verify; then the honest
//! block with its committee certificate (from a fresh peer), which it applies.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_consensus::simplex::types::{Finalization, Finalize, Proposal};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::ed25519;
use commonware_runtime::{Runner as _, Supervisor as _};
use commonware_utils::ordered::Set;
use futures::StreamExt as _;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use starling_config::genesis::{Genesis, GenesisFile};
use starling_config::{config::NodeConfig, config::Role, init};
use starling_consensus::ShardBlock;
use starling_ledger::records::PostRecord;
use starling_ledger::MemLedger;
use starling_net::{self as net, BehaviourEvent, FinalizedBlock, SyncResponse};
use starling_node_api::proof::{self as proofs, RecordProof, RecordRef, Trusted};
use starling_node_api::{consensus_key, consensus_public, Node, SubmitError};
use starling_testkit::{free_addr, key};
use starling_types::{Action, Block, Decode as _, Encode as _, PostId, ShardId, TxBody};
use std::time::{Duration, Instant};

const CHAIN: &str = "starling-relay";

fn genesis_file() -> GenesisFile {
    let mut g = starling_testkit::genesis_file(CHAIN, 1);
    for i in 0..4 {
        let address = format!("127.0.0.1:{}", 7300 + u16::from(i));
        starling_testkit::add_validator(&mut g, &key(i), Some(address));
    }
    starling_testkit::fund(&mut g, &key(99), 1_000_000_000_000_000);
    g
}

/// A relay's data directory under `dir`, prepared from [`genesis_file`], opened.
fn relay_stores(dir: &std::path::Path) -> (Genesis, Vec<starling_store::ChainStore>) {
    let gpath = dir.join("genesis.toml");
    std::fs::write(&gpath, genesis_file().to_toml().unwrap()).unwrap();
    let cfg = NodeConfig {
        roles: vec![Role::Relay],
        data_dir: dir.join("relay"),
        ..NodeConfig::default()
    };
    init::init(&cfg, &gpath, &key(200).public_key()).unwrap();
    init::open(&cfg.data_dir).unwrap()
}

/// Block 1 of `shard` with one post, built by a replica of the genesis in memory.
fn block_one(genesis: &Genesis, shard: ShardId) -> Block {
    let mut replica = MemLedger::genesis_with(
        genesis.params.clone(),
        shard,
        &genesis.allocations,
        genesis.foundation_treasury_per_shard,
        6,
        &genesis.ledger_validators(),
    );
    let body = TxBody {
        account: key(99).public_key(),
        nonce: 0,
        max_fee: 1_000_000_000_000,
        tip: 1,
        expires_at_height: 100,
        action: Action::Post {
            text: "hello from block one".into(),
            reply_to: None,
            quote_of: None,
            langs: vec![],
        },
    };
    let tx = key(99).sign_tx(&genesis.params.chain_id, &body);
    let proposer = starling_consensus::account_of(&consensus_public(&key(0).public_key()).unwrap());
    replica
        .propose(vec![tx], vec![], 1_000, proposer)
        .unwrap()
        .0
}

/// A finalization of `block` in `epoch`, signed by `signers` (a quorum of 3) out of `committee`.
fn certificate(
    namespace: &[u8],
    committee: &Set<ed25519::PublicKey>,
    signers: &[ed25519::PrivateKey],
    epoch: u64,
    block: &Block,
) -> Vec<u8> {
    let proposal = Proposal::new(
        Round::new(Epoch::new(epoch), View::new(1)),
        View::new(0),
        commonware_cryptography::Digestible::digest(&ShardBlock::new(block.clone())),
    );
    let votes: Vec<Finalize<Scheme, _>> = signers
        .iter()
        .map(|k| {
            let scheme = Scheme::signer(namespace, committee.clone(), k.clone()).unwrap();
            Finalize::sign(&scheme, proposal.clone()).unwrap()
        })
        .collect();
    let verifier = Scheme::verifier(namespace, committee.clone());
    let f = Finalization::from_owned_finalizes(
        &verifier,
        commonware_utils::iter::NonEmpty::try_new(votes.into_iter()).unwrap(),
        &commonware_parallel::Sequential,
    )
    .unwrap();
    commonware_codec::Encode::encode(&f).to_vec()
}

#[test]
fn a_relay_applies_no_forged_block_from_the_network() {
    let d = tempfile::tempdir().unwrap();
    let (genesis, stores) = relay_stores(d.path());
    let shard = ShardId(1);
    let namespace = format!("starling/{CHAIN}/shard/1").into_bytes();
    let committee_keys: Vec<ed25519::PrivateKey> =
        (0..4).map(|i| consensus_key(&key(i)).unwrap()).collect();
    let committee = Set::from_iter_dedup(committee_keys.iter().map(|k| {
        use commonware_cryptography::Signer as _;
        k.public_key()
    }));
    let strangers: Vec<ed25519::PrivateKey> =
        (10..14).map(|i| consensus_key(&key(i)).unwrap()).collect();
    let stranger_set = Set::from_iter_dedup(strangers.iter().map(|k| {
        use commonware_cryptography::Signer as _;
        k.public_key()
    }));

    let honest = block_one(&genesis, shard);
    let chain_id = genesis.params.chain_id.clone();
    let epoch_blocks = genesis.params.epoch_blocks;
    let mut tampered = honest.clone();
    tampered.header.state_root.0[0] ^= 1;
    let mut other = honest.clone();
    other.header.timestamp_ms += 1;
    let good_cert = certificate(&namespace, &committee, &committee_keys[..3], 0, &honest);
    let forgeries: Vec<(&str, Vec<u8>)> = vec![
        (
            "signed by strangers",
            FinalizedBlock {
                block: honest.clone(),
                certificate: certificate(&namespace, &stranger_set, &strangers[..3], 0, &honest),
            }
            .to_bytes(),
        ),
        (
            "another block's certificate",
            FinalizedBlock {
                block: honest.clone(),
                certificate: certificate(&namespace, &committee, &committee_keys[..3], 0, &other),
            }
            .to_bytes(),
        ),
        (
            "a certificate of another epoch",
            FinalizedBlock {
                block: honest.clone(),
                certificate: certificate(&namespace, &committee, &committee_keys[..3], 1, &honest),
            }
            .to_bytes(),
        ),
        (
            "another shard's certificate",
            FinalizedBlock {
                block: honest.clone(),
                certificate: certificate(
                    format!("starling/{CHAIN}/shard/0").as_bytes(),
                    &committee,
                    &committee_keys[..3],
                    0,
                    &honest,
                ),
            }
            .to_bytes(),
        ),
        (
            "a tampered state root under a genuine certificate",
            FinalizedBlock {
                block: tampered.clone(),
                certificate: certificate(
                    &namespace,
                    &committee,
                    &committee_keys[..3],
                    0,
                    &tampered,
                ),
            }
            .to_bytes(),
        ),
        ("not a block", b"\x00\x00\x00\x05hello".to_vec()),
    ];

    let relay_listen = free_addr();
    let runner = commonware_runtime::tokio::Runner::new(
        commonware_runtime::tokio::Config::new().with_storage_directory(d.path().join("rt")),
    );
    runner.start(|context| async move {
        let node = Node::follower(genesis, stores);
        net::start(
            node.clone(),
            &key(200),
            relay_listen,
            Vec::new(),
            context.child("net"),
            None,
        )
        .unwrap();
        let head = |node: &Node| node.shard(shard).unwrap().head().height;

        // The forger: the real protocols, connected to the relay. The relay cuts off a peer
        // that sends a block that does not verify, so each offer comes from a fresh identity.
        let topic = net::blocks_topic(CHAIN, shard);
        let connect = |seed: u8| {
            let mut forger = net::swarm(&key(seed)).unwrap();
            forger.listen_on(net::multiaddr(free_addr())).unwrap();
            forger.dial(net::multiaddr(relay_listen)).unwrap();
            forger.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
            forger
        };
        let mut forger = connect(201);

        // Each forgery is offered by gossip and as the answer to the relay's sync requests,
        // for a while; then the honest block.
        let mut offers = forgeries.iter().map(|(what, bytes)| (*what, bytes.clone())).collect::<Vec<_>>();
        offers.push((
            "the honest block",
            FinalizedBlock {
                block: honest.clone(),
                certificate: good_cert.clone(),
            }
            .to_bytes(),
        ));
        let mut offer = 0usize;
        let mut since = Instant::now();
        let mut sync_answers = 0usize;
        let mut cut_off = false;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "timed out at offer {offer}");
            let (what, bytes) = &offers[offer];
            let last = offer + 1 == offers.len();
            if last && head(&node) == 1 {
                break;
            }
            if !last {
                assert_eq!(head(&node), 0, "the relay applied a forgery: {what}");
            }
            // Each forgery stays on offer until the relay asked for it by sync at least once,
            // or cut the forger off.
            if !last && (sync_answers > 0 || cut_off) && since.elapsed() > Duration::from_millis(500) {
                if offer < 4 {
                    assert!(cut_off, "a peer that sent {what} was not cut off");
                }
                offer += 1;
                sync_answers = 0;
                cut_off = false;
                since = Instant::now();
                forger = connect(201 + offer as u8);
                continue;
            }
            let tick = tokio::time::sleep(Duration::from_millis(200));
            tokio::select! {
                event = forger.select_next_some() => {
                    if let SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                        message: request_response::Message::Request { channel, request, .. },
                        ..
                    })) = event
                    {
                        let blocks = if request.shard == shard.0 && request.from == 1 {
                            vec![bytes.clone()]
                        } else {
                            Vec::new()
                        };
                        let _ = forger.behaviour_mut().sync.send_response(channel, SyncResponse { blocks });
                        sync_answers += 1;
                    } else if let SwarmEvent::ConnectionClosed { num_established: 0, .. } = event {
                        cut_off = true;
                    }
                }
                _ = tick => {
                    let _ = forger.behaviour_mut().gossipsub.publish(topic.clone(), bytes.clone());
                }
            }
        }
        let app = node.shard(shard).unwrap();
        assert_eq!(app.block(1).unwrap().unwrap().header.id(), honest.header.id());

        // The relay kept the certificate it verified: a light client checks the post in
        // block one from the committee's keys alone, and every tampered part fails.
        let post = RecordRef::Post(PostId { author: key(99).public_key(), seq: 0 });
        let proof = proofs::prove(&node, &post).await.unwrap();
        let trusted = Trusted {
            chain_id: chain_id.clone(),
            epoch_blocks,
            epoch: 0,
            committee: committee.clone(),
        };
        let checked = proof.check(&post, shard, &trusted).unwrap();
        assert_eq!(checked.header.id(), honest.header.id());
        let record = PostRecord::from_bytes(&checked.value.unwrap()).unwrap();
        assert_eq!(record.text, "hello from block one");
        let stranger_cert = certificate(&namespace, &stranger_set, &strangers[..3], 0, &honest);
        let mut forged_value = record.clone();
        forged_value.text = "words never posted".into();
        let mut tampered_header = honest.header.clone();
        tampered_header.state_root.0[0] ^= 1;
        let tampered: Vec<(&str, RecordProof, &Trusted, &RecordRef)> = vec![
            ("another value", RecordProof { value: Some(hex::encode(forged_value.to_bytes())), ..proof.clone() }, &trusted, &post),
            ("no value", RecordProof { value: None, ..proof.clone() }, &trusted, &post),
            ("strangers' certificate", RecordProof { certificate: hex::encode(&stranger_cert), ..proof.clone() }, &trusted, &post),
            ("a tampered header", RecordProof { header: hex::encode(tampered_header.to_bytes()), ..proof.clone() }, &trusted, &post),
            ("not hex", RecordProof { proof: "zz".into(), ..proof.clone() }, &trusted, &post),
        ];
        let strangers_trusted = Trusted { committee: stranger_set.clone(), ..trusted.clone() };
        let other_chain = Trusted { chain_id: starling_types::ChainId::new("elsewhere").unwrap(), ..trusted.clone() };
        let other_post = RecordRef::Post(PostId { author: key(99).public_key(), seq: 1 });
        // The genesis committee signs a made-up header in epoch 1 (as retired validators
        // could): only epoch 1's committee, reached through its hand-off, is believed there.
        let mut later = honest.clone();
        later.header.height = epoch_blocks;
        let later_cert = certificate(&namespace, &committee, &committee_keys[..3], 1, &later);
        let from_retired = RecordProof {
            header: hex::encode(later.header.to_bytes()),
            certificate: hex::encode(&later_cert),
            ..proof.clone()
        };
        let mut cases = tampered;
        // Refused for the epoch, not by accident: everything else about it checks out.
        assert!(matches!(
            from_retired.check(&post, shard, &trusted),
            Err(proofs::ProofCheckError::UntrustedEpoch { header: 1, trusted: 0 })
        ));
        cases.push(("the genesis committee signing in epoch 1", from_retired, &trusted, &post));
        cases.push(("a committee that is not the trusted one", proof.clone(), &strangers_trusted, &post));
        cases.push(("another chain", proof.clone(), &other_chain, &post));
        cases.push(("another record", proof.clone(), &trusted, &other_post));
        for (what, p, t, r) in cases {
            assert!(p.check(r, shard, t).is_err(), "a proof with {what} checked out");
        }
        assert!(proof.check(&post, ShardId(2), &trusted).is_err(), "checked on another shard");
    });
}

/// A follower with no open network running cannot publish, so it refuses transactions for
/// the shards it follows as not served, rather than acknowledging what it would drop; once a
/// network takes its gossip queue, they are admitted and queued for publishing (once).
#[test]
fn a_follower_publishes_only_through_a_running_network() {
    let d = tempfile::tempdir().unwrap();
    let (genesis, stores) = relay_stores(d.path());
    let chain = genesis.params.chain_id.clone();
    let node = Node::follower(genesis, stores);
    let body = TxBody {
        account: key(99).public_key(),
        nonce: 0,
        max_fee: 1_000_000_000_000,
        tip: 1,
        expires_at_height: 100,
        action: Action::Post {
            text: "queued for gossip".into(),
            reply_to: None,
            quote_of: None,
            langs: vec![],
        },
    };
    let tx = key(99).sign_tx(&chain, &body);
    let refused = node.submit(vec![tx.clone()]).pop().unwrap();
    assert!(
        matches!(refused, Err(SubmitError::ShardNotServed(ShardId(1)))),
        "{refused:?}"
    );
    let mut gossip = node.take_gossip().unwrap();
    assert!(node.take_gossip().is_err(), "the queue is taken once");
    let (hash, shard) = node.submit(vec![tx]).pop().unwrap().unwrap();
    assert_eq!(shard, ShardId(1));
    let (to, txs) = gossip.try_recv().unwrap();
    assert_eq!((to, txs.len()), (ShardId(1), 1));
    assert_eq!(
        starling_types::Tx::parse(&chain, txs[0].clone())
            .unwrap()
            .hash,
        hash
    );
}
