//! The validator registry and committees per epoch: bonding (V1), retiring (V2), the registry
//! on the global shard (M6, M7), committee draws at global epoch ends (E1), their delivery to
//! account shards (M8), and each shard fixing its next epoch's committee at its epoch end (E2).
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use starling_crypto::SecretKey;
use starling_ledger::committee::{draw, EpochSchedule};
use starling_ledger::records::{CommitteeRecord, Pool, StateKey, ValidatorSet};
use starling_ledger::{Event, TxError};
use starling_types::receipt::Payload;
use starling_types::{Action, Asset, Block, PublicKey, ShardId};

/// Validator `seed`'s registration by `sender`, with its consensus key's proof of possession.
fn register(net: &Net, sender: &SecretKey, seed: u8) -> Action {
    Action::RegisterValidator {
        consensus_key: consensus_key(seed),
        address: format!("10.0.0.{seed}:7000"),
        proof: consensus_secret(seed).validator_pop(&net.params.chain_id, &sender.public_key()),
    }
}

fn registry(net: &Net) -> Vec<PublicKey> {
    net.get::<ValidatorSet>(ShardId::GLOBAL, StateKey::Validators)
        .unwrap_or_default()
        .validators
        .iter()
        .map(|v| v.consensus_key)
        .collect()
}

/// Runs empty blocks on `shard` until its height is `height`; returns what they emitted.
fn run_to(net: &mut Net, shard: ShardId, height: u64) -> Vec<(Block, starling_ledger::Executed)> {
    let mut out = Vec::new();
    while net.shards[shard.0 as usize].height < height {
        out.push(net.block(shard, vec![], vec![]));
    }
    out
}

#[test]
fn genesis_holds_the_registry_and_epoch_zero_committees() {
    let p = params(2);
    let a = keys_on(&p, ShardId(1), 1, 1).pop().unwrap();
    let net = network(&[&a]);
    let mut expected: Vec<PublicKey> = (1..=3).map(consensus_key).collect();
    expected.sort();
    let mut got = registry(&net);
    got.sort();
    assert_eq!(got, expected);
    for s in 0..=2 {
        let c: CommitteeRecord = net.get(ShardId(s), StateKey::EpochCommittee(0)).unwrap();
        assert_eq!((c.epoch, c.members.len()), (0, 3));
    }
    // Only the global shard holds the registry.
    assert!(!net.exists(ShardId(1), StateKey::Validators));
}

#[test]
fn a_bonded_validator_joins_the_committees_drawn_at_the_next_epoch_boundary() {
    let p = params(2);
    let a = keys_on(&p, ShardId(1), 1, 1).pop().unwrap();
    let mut net = network(&[&a]);
    let me = a.public_key();

    // V1: bond locked in the pool, registry learns by message.
    let tx = net.sign(&a, 0, register(&net, &a, 9));
    let (block, ex) = net.block(ShardId(1), vec![tx], vec![]);
    assert_eq!(tx_result(&ex, 0), Ok(()));
    let spend = net.account(&me).unwrap().balance(Asset::Spend);
    assert!(spend <= FUND - BOND, "bond taken");
    assert_eq!(net.amount(ShardId(1), StateKey::Bond(&me)), BOND);
    assert_eq!(net.pool(ShardId(1), Pool::Bonds), BOND);
    assert!(messages(&ex)
        .iter()
        .any(|m| m.dest == ShardId::GLOBAL && matches!(m.payload, Payload::ValidatorJoin { .. })));
    // Registering twice is refused and changes nothing.
    let again = register(&net, &a, 9);
    assert_eq!(net.run(&a, 1, again), Err(TxError::AlreadyValidator));

    assert_eq!(registry(&net).len(), 3);
    let delivered = net.deliver(&block, &ex);
    assert!(delivered[0]
        .1
        .events
        .contains(&Event::ValidatorJoined { account: me }));
    assert_eq!(registry(&net).len(), 4);
    assert!(registry(&net).contains(&consensus_key(9)));

    // E1: the global shard's epoch-0 closing block (height EPOCH - 1) draws epoch 1.
    let global = ShardId::GLOBAL;
    assert!(net.shards[0].height < EPOCH - 1);
    let produced = run_to(&mut net, global, EPOCH - 1);
    let (closing, closing_ex) = produced.last().unwrap();
    // No registered validator proposed here, so no reveals: the mix is empty, and the seed
    // before is genesis's.
    let seed =
        EpochSchedule::next_seed(&starling_types::Hash::ZERO, &starling_types::Hash::ZERO, 0);
    assert!(closing_ex
        .events
        .contains(&Event::CommitteesDrawn { epoch: 1, seed }));
    let expected = draw(
        &seed,
        1,
        (0..=2).map(ShardId),
        &registry(&net),
        usize::from(net.params.committee_size),
    );
    // The global shard's own next committee is fixed at once (E1 then E2 in one block).
    let own: CommitteeRecord = net.get(global, StateKey::EpochCommittee(1)).unwrap();
    assert_eq!(own.members, expected[&global]);
    assert!(
        own.members.contains(&consensus_key(9)),
        "committees of 16 take every validator"
    );
    // Each account shard receives its own committee by message (M8)...
    let sent = messages(closing_ex);
    assert_eq!(sent.len(), 2);
    for m in &sent {
        assert!(
            matches!(&m.payload, Payload::Committee { epoch: 1, members, .. } if *members == expected[&m.dest])
        );
    }
    // ...and only its epoch end makes it the next epoch's committee (E2), never earlier.
    for s in [ShardId(1), ShardId(2)] {
        let height = net.shards[s.0 as usize].height;
        assert!(height < EPOCH - 1, "shard {s} has not closed epoch 0");
    }
    net.deliver(closing, closing_ex);
    let latest: CommitteeRecord = net.get(ShardId(2), StateKey::Committee).unwrap();
    assert_eq!(latest.members, expected[&ShardId(2)]);
    assert!(!net.exists(ShardId(2), StateKey::EpochCommittee(1)));
    run_to(&mut net, ShardId(2), EPOCH - 1);
    let fixed: CommitteeRecord = net.get(ShardId(2), StateKey::EpochCommittee(1)).unwrap();
    assert_eq!(fixed, latest);
    // A duplicate (older) committee does not replace a newer one.
    net.deliver(closing, closing_ex);
    assert_eq!(
        net.get::<CommitteeRecord>(ShardId(2), StateKey::Committee)
            .unwrap(),
        latest
    );
}

#[test]
fn a_shard_that_receives_nothing_keeps_its_committee() {
    let p = params(2);
    let a = keys_on(&p, ShardId(1), 1, 1).pop().unwrap();
    let mut net = network(&[&a]);
    run_to(&mut net, ShardId(1), 3 * EPOCH);
    let genesis: CommitteeRecord = net.get(ShardId(1), StateKey::EpochCommittee(0)).unwrap();
    for e in 1..=3 {
        let c: CommitteeRecord = net.get(ShardId(1), StateKey::EpochCommittee(e)).unwrap();
        assert_eq!(c, genesis);
    }
}

#[test]
fn retiring_returns_the_bond_and_leaves_the_next_draw() {
    let p = params(2);
    let a = keys_on(&p, ShardId(1), 1, 1).pop().unwrap();
    let mut net = network(&[&a]);
    let me = a.public_key();
    assert_eq!(
        net.run(&a, 0, Action::RetireValidator),
        Err(TxError::NotValidator)
    );
    let reg = register(&net, &a, 9);
    let (b1, e1) = net.block(ShardId(1), vec![net.sign(&a, 0, reg)], vec![]);
    net.deliver(&b1, &e1);
    let before = net.account(&me).unwrap().balance(Asset::Spend);
    let (b2, e2) = net.block(
        ShardId(1),
        vec![net.sign(&a, 1, Action::RetireValidator)],
        vec![],
    );
    assert_eq!(tx_result(&e2, 0), Ok(()));
    let after = net.account(&me).unwrap().balance(Asset::Spend);
    assert!(
        after > before + BOND - 1_000_000_000,
        "bond returned (less the fee)"
    );
    assert!(!net.exists(ShardId(1), StateKey::Bond(&me)));
    assert_eq!(net.pool(ShardId(1), Pool::Bonds), 0);
    let delivered = net.deliver(&b2, &e2);
    assert!(delivered[0]
        .1
        .events
        .contains(&Event::ValidatorLeft { account: me }));
    assert!(!registry(&net).contains(&consensus_key(9)));
    run_to(&mut net, ShardId::GLOBAL, EPOCH - 1);
    let c: CommitteeRecord = net
        .get(ShardId::GLOBAL, StateKey::EpochCommittee(1))
        .unwrap();
    assert_eq!(c.members.len(), 3);
    assert!(!c.members.contains(&consensus_key(9)));
}

#[test]
fn bad_registrations_are_refused() {
    let p = params(2);
    let a = keys_on(&p, ShardId(1), 1, 1).pop().unwrap();
    let b = keys_on(&p, ShardId(2), 1, 1).pop().unwrap();
    let poor = keys_on(&p, ShardId(1), 1, 50).pop().unwrap();
    let mut net = network(&[&a, &b]);
    let secp = PublicKey {
        key_type: starling_types::KeyType::Secp256k1,
        bytes: [2; 32],
    };
    let bad = [
        (secp, "10.0.0.1:7000"),
        (consensus_key(9), "no-port"),
        (consensus_key(9), ":7000"),
        (consensus_key(9), "10.0.0.1:0"),
        (consensus_key(9), "10.0.0.1:99999"),
        (consensus_key(9), "has space:7000"),
    ];
    for (key, address) in bad {
        let proof = consensus_secret(9).validator_pop(&net.params.chain_id, &a.public_key());
        let r = net.run(
            &a,
            0,
            Action::RegisterValidator {
                consensus_key: key,
                address: address.into(),
                proof,
            },
        );
        assert!(
            matches!(r, Err(TxError::InvalidValidator(_))),
            "{address}: {r:?}"
        );
    }
    // Funding a fresh account with less than the bond.
    let (t, te) = net.block(
        ShardId(2),
        vec![net.sign(
            &b,
            0,
            Action::Transfer {
                asset: Asset::Spend,
                to: poor.public_key(),
                amount: BOND / 2,
            },
        )],
        vec![],
    );
    net.deliver(&t, &te);
    let reg = register(&net, &poor, 9);
    assert!(matches!(
        net.run(&poor, 0, reg),
        Err(TxError::InsufficientBalance { .. })
    ));

    // A consensus key already in the registry under another account: the registry refuses it,
    // and the bond can be taken back.
    let reg = register(&net, &a, 1);
    let (b1, e1) = net.block(ShardId(1), vec![net.sign(&a, 0, reg)], vec![]);
    assert_eq!(tx_result(&e1, 0), Ok(()));
    let delivered = net.deliver(&b1, &e1);
    assert!(matches!(
        &delivered[0].1.events[..],
        [
            ..,
            Event::ValidatorRefused {
                error: TxError::InvalidValidator(_),
                ..
            },
            _
        ] | [
            ..,
            Event::ValidatorRefused {
                error: TxError::InvalidValidator(_),
                ..
            }
        ]
    ));
    assert_eq!(registry(&net).len(), 3);
    assert_eq!(net.run(&a, 1, Action::RetireValidator), Ok(()));
}

/// Rule V1: only the holder of a consensus key can register it, for its own account on this
/// chain; a key that is not a point of large order is refused. (At `b334716` a registration
/// carried no proof: anyone could take another's consensus key first.)
#[test]
fn registration_needs_the_consensus_keys_own_proof() {
    let p = params(2);
    let mut on1 = keys_on(&p, ShardId(1), 2, 1);
    let (a, mallory) = (on1.pop().unwrap(), on1.pop().unwrap());
    let mut net = network(&[&a, &mallory]);
    let chain = net.params.chain_id.clone();
    let victim = consensus_secret(9);
    let cases: Vec<(&str, Action)> = vec![
        (
            "a proof made for another account",
            Action::RegisterValidator {
                consensus_key: victim.public_key(),
                address: "10.0.0.9:7000".into(),
                proof: victim.validator_pop(&chain, &a.public_key()),
            },
        ),
        (
            "a proof by another key",
            Action::RegisterValidator {
                consensus_key: victim.public_key(),
                address: "10.0.0.9:7000".into(),
                proof: mallory.validator_pop(&chain, &mallory.public_key()),
            },
        ),
        (
            "a proof for another chain",
            Action::RegisterValidator {
                consensus_key: victim.public_key(),
                address: "10.0.0.9:7000".into(),
                proof: victim.validator_pop(
                    &starling_types::ChainId::new("elsewhere").unwrap(),
                    &mallory.public_key(),
                ),
            },
        ),
        (
            "a small-order key",
            Action::RegisterValidator {
                consensus_key: PublicKey::ed25519({
                    let mut identity = [0u8; 32];
                    identity[0] = 1;
                    identity
                }),
                address: "10.0.0.9:7000".into(),
                proof: starling_types::Signature([0u8; 64]),
            },
        ),
    ];
    for (what, action) in cases {
        let r = net.run(&mallory, 0, action);
        assert!(
            matches!(r, Err(TxError::InvalidValidator(_))),
            "{what}: {r:?}"
        );
    }
    // The key's holder registers it.
    let reg = register(&net, &a, 9);
    assert_eq!(net.run(&a, 0, reg), Ok(()));
}

/// A global block by `proposer` carrying `reveal` (rule R1), at `time_ms`.
fn global_block(
    net: &mut Net,
    proposer: PublicKey,
    reveal: starling_types::Hash,
    time_ms: u64,
) -> Result<(Block, starling_ledger::Executed), starling_ledger::BlockError> {
    let g = &mut net.shards[0];
    g.propose_input(starling_ledger::BlockInput {
        height: g.height + 1,
        parent: g.head,
        timestamp_ms: time_ms,
        proposer,
        reveal,
        txs: vec![],
        inbound: vec![],
    })
}

/// The reveal validator `seed` owes in its next global block, from its own onion.
fn owed(net: &Net, seed: u8) -> starling_types::Hash {
    let g = &net.shards[0];
    let due = g
        .ledger
        .reveal_due(&g.state, &consensus_key(seed), g.height + 1)
        .unwrap();
    due.value(&Onion::from_secret(&consensus_secret(seed).to_seed()[..]))
        .unwrap()
}

use starling_ledger::randomness::{MixRecord, Onion, OnionRecord, RevealDue};
use starling_ledger::BlockError;

/// Rule R1: a registered proposer's first global block commits to its onion, its first block
/// of each later epoch reveals the layer beneath; anything else is an invalid block.
#[test]
fn global_blocks_carry_exactly_the_onion_layer_their_proposer_owes() {
    let p = params(2);
    let a = keys_on(&p, ShardId(1), 1, 1).pop().unwrap();
    let mut net = network(&[&a]);
    let v = consensus_key(1);
    let onion = Onion::from_secret(&consensus_secret(1).to_seed()[..]);
    let zero = starling_types::Hash::ZERO;
    // Not committed yet: zero, or any wrong value, is refused; the commitment passes.
    assert_eq!(
        global_block(&mut net, v, zero, 1_000).unwrap_err(),
        BlockError::BadReveal
    );
    global_block(&mut net, v, onion.commitment(), 1_000).unwrap();
    let rec: OnionRecord = net.get(ShardId::GLOBAL, StateKey::Onion(&v)).unwrap();
    assert_eq!((rec.head, rec.shown, rec.epoch), (onion.commitment(), 0, 0));
    // Same epoch: nothing more is owed, and nothing more is taken.
    let layer = onion.beneath(&onion.commitment(), 0).unwrap();
    assert_eq!(
        global_block(&mut net, v, layer, 2_000).unwrap_err(),
        BlockError::BadReveal
    );
    global_block(&mut net, v, zero, 2_000).unwrap();
    // A proposer outside the registry owes nothing (and may carry nothing).
    let stranger = a.public_key();
    assert_eq!(
        global_block(&mut net, stranger, layer, 3_000).unwrap_err(),
        BlockError::BadReveal
    );
    global_block(&mut net, stranger, zero, 3_000).unwrap();
    // Into epoch 1: the layer beneath the head is owed; zero, a layer further down, or the
    // head itself are refused.
    while net.shards[0].height < EPOCH - 1 {
        let t = 4_000 + net.shards[0].height;
        global_block(&mut net, stranger, zero, t).unwrap();
    }
    let deeper = onion.beneath(&layer, 1).unwrap();
    for wrong in [zero, deeper, onion.commitment()] {
        assert_eq!(
            global_block(&mut net, v, wrong, 9_000).unwrap_err(),
            BlockError::BadReveal
        );
    }
    assert_eq!(owed(&net, 1), layer);
    global_block(&mut net, v, layer, 9_000).unwrap();
    let rec: OnionRecord = net.get(ShardId::GLOBAL, StateKey::Onion(&v)).unwrap();
    assert_eq!((rec.head, rec.shown, rec.epoch), (layer, 1, 1));
    let mix: MixRecord = net.get(ShardId::GLOBAL, StateKey::EpochMix).unwrap();
    assert_eq!(mix.epoch, 1);
    assert_eq!(mix.mix, starling_ledger::randomness::mix_in(&zero, &layer));
    // Account shards take no reveals at all.
    let g = &net.shards[1];
    assert_eq!(
        g.ledger.reveal_due(&g.state, &v, g.height + 1).unwrap(),
        RevealDue::Nothing
    );
}

/// Rule R1's point: the seed drawn at an epoch's end is a function of the reveals and the
/// seed before, so the leader of the closing block (or of any block) cannot grind it by
/// choosing its block's contents, and a different honest reveal gives another seed.
#[test]
fn the_next_seed_depends_on_reveals_and_on_nothing_a_leader_chooses() {
    let p = params(2);
    let a = keys_on(&p, ShardId(1), 1, 1).pop().unwrap();
    let zero = starling_types::Hash::ZERO;
    // Epoch 0: validators 1 and 2 commit. Epoch 1: the reveals of `revealers`, then empty
    // blocks by a stranger up to a closing block stamped `close_ms`.
    let run = |revealers: &[u8], close_ms: u64| {
        let mut net = network(&[&a]);
        for (i, v) in [1u8, 2].iter().enumerate() {
            let c = owed(&net, *v);
            global_block(&mut net, consensus_key(*v), c, 1_000 + i as u64).unwrap();
        }
        let stranger = a.public_key();
        while net.shards[0].height < EPOCH - 1 {
            let t = 2_000 + net.shards[0].height;
            global_block(&mut net, stranger, zero, t).unwrap();
        }
        for v in revealers {
            let r = owed(&net, *v);
            global_block(&mut net, consensus_key(*v), r, 3_000 + u64::from(*v)).unwrap();
        }
        let mut last = None;
        while net.shards[0].height < 2 * EPOCH - 1 {
            let t = if net.shards[0].height == 2 * EPOCH - 2 {
                close_ms
            } else {
                4_000 + net.shards[0].height
            };
            last = Some(global_block(&mut net, stranger, zero, t).unwrap());
        }
        let (_, ex) = last.unwrap();
        ex.events
            .iter()
            .find_map(|e| match e {
                Event::CommitteesDrawn { epoch: 2, seed } => Some(*seed),
                _ => None,
            })
            .unwrap()
    };
    let both = run(&[1, 2], 50_000);
    // The closing leader stamps another time (another block id): the same seed.
    assert_eq!(run(&[1, 2], 60_000), both);
    // Validator 2 withholds its reveal: another seed (the one choice a leader has).
    let without_2 = run(&[1], 50_000);
    assert_ne!(without_2, both);
    assert_ne!(run(&[2], 50_000), both);
    assert_ne!(run(&[2], 50_000), without_2);
}
