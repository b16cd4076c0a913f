//! Starling's per-shard transaction pool: bounded, fee-ordered, nonce-ordered, rate-limited.
//!
//! Rules (cited in the code as P*):
//! - P1 admission: a transaction must belong to this shard (once the pool is half full,
//!   extend the account's run of pooled nonces without a gap if a client sent it; a peer's
//!   may arrive out of order, and is held), come from
//!   an account that exists on chain (an account exists once something credited it), not be
//!   expired, expire at most `max_expiry_blocks` ahead (rule T4), neither reuse a nonce the
//!   chain consumed nor be more than `max_nonce_ahead` past it, offer the current base cost
//!   (`max_fee >= gas * base_fee + tip`); the account's fee budget (balance, allowance,
//!   sponsorship) must cover the `max_fee`s, and its balance the tips, of all it has pooled.
//!   So a key with nothing on chain puts nothing in a block. Signatures are checked by the
//!   caller (in batches) before admission.
//! - P2 replacement: a transaction with the same account and nonce replaces the pooled one only
//!   if its tip per gas is at least `replace_bump_pct` percent higher.
//! - P3 bounds: at most `max_txs` transactions and `max_bytes` bytes in all, `max_per_account`
//!   per account. When full, the lowest-priority transaction that is the *last* of its account
//!   (so no gap opens) is evicted, if the newcomer pays `evict_bump_pct` percent more tip per
//!   gas (a real bid: equal tips on actions of different gas never evict what was
//!   acknowledged); otherwise the newcomer is refused. Refusals that hold whatever the
//!   signature are made before signatures are checked ([`Mempool::screen`]).
//! - P4 rate limit: each account may add `rate_burst` transactions at once and `rate_per_block`
//!   more per block (a token bucket on block height, so it is deterministic).
//! - P5 selection: repeatedly take the highest tip per gas among each account's *next*
//!   transaction (the one whose nonce the chain expects), until the block's gas is used.
//! - P6 pruning (a transaction that leaves takes the account's later ones with it, so no gap
//!   opens): finalized nonces and expired transactions leave the pool; so does every
//!   transaction a finalized block carried and rejected (for any reason but a full block: it
//!   would be rejected again), and every transaction pooled for more than `max_age_blocks`
//!   (one that keeps losing to better-paying ones ages out).
//! - P7 depth: the pool holds at most `max_pending_blocks` times the most finalized blocks
//!   recently took from it per block (a slowly decaying peak, never under `min_capacity`):
//!   offered more than the shard can finalize, it refuses the excess (`mempool_full`) instead
//!   of queueing it, unless a newcomer pays more than the cheapest pooled tail.
//!
//! Priority is tip per gas (the proposer's reward per unit of block space), ties broken by
//! arrival order. Everything is keyed by data, never by wall-clock time.

use starling_ledger::gas::tx_gas;
use starling_types::{AccountId, Hash, ShardId, ShardMap, Tx, TxBody};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod error;
pub use error::MempoolError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    pub max_txs: usize,
    pub max_bytes: usize,
    pub max_per_account: usize,
    pub max_nonce_ahead: u64,
    pub replace_bump_pct: u32,
    /// How much more tip per gas a newcomer must pay than the pooled tail it evicts from a
    /// full pool (P3), in percent: a real bid, not a difference in gas shape between equal
    /// tips (a post and a transfer at the same tip differ by less than 2x).
    pub evict_bump_pct: u32,
    pub rate_burst: u32,
    pub rate_per_block: u32,
    /// Blocks a transaction may wait in the pool before it is dropped.
    pub max_age_blocks: u64,
    /// How many blocks' worth of transactions the pool holds (P7): the pool takes at most
    /// this many times what recent finalized blocks drained from it per block, so what it
    /// accepts is final within a few blocks and the excess is refused at the door.
    pub max_pending_blocks: u64,
    /// The least the pool holds whatever the recent blocks drained (for bursts on a quiet
    /// shard).
    pub min_capacity: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 100_000,
            max_bytes: 64 * 1024 * 1024,
            max_per_account: 64,
            max_nonce_ahead: 64,
            replace_bump_pct: 10,
            evict_bump_pct: 100,
            rate_burst: 64,
            rate_per_block: 16,
            max_age_blocks: 600,
            max_pending_blocks: 2,
            min_capacity: 1_500,
        }
    }
}

/// Where a transaction comes from: a client of this node (the admission edge, where nonces
/// must come in order) or another node (gossip, forwarding), which may reorder them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Client,
    Peer,
}

/// What admission needs to know of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The height the next block will have.
    pub height: u64,
    /// The next block's base fee.
    pub base_fee: u64,
    /// How far past `height` a transaction may expire (the ledger's rule T4).
    pub max_expiry_blocks: u64,
}

/// What admission needs to know of the sending account on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// The next nonce the chain expects.
    pub nonce: u64,
    /// The most it can pay in fees: balance, allowance and sponsorship (ledger rule T6).
    pub fee_budget: u128,
    /// The most it can pay in tips: its SPEND balance alone.
    pub tip_budget: u128,
    /// The transaction would move a foundation treasury's SPEND by the treasury's own key
    /// (a tip, a transfer, a deposit): the ledger refuses it (rule TR1), so it never gets in.
    pub locked: bool,
}

/// What [`Mempool::check`] learns of a transaction that passes.
struct Screened {
    gas: u64,
    bytes: usize,
    tip_per_gas: u128,
    /// The priority of the pooled transaction with the same account and nonce.
    replacing: Option<Priority>,
}

/// Ordering key: higher tip per gas first, then earlier arrival.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Priority {
    /// Tip per gas scaled by 2^32, so small tips still order finely.
    tip_per_gas: u128,
    /// Arrival sequence, inverted so that earlier sorts higher.
    newer: std::cmp::Reverse<u64>,
}

#[derive(Clone, Debug)]
struct Entry {
    tx: Tx,
    gas: u64,
    bytes: usize,
    priority: Priority,
    /// Finalized blocks that carried it and rejected it for a reason that may pass later.
    losses: u32,
    /// The height at which it was last handed out to be sent to others.
    announced: u64,
    /// The last height at which it may stay: its expiry, or its admission plus the age limit.
    deadline: u64,
}

/// Rejections for a reason that may pass later after which a transaction leaves the pool.
pub const MAX_TRANSIENT_LOSSES: u32 = 3;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u64,
    height: u64,
}

/// How many transactions left the pool without a block taking them, by why (counted since
/// the pool was made; a transaction that leaves takes its account's later ones along, and
/// each is counted under the same reason).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Evicted to make room for a better-paying newcomer (P3).
    pub evicted: u64,
    /// A finalized block carried and rejected them for a reason that will not pass (P6).
    pub rejected: u64,
    /// Lost [`MAX_TRANSIENT_LOSSES`] times for a reason that might have passed later (P6).
    pub kept_losing: u64,
    /// Expired, or waited more than `max_age_blocks` (P6).
    pub expired: u64,
    /// Replaced by their own account's transaction of the same nonce paying more tip per gas
    /// (P2; at an equal tip, one of less gas pays more per gas), from a client or a peer.
    /// Its own signer made the newcomer, but the one replaced may have been acknowledged,
    /// and another node may still take it.
    pub replaced: u64,
}

/// The pool of one shard.
#[derive(Debug)]
pub struct Mempool {
    config: MempoolConfig,
    shard: ShardId,
    shard_map: ShardMap,
    accounts: HashMap<AccountId, BTreeMap<u64, Entry>>,
    /// Every pooled transaction's hash, with its account and nonce.
    hashes: HashMap<Hash, (AccountId, u64)>,
    /// Every pooled transaction by priority (lowest first), for eviction.
    by_priority: BTreeSet<(Priority, AccountId, u64)>,
    /// Every pooled transaction by the last height it may stay, so that a prune finds the
    /// expired ones without scanning the pool.
    by_deadline: BTreeSet<(u64, AccountId, u64)>,
    rate: HashMap<AccountId, Bucket>,
    bytes: usize,
    arrivals: u64,
    /// The most transactions finalized blocks recently took from the pool per block, times
    /// 16, decaying slowly (P7).
    drained_x16: u64,
    /// The height of the last prune.
    pruned_at: u64,
    /// The height at which full rate buckets were last forgotten.
    rates_swept_at: u64,
    drops: Drops,
}

/// What the pool needs to know of an account's state on chain.
pub trait AccountNonces {
    /// The next nonce the chain expects from `account` (0 for an unknown account).
    fn next_nonce(&self, account: &AccountId) -> u64;
}

impl<F: Fn(&AccountId) -> u64> AccountNonces for F {
    fn next_nonce(&self, account: &AccountId) -> u64 {
        self(account)
    }
}

impl Mempool {
    pub fn new(config: MempoolConfig, shard: ShardId, shard_map: ShardMap) -> Self {
        Self {
            config,
            shard,
            shard_map,
            accounts: HashMap::new(),
            hashes: HashMap::new(),
            by_priority: BTreeSet::new(),
            by_deadline: BTreeSet::new(),
            rate: HashMap::new(),
            bytes: 0,
            arrivals: 0,
            drained_x16: 0,
            pruned_at: 0,
            rates_swept_at: 0,
            drops: Drops::default(),
        }
    }

    /// The most transactions the pool holds now (P7).
    pub fn capacity(&self) -> usize {
        let by_rate = (self.drained_x16 / 16).saturating_mul(self.config.max_pending_blocks);
        usize::try_from(by_rate)
            .unwrap_or(usize::MAX)
            .max(self.config.min_capacity)
            .min(self.config.max_txs)
    }

    pub fn len(&self) -> usize {
        self.by_priority.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_priority.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// What left the pool without a block taking it, by reason.
    pub fn drops(&self) -> Drops {
        self.drops
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.hashes.contains_key(hash)
    }

    /// Admits a signature-checked transaction (P1–P4). `account` is the sender's state on
    /// chain, `None` if it does not exist.
    pub fn insert(
        &mut self,
        tx: Tx,
        at: &Admission,
        account_state: Option<AccountState>,
    ) -> Result<(), MempoolError> {
        self.insert_from(tx, at, account_state, Source::Client)
    }

    /// As [`Self::insert`], for a transaction from `source`: one relayed by another node may
    /// arrive before an earlier nonce of its account (gossip does not keep order), so it is
    /// held with a gap; a client's must come in order.
    pub fn insert_from(
        &mut self,
        tx: Tx,
        at: &Admission,
        account_state: Option<AccountState>,
        source: Source,
    ) -> Result<(), MempoolError> {
        let Screened {
            gas,
            bytes,
            tip_per_gas,
            replacing,
        } = self.check(&tx, at, account_state, source, true)?;
        let height = at.height;
        let body = &tx.body;
        let account = body.account;
        self.arrivals += 1;
        let priority = Priority {
            tip_per_gas,
            newer: std::cmp::Reverse(self.arrivals),
        };

        // P4
        self.take_token(&account, height)?;

        // P3: make room if needed (never for a replacement, which frees its own slot).
        if replacing.is_none() {
            while self.is_full(bytes) {
                match self.cheapest_tail() {
                    Some((p, a, n)) if self.outbids(tip_per_gas, p) && a != account => {
                        self.remove(&a, n);
                        self.drops.evicted += 1;
                    }
                    _ => {
                        self.refund_token(&account);
                        return Err(MempoolError::PoolFull);
                    }
                }
            }
        } else {
            if self.remove(&account, body.nonce).is_some() {
                self.drops.replaced += 1;
            }
        }

        self.hashes.insert(tx.hash, (account, body.nonce));
        self.by_priority.insert((priority, account, body.nonce));
        let deadline = body
            .expires_at_height
            .min(height.saturating_add(self.config.max_age_blocks));
        self.by_deadline.insert((deadline, account, body.nonce));
        self.bytes += bytes;
        let nonce = body.nonce;
        self.accounts.entry(account).or_default().insert(
            nonce,
            Entry {
                tx,
                gas,
                bytes,
                priority,
                losses: 0,
                announced: height,
                deadline,
            },
        );
        Ok(())
    }

    /// The refusals [`Self::insert_from`] would give each of `txs` (with its sender's
    /// `states`) whatever its signature and whatever else arrives with it: a caller screens a
    /// batch with this before it checks signatures, so what the pool refuses anyway (a
    /// duplicate, a used nonce, a full pool it pays too little to enter, ...) costs no
    /// signature check. `Ok` is no promise of admission. The pool's cheapest tail is found
    /// once for the whole batch.
    pub fn screen(
        &self,
        txs: &[Tx],
        states: &[Option<AccountState>],
        at: &Admission,
        source: Source,
    ) -> Vec<Result<(), MempoolError>> {
        let mut tail = None;
        txs.iter()
            .zip(states)
            .map(|(tx, state)| {
                let s = self.check(tx, at, *state, source, false)?;
                // P3/P7: a full pool that holds no tail this one outbids refuses it.
                if s.replacing.is_none() && self.is_full(s.bytes) {
                    let cheapest = *tail.get_or_insert_with(|| self.cheapest_tail());
                    let outbids = cheapest.is_some_and(|(p, a, _)| {
                        self.outbids(s.tip_per_gas, p) && a != tx.body.account
                    });
                    if !outbids {
                        return Err(MempoolError::PoolFull);
                    }
                }
                Ok(())
            })
            .collect()
    }

    /// Whether one more transaction of `bytes` exceeds the pool's depth (P7) or bytes (P3).
    fn is_full(&self, bytes: usize) -> bool {
        self.len() + 1 > self.capacity() || self.bytes + bytes > self.config.max_bytes
    }

    /// The lowest-priority transaction that is the last of its account: the only kind P3
    /// evicts, so that no gap opens.
    fn cheapest_tail(&self) -> Option<(Priority, AccountId, u64)> {
        self.by_priority
            .iter()
            .find(|(_, a, n)| self.accounts.get(a).and_then(|m| m.keys().next_back()) == Some(n))
            .copied()
    }

    /// P1's budgets over all the account has pooled, this included (a replacement frees what
    /// it replaces): a tip only an allowance or a sponsorship could "cover" would buy
    /// priority, then fail in the block, for free.
    fn check_funds(
        &self,
        account: &AccountId,
        tx: &TxBody,
        st: AccountState,
    ) -> Result<(), MempoolError> {
        if st.locked {
            return Err(MempoolError::TreasuryLocked);
        }
        let others = self.accounts.get(account).into_iter().flatten();
        let (mut fees, mut tips) = (tx.max_fee, tx.tip);
        for (_, e) in others.filter(|(n, _)| **n != tx.nonce) {
            fees = fees.saturating_add(e.tx.body.max_fee);
            tips = tips.saturating_add(e.tx.body.tip);
        }
        for (needed, available) in [(fees, st.fee_budget), (tips, st.tip_budget)] {
            if needed > available {
                return Err(MempoolError::InsufficientFunds { needed, available });
            }
        }
        Ok(())
    }

    /// P1 and P2 for `tx` against the pool as it is. `gap_rule` applies the client's gap
    /// rule, which earlier transactions of the same batch may satisfy.
    fn check(
        &self,
        tx: &Tx,
        at: &Admission,
        account_state: Option<AccountState>,
        source: Source,
        gap_rule: bool,
    ) -> Result<Screened, MempoolError> {
        let height = at.height;
        let body = &tx.body;
        let account = body.account;
        // P1
        let home = body.home(&self.shard_map);
        if home != self.shard {
            return Err(MempoolError::WrongShard(home));
        }
        if self.hashes.contains_key(&tx.hash) {
            return Err(MempoolError::Duplicate);
        }
        let Some(state) = account_state else {
            return Err(MempoolError::UnknownAccount);
        };
        let chain_nonce = state.nonce;
        if body.expires_at_height < height {
            return Err(MempoolError::Expired(body.expires_at_height));
        }
        let max_expiry = height.saturating_add(at.max_expiry_blocks);
        if body.expires_at_height > max_expiry {
            return Err(MempoolError::ExpiryTooFar {
                expires_at: body.expires_at_height,
                max: max_expiry,
            });
        }
        if body.nonce < chain_nonce {
            return Err(MempoolError::NonceTooLow {
                expected: chain_nonce,
                got: body.nonce,
            });
        }
        if body.nonce > chain_nonce.saturating_add(self.config.max_nonce_ahead) {
            return Err(MempoolError::NonceTooHigh {
                expected: chain_nonce,
                got: body.nonce,
            });
        }
        // Under pressure, no gaps from clients: once the pool is half full, a client's
        // transaction must extend its account's pooled nonces from the chain's, so what
        // fills the pool can go into a block (P7). Below that, a client may send its nonces
        // to different nodes, which see them out of order.
        let next_free = self.next_free(&account, chain_nonce);
        if gap_rule
            && source == Source::Client
            && body.nonce > next_free
            && self.len().saturating_mul(2) >= self.capacity()
        {
            return Err(MempoolError::NonceTooHigh {
                expected: next_free,
                got: body.nonce,
            });
        }
        let bytes = tx.envelope.encoded_len();
        let gas = tx_gas(bytes, &body.action);
        // A ballot pays nothing (ledger rule BL3): what admits it is its credential, which
        // the caller checked into `account_state`.
        let required = match body.action {
            starling_types::Action::Ballot(_) => 0,
            _ => (gas as u128)
                .saturating_mul(at.base_fee as u128)
                .saturating_add(body.tip),
        };
        if body.max_fee < required {
            return Err(MempoolError::FeeTooLow {
                required,
                max_fee: body.max_fee,
            });
        }
        self.check_funds(&account, body, state)?;
        let tip_per_gas = (body.tip << 32).checked_div(gas as u128).unwrap_or(0);

        // P2: replacement of the same nonce.
        let replacing = self
            .accounts
            .get(&account)
            .and_then(|m| m.get(&body.nonce))
            .map(|e| e.priority);
        if let Some(old) = replacing {
            let needed = old
                .tip_per_gas
                .saturating_mul(100 + self.config.replace_bump_pct as u128)
                / 100;
            if tip_per_gas < needed.max(old.tip_per_gas + 1) {
                return Err(MempoolError::ReplacementUnderpriced(
                    self.config.replace_bump_pct,
                ));
            }
        } else {
            let pooled = self.accounts.get(&account).map_or(0, BTreeMap::len);
            if pooled >= self.config.max_per_account {
                return Err(MempoolError::AccountFull(pooled));
            }
        }
        Ok(Screened {
            gas,
            bytes,
            tip_per_gas,
            replacing,
        })
    }

    /// Whether a newcomer paying `tip_per_gas` may evict a pooled tail of priority `victim`
    /// (P3): it must pay `evict_bump_pct` percent more, and more than nothing.
    fn outbids(&self, tip_per_gas: u128, victim: Priority) -> bool {
        let needed = victim
            .tip_per_gas
            .saturating_mul(100 + u128::from(self.config.evict_bump_pct))
            / 100;
        tip_per_gas > needed
    }

    /// The first nonce after the run of pooled nonces of `account` from `chain_nonce` on.
    fn next_free(&self, account: &AccountId, chain_nonce: u64) -> u64 {
        let mut next = chain_nonce;
        if let Some(m) = self.accounts.get(account) {
            for n in m.range(chain_nonce..).map(|(n, _)| *n) {
                if n != next {
                    break;
                }
                next += 1;
            }
        }
        next
    }

    /// Pooled transactions not handed out for `every` blocks before `height`, at most `max`,
    /// oldest arrivals first; each is marked as handed out at `height`. What a relay sends its
    /// shard's validators again while they have not included it (one of them may have refused
    /// it when its own pool was full, or missed it).
    pub fn due_again(&mut self, height: u64, every: u64, max: usize) -> Vec<Tx> {
        let mut out = Vec::new();
        for (_, account, nonce) in self.by_priority.iter().rev() {
            if out.len() >= max {
                break;
            }
            if let Some(e) = self
                .accounts
                .get_mut(account)
                .and_then(|m| m.get_mut(nonce))
            {
                if height.saturating_sub(e.announced) >= every {
                    e.announced = height;
                    out.push(e.tx.clone());
                }
            }
        }
        out
    }

    /// Removes `account`'s transaction `nonce` and every later one (which could no longer go
    /// into a block); returns how many left.
    fn remove_from(&mut self, account: &AccountId, nonce: u64) -> u64 {
        let later: Vec<u64> = self
            .accounts
            .get(account)
            .map(|m| m.range(nonce..).map(|(n, _)| *n).collect())
            .unwrap_or_default();
        let mut removed = 0;
        for n in later {
            if self.remove(account, n).is_some() {
                removed += 1;
            }
        }
        removed
    }

    fn take_token(&mut self, account: &AccountId, height: u64) -> Result<(), MempoolError> {
        let c = &self.config;
        let b = self.rate.entry(*account).or_insert(Bucket {
            tokens: c.rate_burst as u64,
            height,
        });
        let refill = height
            .saturating_sub(b.height)
            .saturating_mul(c.rate_per_block as u64);
        b.tokens = b.tokens.saturating_add(refill).min(c.rate_burst as u64);
        b.height = b.height.max(height);
        if b.tokens == 0 {
            return Err(MempoolError::RateLimited);
        }
        b.tokens -= 1;
        Ok(())
    }

    fn refund_token(&mut self, account: &AccountId) {
        if let Some(b) = self.rate.get_mut(account) {
            b.tokens = (b.tokens + 1).min(self.config.rate_burst as u64);
        }
    }

    fn remove(&mut self, account: &AccountId, nonce: u64) -> Option<Tx> {
        let map = self.accounts.get_mut(account)?;
        let e = map.remove(&nonce)?;
        if map.is_empty() {
            self.accounts.remove(account);
        }
        self.by_priority.remove(&(e.priority, *account, nonce));
        self.by_deadline.remove(&(e.deadline, *account, nonce));
        self.hashes.remove(&e.tx.hash);
        self.bytes -= e.bytes;
        Some(e.tx)
    }

    /// P5: the transactions for a block of at most `max_gas`, in the order to include them.
    /// Each account contributes a run of consecutive nonces starting at its chain nonce.
    pub fn select(&self, max_gas: u64, max_txs: usize, nonces: &impl AccountNonces) -> Vec<Tx> {
        // The candidate heads: each account's next executable transaction.
        let mut heads: BTreeSet<(Priority, AccountId, u64)> = BTreeSet::new();
        for (account, txs) in &self.accounts {
            let next = nonces.next_nonce(account);
            if let Some(e) = txs.get(&next) {
                heads.insert((e.priority, *account, next));
            }
        }
        let mut out = Vec::new();
        let mut gas = 0u64;
        while let Some((_, account, nonce)) = heads.pop_last() {
            if out.len() >= max_txs {
                break;
            }
            let Some(e) = self.accounts.get(&account).and_then(|m| m.get(&nonce)) else {
                continue;
            };
            if gas + e.gas > max_gas {
                // Too big for what is left; smaller ones from other accounts may still fit.
                continue;
            }
            gas += e.gas;
            out.push(e.tx.clone());
            if let Some(next) = self
                .accounts
                .get(&account)
                .and_then(|m| m.get(&(nonce + 1)))
            {
                heads.insert((next.priority, account, nonce + 1));
            }
        }
        out
    }

    /// P6: drops what the chain has consumed (nonces below each account's next), what has
    /// expired before `height` or waited more than `max_age_blocks`, and the transactions a
    /// finalized block `rejected`: at once if the reason is permanent (`false`), after
    /// [`MAX_TRANSIENT_LOSSES`] if it may pass later (`true`: a full block, a nonce gap, funds
    /// not there yet). `touched` are the accounts whose nonces moved.
    pub fn prune<'a>(
        &mut self,
        height: u64,
        touched: impl IntoIterator<Item = &'a AccountId>,
        nonces: &impl AccountNonces,
        rejected: &[(Hash, bool)],
    ) {
        for (hash, transient) in rejected {
            let Some((a, n)) = self.hashes.get(hash).copied() else {
                continue;
            };
            let evict = match self.accounts.get_mut(&a).and_then(|m| m.get_mut(&n)) {
                Some(e) if *transient => {
                    e.losses += 1;
                    e.losses >= MAX_TRANSIENT_LOSSES
                }
                _ => true,
            };
            if evict {
                let removed = self.remove_from(&a, n);
                if *transient {
                    self.drops.kept_losing += removed;
                } else {
                    self.drops.rejected += removed;
                }
            }
        }
        let mut drained = 0u64;
        for account in touched {
            let next = nonces.next_nonce(account);
            let stale: Vec<u64> = self
                .accounts
                .get(account)
                .map(|m| m.range(..next).map(|(n, _)| *n).collect())
                .unwrap_or_default();
            for n in stale {
                if self.remove(account, n).is_some() {
                    drained += 1;
                }
            }
        }
        // P7: the most the chain recently took per block: a peak that decays slowly (by
        // 1/256 a block), so a few thin blocks do not shrink the pool and start a spiral of
        // refusals and thinner blocks.
        let blocks = height.saturating_sub(self.pruned_at).max(1);
        self.pruned_at = self.pruned_at.max(height);
        let per_block_x16 = drained.saturating_mul(16) / blocks;
        let decayed = self
            .drained_x16
            .saturating_sub((self.drained_x16 / 256).saturating_mul(blocks).max(1));
        self.drained_x16 = decayed.max(per_block_x16);
        // Expired, or waited too long: the entries whose deadline is below `height`.
        while let Some(&(deadline, a, n)) = self.by_deadline.first() {
            if deadline >= height {
                break;
            }
            self.drops.expired += self.remove_from(&a, n);
            // (Always gone now; never loop on an index entry the pool lost.)
            self.by_deadline.remove(&(deadline, a, n));
        }
        // Forget rate buckets that are full again, so the table stays bounded (every 16
        // blocks: the table holds at most the accounts admitted since).
        if height < self.rates_swept_at.saturating_add(16) {
            return;
        }
        self.rates_swept_at = height;
        let (burst, per_block) = (
            self.config.rate_burst as u64,
            self.config.rate_per_block as u64,
        );
        self.rate.retain(|_, b| {
            b.tokens + height.saturating_sub(b.height).saturating_mul(per_block) < burst
        });
    }
}
