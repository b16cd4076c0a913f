//! Indexing a finalized block: one LMDB write transaction per block, which also records the
//! shard's indexed height, so a crash leaves the view at a block boundary and indexing
//! resumes with the next block.
//!
//! Only transactions whose receipt says they applied (status 0) change the view; every
//! transaction's fee is added to what its account paid. From the global shard's emitted
//! messages the view takes accepted handle claims. The ledger already refused what must not
//! happen twice (a second like, a follow of someone followed), so the view trusts receipts.

use crate::keys::{self, TimeKey};
use crate::records::{AccountView, Counts, FeedItem, Notification, NotificationKind, PostView};
use crate::{text, AppViewError, BlockTxs, Tables};
use heed::RwTxn;
use starling_types::codec::{Decode, Encode};
use starling_types::{AccountId, Action, BlockHeader, PostId, TxBody};

pub(crate) struct Writer<'a, 't> {
    pub txn: &'a mut RwTxn<'t>,
    pub t: &'a Tables,
    /// Every feed row written: (feed owner, its time), for the view's head cache.
    pub heads: &'a mut Vec<(AccountId, TimeKey)>,
    /// Accounts whose followed set changed, for the view's follow cache.
    pub follows: &'a mut Vec<AccountId>,
}

fn hour_of(ms: u64) -> u64 {
    ms / 3_600_000
}

impl Writer<'_, '_> {
    pub fn block(&mut self, h: &BlockHeader, txs: &BlockTxs<'_>) -> Result<(), AppViewError> {
        for (_, body, receipt) in &txs.txs {
            if receipt.fee_paid > 0 {
                self.update_account(&body.account, |a| {
                    a.fees_paid = a.fees_paid.saturating_add(receipt.fee_paid)
                })?;
            }
        }
        for (i, body, _) in txs.applied() {
            let at = TimeKey {
                at_ms: h.timestamp_ms,
                shard: h.shard.0,
                height: h.height,
                index: *i,
            };
            self.action(body, at)?;
        }
        for (account, handle) in &txs.handles {
            self.handle(account, handle)?;
        }
        Ok(())
    }

    fn action(&mut self, body: &TxBody, at: TimeKey) -> Result<(), AppViewError> {
        let me = &body.account;
        match &body.action {
            Action::Post {
                text,
                reply_to,
                quote_of,
                langs,
            } => {
                let id = PostId {
                    author: *me,
                    seq: body.nonce,
                };
                self.post(&id, text, reply_to, quote_of, langs, at)?;
            }
            Action::EditPost { post, text } => self.edit(post, text, at)?,
            Action::DeletePost { post } => self.delete(post)?,
            Action::Like { post } => {
                let k = keys::cat(&keys::post(post), &keys::account(me));
                self.t.likes.put(self.txn, &k, &at.to_bytes())?;
                self.update_counts(post, |c| c.likes += 1)?;
                self.notify(&post.author, NotificationKind::Like, me, Some(*post), at)?;
            }
            Action::Unlike { post } => {
                let k = keys::cat(&keys::post(post), &keys::account(me));
                if self.t.likes.delete(self.txn, &k)? {
                    self.update_counts(post, |c| c.likes = c.likes.saturating_sub(1))?;
                }
            }
            Action::Repost { post } => {
                let k = keys::cat(&keys::post(post), &keys::account(me));
                self.t.reposts.put(self.txn, &k, &at.to_bytes())?;
                let feed_key = keys::cat(&keys::account(me), &at.to_bytes());
                self.t
                    .feed
                    .put(self.txn, &feed_key, &FeedItem::Repost(*post).to_bytes())?;
                self.heads.push((*me, at));
                self.update_counts(post, |c| c.reposts += 1)?;
                self.notify(&post.author, NotificationKind::Repost, me, Some(*post), at)?;
            }
            Action::Unrepost { post } => {
                let k = keys::cat(&keys::post(post), &keys::account(me));
                if let Some(when) = self.t.reposts.get(self.txn, &k)?.map(<[u8]>::to_vec) {
                    self.t.reposts.delete(self.txn, &k)?;
                    self.t
                        .feed
                        .delete(self.txn, &keys::cat(&keys::account(me), &when))?;
                    self.update_counts(post, |c| c.reposts = c.reposts.saturating_sub(1))?;
                }
            }
            Action::Follow { target } => {
                let a = keys::account(me);
                let b = keys::account(target);
                self.t
                    .following
                    .put(self.txn, &keys::cat(&a, &b), &at.to_bytes())?;
                self.t
                    .followers
                    .put(self.txn, &keys::cat(&b, &a), &at.to_bytes())?;
                self.update_account(me, |v| v.following += 1)?;
                self.update_account(target, |v| v.followers += 1)?;
                self.notify(target, NotificationKind::Follow, me, None, at)?;
                self.follows.push(*me);
            }
            Action::Unfollow { target } => {
                let a = keys::account(me);
                let b = keys::account(target);
                if self.t.following.delete(self.txn, &keys::cat(&a, &b))? {
                    self.follows.push(*me);
                    self.t.followers.delete(self.txn, &keys::cat(&b, &a))?;
                    self.update_account(me, |v| v.following = v.following.saturating_sub(1))?;
                    self.update_account(target, |v| v.followers = v.followers.saturating_sub(1))?;
                }
            }
            Action::Block { target } | Action::Unblock { target } => {
                let k = keys::cat(&keys::account(me), &keys::account(target));
                if matches!(body.action, Action::Block { .. }) {
                    self.t.blocks.put(self.txn, &k, &[])?;
                } else {
                    self.t.blocks.delete(self.txn, &k)?;
                }
            }
            Action::Mute { target } | Action::Unmute { target } => {
                let k = keys::cat(&keys::account(me), &keys::account(target));
                if matches!(body.action, Action::Mute { .. }) {
                    self.t.mutes.put(self.txn, &k, &[])?;
                } else {
                    self.t.mutes.delete(self.txn, &k)?;
                }
            }
            Action::SetProfile {
                display_name,
                bio,
                avatar_url,
            } => self.update_account(me, |v| {
                v.display_name.clone_from(display_name);
                v.bio.clone_from(bio);
                v.avatar_url.clone_from(avatar_url);
            })?,
            // The rest is not social: handles take effect when the global shard accepts the
            // claim (see `block`); transfers and validator actions only show in balances and
            // fees; the chat key directory is read from the ledger state, with proofs.
            _ => {}
        }
        Ok(())
    }

    fn post(
        &mut self,
        id: &PostId,
        text: &str,
        reply_to: &Option<PostId>,
        quote_of: &Option<PostId>,
        langs: &[String],
        at: TimeKey,
    ) -> Result<(), AppViewError> {
        let me = &id.author;
        let tags = text::hashtags(text);
        let view = PostView {
            id: *id,
            text: text.to_owned(),
            reply_to: *reply_to,
            quote_of: *quote_of,
            langs: langs.to_vec(),
            created: at,
            edited_ms: at.at_ms,
            deleted: false,
            revisions: Vec::new(),
            tags: tags.clone(),
        };
        let pk = keys::post(id);
        self.t.posts.put(self.txn, &pk, &view.to_bytes())?;
        let feed_key = keys::cat(&keys::account(me), &at.to_bytes());
        self.t
            .feed
            .put(self.txn, &feed_key, &FeedItem::Post(*id).to_bytes())?;
        self.heads.push((*me, at));
        self.update_account(me, |a| a.posts += 1)?;
        self.index_tags(id, &tags, at, true)?;
        let mut notified: Vec<AccountId> = Vec::new();
        if let Some(parent) = reply_to {
            let k = keys::cat(&keys::post(parent), &at.to_bytes());
            self.t.replies.put(self.txn, &k, &pk)?;
            self.update_counts(parent, |c| c.replies += 1)?;
            self.notify(&parent.author, NotificationKind::Reply, me, Some(*id), at)?;
            notified.push(parent.author);
        }
        if let Some(quoted) = quote_of {
            let k = keys::cat(&keys::post(quoted), &at.to_bytes());
            self.t.quotes.put(self.txn, &k, &pk)?;
            self.update_counts(quoted, |c| c.quotes += 1)?;
            if !notified.contains(&quoted.author) {
                self.notify(&quoted.author, NotificationKind::Quote, me, Some(*id), at)?;
                notified.push(quoted.author);
            }
        }
        for handle in text::mentions(text) {
            let Some(target) = self.t.handles.get(self.txn, handle.as_bytes())? else {
                continue;
            };
            let target = keys::decode_account(target)?;
            if !notified.contains(&target) {
                self.notify(&target, NotificationKind::Mention, me, Some(*id), at)?;
                notified.push(target);
            }
        }
        Ok(())
    }

    fn edit(&mut self, post: &PostId, text: &str, at: TimeKey) -> Result<(), AppViewError> {
        let Some(mut view) = self.get_post(post)? else {
            return Ok(());
        };
        let old = std::mem::replace(&mut view.text, text.to_owned());
        view.revisions.push((old, view.edited_ms));
        if view.revisions.len() > crate::records::MAX_REVISIONS {
            view.revisions.remove(0);
        }
        view.edited_ms = at.at_ms;
        let tags = text::hashtags(text);
        let dropped: Vec<String> = view
            .tags
            .iter()
            .filter(|t| !tags.contains(t))
            .cloned()
            .collect();
        let added: Vec<String> = tags
            .iter()
            .filter(|t| !view.tags.contains(t))
            .cloned()
            .collect();
        self.index_tags(post, &dropped, view.created, false)?;
        // A tag added by an edit counts towards trending when the edit happened.
        for tag in &added {
            let k = keys::tag(tag, view.created);
            self.t.tags.put(self.txn, &k, &keys::post(post))?;
            self.bump_hour(tag, at.at_ms)?;
        }
        view.tags = tags;
        self.t
            .posts
            .put(self.txn, &keys::post(post), &view.to_bytes())
            .map_err(AppViewError::from)
    }

    fn delete(&mut self, post: &PostId) -> Result<(), AppViewError> {
        let Some(mut view) = self.get_post(post)? else {
            return Ok(());
        };
        if view.deleted {
            return Ok(());
        }
        self.t.feed.delete(
            self.txn,
            &keys::cat(&keys::account(&post.author), &view.created.to_bytes()),
        )?;
        let tags = std::mem::take(&mut view.tags);
        self.index_tags(post, &tags, view.created, false)?;
        if let Some(parent) = &view.reply_to {
            let k = keys::cat(&keys::post(parent), &view.created.to_bytes());
            if self.t.replies.delete(self.txn, &k)? {
                self.update_counts(parent, |c| c.replies = c.replies.saturating_sub(1))?;
            }
        }
        if let Some(quoted) = &view.quote_of {
            let k = keys::cat(&keys::post(quoted), &view.created.to_bytes());
            if self.t.quotes.delete(self.txn, &k)? {
                self.update_counts(quoted, |c| c.quotes = c.quotes.saturating_sub(1))?;
            }
        }
        view.deleted = true;
        view.text.clear();
        view.langs.clear();
        view.revisions.clear();
        self.update_account(&post.author, |a| a.posts = a.posts.saturating_sub(1))?;
        self.t
            .posts
            .put(self.txn, &keys::post(post), &view.to_bytes())
            .map_err(AppViewError::from)
    }

    /// Adds (`on`) or removes the rows of `tags` for a post created at `created`; adding also
    /// counts each towards the hour it was posted in.
    fn index_tags(
        &mut self,
        post: &PostId,
        tags: &[String],
        created: TimeKey,
        on: bool,
    ) -> Result<(), AppViewError> {
        for tag in tags {
            let k = keys::tag(tag, created);
            if on {
                self.t.tags.put(self.txn, &k, &keys::post(post))?;
                self.bump_hour(tag, created.at_ms)?;
            } else {
                self.t.tags.delete(self.txn, &k)?;
            }
        }
        Ok(())
    }

    fn bump_hour(&mut self, tag: &str, at_ms: u64) -> Result<(), AppViewError> {
        let k = keys::cat(&hour_of(at_ms).to_be_bytes(), tag.as_bytes());
        let n = match self.t.tag_hours.get(self.txn, &k)? {
            Some(b) => crate::read_u64(b)?,
            None => 0,
        };
        self.t.tag_hours.put(self.txn, &k, &(n + 1).to_be_bytes())?;
        Ok(())
    }

    fn handle(&mut self, account: &AccountId, handle: &str) -> Result<(), AppViewError> {
        let mut view = self.get_account(account)?;
        if let Some(old) = view.handle.take() {
            let owner = self
                .t
                .handles
                .get(self.txn, old.as_bytes())?
                .map(<[u8]>::to_vec);
            if owner.as_deref() == Some(&keys::account(account)[..]) {
                self.t.handles.delete(self.txn, old.as_bytes())?;
            }
        }
        self.t
            .handles
            .put(self.txn, handle.as_bytes(), &keys::account(account))?;
        view.handle = Some(handle.to_owned());
        self.put_account(account, &view)
    }

    fn notify(
        &mut self,
        to: &AccountId,
        kind: NotificationKind,
        actor: &AccountId,
        post: Option<PostId>,
        at: TimeKey,
    ) -> Result<(), AppViewError> {
        if to == actor {
            return Ok(());
        }
        let seq = match self.t.meta.get(self.txn, crate::NOTIFICATION_SEQ)? {
            Some(b) => crate::read_u64(b)? + 1,
            None => 1,
        };
        self.t
            .meta
            .put(self.txn, crate::NOTIFICATION_SEQ, &seq.to_be_bytes())?;
        let n = Notification {
            seq,
            kind,
            actor: *actor,
            post,
            at_ms: at.at_ms,
        };
        let k = keys::cat(&keys::account(to), &seq.to_be_bytes());
        self.t.notifs.put(self.txn, &k, &n.to_bytes())?;
        self.update_account(to, |a| a.unread += 1)
    }

    fn get_post(&self, post: &PostId) -> Result<Option<PostView>, AppViewError> {
        self.t
            .posts
            .get(self.txn, &keys::post(post))?
            .map(PostView::from_bytes)
            .transpose()
            .map_err(AppViewError::from)
    }

    fn update_counts(
        &mut self,
        post: &PostId,
        f: impl FnOnce(&mut Counts),
    ) -> Result<(), AppViewError> {
        let k = keys::post(post);
        let mut c = match self.t.counts.get(self.txn, &k)? {
            Some(b) => Counts::from_bytes(b)?,
            None => Counts::default(),
        };
        f(&mut c);
        self.t.counts.put(self.txn, &k, &c.to_bytes())?;
        Ok(())
    }

    fn get_account(&self, account: &AccountId) -> Result<AccountView, AppViewError> {
        Ok(
            match self.t.accounts.get(self.txn, &keys::account(account))? {
                Some(b) => AccountView::from_bytes(b)?,
                None => AccountView::default(),
            },
        )
    }

    fn put_account(&mut self, account: &AccountId, v: &AccountView) -> Result<(), AppViewError> {
        self.t
            .accounts
            .put(self.txn, &keys::account(account), &v.to_bytes())?;
        Ok(())
    }

    fn update_account(
        &mut self,
        account: &AccountId,
        f: impl FnOnce(&mut AccountView),
    ) -> Result<(), AppViewError> {
        let mut v = self.get_account(account)?;
        f(&mut v);
        self.put_account(account, &v)
    }
}
