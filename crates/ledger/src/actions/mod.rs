//! What each action and each inbound message does to the state.
//!
//! One module per rule family, each rule cited at its function: `social` (S*), `bank` (K*),
//! `validators` (V*), `directory` (D*), `membership` (FM*, SP* and their messages M10–M14)
//! and `messages` (M*, inbound messages).
//! `ShardLedger::apply_action` is the one table that says which function applies each
//! [`Action`]; a new action adds a row there, its rule in a family module, its codec in
//! `starling-types` and its gas in [`crate::gas`].

use crate::exec::{BlockCtx, Failure};
use crate::overlay::Overlay;
use crate::records::{AccountRecord, PostRecord, StateKey};
use crate::{ShardLedger, StateError, StateView, TxError};
use starling_types::{AccountId, Action, PostId, TxBody};

mod bank;
mod directory;
mod membership;
mod messages;
mod social;
mod validators;

const PRESENT: [u8; 1] = [1];

/// What applying one transaction's action works on: the block's state and context, the
/// transaction, and the sender's account record (the caller writes it back).
pub(crate) struct Apply<'a, 'v, V: StateView + ?Sized> {
    pub(crate) st: &'a mut Overlay<'v, V>,
    pub(crate) ctx: &'a mut BlockCtx,
    pub(crate) body: &'a TxBody,
    pub(crate) acct: &'a mut AccountRecord,
}

impl ShardLedger {
    pub(crate) fn local(&self, account: &AccountId) -> bool {
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

    /// Applies `body`'s action: which rule applies each [`Action`].
    pub(crate) fn apply_action<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        body: &TxBody,
        acct: &mut AccountRecord,
    ) -> Result<(), Failure> {
        if self.treasury_locked(body) {
            return Err(TxError::TreasuryLocked.into());
        }
        let a = &mut Apply {
            st,
            ctx,
            body,
            acct,
        };
        match &body.action {
            Action::Post {
                text,
                reply_to,
                quote_of,
                langs,
            } => self.post(a, text, *reply_to, *quote_of, langs),
            Action::EditPost { post, text } => self.edit_post(a, post, text),
            Action::DeletePost { post } => self.delete_post(a, post),
            Action::Like { post } => self.like(a, post, true),
            Action::Unlike { post } => self.like(a, post, false),
            Action::Repost { post } => self.repost(a, post, true),
            Action::Unrepost { post } => self.repost(a, post, false),
            Action::Follow { target } => self.follow(a, target, true),
            Action::Unfollow { target } => self.follow(a, target, false),
            Action::Block { target } => Self::block(a, target, true),
            Action::Unblock { target } => Self::block(a, target, false),
            Action::Mute { target } => Self::mute(a, target, true),
            Action::Unmute { target } => Self::mute(a, target, false),
            Action::SetProfile {
                display_name,
                bio,
                avatar_url,
            } => self.set_profile(a, display_name, bio, avatar_url),
            Action::RegisterHandle { handle } => self.register_handle(a, handle),
            Action::Transfer { asset, to, amount } => self.transfer(a, *asset, to, *amount),
            Action::RegisterValidator {
                consensus_key,
                address,
                proof,
            } => self.register_validator(a, consensus_key, address, proof),
            Action::RetireValidator => self.retire_validator(a),
            Action::SetChatDevice { device } => self.set_chat_device(a, device),
            Action::RemoveChatDevice { id } => self.remove_chat_device(a, *id),
            Action::AdmitMember { member } => self.attest(a, member, true),
            Action::RevokeMember { member } => self.attest(a, member, false),
            Action::LeaveFoundation => self.leave_foundation(a),
            Action::Sponsor { account, amount } => self.sponsor(a, account, *amount),
            Action::EndSponsorship { account } => self.end_sponsorship(a, account),
            Action::ExpireSeat { foundation, holder } => {
                self.expire_seat(a.st, a.ctx, *foundation, holder)
            }
            Action::Govern(act) => self.govern(a, act),
            // Ballots run on the global shard, before any account is read (rule BL3).
            Action::Ballot(_) => Err(TxError::WrongShard {
                expected: starling_types::ShardId::GLOBAL,
            }
            .into()),
        }
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

/// The next nonce `account` must use: its account's, or, for a ballot key on the global
/// shard, its ballots' (rule BL3); 0 for a key never seen.
pub fn next_nonce<V: StateView + ?Sized>(view: &V, account: &AccountId) -> u64 {
    let st = Overlay::new(view);
    if let Ok(Some(a)) = st.get::<AccountRecord>(StateKey::Account(account)) {
        return a.nonce;
    }
    st.get::<crate::ballots::NullifierRecord>(StateKey::Nullifier(account))
        .ok()
        .flatten()
        .map_or(0, |n| n.nonce)
}

pub fn get_record<V: StateView + ?Sized, T: starling_types::Decode>(
    view: &V,
    key: StateKey<'_>,
) -> Result<Option<T>, StateError> {
    Overlay::new(view).get(key)
}
