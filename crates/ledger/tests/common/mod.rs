//! A small multi-shard network in memory, for ledger tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod gov;

use starling_crypto::SecretKey;
use starling_ledger::records::{AccountRecord, Pool, StateKey, ValidatorInfo};
use starling_ledger::{
    actions, Event, Executed, GenesisValidators, LedgerParams, MemLedger, TxError,
};
use starling_types::merkle;
use starling_types::receipt::ShardMessage;
use starling_types::{
    AccountId, Action, Asset, Block, ChainId, InboundBatch, PublicKey, Receipt, ShardId, TxBody,
    TxEnvelope,
};

pub const FUND: u128 = 1_000_000_000_000;
pub const FOUNDATION_SEED: u128 = 50_000_000_000;

pub struct Net {
    pub params: LedgerParams,
    pub shards: Vec<MemLedger>,
    pub proposer: AccountId,
    pub time_ms: u64,
}

pub use starling_testkit::seeded_key as key;

/// Finds `n` keys (by seed) whose accounts live on `shard`.
pub fn keys_on(params: &LedgerParams, shard: ShardId, n: usize, start_seed: u64) -> Vec<SecretKey> {
    (start_seed..)
        .map(key)
        .filter(|k| params.shard_map.shard_of(&k.public_key()) == shard)
        .take(n)
        .collect()
}

/// SPEND a validator bonds in these tests.
pub const BOND: u128 = FUND / 10;
/// Blocks per epoch in these tests.
pub const EPOCH: u64 = 4;

pub fn params(account_shards: u16) -> LedgerParams {
    let foundations = (0..3).map(|i| foundation_key(i).public_key()).collect();
    let mut p = LedgerParams::devnet(
        ChainId::new("starling-test").unwrap(),
        account_shards,
        foundations,
    )
    .unwrap();
    p.validator_bond = BOND;
    p.epoch_blocks = EPOCH;
    p
}

impl Net {
    /// A network with the global shard and `account_shards` account shards; every key in
    /// `funded` gets `FUND` SPEND, URC and CORE.
    pub fn new(account_shards: u16, funded: &[&SecretKey]) -> Net {
        Net::with(params(account_shards), funded)
    }

    /// A network with these parameters (see [`Net::new`]).
    pub fn with(params: LedgerParams, funded: &[&SecretKey]) -> Net {
        let account_shards = params.shard_map.ranges().len() as u16;
        let mut alloc = Vec::new();
        for k in funded {
            for asset in Asset::ALL {
                alloc.push((k.public_key(), asset, FUND));
            }
        }
        let shards = (0..=account_shards)
            .map(|s| MemLedger::genesis(params.clone(), ShardId(s), &alloc, FOUNDATION_SEED, 4))
            .collect();
        Net {
            params,
            shards,
            proposer: key(424242).public_key(),
            time_ms: 1_000,
        }
    }

    pub fn shard_of(&self, k: &SecretKey) -> ShardId {
        self.params.shard_map.shard_of(&k.public_key())
    }

    pub fn ledger(&mut self, s: ShardId) -> &mut MemLedger {
        &mut self.shards[s.0 as usize]
    }

    pub fn sign(&self, k: &SecretKey, nonce: u64, action: Action) -> TxEnvelope {
        // (A foundation's treasury tips nothing: rule TR1.)
        let tip = if self.params.foundations.contains(&k.public_key()) {
            0
        } else {
            10
        };
        let body = TxBody {
            account: k.public_key(),
            nonce,
            max_fee: 1_000_000_000,
            tip,
            expires_at_height: 1_000,
            action,
        };
        k.sign_tx(&self.params.chain_id, &body)
    }

    pub fn sign_body(&self, k: &SecretKey, body: &TxBody) -> TxEnvelope {
        k.sign_tx(&self.params.chain_id, body)
    }

    /// Proposes and applies one block on `shard`.
    pub fn block(
        &mut self,
        shard: ShardId,
        txs: Vec<TxEnvelope>,
        inbound: Vec<InboundBatch>,
    ) -> (Block, Executed) {
        self.time_ms += 1_000;
        let (t, p) = (self.time_ms, self.proposer);
        self.ledger(shard).propose(txs, inbound, t, p).unwrap()
    }

    /// Runs one transaction alone in a block and returns its outcome.
    pub fn run(&mut self, k: &SecretKey, nonce: u64, action: Action) -> Result<(), TxError> {
        let shard = self.shard_of(k);
        let tx = self.sign(k, nonce, action);
        let (_, ex) = self.block(shard, vec![tx], vec![]);
        tx_result(&ex, 0)
    }

    pub fn account(&self, k: &AccountId) -> Option<AccountRecord> {
        let s = self.params.shard_map.shard_of(k);
        actions::account(&self.shards[s.0 as usize].state, k).unwrap()
    }

    pub fn get<T: starling_types::Decode>(&self, shard: ShardId, key: StateKey<'_>) -> Option<T> {
        actions::get_record(&self.shards[shard.0 as usize].state, key).unwrap()
    }

    pub fn exists(&self, shard: ShardId, key: StateKey<'_>) -> bool {
        self.shards[shard.0 as usize]
            .state
            .get(&key.hash())
            .is_some()
    }

    pub fn pool(&self, shard: ShardId, pool: Pool) -> u128 {
        self.amount(shard, StateKey::Pool(pool))
    }

    /// A `u128` amount record (pools, issuance); 0 if absent.
    pub fn amount(&self, shard: ShardId, key: StateKey<'_>) -> u128 {
        self.shards[shard.0 as usize]
            .state
            .get(&key.hash())
            .map(|b| starling_ledger::records::decode_u128(b).unwrap())
            .unwrap_or(0)
    }

    /// A `u64` counter record (inbox, outbox); 0 if absent.
    pub fn counter(&self, shard: ShardId, key: StateKey<'_>) -> u64 {
        self.shards[shard.0 as usize]
            .state
            .get(&key.hash())
            .map(|b| starling_ledger::records::decode_u64(b).unwrap())
            .unwrap_or(0)
    }

    /// Delivers every message a source block emitted to its destination, in one block each.
    pub fn deliver(&mut self, source: &Block, executed: &Executed) -> Vec<(Block, Executed)> {
        batches_for(source, executed)
            .into_iter()
            .map(|(dest, batch)| self.block(dest, vec![], vec![batch]))
            .collect()
    }

    /// Delivers a block's messages, then those that their delivery emitted, until none are
    /// left; returns every block that took part, the source first.
    pub fn settle(&mut self, source: (Block, Executed)) -> Vec<(Block, Executed)> {
        let mut all = vec![source];
        let mut i = 0;
        while i < all.len() {
            let next = self.deliver(&all[i].0, &all[i].1);
            all.extend(next);
            i += 1;
        }
        all
    }

    /// Runs one transaction alone in a block and delivers everything it sets off; returns
    /// its outcome and every event on the way.
    pub fn run_settled(
        &mut self,
        k: &SecretKey,
        nonce: u64,
        action: Action,
    ) -> (Result<(), TxError>, Vec<Event>) {
        let shard = self.shard_of(k);
        let tx = self.sign(k, nonce, action);
        let out = self.block(shard, vec![tx], vec![]);
        let result = tx_result(&out.1, 0);
        let events = self
            .settle(out)
            .into_iter()
            .flat_map(|(_, ex)| ex.events)
            .collect();
        (result, events)
    }
}

/// Foundation `i`'s registrar (funded by the test) admits `member`, and the registry's
/// answer reaches the member's shard.
pub fn admit(net: &mut Net, i: u64, member: &AccountId) {
    let registrar = foundation_key(i);
    let nonce = net.account(&registrar.public_key()).map_or(0, |r| r.nonce);
    let (r, _) = net.run_settled(&registrar, nonce, Action::AdmitMember { member: *member });
    r.unwrap();
    assert_eq!(
        net.account(member)
            .and_then(|r| r.member)
            .map(|m| m.foundation),
        Some(i as u16)
    );
}

/// The registrar (and treasury account) of genesis foundation `i` in these tests.
pub fn foundation_key(i: u64) -> SecretKey {
    key(9_000 + i)
}

/// The inbound batches (one per destination) for the messages of a block.
pub fn batches_for(source: &Block, executed: &Executed) -> Vec<(ShardId, InboundBatch)> {
    let leaves: Vec<_> = executed.receipts.iter().map(Receipt::leaf_hash).collect();
    let mut by_dest: std::collections::BTreeMap<ShardId, Vec<(ShardMessage, merkle::MerkleProof)>> =
        Default::default();
    for (i, r) in executed.receipts.iter().enumerate() {
        if let Receipt::Message(m) = r {
            by_dest
                .entry(m.dest)
                .or_default()
                .push((m.clone(), merkle::prove(&leaves, i).unwrap()));
        }
    }
    by_dest
        .into_iter()
        .map(|(d, messages)| {
            (
                d,
                InboundBatch {
                    source: source.header.clone(),
                    messages,
                },
            )
        })
        .collect()
}

pub fn messages(executed: &Executed) -> Vec<ShardMessage> {
    executed
        .receipts
        .iter()
        .filter_map(|r| {
            if let Receipt::Message(m) = r {
                Some(m.clone())
            } else {
                None
            }
        })
        .collect()
}

pub fn tx_result(ex: &Executed, index: u32) -> Result<(), TxError> {
    for e in &ex.events {
        match e {
            Event::TxApplied { index: i, .. } if *i == index => return Ok(()),
            Event::TxRejected {
                index: i, error, ..
            } if *i == index => return Err(error.clone()),
            _ => {}
        }
    }
    panic!("no outcome for tx {index}")
}

/// A plain post of `text`.
pub fn post(text: &str) -> Action {
    Action::Post {
        text: text.into(),
        reply_to: None,
        quote_of: None,
        langs: vec![],
    }
}

pub fn consensus_secret(seed: u8) -> SecretKey {
    SecretKey::from_seed(starling_types::KeyType::Ed25519, &[seed; 32]).unwrap()
}

pub fn consensus_key(seed: u8) -> PublicKey {
    consensus_secret(seed).public_key()
}

/// Two account shards; genesis registry of three validators, each shard's committee all three.
pub fn network(keys: &[&SecretKey]) -> Net {
    let mut net = Net::new(2, keys);
    let genesis: Vec<PublicKey> = (1..=3).map(consensus_key).collect();
    let validators = GenesisValidators {
        registry: genesis
            .iter()
            .map(|k| ValidatorInfo {
                account: *k,
                consensus_key: *k,
                address: String::new(),
            })
            .collect(),
        committees: (0..=2).map(|s| (ShardId(s), genesis.clone())).collect(),
    };
    let mut alloc = Vec::new();
    for k in keys {
        for asset in Asset::ALL {
            alloc.push((k.public_key(), asset, FUND));
        }
    }
    net.shards = (0..=2)
        .map(|s| {
            MemLedger::genesis_with(
                net.params.clone(),
                ShardId(s),
                &alloc,
                FOUNDATION_SEED,
                4,
                &validators,
            )
        })
        .collect();
    net
}
