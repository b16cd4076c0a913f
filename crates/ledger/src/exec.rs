//! Block execution: `execute(state, block input) -> (writes, receipts, events)`.
//!
//! Order within a block (rule B1):
//! 1. the header's chain, shard, height and timestamp are checked against [`Meta`];
//! 2. inbound messages are checked (proof under their source block's `receipt_root`) and
//!    applied in order, exactly once each (see [`starling_types::receipt`]);
//! 3. transactions are applied in order; each either applies in full or is rejected with a
//!    [`TxError`] and changes nothing (rule B2);
//! 4. the block's fees are credited to the pools and its tips to the proposer;
//! 5. a block that closes an epoch draws or fixes committees (rules E1, E2, in
//!    [`crate::committee`]);
//! 6. the next base fee is computed from the gas used (rule F1).

use crate::fees::{next_base_fee, SplitAmounts};
use crate::overlay::Overlay;
use crate::params::LedgerParams;
use crate::records::{
    decode_u128, decode_u64, AccountRecord, CommitteeRecord, Meta, Pool, StateKey, ValidatorInfo,
    ValidatorSet,
};
use crate::{gas, BlockError, Event, StateError, StateView, TxError};
use starling_state::WriteSet;
use starling_types::block::{MAX_BLOCK_TXS, MAX_INBOUND_BATCHES};
use starling_types::receipt::{Payload, ShardMessage};
use starling_types::tx::TxBody;
use starling_types::{
    merkle, AccountId, Asset, Block, BlockHeader, Encode, Federation, Hash, InboundBatch, Receipt,
    ShardId, TxEnvelope, TxReceipt,
};
use std::collections::BTreeMap;

/// Who validates at genesis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenesisValidators {
    /// The validator registry (kept on the global shard).
    pub registry: Vec<ValidatorInfo>,
    /// Each shard's committee (consensus keys) for epoch 0.
    pub committees: BTreeMap<ShardId, Vec<starling_types::PublicKey>>,
}

/// What a proposer (or a verifier reading a header) supplies to build a block.
#[derive(Clone, Debug)]
pub struct BlockInput {
    pub height: u64,
    pub parent: Hash,
    pub timestamp_ms: u64,
    pub proposer: AccountId,
    /// The proposer's onion layer on the global shard (rule R1), zero elsewhere.
    pub reveal: Hash,
    pub txs: Vec<TxEnvelope>,
    pub inbound: Vec<InboundBatch>,
}

impl BlockInput {
    pub fn from_block(block: &Block) -> Self {
        Self {
            height: block.header.height,
            parent: block.header.parent,
            timestamp_ms: block.header.timestamp_ms,
            proposer: block.header.proposer,
            reveal: block.header.reveal,
            txs: block.txs.clone(),
            inbound: block.inbound.clone(),
        }
    }
}

/// The effects of a block, before they are committed.
#[derive(Debug)]
pub struct Executed {
    pub writes: WriteSet,
    pub receipts: Vec<Receipt>,
    pub events: Vec<Event>,
    pub gas_used: u64,
    pub base_fee: u64,
    pub tx_root: Hash,
    pub receipt_root: Hash,
}

/// The rules of one shard of one network.
#[derive(Clone, Debug)]
pub struct ShardLedger {
    pub params: LedgerParams,
    pub shard: ShardId,
}

/// Per-block running totals.
pub(crate) struct BlockCtx {
    pub height: u64,
    pub base_fee: u64,
    pub gas_used: u64,
    pub fees: SplitAmounts,
    pub foundation_fees: BTreeMap<u16, u128>,
    pub tips: u128,
    pub outbox: BTreeMap<ShardId, u64>,
    pub messages: Vec<ShardMessage>,
    pub events: Vec<Event>,
    /// The federation this shard holds, read at the block's first transaction (and again
    /// after a message changes it).
    pub federation: Option<Federation>,
    /// The block's ballots' credential verdicts, checked before they apply (rule BL3).
    pub credentials: crate::ballots::Verdicts,
}

/// How far a transaction got, so a rejection can undo its messages and events.
pub(crate) struct Mark {
    messages: usize,
    events: usize,
    outbox: BTreeMap<ShardId, u64>,
}

impl BlockCtx {
    /// Nothing done yet in a block at `height` with `base_fee`.
    pub(crate) fn new(height: u64, base_fee: u64) -> BlockCtx {
        BlockCtx {
            height,
            base_fee,
            gas_used: 0,
            fees: SplitAmounts::default(),
            foundation_fees: BTreeMap::new(),
            tips: 0,
            outbox: BTreeMap::new(),
            messages: Vec::new(),
            events: Vec::new(),
            federation: None,
            credentials: Default::default(),
        }
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            messages: self.messages.len(),
            events: self.events.len(),
            outbox: self.outbox.clone(),
        }
    }

    pub(crate) fn rewind(&mut self, mark: Mark) {
        self.messages.truncate(mark.messages);
        self.events.truncate(mark.events);
        self.outbox = mark.outbox;
    }
}

impl ShardLedger {
    pub fn new(params: LedgerParams, shard: ShardId) -> Self {
        Self { params, shard }
    }

    /// The state of this shard before block 1: chain position, balances of the accounts that
    /// live here, and foundation treasuries seeded with `foundation_seed` SPEND each.
    pub fn genesis_writes(
        &self,
        allocations: &[(AccountId, Asset, u128)],
        foundation_seed: u128,
    ) -> WriteSet {
        self.genesis_writes_with(allocations, foundation_seed, &GenesisValidators::default())
    }

    /// As [`Self::genesis_writes`], with the genesis validators: the registry (global shard)
    /// and this shard's committee for epoch 0.
    pub fn genesis_writes_with(
        &self,
        allocations: &[(AccountId, Asset, u128)],
        foundation_seed: u128,
        validators: &GenesisValidators,
    ) -> WriteSet {
        let mut w = WriteSet::new();
        if self.shard == ShardId::GLOBAL && !validators.registry.is_empty() {
            let mut set = ValidatorSet {
                validators: validators.registry.clone(),
            };
            set.validators.sort_by_key(|v| v.account);
            w.insert(StateKey::Validators.hash(), Some(set.to_bytes()));
        }
        if let Some(members) = validators.committees.get(&self.shard) {
            let record = CommitteeRecord {
                epoch: 0,
                seed: Hash::ZERO,
                members: members.clone(),
            }
            .to_bytes();
            w.insert(StateKey::Committee.hash(), Some(record.clone()));
            w.insert(StateKey::EpochCommittee(0).hash(), Some(record));
        }
        w.insert(
            StateKey::Federation.hash(),
            Some(self.params.genesis_federation().to_bytes()),
        );
        self.genesis_offices(&mut w);
        let meta = Meta {
            height: 0,
            last_parent: Hash::ZERO,
            timestamp_ms: 0,
            base_fee: self.params.initial_base_fee,
        };
        w.insert(StateKey::Meta.hash(), Some(meta.to_bytes()));
        let mut accounts: BTreeMap<AccountId, AccountRecord> = BTreeMap::new();
        let mut issued = [0u128; 3];
        for (account, asset, amount) in allocations {
            if self.params.shard_map.shard_of(account) != self.shard
                || self.shard == ShardId::GLOBAL
            {
                continue;
            }
            let rec = accounts
                .entry(*account)
                .or_insert_with(|| self.new_account(0));
            rec.balances[asset.index()] = rec.balances[asset.index()].saturating_add(*amount);
            issued[asset.index()] = issued[asset.index()].saturating_add(*amount);
        }
        for (a, rec) in &accounts {
            w.insert(StateKey::Account(a).hash(), Some(rec.to_bytes()));
        }
        for i in 0..self.params.foundations.len() as u16 {
            w.insert(
                StateKey::Pool(Pool::Foundation(i)).hash(),
                Some(foundation_seed.to_be_bytes().to_vec()),
            );
            issued[Asset::Spend.index()] += foundation_seed;
        }
        for asset in Asset::ALL {
            w.insert(
                StateKey::Issued(asset).hash(),
                Some(issued[asset.index()].to_be_bytes().to_vec()),
            );
        }
        w
    }

    /// Block 0 of this shard: no transactions, committing to the genesis state. Its id is the
    /// parent of block 1, and a relay can prove genesis balances against it.
    pub fn genesis_block(&self, state_root: Hash) -> Block {
        let header = BlockHeader {
            chain_id: self.params.chain_id.clone(),
            shard: self.shard,
            height: 0,
            parent: Hash::ZERO,
            timestamp_ms: 0,
            proposer: AccountId::ed25519([0u8; 32]),
            tx_root: Block::body_root_from_ids(&[], &[]),
            receipt_root: merkle::root(&[]),
            state_root,
            base_fee: self.params.initial_base_fee,
            reveal: Hash::ZERO,
        };
        Block {
            header,
            txs: Vec::new(),
            inbound: Vec::new(),
        }
    }

    pub(crate) fn new_account(&self, height: u64) -> AccountRecord {
        AccountRecord {
            created_height: height,
            // (The allowance starts when the account becomes a member: rule M12.)
            allowance: 0,
            allowance_height: height,
            ..AccountRecord::default()
        }
    }

    /// Reads the chain position of this shard.
    pub fn meta<V: StateView + ?Sized>(view: &V) -> Result<Meta, BlockError> {
        Overlay::new(view)
            .get::<Meta>(StateKey::Meta)
            .map_err(state_err)?
            .ok_or_else(|| BlockError::State("no genesis: chain metadata missing".into()))
    }

    /// Executes a block against `view` (the state after its parent). Pure: same inputs, same
    /// outputs, on every machine.
    pub fn execute<V: StateView + ?Sized>(
        &self,
        view: &V,
        input: &BlockInput,
    ) -> Result<Executed, BlockError> {
        self.execute_with(view, input, &|_| false)
    }

    /// As [`Self::execute`], but skips the signature check of every transaction for which
    /// `checked(envelope hash)` is true: one this node has already verified (the hash covers
    /// body and signature, so the same hash is the same signed bytes). The result is the same
    /// as long as `checked` only names transactions whose signatures are valid.
    pub fn execute_with<V: StateView + ?Sized>(
        &self,
        view: &V,
        input: &BlockInput,
        checked: &dyn Fn(&Hash) -> bool,
    ) -> Result<Executed, BlockError> {
        let meta = Self::meta(view)?;
        if input.height != meta.height + 1 {
            return Err(BlockError::WrongHeight {
                expected: meta.height + 1,
                got: input.height,
            });
        }
        if input.timestamp_ms <= meta.timestamp_ms {
            return Err(BlockError::TimestampRegression);
        }
        if input.txs.len() > MAX_BLOCK_TXS || input.inbound.len() > MAX_INBOUND_BATCHES {
            return Err(BlockError::TooLarge);
        }
        let mut st = Overlay::new(view);
        let mut ctx = BlockCtx::new(input.height, meta.base_fee);

        // Rule R1: the proposer's onion layer (global shard), before anything else.
        self.apply_reveal(&mut st, input)?;

        check_inbound_order(&input.inbound)?;
        for batch in &input.inbound {
            self.apply_inbound_batch(&mut st, &mut ctx, batch)?;
        }

        // Rule B3: every transaction decodes and carries a valid signature, or the block is
        // invalid. So a certified block holds only valid signatures, and a node that skips
        // them (a relay, a replay) computes what the committee computed.
        let tx_ids: Vec<Hash> = input.txs.iter().map(|env| env.hash()).collect();
        let parsed = self.check_transactions(&st, &mut ctx, input, &tx_ids, checked)?;

        let mut receipts = Vec::with_capacity(input.txs.len() + 8);
        for (i, (env, (body, _))) in input.txs.iter().zip(parsed).enumerate() {
            let tx_hash = tx_ids[i];
            let mark = ctx.mark();
            let refused_gas = gas::refused_gas(env.encoded_len(), &body.action);
            let result = match self.apply_tx(&mut st, &mut ctx, &body, env.encoded_len()) {
                Ok(r) => Ok((body, r)),
                Err(Failure::Rejected(e)) => Err(e),
                Err(Failure::State(e)) => return Err(state_err(e)),
            };
            match result {
                Ok((body, (gas_used, fee_paid))) => {
                    st.commit_tx();
                    ctx.gas_used += gas_used;
                    ctx.events.push(Event::TxApplied {
                        index: i as u32,
                        tx_hash,
                        account: body.account,
                        nonce: body.nonce,
                        fee: fee_paid,
                    });
                    receipts.push(Receipt::Tx(TxReceipt {
                        tx_hash,
                        status: 0,
                        gas_used,
                        fee_paid,
                    }));
                }
                Err(error) => {
                    st.rollback_tx();
                    ctx.rewind(mark);
                    let gas_used = if error == TxError::BlockFull {
                        0
                    } else {
                        refused_gas
                    };
                    ctx.gas_used += gas_used;
                    receipts.push(Receipt::Tx(TxReceipt {
                        tx_hash,
                        status: error.code(),
                        gas_used,
                        fee_paid: 0,
                    }));
                    ctx.events.push(Event::TxRejected {
                        index: i as u32,
                        tx_hash,
                        error,
                    });
                }
            }
        }

        self.settle_fees(&mut st, &mut ctx, &input.proposer)
            .map_err(state_err)?;
        self.close_epoch(&mut st, &mut ctx, input)
            .map_err(state_err)?;
        let next = Meta {
            height: input.height,
            last_parent: input.parent,
            timestamp_ms: input.timestamp_ms,
            base_fee: next_base_fee(
                meta.base_fee,
                ctx.gas_used,
                self.params.gas_target(),
                self.params.min_base_fee,
            ),
        };
        st.put(StateKey::Meta, &next);
        for (dest, seq) in &ctx.outbox {
            st.put_raw(StateKey::Outbox(*dest), seq.to_be_bytes().to_vec());
        }
        st.commit_tx();

        receipts.extend(ctx.messages.drain(..).map(Receipt::Message));
        let leaves: Vec<Hash> = receipts.iter().map(Receipt::leaf_hash).collect();
        Ok(Executed {
            writes: st.into_writes(),
            receipt_root: merkle::root(&leaves),
            tx_root: Block::body_root_from_ids(&tx_ids, &input.inbound),
            receipts,
            events: ctx.events,
            gas_used: ctx.gas_used,
            base_fee: meta.base_fee,
        })
    }

    /// The header of an executed block, given the state root after its writes.
    pub fn header(&self, input: &BlockInput, executed: &Executed, state_root: Hash) -> BlockHeader {
        BlockHeader {
            chain_id: self.params.chain_id.clone(),
            shard: self.shard,
            height: input.height,
            parent: input.parent,
            timestamp_ms: input.timestamp_ms,
            proposer: input.proposer,
            tx_root: executed.tx_root,
            receipt_root: executed.receipt_root,
            state_root,
            base_fee: executed.base_fee,
            reveal: input.reveal,
        }
    }

    /// Checks a received header against what executing its body produced.
    pub fn check_header(
        &self,
        header: &BlockHeader,
        executed: &Executed,
        state_root: Hash,
    ) -> Result<(), BlockError> {
        if header.chain_id != self.params.chain_id {
            return Err(BlockError::WrongChain {
                expected: self.params.chain_id.to_string(),
                got: header.chain_id.to_string(),
            });
        }
        if header.shard != self.shard {
            return Err(BlockError::WrongShard {
                expected: self.shard,
                got: header.shard,
            });
        }
        if header.base_fee != executed.base_fee {
            return Err(BlockError::WrongBaseFee {
                expected: executed.base_fee,
                got: header.base_fee,
            });
        }
        if header.tx_root != executed.tx_root {
            return Err(BlockError::RootMismatch("tx"));
        }
        if header.receipt_root != executed.receipt_root {
            return Err(BlockError::RootMismatch("receipt"));
        }
        if header.state_root != state_root {
            return Err(BlockError::RootMismatch("state"));
        }
        Ok(())
    }

    /// Rules T1–T6: shard, account, nonce, expiry, gas and fee; then the action.
    /// Returns `(gas_used, fee_paid)`.
    fn apply_tx<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        body: &TxBody,
        envelope_len: usize,
    ) -> Result<(u64, u128), Failure> {
        if let starling_types::Action::Ballot(ballot) = &body.action {
            return self.ballot_tx(st, ctx, body, ballot, envelope_len);
        }
        // T1: a transaction runs on the home shard of its account.
        let home = self.params.shard_map.shard_of(&body.account);
        if home != self.shard || self.shard == ShardId::GLOBAL {
            return Err(Failure::Rejected(TxError::WrongShard { expected: home }));
        }
        // T2: the account exists.
        let mut acct: AccountRecord = st
            .get(StateKey::Account(&body.account))?
            .ok_or(TxError::UnknownAccount)?;
        let gas_used = self.check_sequence(ctx, body, acct.nonce, envelope_len)?;
        // T6: the fee is within max_fee and paid: the base cost first from a member's fee
        // allowance, then from a sponsorship; the rest and the tip from the balance.
        let base_cost = gas_used as u128 * ctx.base_fee as u128;
        let required = base_cost.checked_add(body.tip).ok_or(TxError::Overflow)?;
        if body.max_fee < required {
            return Err(Failure::Rejected(TxError::FeeTooLow {
                required,
                max_fee: body.max_fee,
            }));
        }
        let foundation = self.charge_of(st, ctx, &body.account)?;
        let from_balance = required - self.pay_base_cost(st, ctx, &mut acct, base_cost)?;
        let spend = acct.balances[Asset::Spend.index()];
        if spend < from_balance {
            return Err(Failure::Rejected(TxError::InsufficientBalance {
                needed: from_balance,
                available: spend,
            }));
        }
        acct.balances[Asset::Spend.index()] = spend - from_balance;
        acct.nonce += 1;

        self.apply_action(st, ctx, body, &mut acct)?;
        st.put(StateKey::Account(&body.account), &acct);

        let split = self.params.fee_split.split(base_cost);
        ctx.fees.add(&split);
        *ctx.foundation_fees.entry(foundation).or_default() += split.foundation;
        ctx.tips += body.tip;
        Ok((gas_used, required))
    }

    /// Rules T3 (nonces are consecutive; a used nonce is a replay; `expected` is the
    /// sender's next), T4 (expiry bounds the life of a transaction) and T5 (the block has
    /// room), for accounts and ballot keys alike. The transaction's gas.
    pub(crate) fn check_sequence(
        &self,
        ctx: &BlockCtx,
        body: &TxBody,
        expected: u64,
        envelope_len: usize,
    ) -> Result<u64, TxError> {
        let got = body.nonce;
        if got < expected {
            return Err(TxError::NonceReused { expected, got });
        }
        if got > expected {
            return Err(TxError::NonceGap { expected, got });
        }
        let expires_at = body.expires_at_height;
        if expires_at < ctx.height {
            let height = ctx.height;
            return Err(TxError::Expired { expires_at, height });
        }
        let max = ctx.height.saturating_add(self.params.max_expiry_blocks);
        if expires_at > max {
            return Err(TxError::ExpiryTooFar { expires_at, max });
        }
        let gas = gas::tx_gas(envelope_len, &body.action);
        if ctx.gas_used + gas > self.params.block_gas_limit {
            return Err(TxError::BlockFull);
        }
        Ok(gas)
    }

    /// Credits `to` here if it lives on this shard, else sends a credit message.
    pub(crate) fn credit<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        from: &AccountId,
        to: &AccountId,
        asset: Asset,
        amount: u128,
    ) -> Result<(), StateError> {
        let dest = self.params.shard_map.shard_of(to);
        if dest == self.shard {
            let mut rec = st
                .get::<AccountRecord>(StateKey::Account(to))?
                .unwrap_or_else(|| self.new_account(ctx.height));
            let b = &mut rec.balances[asset.index()];
            *b = b.saturating_add(amount);
            st.put(StateKey::Account(to), &rec);
            Ok(())
        } else {
            self.send(
                st,
                ctx,
                dest,
                Payload::Credit {
                    from: *from,
                    to: *to,
                    asset,
                    amount,
                },
            )
        }
    }

    /// Emits a message to another shard with the next sequence number of that pair.
    pub(crate) fn send<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        dest: ShardId,
        payload: Payload,
    ) -> Result<(), StateError> {
        let seq = match ctx.outbox.get(&dest) {
            Some(s) => *s,
            None => read_counter(st, StateKey::Outbox(dest))?,
        };
        ctx.outbox.insert(dest, seq + 1);
        ctx.messages.push(ShardMessage {
            source: self.shard,
            dest,
            seq,
            payload,
        });
        Ok(())
    }

    fn apply_inbound_batch<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        batch: &InboundBatch,
    ) -> Result<(), BlockError> {
        let source = batch.source.shard;
        let bad = |index: usize, reason: &'static str| BlockError::BadInbound {
            source_shard: source,
            index,
            reason,
        };
        if batch.source.chain_id != self.params.chain_id {
            return Err(bad(0, "source block is for another chain"));
        }
        if source == self.shard {
            return Err(bad(0, "source block is from this shard"));
        }
        for (index, (msg, proof)) in batch.messages.iter().enumerate() {
            if msg.source != source || msg.dest != self.shard {
                return Err(bad(
                    index,
                    "message is not from the source block's shard to this shard",
                ));
            }
            if !proof.verify(
                &batch.source.receipt_root,
                &Receipt::Message(msg.clone()).leaf_hash(),
            ) {
                return Err(bad(
                    index,
                    "receipt proof does not verify under the source receipt root",
                ));
            }
            self.apply_message(st, ctx, msg).map_err(state_err)?;
        }
        Ok(())
    }

    /// Rule M1: exactly once, in order, per source shard.
    fn apply_message<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        msg: &ShardMessage,
    ) -> Result<(), StateError> {
        let inbox_key = StateKey::Inbox(msg.source);
        let expected = read_counter(st, inbox_key)?;
        if msg.seq < expected {
            ctx.events.push(Event::MessageDuplicate {
                source: msg.source,
                seq: msg.seq,
            });
            return Ok(());
        }
        if msg.seq > expected {
            ctx.events.push(Event::MessageOutOfOrder {
                source: msg.source,
                seq: msg.seq,
                expected,
            });
            return Ok(());
        }
        st.put_raw(inbox_key, (expected + 1).to_be_bytes().to_vec());
        st.commit_tx();
        let mark = ctx.mark();
        match self.apply_payload(st, ctx, msg.source, &msg.payload) {
            Ok(()) => {
                st.commit_tx();
                ctx.events.push(Event::MessageApplied {
                    source: msg.source,
                    seq: msg.seq,
                });
            }
            Err(Failure::Rejected(error)) => {
                st.rollback_tx();
                ctx.rewind(mark);
                ctx.events.push(Event::MessageRejected {
                    source: msg.source,
                    seq: msg.seq,
                    error,
                });
            }
            Err(Failure::State(e)) => return Err(e),
        }
        Ok(())
    }
}

/// Why applying a transaction or message stopped: a rule said no (the sender's problem; the
/// block goes on), or the state could not be read (the node's problem; the block aborts, so a
/// disk error can never turn into a different result on one validator).
#[derive(Debug)]
pub(crate) enum Failure {
    Rejected(TxError),
    State(StateError),
}

impl From<StateError> for Failure {
    fn from(e: StateError) -> Self {
        Failure::State(e)
    }
}

impl From<TxError> for Failure {
    fn from(e: TxError) -> Self {
        Failure::Rejected(e)
    }
}

pub(crate) fn pool_balance<V: StateView + ?Sized>(
    st: &Overlay<'_, V>,
    key: StateKey<'_>,
) -> Result<u128, StateError> {
    match st.get_raw(&key.hash())? {
        Some(b) => decode_u128(&b).map_err(|e| StateError(format!("corrupt pool: {e}"))),
        None => Ok(0),
    }
}

/// A `u64` counter record (an outbox, an inbox, a member count); 0 if absent.
pub(crate) fn read_counter<V: StateView + ?Sized>(
    st: &Overlay<'_, V>,
    key: StateKey<'_>,
) -> Result<u64, StateError> {
    match st.get_raw(&key.hash())? {
        Some(b) => decode_u64(&b).map_err(|e| StateError(format!("corrupt counter: {e}"))),
        None => Ok(0),
    }
}

pub(crate) fn add_to_pool<V: StateView + ?Sized>(
    st: &mut Overlay<'_, V>,
    pool: Pool,
    amount: u128,
) -> Result<(), StateError> {
    if amount == 0 {
        return Ok(());
    }
    let key = StateKey::Pool(pool);
    let v = pool_balance(st, key)?.saturating_add(amount);
    st.put_raw(key, v.to_be_bytes().to_vec());
    Ok(())
}

/// Takes `amount` out of a pool that must hold it (a shortfall means corrupt state).
pub(crate) fn take_from_pool<V: StateView + ?Sized>(
    st: &mut Overlay<'_, V>,
    pool: Pool,
    amount: u128,
) -> Result<(), StateError> {
    let key = StateKey::Pool(pool);
    let v = pool_balance(st, key)?
        .checked_sub(amount)
        .ok_or_else(|| StateError(format!("pool {pool:?} holds less than {amount}")))?;
    st.put_raw(key, v.to_be_bytes().to_vec());
    Ok(())
}

/// Rule B5: inbound batches are canonical. Each holds at least one message; batches are in
/// order of (source shard, source height), at most one per source block; the messages of a
/// batch are in increasing sequence order.
fn check_inbound_order(inbound: &[InboundBatch]) -> Result<(), BlockError> {
    let mut last: Option<(ShardId, u64)> = None;
    for batch in inbound {
        if batch.messages.is_empty() {
            return Err(BlockError::InboundOrder("an inbound batch is empty"));
        }
        let at = (batch.source.shard, batch.source.height);
        if last.is_some_and(|l| l >= at) {
            return Err(BlockError::InboundOrder(
                "batches are not in (source shard, height) order",
            ));
        }
        last = Some(at);
        if batch.messages.windows(2).any(|w| w[0].0.seq >= w[1].0.seq) {
            return Err(BlockError::InboundOrder(
                "messages of a batch are not in sequence order",
            ));
        }
    }
    Ok(())
}

pub(crate) fn state_err(e: StateError) -> BlockError {
    BlockError::State(e.0)
}
