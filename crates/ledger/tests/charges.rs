//! Charges (rules FD1, FD2, M9): which foundation takes an account's fee cut, and how a new
//! charge period reassigns accounts on every shard.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use starling_ledger::records::{Pool, StateKey};
use starling_ledger::Event;
use starling_types::receipt::Payload;
use starling_types::{Federation, Hash, ShardId};

fn set_period(net: &mut Net, epochs: u64) {
    net.params.charge_period_epochs = epochs;
    for l in &mut net.shards {
        l.ledger.params.charge_period_epochs = epochs;
    }
}

#[test]
fn a_new_charge_period_reassigns_accounts_on_every_shard_and_fees_follow() {
    let p = params(2);
    let keys = keys_on(&p, ShardId(1), 40, 1);
    let funded: Vec<_> = keys.iter().collect();
    let mut net = network(&funded);
    set_period(&mut net, 2);
    // Genesis: every shard holds the first period, every foundation Active.
    let genesis: Federation = net.get(ShardId(1), StateKey::Federation).unwrap();
    assert_eq!(genesis, net.params.genesis_federation());
    assert_eq!((genesis.period, genesis.version), (0, 0));
    let global = ShardId::GLOBAL;
    assert_eq!(
        net.get::<Federation>(global, StateKey::Federation),
        Some(genesis.clone())
    );

    // The global shard's blocks up to the end of epoch 1: only the block that closes epoch
    // 1 (global epoch 2 begins, 2 % 2 == 0) starts a period, and sends it to both shards.
    let mut produced = Vec::new();
    while net.shards[0].height < 2 * EPOCH - 1 {
        produced.push(net.block(global, vec![], vec![]));
    }
    let reshuffles: Vec<(u64, Hash)> = produced
        .iter()
        .flat_map(|(_, ex)| &ex.events)
        .filter_map(|e| match e {
            Event::ChargesReshuffled { period, seed } => Some((*period, *seed)),
            _ => None,
        })
        .collect();
    // Seeded by the committee seed that same block drew for epoch 2.
    let (_, ex) = produced.last().unwrap();
    let drawn = ex
        .events
        .iter()
        .find_map(|e| match e {
            Event::CommitteesDrawn { epoch: 2, seed } => Some(*seed),
            _ => None,
        })
        .unwrap();
    let seed = Federation::period_seed(1, &drawn);
    assert_eq!(reshuffles, vec![(1, seed)]);
    let sent: Vec<ShardId> = messages(ex)
        .iter()
        .filter(|m| matches!(m.payload, Payload::Federation(_)))
        .map(|m| m.dest)
        .collect();
    assert_eq!(sent, vec![ShardId(1), ShardId(2)]);
    let on_global: Federation = net.get(global, StateKey::Federation).unwrap();
    assert_eq!(
        (on_global.period, on_global.version, on_global.seed),
        (1, 1, seed)
    );
    // Until the message arrives an account shard charges by the old period; then by the new.
    assert_eq!(
        net.get::<Federation>(ShardId(1), StateKey::Federation),
        Some(genesis.clone())
    );
    // (Each shard takes the global shard's messages in order: the epoch-1 committees first.)
    for (block, ex) in &produced {
        net.deliver(block, ex);
    }
    for s in [ShardId(1), ShardId(2)] {
        assert_eq!(
            net.get::<Federation>(s, StateKey::Federation),
            Some(on_global.clone())
        );
    }

    // About two in three accounts moved; one that did pays its next fee cut to its new
    // foundation, not its old one.
    let moved: Vec<_> = keys
        .iter()
        .filter(|k| genesis.charge_of(&k.public_key()) != on_global.charge_of(&k.public_key()))
        .collect();
    assert!((15..=38).contains(&moved.len()), "{}", moved.len());
    let k = moved[0];
    let (old, new) = (
        genesis.charge_of(&k.public_key()),
        on_global.charge_of(&k.public_key()),
    );
    let old_before = net.pool(ShardId(1), Pool::Foundation(old));
    let new_before = net.pool(ShardId(1), Pool::Foundation(new));
    net.run(k, 0, post("charged anew")).unwrap();
    assert_eq!(net.pool(ShardId(1), Pool::Foundation(old)), old_before);
    assert_ne!(net.pool(ShardId(1), Pool::Foundation(new)), new_before);
}

#[test]
fn a_boundary_that_draws_no_committee_starts_no_period() {
    // No validator registered: no fresh seed, so the period goes on.
    let mut net = Net::new(1, &[]);
    set_period(&mut net, 1);
    let mut events = Vec::new();
    while net.shards[0].height < 3 * EPOCH {
        events.extend(net.block(ShardId::GLOBAL, vec![], vec![]).1.events);
    }
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::ChargesReshuffled { .. })));
    let f: Federation = net.get(ShardId::GLOBAL, StateKey::Federation).unwrap();
    assert_eq!((f.period, f.version), (0, 0));
}
