//! Fees: who pays, who receives, and how the base fee moves.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use starling_ledger::gas;
use starling_ledger::records::{Meta, Pool, StateKey};
use starling_types::{Action, Asset, ShardId, TxBody};

#[test]
fn base_fee_is_split_into_pools_and_tips_go_to_the_proposer() {
    let p = params(1);
    let a = keys_on(&p, ShardId(1), 1, 1).pop().unwrap();
    let f = p.genesis_federation().charge_of(&a.public_key());
    let registrar = foundation_key(u64::from(f));
    let mut net = Net::new(1, &[&a, &registrar]);
    // A verified member of the foundation it is charged to.
    admit(&mut net, u64::from(f), &a.public_key());
    net.proposer = keys_on(&p, ShardId(1), 1, 5_000)
        .pop()
        .unwrap()
        .public_key();
    let pools_before: Vec<u128> = [Pool::Burned, Pool::Operations, Pool::Venture, Pool::Rewards]
        .into_iter()
        .map(|pool| net.pool(ShardId(1), pool))
        .collect();
    let body = TxBody {
        account: a.public_key(),
        nonce: 0,
        max_fee: 10_000_000,
        tip: 77,
        expires_at_height: 100,
        action: post("fees"),
    };
    let env = net.sign_body(&a, &body);
    let gas_used = gas::tx_gas(env.encoded_len(), &body.action);
    let meta: Meta = net.get(ShardId(1), StateKey::Meta).unwrap();
    let base_fee = meta.base_fee as u128;
    let base_cost = gas_used as u128 * base_fee;
    let spend_before = net.account(&a.public_key()).unwrap().balances[0];
    let treasury_before = net.pool(ShardId(1), Pool::Foundation(f));
    let (_, ex) = net.block(ShardId(1), vec![env], vec![]);
    assert_eq!(tx_result(&ex, 0), Ok(()));

    // A new member: the allowance (paid by its foundation) covers the base cost.
    let acct = net.account(&a.public_key()).unwrap();
    assert_eq!(acct.balances[0], spend_before - 77);
    assert_eq!(acct.allowance, net.params.allowance.initial - base_cost);
    let split = net.params.fee_split.split(base_cost);
    let gained = |pool: Pool, i: usize| net.pool(ShardId(1), pool) - pools_before[i];
    assert_eq!(gained(Pool::Burned, 0), split.burn);
    assert_eq!(gained(Pool::Operations, 1), split.operations);
    assert_eq!(gained(Pool::Venture, 2), split.venture);
    assert_eq!(gained(Pool::Rewards, 3), split.rewards);
    assert_eq!(
        net.pool(ShardId(1), Pool::Foundation(f)),
        treasury_before - base_cost + split.foundation
    );
    assert_eq!(net.account(&net.proposer).unwrap().balances[0], 77);
}

#[test]
fn allowance_runs_out_then_the_balance_pays() {
    let p = params(1);
    let a = keys_on(&p, ShardId(1), 1, 1).pop().unwrap();
    let mut net = Net::new(1, &[&a, &foundation_key(0)]);
    for l in &mut net.shards {
        l.ledger.params.allowance.cap = 10_000_000;
        l.ledger.params.allowance.refill_per_block = 0;
    }
    admit(&mut net, 0, &a.public_key());
    // The cap clamps the new member's allowance at first use; spend it down.
    let mut nonce = 0;
    while net.account(&a.public_key()).unwrap().allowance > 0 {
        net.run(&a, nonce, post("spend allowance")).unwrap();
        nonce += 1;
    }
    let before = net.account(&a.public_key()).unwrap().balances[0];
    net.run(&a, nonce, post("now I pay")).unwrap();
    assert!(net.account(&a.public_key()).unwrap().balances[0] < before);
}

#[test]
fn base_fee_rises_when_blocks_are_full_and_falls_when_empty() {
    let p = params(1);
    let keys = keys_on(&p, ShardId(1), 40, 1);
    let refs: Vec<_> = keys.iter().collect();
    let mut net = Net::new(1, &refs);
    for l in &mut net.shards {
        l.ledger.params.block_gas_limit = 200_000;
    }
    let meta = |net: &Net| -> Meta { net.get(ShardId(1), StateKey::Meta).unwrap() };
    let start = meta(&net).base_fee;
    let txs: Vec<_> = keys
        .iter()
        .map(|k| net.sign(k, 0, post("full block")))
        .collect();
    let (_, ex) = net.block(ShardId(1), txs, vec![]);
    assert!(ex.gas_used > 100_000, "used {}", ex.gas_used);
    let risen = meta(&net).base_fee;
    assert!(risen > start, "{risen} > {start}");
    net.block(ShardId(1), vec![], vec![]);
    assert!(meta(&net).base_fee < risen);
    // Fees never drop below the floor.
    for _ in 0..100 {
        net.block(ShardId(1), vec![], vec![]);
    }
    assert_eq!(meta(&net).base_fee, net.params.min_base_fee);
}

#[test]
fn transfers_pay_fees_on_top_of_the_amount() {
    let p = params(1);
    let k = keys_on(&p, ShardId(1), 2, 1);
    let mut net = Net::new(1, &[&k[0], &k[1]]);
    for l in &mut net.shards {
        l.ledger.params.allowance.period_blocks = 0;
    }
    let all = net.account(&k[0].public_key()).unwrap().balances[0];
    let r = net.run(
        &k[0],
        0,
        Action::Transfer {
            asset: Asset::Spend,
            to: k[1].public_key(),
            amount: all,
        },
    );
    assert!(matches!(
        r,
        Err(starling_ledger::TxError::InsufficientBalance { .. })
    ));
}
