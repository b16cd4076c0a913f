//! Social rules (S1–S7): posts, edits and deletes, likes and reposts, follows, blocks and
//! mutes, profiles and handles. A post can only be checked when it lives on this shard (its
//! author's home shard); references to posts on other shards are accepted and resolved by the
//! relays that index all shards.

use super::{set_presence, Apply};
use crate::exec::Failure;
use crate::records::{PostRecord, ProfileRecord, RevisionRecord, StateKey};
use crate::{validate, ShardLedger, StateView, TxError};
use starling_types::receipt::Payload;
use starling_types::{AccountId, PostId, ShardId};

impl ShardLedger {
    /// S1: text of at most 300 graphemes (empty only for a quote); targets exist here.
    pub(super) fn post<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        text: &str,
        reply_to: Option<PostId>,
        quote_of: Option<PostId>,
        langs: &[String],
    ) -> Result<(), Failure> {
        let (st, ctx, me) = (&mut *a.st, &mut *a.ctx, &a.body.account);
        validate::post_text(text, quote_of.is_some())?;
        validate::langs(langs)?;
        for target in reply_to.iter().chain(quote_of.iter()) {
            self.check_target(st, target)?;
        }
        let id = PostId {
            author: *me,
            seq: a.body.nonce,
        };
        let rec = PostRecord {
            text: text.to_owned(),
            reply_to,
            quote_of,
            langs: langs.to_vec(),
            created_height: ctx.height,
            edited_height: ctx.height,
            revisions: 0,
            deleted: false,
        };
        st.put(StateKey::Post(&id), &rec);
        Ok(())
    }

    /// S3: the author edits; the version replaced is kept as a revision.
    pub(super) fn edit_post<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        post: &PostId,
        text: &str,
    ) -> Result<(), Failure> {
        let (st, ctx, me) = (&mut *a.st, &mut *a.ctx, &a.body.account);
        let mut rec = self.own_post(st, me, post)?;
        if rec.revisions >= self.params.max_edits {
            return Err(TxError::EditLimit {
                max: self.params.max_edits,
            }
            .into());
        }
        validate::post_text(text, rec.quote_of.is_some())?;
        let old = RevisionRecord {
            text: std::mem::replace(&mut rec.text, text.to_owned()),
            height: rec.edited_height,
        };
        st.put(StateKey::Revision(post, rec.revisions), &old);
        rec.revisions += 1;
        rec.edited_height = ctx.height;
        st.put(StateKey::Post(post), &rec);
        Ok(())
    }

    /// S4: delete leaves a tombstone (the id stays taken) and drops text and revisions.
    pub(super) fn delete_post<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        post: &PostId,
    ) -> Result<(), Failure> {
        let (st, ctx, me) = (&mut *a.st, &mut *a.ctx, &a.body.account);
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
        Ok(())
    }

    /// S5: one like and one repost per account and post.
    pub(super) fn like<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        post: &PostId,
        on: bool,
    ) -> Result<(), Failure> {
        let errors = (TxError::AlreadyLiked, TxError::NotLiked);
        self.mark_post(a, post, on, |m, p| StateKey::Like(m, p), errors)
    }

    pub(super) fn repost<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        post: &PostId,
        on: bool,
    ) -> Result<(), Failure> {
        let errors = (TxError::AlreadyReposted, TxError::NotReposted);
        self.mark_post(a, post, on, |m, p| StateKey::Repost(m, p), errors)
    }

    /// Sets or clears the sender's mark `key` on `post` (which must exist here to be marked);
    /// `errors` are what setting twice and clearing nothing fail with.
    fn mark_post<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        post: &PostId,
        on: bool,
        key: for<'k> fn(&'k AccountId, &'k PostId) -> StateKey<'k>,
        (already, missing): (TxError, TxError),
    ) -> Result<(), Failure> {
        let (st, me) = (&mut *a.st, &a.body.account);
        if on {
            self.check_target(st, post)?;
        }
        Self::toggle(st, key(me, post), on, already, missing)
    }

    /// S6: follows are recorded on both sides; the followee's side by message if remote.
    pub(super) fn follow<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        target: &AccountId,
        following: bool,
    ) -> Result<(), Failure> {
        let (st, ctx, me) = (&mut *a.st, &mut *a.ctx, &a.body.account);
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
        Ok(())
    }

    /// S7: blocks and mutes are the user's own lists, applied by relays when reading.
    pub(super) fn block<V: StateView + ?Sized>(
        a: &mut Apply<'_, '_, V>,
        target: &AccountId,
        on: bool,
    ) -> Result<(), Failure> {
        let errors = (TxError::AlreadyBlocked, TxError::NotBlocked);
        Self::mark_account(a, target, on, |m, t| StateKey::Block(m, t), errors)
    }

    pub(super) fn mute<V: StateView + ?Sized>(
        a: &mut Apply<'_, '_, V>,
        target: &AccountId,
        on: bool,
    ) -> Result<(), Failure> {
        let errors = (TxError::AlreadyMuted, TxError::NotMuted);
        Self::mark_account(a, target, on, |m, t| StateKey::Mute(m, t), errors)
    }

    /// Sets or clears the sender's mark `key` on another account.
    fn mark_account<V: StateView + ?Sized>(
        a: &mut Apply<'_, '_, V>,
        target: &AccountId,
        on: bool,
        key: for<'k> fn(&'k AccountId, &'k AccountId) -> StateKey<'k>,
        (already, missing): (TxError, TxError),
    ) -> Result<(), Failure> {
        let me = &a.body.account;
        if target == me {
            return Err(TxError::SelfTarget.into());
        }
        Self::toggle(a.st, key(me, target), on, already, missing)
    }

    pub(super) fn set_profile<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        display_name: &str,
        bio: &str,
        avatar_url: &str,
    ) -> Result<(), Failure> {
        let (st, me) = (&mut *a.st, &a.body.account);
        validate::profile(display_name, bio, avatar_url)?;
        let rec = ProfileRecord {
            display_name: display_name.to_owned(),
            bio: bio.to_owned(),
            avatar_url: avatar_url.to_owned(),
        };
        st.put(StateKey::Profile(me), &rec);
        Ok(())
    }

    /// S2: a handle is claimed on the global shard; one claim in flight per account.
    pub(super) fn register_handle<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        handle: &str,
    ) -> Result<(), Failure> {
        let (st, ctx, me, acct) = (&mut *a.st, &mut *a.ctx, &a.body.account, &mut *a.acct);
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
        Ok(())
    }
}
