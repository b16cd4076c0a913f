//! Properties over random traffic: determinism, conservation of supply, exactly-once messages.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use starling_crypto::SecretKey;
use starling_ledger::records::{Pool, StateKey};
use starling_ledger::MemLedger;
use starling_types::receipt::Payload;
use starling_types::{
    Action, Asset, Block, GovAct, InboundBatch, Motion, PostId, ShardId, TxBody, TxEnvelope,
};

/// A random mix of valid and invalid transactions from `keys` on `shard`.
fn random_txs(
    net: &Net,
    keys: &[SecretKey],
    nonces: &mut [u64],
    rng: &mut ChaCha20Rng,
    n: usize,
) -> Vec<TxEnvelope> {
    let all: Vec<_> = keys.iter().map(SecretKey::public_key).collect();
    (0..n)
        .map(|_| {
            let i = rng.gen_range(0..keys.len());
            let k = &keys[i];
            let action = match rng.gen_range(0..13) {
                10 => Action::Sponsor {
                    account: all[rng.gen_range(0..all.len())],
                    // Sometimes over the cap, or more than the sender has.
                    amount: match rng.gen_range(0..8) {
                        0 => net.params.sponsorship_cap + 1,
                        1 => FUND * 3,
                        _ => rng.gen_range(0..50_000_000),
                    },
                },
                // Governance acts the global shard refuses (no one here holds a seat): the
                // deposit travels there and back.
                12 => Action::Govern(if rng.gen_bool(0.5) {
                    GovAct::Propose {
                        foundation: 0,
                        title: "t".into(),
                        text: String::new(),
                        motion: Motion::Spend {
                            to: all[rng.gen_range(0..all.len())],
                            amount: 1,
                        },
                    }
                } else {
                    GovAct::Challenge {
                        proposal: rng.gen_range(0..2),
                    }
                }),
                11 => Action::EndSponsorship {
                    account: all[rng.gen_range(0..all.len())],
                },
                0 | 1 => Action::Transfer {
                    asset: Asset::ALL[rng.gen_range(0..3)],
                    to: all[rng.gen_range(0..all.len())],
                    // Sometimes more than anyone has.
                    amount: if rng.gen_bool(0.1) {
                        FUND * 3
                    } else {
                        rng.gen_range(0..1_000_000)
                    },
                },
                2 => Action::Post {
                    text: "p".repeat(rng.gen_range(0..310)),
                    reply_to: None,
                    quote_of: None,
                    langs: vec![],
                },
                3 => Action::Like {
                    post: PostId {
                        author: all[rng.gen_range(0..all.len())],
                        seq: rng.gen_range(0..4),
                    },
                },
                4 => Action::Follow {
                    target: all[rng.gen_range(0..all.len())],
                },
                5 => Action::Unfollow {
                    target: all[rng.gen_range(0..all.len())],
                },
                8 => {
                    let holder = &keys[rng.gen_range(0..keys.len())];
                    Action::RegisterValidator {
                        consensus_key: holder.public_key(),
                        address: "127.0.0.1:9000".into(),
                        // Sometimes the key's own proof for this sender, sometimes not.
                        proof: holder.validator_pop(&net.params.chain_id, &k.public_key()),
                    }
                }
                9 => Action::RetireValidator,
                6 => Action::DeletePost {
                    post: PostId {
                        author: k.public_key(),
                        seq: rng.gen_range(0..4),
                    },
                },
                _ => Action::Repost {
                    post: PostId {
                        author: all[rng.gen_range(0..all.len())],
                        seq: rng.gen_range(0..4),
                    },
                },
            };
            // Mostly the right nonce; sometimes a replay or a gap.
            let nonce = match rng.gen_range(0..10) {
                0 => nonces[i].saturating_sub(1),
                1 => nonces[i] + 2,
                _ => nonces[i],
            };
            let body = TxBody {
                account: k.public_key(),
                nonce,
                max_fee: rng.gen_range(0..50_000_000),
                tip: rng.gen_range(0..3),
                expires_at_height: 10_000,
                action,
            };
            let tx = net.sign_body(k, &body);
            // Optimistically advance; rejected ones make later ones gaps, which is fine.
            if nonce == nonces[i] {
                nonces[i] += 1;
            }
            tx
        })
        .collect()
}

/// Everything each asset adds up to across shards: balances of `accounts`, what they hold
/// from sponsors, pools, and credits and sponsorships still in flight.
fn totals(
    net: &Net,
    accounts: &[starling_types::AccountId],
    in_flight: &[(Block, starling_ledger::Executed)],
) -> [u128; 3] {
    let mut sum = [0u128; 3];
    for a in accounts {
        if let Some(r) = net.account(a) {
            for (s, b) in sum.iter_mut().zip(r.balances) {
                *s += b;
            }
            sum[0] += r.sponsor.map_or(0, |s| s.left);
        }
    }
    for (s, _) in net.shards.iter().enumerate() {
        let s = ShardId(s as u16);
        for pool in Pool::all(net.params.foundations.len() as u16) {
            sum[0] += net.pool(s, pool);
        }
    }
    for (_, ex) in in_flight {
        for m in messages(ex) {
            let next = net.counter(m.dest, StateKey::Inbox(m.source));
            if m.seq >= next {
                match m.payload {
                    Payload::Credit { asset, amount, .. } => sum[asset.index()] += amount,
                    Payload::Sponsor { amount, .. } => sum[0] += amount,
                    Payload::Govern { deposit, .. } => sum[0] += deposit,
                    _ => {}
                }
            }
        }
    }
    sum
}

fn issued(net: &Net) -> [u128; 3] {
    let mut sum = [0u128; 3];
    for s in 0..net.shards.len() {
        for a in Asset::ALL {
            sum[a.index()] += net.amount(ShardId(s as u16), StateKey::Issued(a));
        }
    }
    sum
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// (a) Same blocks, same root: a second node with another tree layout re-executes every
    /// block (checking all its roots) and ends in the same state.
    #[test]
    fn replicas_agree(seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let p = params(1);
        let keys = keys_on(&p, ShardId(1), 6, seed % 1000);
        let refs: Vec<_> = keys.iter().collect();
        let mut net = Net::new(1, &refs);
        let mut replica = MemLedger { state: starling_state::MemState::new(9), ..net.shards[1].clone() };
        replica.state.commit(&net.shards[1].ledger.genesis_writes(&alloc(&refs), FOUNDATION_SEED));
        prop_assert_eq!(replica.state.root(), net.shards[1].state.root());
        for _ in 0..6 {
            let mut nonces: Vec<u64> = keys.iter().map(|k| net.account(&k.public_key()).map_or(0, |r| r.nonce)).collect();
            let n = rng.gen_range(0..25);
            let txs = random_txs(&net, &keys, &mut nonces, &mut rng, n);
            let (block, _) = net.block(ShardId(1), txs, vec![]);
            replica.apply(&block).unwrap();
            prop_assert_eq!(replica.state.root(), block.header.state_root);
        }
        // A tampered block is refused and leaves the replica unchanged.
        let (mut block, _) = net.block(ShardId(1), vec![], vec![]);
        let root = replica.state.root();
        block.header.state_root.0[0] ^= 1;
        prop_assert!(replica.apply(&block).is_err());
        prop_assert_eq!(replica.state.root(), root);
    }

    /// (b) + (c) Supply is conserved under random valid and invalid traffic across shards,
    /// with messages delivered late, out of order and more than once.
    #[test]
    fn supply_is_conserved_and_messages_apply_once(seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let p = params(2);
        let mut keys = keys_on(&p, ShardId(1), 4, seed % 1000);
        keys.extend(keys_on(&p, ShardId(2), 4, seed % 1000));
        let refs: Vec<_> = keys.iter().collect();
        let mut net = Net::new(2, &refs);
        let mut accounts: Vec<_> = keys.iter().map(SecretKey::public_key).collect();
        accounts.push(net.proposer);
        let issued = issued(&net);
        prop_assert_eq!(totals(&net, &accounts, &[]), issued);

        let mut produced: Vec<(Block, starling_ledger::Executed)> = Vec::new();
        for round in 0..8 {
            for shard in [ShardId(1), ShardId(2)] {
                let on_shard: Vec<usize> = (0..keys.len()).filter(|i| net.shard_of(&keys[*i]) == shard).collect();
                let ks: Vec<SecretKey> = on_shard.iter().map(|i| SecretKey::from_seed(starling_types::KeyType::Ed25519, &keys[*i].to_seed()).unwrap()).collect();
                // Nonces as the chain has them (rejections in earlier blocks consumed none).
                let mut ns: Vec<u64> = on_shard.iter().map(|i| net.account(&keys[*i].public_key()).map_or(0, |r| r.nonce)).collect();
                let mut txs = Vec::new();
                if round == 0 && shard == ShardId(1) {
                    // One valid transfer across shards in every run, first in its block, so
                    // cross-shard credits are exercised whatever the random draw.
                    let body = TxBody {
                        account: ks[0].public_key(),
                        nonce: ns[0],
                        max_fee: 50_000_000,
                        tip: 0,
                        expires_at_height: 10_000,
                        action: Action::Transfer { asset: Asset::Spend, to: keys[4].public_key(), amount: 1_000 },
                    };
                    txs.push(net.sign_body(&ks[0], &body));
                    ns[0] += 1;
                }
                let n = rng.gen_range(0..12);
                txs.extend(random_txs(&net, &ks, &mut ns, &mut rng, n));
                // Deliver some earlier blocks' messages: random picks (late, out of order,
                // again), put in the canonical order rule B5 asks of one block.
                let mut inbound: Vec<InboundBatch> = Vec::new();
                for _ in 0..rng.gen_range(0..4) {
                    if produced.is_empty() { break; }
                    let (b, ex) = &produced[rng.gen_range(0..produced.len())];
                    inbound.extend(batches_for(b, ex).into_iter().filter(|(d, _)| *d == shard).map(|(_, batch)| batch));
                }
                inbound.sort_by_key(|b| (b.source.shard, b.source.height));
                inbound.dedup_by_key(|b| (b.source.shard, b.source.height));
                let out = net.block(shard, txs, inbound);
                produced.push(out);
                prop_assert_eq!(totals(&net, &accounts, &produced), issued);
            }
        }
        // Finally deliver everything, in order, twice over: nothing is lost or doubled. The
        // global shard's answers (refunded deposits) are delivered the same way.
        let all: Vec<_> = produced.iter().flat_map(|(b, ex)| batches_for(b, ex)).collect();
        let sent = produced.len();
        for (dest, batch) in all.iter().chain(all.iter()) {
            let out = net.block(*dest, vec![], vec![batch.clone()]);
            if *dest == ShardId::GLOBAL {
                produced.push(out);
            }
        }
        prop_assert_eq!(totals(&net, &accounts, &produced), issued);
        let back: Vec<_> = produced[sent..].iter().flat_map(|(b, ex)| batches_for(b, ex)).collect();
        for (dest, batch) in back.iter().chain(back.iter()) {
            net.block(*dest, vec![], vec![batch.clone()]);
        }
        prop_assert_eq!(totals(&net, &accounts, &produced), issued);
        // The run exercised both outcomes and real cross-shard credits.
        let events = produced.iter().flat_map(|(_, ex)| ex.events.iter());
        let (mut applied, mut rejected) = (0, 0);
        for e in events {
            match e {
                starling_ledger::Event::TxApplied { .. } => applied += 1,
                starling_ledger::Event::TxRejected { .. } => rejected += 1,
                _ => {}
            }
        }
        let credits = produced.iter().flat_map(|(_, ex)| messages(ex)).filter(|m| matches!(m.payload, Payload::Credit { .. })).count();
        prop_assert!(applied > 0 && rejected > 0 && credits > 0, "applied {} rejected {} credits {}", applied, rejected, credits);
        for (b, ex) in &produced {
            for m in messages(ex) {
                let next = net.counter(m.dest, StateKey::Inbox(m.source));
                prop_assert!(m.dest == ShardId::GLOBAL || next > m.seq, "message {:?} from block {} not applied", m, b.header.height);
            }
        }
    }
}

fn alloc(keys: &[&SecretKey]) -> Vec<(starling_types::AccountId, Asset, u128)> {
    keys.iter()
        .flat_map(|k| Asset::ALL.map(|a| (k.public_key(), a, FUND)))
        .collect()
}
