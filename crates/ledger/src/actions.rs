//! What each action and each inbound message does to the state.
//!
//! Social rules (S*), bank rules (K*) and message rules (M*) are cited at the match arms.
//! A post can only be checked when it lives on this shard (its author's home shard); references
//! to posts on other shards are accepted and resolved by the relays that index all shards.

use crate::exec::{add_to_pool, take_from_pool, BlockCtx, Failure};
use crate::overlay::Overlay;
use crate::records::{
    decode_account_id, decode_u128, AccountRecord, ChatKeysRecord, CommitteeRecord, Pool,
    PostRecord, ProfileRecord, RevisionRecord, StateKey, ValidatorInfo, ValidatorSet,
    MAX_VALIDATORS,
};
use crate::{validate, Event, ShardLedger, StateError, StateView, TxError};
use starling_types::receipt::Payload;
use starling_types::tx::MAX_CHAT_DEVICES;
use starling_types::{AccountId, Action, Asset, Encode, PostId, ShardId, TxBody};

const PRESENT: [u8; 1] = [1];

impl ShardLedger {
    fn local(&self, account: &AccountId) -> bool {
        self.params.shard_map.shard_of(account) == self.shard
    }

    /// A post that must exist and not be deleted, when it lives here.
    fn check_target<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        post: &PostId,
    ) -> Result<(), Failure> {
        if !self.local(&post.author) {
            return Ok(());
        }
        match st.get::<PostRecord>(StateKey::Post(post))? {
            None => Err(TxError::UnknownTarget.into()),
            Some(p) if p.deleted => Err(TxError::PostDeleted.into()),
            Some(_) => Ok(()),
        }
    }

    /// The sender's own post, for edits and deletes.
    fn own_post<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        author: &AccountId,
        post: &PostId,
    ) -> Result<PostRecord, Failure> {
        if post.author != *author {
            return Err(TxError::NotAuthor.into());
        }
        let rec: PostRecord = st
            .get(StateKey::Post(post))?
            .ok_or(TxError::UnknownTarget)?;
        if rec.deleted {
            return Err(TxError::PostDeleted.into());
        }
        Ok(rec)
    }

    /// Sets (`on`) or clears a presence record, failing if it already is in that state.
    fn toggle<V: StateView + ?Sized>(
        st: &mut Overlay<'_, V>,
        key: StateKey<'_>,
        on: bool,
        already: TxError,
        missing: TxError,
    ) -> Result<(), Failure> {
        let exists = st.exists(key)?;
        match (on, exists) {
            (true, true) => Err(already.into()),
            (false, false) => Err(missing.into()),
            (true, false) => {
                st.put_raw(key, PRESENT.to_vec());
                Ok(())
            }
            (false, true) => {
                st.delete(key);
                Ok(())
            }
        }
    }

    pub(crate) fn apply_action<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        body: &TxBody,
        acct: &mut AccountRecord,
    ) -> Result<(), Failure> {
        let me = &body.account;
        match &body.action {
            // S1: text of at most 300 graphemes (empty only for a quote); targets exist here.
            Action::Post {
                text,
                reply_to,
                quote_of,
                langs,
            } => {
                validate::post_text(text, quote_of.is_some())?;
                validate::langs(langs)?;
                for target in reply_to.iter().chain(quote_of.iter()) {
                    self.check_target(st, target)?;
                }
                let id = PostId {
                    author: *me,
                    seq: body.nonce,
                };
                let rec = PostRecord {
                    text: text.clone(),
                    reply_to: *reply_to,
                    quote_of: *quote_of,
                    langs: langs.clone(),
                    created_height: ctx.height,
                    edited_height: ctx.height,
                    revisions: 0,
                    deleted: false,
                };
                st.put(StateKey::Post(&id), &rec);
            }
            // S3: the author edits; the version replaced is kept as a revision.
            Action::EditPost { post, text } => {
                let mut rec = self.own_post(st, me, post)?;
                if rec.revisions >= self.params.max_edits {
                    return Err(TxError::EditLimit {
                        max: self.params.max_edits,
                    }
                    .into());
                }
                validate::post_text(text, rec.quote_of.is_some())?;
                let old = RevisionRecord {
                    text: std::mem::replace(&mut rec.text, text.clone()),
                    height: rec.edited_height,
                };
                st.put(StateKey::Revision(post, rec.revisions), &old);
                rec.revisions += 1;
                rec.edited_height = ctx.height;
                st.put(StateKey::Post(post), &rec);
            }
            // S4: delete leaves a tombstone (the id stays taken) and drops text and revisions.
            Action::DeletePost { post } => {
                let mut rec = self.own_post(st, me, post)?;
                for i in 0..rec.revisions {
                    st.delete(StateKey::Revision(post, i));
                }
                rec.text.clear();
                rec.langs.clear();
                rec.revisions = 0;
                rec.deleted = true;
                rec.edited_height = ctx.height;
                st.put(StateKey::Post(post), &rec);
            }
            // S5: one like and one repost per account and post.
            Action::Like { post } => {
                self.check_target(st, post)?;
                Self::toggle(
                    st,
                    StateKey::Like(me, post),
                    true,
                    TxError::AlreadyLiked,
                    TxError::NotLiked,
                )?;
            }
            Action::Unlike { post } => {
                Self::toggle(
                    st,
                    StateKey::Like(me, post),
                    false,
                    TxError::AlreadyLiked,
                    TxError::NotLiked,
                )?;
            }
            Action::Repost { post } => {
                self.check_target(st, post)?;
                Self::toggle(
                    st,
                    StateKey::Repost(me, post),
                    true,
                    TxError::AlreadyReposted,
                    TxError::NotReposted,
                )?;
            }
            Action::Unrepost { post } => {
                Self::toggle(
                    st,
                    StateKey::Repost(me, post),
                    false,
                    TxError::AlreadyReposted,
                    TxError::NotReposted,
                )?;
            }
            // S6: follows are recorded on both sides; the followee's side by message if remote.
            Action::Follow { target } | Action::Unfollow { target } => {
                let following = matches!(body.action, Action::Follow { .. });
                if target == me {
                    return Err(TxError::SelfTarget.into());
                }
                Self::toggle(
                    st,
                    StateKey::Follow(me, target),
                    following,
                    TxError::AlreadyFollowing,
                    TxError::NotFollowing,
                )?;
                if self.local(target) {
                    set_presence(st, StateKey::Follower(target, me), following);
                } else {
                    let dest = self.params.shard_map.shard_of(target);
                    self.send(
                        st,
                        ctx,
                        dest,
                        Payload::FollowNotice {
                            follower: *me,
                            followee: *target,
                            following,
                        },
                    )?;
                }
            }
            // S7: blocks and mutes are the user's own lists, applied by relays when reading.
            Action::Block { target } | Action::Unblock { target } => {
                if target == me {
                    return Err(TxError::SelfTarget.into());
                }
                let on = matches!(body.action, Action::Block { .. });
                Self::toggle(
                    st,
                    StateKey::Block(me, target),
                    on,
                    TxError::AlreadyBlocked,
                    TxError::NotBlocked,
                )?;
            }
            Action::Mute { target } | Action::Unmute { target } => {
                if target == me {
                    return Err(TxError::SelfTarget.into());
                }
                let on = matches!(body.action, Action::Mute { .. });
                Self::toggle(
                    st,
                    StateKey::Mute(me, target),
                    on,
                    TxError::AlreadyMuted,
                    TxError::NotMuted,
                )?;
            }
            Action::SetProfile {
                display_name,
                bio,
                avatar_url,
            } => {
                validate::profile(display_name, bio, avatar_url)?;
                let rec = ProfileRecord {
                    display_name: display_name.clone(),
                    bio: bio.clone(),
                    avatar_url: avatar_url.clone(),
                };
                st.put(StateKey::Profile(me), &rec);
            }
            // S2: a handle is claimed on the global shard; one claim in flight per account.
            Action::RegisterHandle { handle } => {
                let handle = validate::handle(handle)?;
                if acct.pending_handle.is_some() {
                    return Err(TxError::HandlePending.into());
                }
                if acct.handle.as_deref() == Some(handle.as_str()) {
                    return Err(TxError::InvalidHandle("already this account's handle").into());
                }
                acct.pending_handle = Some(handle.clone());
                self.send(
                    st,
                    ctx,
                    ShardId::GLOBAL,
                    Payload::HandleClaim {
                        account: *me,
                        handle,
                    },
                )?;
            }
            // K1: a transfer debits here and credits here or, by message, on the other shard.
            Action::Transfer { asset, to, amount } => {
                if *amount == 0 {
                    return Err(TxError::InvalidAmount.into());
                }
                let bal = acct.balances[asset.index()];
                if bal < *amount {
                    return Err(TxError::InsufficientBalance {
                        needed: *amount,
                        available: bal,
                    }
                    .into());
                }
                acct.balances[asset.index()] = bal - amount;
                if to == me {
                    acct.balances[asset.index()] += amount;
                } else {
                    self.credit(st, ctx, me, to, *asset, *amount)?;
                }
            }
            // V1: the bond is locked here (in the Bonds pool) and the registry on the global
            // shard learns of the validator by message.
            Action::RegisterValidator {
                consensus_key,
                address,
                proof,
            } => {
                validate::validator(&self.params.chain_id, me, consensus_key, address, proof)?;
                if st.exists(StateKey::Bond(me))? {
                    return Err(TxError::AlreadyValidator.into());
                }
                let bond = self.params.validator_bond;
                let bal = acct.balances[Asset::Spend.index()];
                if bal < bond {
                    return Err(TxError::InsufficientBalance {
                        needed: bond,
                        available: bal,
                    }
                    .into());
                }
                acct.balances[Asset::Spend.index()] = bal - bond;
                st.put_raw(StateKey::Bond(me), bond.to_be_bytes().to_vec());
                add_to_pool(st, Pool::Bonds, bond)?;
                self.send(
                    st,
                    ctx,
                    ShardId::GLOBAL,
                    Payload::ValidatorJoin {
                        account: *me,
                        consensus_key: *consensus_key,
                        address: address.clone(),
                    },
                )?;
            }
            // V2: leaving returns the bond and removes the validator from the registry; it
            // keeps its seats until the committees drawn after the removal take over (E1).
            Action::RetireValidator => {
                let Some(raw) = st.get_raw(&StateKey::Bond(me).hash())? else {
                    return Err(TxError::NotValidator.into());
                };
                let bond =
                    decode_u128(&raw).map_err(|e| StateError(format!("corrupt bond: {e}")))?;
                st.delete(StateKey::Bond(me));
                take_from_pool(st, Pool::Bonds, bond)?;
                let b = &mut acct.balances[Asset::Spend.index()];
                *b = b.saturating_add(bond);
                self.send(
                    st,
                    ctx,
                    ShardId::GLOBAL,
                    Payload::ValidatorLeave { account: *me },
                )?;
            }
            // D1: the key directory lists at most eight devices per account, by id; replacing
            // a device or withdrawing one raises the entry's version.
            Action::SetChatDevice { device } => {
                validate::chat_device(device)?;
                let mut rec: ChatKeysRecord = st.get(StateKey::ChatKeys(me))?.unwrap_or_default();
                match rec.devices.binary_search_by_key(&device.id, |d| d.id) {
                    Ok(i) => rec.devices[i] = device.clone(),
                    Err(i) => {
                        if rec.devices.len() >= MAX_CHAT_DEVICES {
                            return Err(TxError::InvalidChatDevice("at most 8 devices").into());
                        }
                        rec.devices.insert(i, device.clone());
                    }
                }
                rec.version += 1;
                st.put(StateKey::ChatKeys(me), &rec);
            }
            Action::RemoveChatDevice { id } => {
                let mut rec: ChatKeysRecord = st
                    .get(StateKey::ChatKeys(me))?
                    .ok_or(TxError::NoChatDevice)?;
                let i = rec
                    .devices
                    .binary_search_by_key(id, |d| d.id)
                    .map_err(|_| TxError::NoChatDevice)?;
                rec.devices.remove(i);
                rec.version += 1;
                st.put(StateKey::ChatKeys(me), &rec);
            }
        }
        Ok(())
    }

    /// Applies the payload of an inbound message (rules M2–M5).
    pub(crate) fn apply_payload<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        source: ShardId,
        payload: &Payload,
    ) -> Result<(), Failure> {
        let global_only = || -> Result<(), Failure> {
            if self.shard == ShardId::GLOBAL {
                Ok(())
            } else {
                Err(TxError::WrongShard {
                    expected: ShardId::GLOBAL,
                }
                .into())
            }
        };
        match payload {
            // M2: credits create the account if needed.
            Payload::Credit {
                from,
                to,
                asset,
                amount,
            } => {
                if !self.local(to) {
                    return Err(TxError::WrongShard {
                        expected: self.params.shard_map.shard_of(to),
                    }
                    .into());
                }
                self.credit(st, ctx, from, to, *asset, *amount)?;
            }
            // M3: the followee's side of a follow.
            Payload::FollowNotice {
                follower,
                followee,
                following,
            } => {
                if !self.local(followee) {
                    return Err(TxError::WrongShard {
                        expected: self.params.shard_map.shard_of(followee),
                    }
                    .into());
                }
                set_presence(st, StateKey::Follower(followee, follower), *following);
            }
            // M4: the global shard registers a free handle (or re-confirms its owner), releases
            // the account's previous handle, and answers the account's shard either way.
            Payload::HandleClaim { account, handle } => {
                if self.shard != ShardId::GLOBAL {
                    return Err(TxError::WrongShard {
                        expected: ShardId::GLOBAL,
                    }
                    .into());
                }
                let handle = validate::handle(handle)?;
                let owner = match st.get_raw(&StateKey::Handle(&handle).hash())? {
                    Some(b) => Some(
                        decode_account_id(&b)
                            .map_err(|e| StateError(format!("corrupt handle: {e}")))?,
                    ),
                    None => None,
                };
                let accepted = owner.is_none() || owner == Some(*account);
                if accepted {
                    let reverse = StateKey::HandleOf(account);
                    if let Some(old) = st.get_raw(&reverse.hash())? {
                        let old = String::from_utf8(old)
                            .map_err(|_| StateError("corrupt handle owner".into()))?;
                        if old != handle {
                            st.delete(StateKey::Handle(&old));
                        }
                    }
                    st.put_raw(StateKey::Handle(&handle), account.to_bytes());
                    st.put_raw(reverse, handle.clone().into_bytes());
                    ctx.events.push(Event::HandleRegistered {
                        account: *account,
                        handle: handle.clone(),
                    });
                } else {
                    ctx.events.push(Event::HandleRefused {
                        account: *account,
                        handle: handle.clone(),
                        error: TxError::HandleTaken,
                    });
                }
                let dest = self.params.shard_map.shard_of(account);
                self.send(
                    st,
                    ctx,
                    dest,
                    Payload::HandleResult {
                        account: *account,
                        handle,
                        accepted,
                    },
                )?;
            }
            // M5: the account's shard learns the outcome of its claim.
            Payload::HandleResult {
                account,
                handle,
                accepted,
            } => {
                if !self.local(account) {
                    return Err(TxError::WrongShard {
                        expected: self.params.shard_map.shard_of(account),
                    }
                    .into());
                }
                let mut rec: AccountRecord = st
                    .get(StateKey::Account(account))?
                    .ok_or(TxError::UnknownAccount)?;
                if rec.pending_handle.as_deref() == Some(handle.as_str()) {
                    rec.pending_handle = None;
                }
                if *accepted {
                    rec.handle = Some(handle.clone());
                } else {
                    ctx.events.push(Event::HandleRefused {
                        account: *account,
                        handle: handle.clone(),
                        error: TxError::HandleTaken,
                    });
                }
                st.put(StateKey::Account(account), &rec);
            }
            // M6: the registry takes in a bonded validator (or updates its key and address);
            // a consensus key belongs to one account at a time.
            Payload::ValidatorJoin {
                account,
                consensus_key,
                address,
            } => {
                global_only()?;
                let mut set: ValidatorSet = st.get(StateKey::Validators)?.unwrap_or_default();
                let taken = set
                    .validators
                    .iter()
                    .any(|v| v.consensus_key == *consensus_key && v.account != *account);
                let known = set.validators.iter().any(|v| v.account == *account);
                let refused = if taken {
                    Some(TxError::InvalidValidator(
                        "consensus key already registered",
                    ))
                } else if !known && set.validators.len() >= MAX_VALIDATORS {
                    Some(TxError::InvalidValidator("the registry is full"))
                } else {
                    None
                };
                if let Some(error) = refused {
                    ctx.events.push(Event::ValidatorRefused {
                        account: *account,
                        error,
                    });
                    return Ok(());
                }
                set.validators.retain(|v| v.account != *account);
                set.validators.push(ValidatorInfo {
                    account: *account,
                    consensus_key: *consensus_key,
                    address: address.clone(),
                });
                set.validators.sort_by_key(|v| v.account);
                st.put(StateKey::Validators, &set);
                ctx.events
                    .push(Event::ValidatorJoined { account: *account });
            }
            // M7: the registry lets a validator go.
            Payload::ValidatorLeave { account } => {
                global_only()?;
                let mut set: ValidatorSet = st.get(StateKey::Validators)?.unwrap_or_default();
                let before = set.validators.len();
                set.validators.retain(|v| v.account != *account);
                if set.validators.len() != before {
                    st.put(StateKey::Validators, &set);
                    ctx.events.push(Event::ValidatorLeft { account: *account });
                }
            }
            // M8: an account shard keeps the newest committee the global shard drew for it.
            Payload::Committee {
                epoch,
                seed,
                members,
            } => {
                if source != ShardId::GLOBAL || self.shard == ShardId::GLOBAL {
                    return Err(TxError::WrongShard {
                        expected: self.shard,
                    }
                    .into());
                }
                let newer = st
                    .get::<CommitteeRecord>(StateKey::Committee)?
                    .is_none_or(|c| c.epoch < *epoch);
                if newer && !members.is_empty() {
                    st.put(
                        StateKey::Committee,
                        &CommitteeRecord {
                            epoch: *epoch,
                            seed: *seed,
                            members: members.clone(),
                        },
                    );
                }
            }
        }
        Ok(())
    }
}

fn set_presence<V: StateView + ?Sized>(st: &mut Overlay<'_, V>, key: StateKey<'_>, on: bool) {
    if on {
        st.put_raw(key, PRESENT.to_vec());
    } else {
        st.delete(key);
    }
}

/// Balances of an account as the state holds them (zero if it does not exist).
pub fn balances<V: StateView + ?Sized>(
    view: &V,
    account: &AccountId,
) -> Result<[u128; 3], StateError> {
    Ok(Overlay::new(view)
        .get::<AccountRecord>(StateKey::Account(account))?
        .map(|r| r.balances)
        .unwrap_or_default())
}

pub fn account<V: StateView + ?Sized>(
    view: &V,
    account: &AccountId,
) -> Result<Option<AccountRecord>, StateError> {
    Overlay::new(view).get(StateKey::Account(account))
}

pub fn get_record<V: StateView + ?Sized, T: starling_types::Decode>(
    view: &V,
    key: StateKey<'_>,
) -> Result<Option<T>, StateError> {
    Overlay::new(view).get(key)
}
