//! Starling's app view: what a relay shows people, indexed from the finalized blocks of every
//! shard and kept on disk (LMDB).
//!
//! Indexing ([`AppView::index_block`]) takes each shard's blocks in height order with their
//! receipts; one write transaction per block records the block's effects and the shard's new
//! indexed height, so the view is always at block boundaries and a restart resumes where it
//! stopped. Reading never changes it, except marking notifications read.
//!
//! # Tables (one LMDB environment under `<dir>/appview`)
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `indexed` ‖ shard (`u16`), `notification_seq` | `u64` |
//! | `posts` | post id | [`PostView`] |
//! | `counts` | post id | [`Counts`] |
//! | `feed` | author ‖ [`TimeKey`] | [`FeedItem`] (the author's posts and reposts) |
//! | `likes`, `reposts` | post id ‖ account | time key |
//! | `replies`, `quotes` | post id ‖ time key | the reply's or quote's post id |
//! | `following`, `followers` | account ‖ account | time key |
//! | `blocks`, `mutes` | account ‖ account | empty |
//! | `accounts` | account | [`AccountView`] |
//! | `notifications` | account ‖ sequence (`u64`) | [`Notification`] |
//! | `tags` | tag ‖ `0x00` ‖ time key | post id |
//! | `tag_hours` | hour since the epoch (`u64`) ‖ tag | posts that hour (`u64`) |
//! | `handles` | handle | account |
//!
//! # Reading
//! Pages run newest first (threads' replies oldest first) and end with an opaque cursor.
//! Blocks and mutes apply when reading: a viewer does not see posts, reposts or notifications
//! of accounts they blocked or muted, or of accounts that blocked them. The home timeline
//! merges, newest first, the feeds of the accounts the viewer follows and the viewer's own.

mod error;
mod index;
pub mod keys;
pub mod records;
pub mod search;
pub mod text;

pub use error::AppViewError;
pub use keys::TimeKey;
pub use records::{AccountView, Counts, FeedItem, Notification, NotificationKind, PostView};

use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, RoTxn};
use starling_types::codec::Decode;
use starling_types::{AccountId, Block, PostId, Receipt, ShardId, TxBody};
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;

const DB_DIR: &str = "appview";
/// Address space reserved for the view's file (it grows as needed up to this).
const MAP_SIZE_BYTES: usize = 1 << 40;
pub(crate) const NOTIFICATION_SEQ: &[u8] = b"notification_seq";
const INDEXED: &[u8] = b"indexed";
/// Most items in one page.
pub const MAX_PAGE: usize = 100;
/// Most ancestors shown above a post in its thread.
pub const MAX_ANCESTORS: usize = 64;
/// Most followed accounts whose feeds a home timeline merges.
pub const MAX_HOME_SOURCES: usize = 10_000;
/// How far back trending hashtags look, in hours.
pub const TRENDING_HOURS: u64 = 24;

type Db = Database<Bytes, Bytes>;

#[derive(Clone, Copy)]
pub(crate) struct Tables {
    meta: Db,
    posts: Db,
    counts: Db,
    feed: Db,
    likes: Db,
    reposts: Db,
    replies: Db,
    quotes: Db,
    following: Db,
    followers: Db,
    blocks: Db,
    mutes: Db,
    accounts: Db,
    notifs: Db,
    tags: Db,
    tag_hours: Db,
    handles: Db,
}

/// A block as the view reads it: each transaction with its position, decoded body and
/// receipt (decoded once for the tables and search), and the handle claims the global shard
/// accepted in it.
pub(crate) struct BlockTxs<'a> {
    pub txs: Vec<(u32, TxBody, &'a starling_types::TxReceipt)>,
    pub handles: Vec<(&'a AccountId, &'a str)>,
}

impl<'a> BlockTxs<'a> {
    pub fn new(block: &Block, receipts: &'a [Receipt]) -> BlockTxs<'a> {
        let tx_receipts = receipts.iter().filter_map(|r| match r {
            Receipt::Tx(t) => Some(t),
            Receipt::Message(_) => None,
        });
        let txs = block
            .txs
            .iter()
            .zip(tx_receipts)
            .enumerate()
            .filter_map(|(i, (env, r))| env.body().ok().map(|b| (i as u32, b, r)))
            .collect();
        let handles = receipts
            .iter()
            .filter(|_| block.header.shard == ShardId::GLOBAL)
            .filter_map(|r| match r {
                Receipt::Message(m) => match &m.payload {
                    starling_types::Payload::HandleResult {
                        account,
                        handle,
                        accepted: true,
                    } => Some((account, handle.as_str())),
                    _ => None,
                },
                Receipt::Tx(_) => None,
            })
            .collect();
        BlockTxs { txs, handles }
    }

    /// The transactions that applied (status 0).
    pub fn applied(&self) -> impl Iterator<Item = &(u32, TxBody, &'a starling_types::TxReceipt)> {
        self.txs.iter().filter(|(_, _, r)| r.status == 0)
    }
}

pub(crate) fn read_u64(b: &[u8]) -> Result<u64, AppViewError> {
    b.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| AppViewError::Corrupt("a counter is not 8 bytes".into()))
}

/// One page of results and the cursor of the next (none at the end).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A post with its counts and what the viewer did to it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PostEntry {
    pub post: PostView,
    pub counts: Counts,
    pub liked: bool,
    pub reposted: bool,
}

/// One row of a feed or timeline.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FeedEntry {
    /// Whose feed it comes from: the author, or the account that reposted it.
    pub by: AccountId,
    pub item: FeedItem,
    pub at: TimeKey,
    pub entry: PostEntry,
}

/// A post in context: the posts it replies to (oldest first, up to [`MAX_ANCESTORS`]), and
/// the first page of its replies (oldest first).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Thread {
    pub ancestors: Vec<PostEntry>,
    pub post: PostEntry,
    pub replies: Page<PostEntry>,
}

/// An account and its view.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AccountEntry {
    pub account: AccountId,
    pub view: AccountView,
}

/// The app view of one node.
pub struct AppView {
    env: Env,
    t: Tables,
    search: search::Search,
    /// An upper bound of the time (ms) of the newest feed row of each account seen so far
    /// (see [`AppView::home`]): raised before every commit that adds a row, filled lazily from
    /// the tables, never lowered (a deleted row leaves a bound that is merely loose). Keyed
    /// by [`head_slot`]: accounts that share a slot share the larger bound, still a bound for
    /// each. Sixteen bytes an entry keep a large map in the CPU's caches.
    heads: std::sync::RwLock<HashMap<u64, u64>>,
    /// Followed sets read for home timelines. Dropped (and the epoch bumped) right after a
    /// commit that changes them; a reader caches what it read only if no such commit came
    /// between its snapshot and its insert (same epoch), so no stale set outlives a commit.
    follows: std::sync::Mutex<FollowCache>,
}

#[derive(Default)]
struct FollowCache {
    epoch: u64,
    sets: HashMap<AccountId, std::sync::Arc<Vec<AccountId>>>,
}

/// Most followed sets cached (then the cache starts again).
const MAX_CACHED_FOLLOW_SETS: usize = 100_000;

impl std::fmt::Debug for AppView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppView").finish_non_exhaustive()
    }
}

/// A search cursor: how many results came before, below [`search::MAX_SEARCH_DEPTH`].
fn search_offset(cursor: Option<&str>) -> Result<usize, AppViewError> {
    match cursor {
        None => Ok(0),
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|n| *n < search::MAX_SEARCH_DEPTH)
            .ok_or(AppViewError::BadCursor),
    }
}

/// Where an account's head bound lives in the cache: eight bytes of its key (keys are
/// uniformly random; two accounts that share a slot only loosen each other's bound).
fn head_slot(account: &AccountId) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&account.bytes[..8]);
    u64::from_le_bytes(b) ^ account.key_type as u64
}

fn clamp(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE)
}

impl AppView {
    /// Opens the view in `dir` (creating it if needed); changes become searchable within
    /// [`search::COMMIT_INTERVAL`].
    pub fn open(dir: &Path) -> Result<AppView, AppViewError> {
        Self::open_with(dir, search::COMMIT_INTERVAL)
    }

    /// As [`Self::open`], with changes searchable within `search_commit` (zero: at once, as
    /// tests want).
    pub fn open_with(
        dir: &Path,
        search_commit: std::time::Duration,
    ) -> Result<AppView, AppViewError> {
        let path = dir.join(DB_DIR);
        std::fs::create_dir_all(&path)
            .map_err(|e| AppViewError::Io(format!("{}: {e}", path.display())))?;
        // SAFETY: LMDB memory-maps the file. The mapping is only undefined behaviour if the
        // file is modified outside LMDB's own locking; the view is the only writer of its
        // directory and opens it once per process.
        #[allow(unsafe_code)]
        // The view can be rebuilt from the chain, so a commit syncs the data once and not the
        // meta page (a system crash may undo the last commit; LMDB stays consistent).
        let env = unsafe {
            let mut o = EnvOpenOptions::new();
            o.map_size(MAP_SIZE_BYTES).max_dbs(20);
            o.flags(heed::EnvFlags::NO_META_SYNC);
            o.open(&path)?
        };
        let mut w = env.write_txn()?;
        let mut db = |name: &str| env.create_database::<Bytes, Bytes>(&mut w, Some(name));
        let t = Tables {
            meta: db("meta")?,
            posts: db("posts")?,
            counts: db("counts")?,
            feed: db("feed")?,
            likes: db("likes")?,
            reposts: db("reposts")?,
            replies: db("replies")?,
            quotes: db("quotes")?,
            following: db("following")?,
            followers: db("followers")?,
            blocks: db("blocks")?,
            mutes: db("mutes")?,
            accounts: db("accounts")?,
            notifs: db("notifications")?,
            tags: db("tags")?,
            tag_hours: db("tag_hours")?,
            handles: db("handles")?,
        };
        w.commit()?;
        let search = search::Search::open(&path.join("search"), search_commit)?;
        Ok(AppView {
            env,
            t,
            search,
            heads: std::sync::RwLock::new(HashMap::new()),
            follows: std::sync::Mutex::new(FollowCache::default()),
        })
    }

    /// Makes every change indexed so far searchable now.
    pub fn flush_search(&self) -> Result<(), AppViewError> {
        self.search.flush()
    }

    /// The first height of `shard` the view still needs (both its tables and search).
    pub fn resume_from(&self, shard: ShardId) -> Result<u64, AppViewError> {
        let tables = self.indexed(shard)?;
        let search = self.search.indexed(shard);
        Ok(match (tables, search) {
            (Some(a), Some(b)) => a.min(b) + 1,
            _ => 1,
        })
    }

    /// The last height indexed of `shard` (`None` before its first block).
    pub fn indexed(&self, shard: ShardId) -> Result<Option<u64>, AppViewError> {
        let r = self.env.read_txn()?;
        self.t
            .meta
            .get(&r, &keys::cat(INDEXED, &shard.0.to_be_bytes()))?
            .map(read_u64)
            .transpose()
    }

    /// Indexes the next block of its shard with its receipts. A block at or below the indexed
    /// height is skipped (indexing is idempotent); one that leaves a gap is an error.
    pub fn index_block(&self, block: &Block, receipts: &[Receipt]) -> Result<(), AppViewError> {
        self.index_blocks(std::iter::once(Ok((block, receipts))))
    }

    /// Indexes blocks (of any shards, each shard's in height order) in one write transaction:
    /// all of them or, on the first error, none. One commit for many blocks is what keeps
    /// indexing cheap under load, when every block touches pages all over the tables.
    pub fn index_blocks<'a, B, R>(
        &self,
        blocks: impl IntoIterator<Item = Result<(B, R), AppViewError>>,
    ) -> Result<(), AppViewError>
    where
        B: std::borrow::Borrow<Block> + 'a,
        R: std::borrow::Borrow<[Receipt]> + 'a,
    {
        let mut w = self.env.write_txn()?;
        let mut searched: Vec<(ShardId, u64, Vec<search::Op>)> = Vec::new();
        let mut heads = Vec::new();
        let mut follows = Vec::new();
        for item in blocks {
            let (block, receipts) = item?;
            let (block, receipts) = (block.borrow(), receipts.borrow());
            let txs = BlockTxs::new(block, receipts);
            let shard = block.header.shard;
            let height = block.header.height;
            let gap = |indexed: u64| AppViewError::OutOfOrder {
                shard: shard.0,
                indexed,
                got: height,
            };
            // Search first: it may be behind the tables after a crash between the commits.
            let search_at = searched
                .iter()
                .rev()
                .find(|(s, _, _)| *s == shard)
                .map(|(_, h, _)| *h)
                .or_else(|| self.search.indexed(shard));
            match search_at {
                Some(h) if height <= h => {}
                Some(h) if height != h + 1 => return Err(gap(h)),
                _ => searched.push((shard, height, search::ops(&block.header, &txs))),
            }
            let key = keys::cat(INDEXED, &shard.0.to_be_bytes());
            let indexed = self.t.meta.get(&w, &key)?.map(read_u64).transpose()?;
            match indexed {
                Some(h) if height <= h => continue,
                Some(h) if height != h + 1 => return Err(gap(h)),
                // The first block indexed of a shard may be any (a relay that starts late).
                _ => {}
            }
            index::Writer {
                txn: &mut w,
                t: &self.t,
                heads: &mut heads,
                follows: &mut follows,
            }
            .block(&block.header, &txs)?;
            self.t.meta.put(&mut w, &key, &height.to_be_bytes())?;
        }
        // Raised before the rows become visible, so a reader never sees a row newer than
        // its author's bound.
        self.raise_heads(heads);
        w.commit()?;
        if !follows.is_empty() {
            let mut cache = self.follows.lock().unwrap_or_else(|p| p.into_inner());
            cache.epoch += 1;
            for a in &follows {
                cache.sets.remove(a);
            }
        }
        let r = self.env.read_txn()?;
        self.search.apply(&searched, &|account| {
            let a = self.account_in(&r, account)?;
            let text = [a.handle.clone().unwrap_or_default(), a.display_name, a.bio].join(" ");
            Ok((!text.trim().is_empty()).then_some(text))
        })
    }

    /// Posts matching a full-text query, best first, as `viewer` may see them; the cursor
    /// is how many results came before (at most [`search::MAX_SEARCH_DEPTH`]).
    pub fn search_posts(
        &self,
        query: &str,
        viewer: Option<&AccountId>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<PostEntry>, AppViewError> {
        let limit = clamp(limit);
        let offset = search_offset(cursor)?;
        let ids = self.search.posts(query, offset, limit)?;
        let r = self.env.read_txn()?;
        let mut items = Vec::new();
        for id in &ids {
            if self.hidden(&r, viewer, &id.author)? {
                continue;
            }
            if let Some(p) = self.post_in(&r, id)? {
                if !p.deleted {
                    items.push(self.entry(&r, p, viewer)?);
                }
            }
        }
        let next = offset + ids.len();
        let more = ids.len() == limit && next < search::MAX_SEARCH_DEPTH;
        Ok(Page {
            items,
            next: more.then(|| next.to_string()),
        })
    }

    /// Accounts whose handle, name or bio match a full-text query, best first.
    pub fn search_people(
        &self,
        query: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AccountEntry>, AppViewError> {
        let limit = clamp(limit);
        let offset = search_offset(cursor)?;
        let ids = self.search.people(query, offset, limit)?;
        let r = self.env.read_txn()?;
        let items = ids
            .iter()
            .map(|a| {
                Ok(AccountEntry {
                    account: *a,
                    view: self.account_in(&r, a)?,
                })
            })
            .collect::<Result<Vec<_>, AppViewError>>()?;
        let next = offset + ids.len();
        let more = ids.len() == limit && next < search::MAX_SEARCH_DEPTH;
        Ok(Page {
            items,
            next: more.then(|| next.to_string()),
        })
    }

    /// An account's view (empty if it never did anything the view saw).
    pub fn account(&self, account: &AccountId) -> Result<AccountView, AppViewError> {
        let r = self.env.read_txn()?;
        self.account_in(&r, account)
    }

    fn account_in(&self, r: &RoTxn, account: &AccountId) -> Result<AccountView, AppViewError> {
        Ok(match self.t.accounts.get(r, &keys::account(account))? {
            Some(b) => AccountView::from_bytes(b)?,
            None => AccountView::default(),
        })
    }

    /// The account holding `handle` (lowercase).
    pub fn by_handle(&self, handle: &str) -> Result<Option<AccountId>, AppViewError> {
        let r = self.env.read_txn()?;
        self.t
            .handles
            .get(&r, handle.to_ascii_lowercase().as_bytes())?
            .map(keys::decode_account)
            .transpose()
    }

    /// Whether `viewer` should not see `author`: blocked or muted by the viewer, or blocking
    /// the viewer.
    fn hidden(
        &self,
        r: &RoTxn,
        viewer: Option<&AccountId>,
        author: &AccountId,
    ) -> Result<bool, AppViewError> {
        let Some(v) = viewer else { return Ok(false) };
        if v == author {
            return Ok(false);
        }
        let (vk, ak) = (keys::account(v), keys::account(author));
        Ok(self.t.blocks.get(r, &keys::cat(&vk, &ak))?.is_some()
            || self.t.mutes.get(r, &keys::cat(&vk, &ak))?.is_some()
            || self.t.blocks.get(r, &keys::cat(&ak, &vk))?.is_some())
    }

    /// How `a` stands to `b`: follows, blocks and mutes, both ways where they matter.
    pub fn relation(&self, a: &AccountId, b: &AccountId) -> Result<Relation, AppViewError> {
        let r = self.env.read_txn()?;
        let k = keys::cat(&keys::account(a), &keys::account(b));
        let back = keys::cat(&keys::account(b), &keys::account(a));
        Ok(Relation {
            following: self.t.following.get(&r, &k)?.is_some(),
            followed_by: self.t.following.get(&r, &back)?.is_some(),
            blocking: self.t.blocks.get(&r, &k)?.is_some(),
            blocked_by: self.t.blocks.get(&r, &back)?.is_some(),
            muting: self.t.mutes.get(&r, &k)?.is_some(),
        })
    }

    fn entry(
        &self,
        r: &RoTxn,
        post: PostView,
        viewer: Option<&AccountId>,
    ) -> Result<PostEntry, AppViewError> {
        let pk = keys::post(&post.id);
        let counts = match self.t.counts.get(r, &pk)? {
            Some(b) => Counts::from_bytes(b)?,
            None => Counts::default(),
        };
        // Nobody liked (reposted) it: neither did the viewer, and there is nothing to read.
        let (liked, reposted) = match viewer {
            Some(v) => {
                let k = keys::cat(&pk, &keys::account(v));
                (
                    counts.likes > 0 && self.t.likes.get(r, &k)?.is_some(),
                    counts.reposts > 0 && self.t.reposts.get(r, &k)?.is_some(),
                )
            }
            None => (false, false),
        };
        Ok(PostEntry {
            post,
            counts,
            liked,
            reposted,
        })
    }

    fn post_in(&self, r: &RoTxn, id: &PostId) -> Result<Option<PostView>, AppViewError> {
        self.t
            .posts
            .get(r, &keys::post(id))?
            .map(PostView::from_bytes)
            .transpose()
            .map_err(AppViewError::from)
    }

    /// A post with its counts, as `viewer` sees it (`None` if unknown or hidden from them).
    pub fn post(
        &self,
        id: &PostId,
        viewer: Option<&AccountId>,
    ) -> Result<Option<PostEntry>, AppViewError> {
        let r = self.env.read_txn()?;
        if self.hidden(&r, viewer, &id.author)? {
            return Ok(None);
        }
        match self.post_in(&r, id)? {
            Some(p) => Ok(Some(self.entry(&r, p, viewer)?)),
            None => Ok(None),
        }
    }

    /// Reads feed rows of `author` newest first, below `before` (exclusive).
    fn feed_rows(
        &self,
        r: &RoTxn,
        author: &AccountId,
        before: Option<TimeKey>,
        max: usize,
    ) -> Result<Vec<(TimeKey, FeedItem)>, AppViewError> {
        let prefix = keys::account(author);
        let lo = prefix.clone();
        let hi = match before {
            Some(t) => keys::cat(&prefix, &t.to_bytes()),
            None => keys::prefix_end(&prefix).unwrap_or_default(),
        };
        let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
        let mut out = Vec::new();
        for row in self.t.feed.rev_range(r, &range)? {
            let (k, v) = row?;
            let at = TimeKey::from_bytes(&k[keys::ACCOUNT_LEN..])
                .ok_or_else(|| AppViewError::Corrupt("feed key".into()))?;
            out.push((at, FeedItem::from_bytes(v)?));
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// Turns feed rows into entries the viewer may see (skipping deleted, unknown and hidden
    /// posts).
    fn feed_entry(
        &self,
        r: &RoTxn,
        by: &AccountId,
        at: TimeKey,
        item: FeedItem,
        viewer: Option<&AccountId>,
    ) -> Result<Option<FeedEntry>, AppViewError> {
        let post = item.post();
        // The feed's owner was checked by the caller; a repost's author is checked here.
        if post.author != *by && self.hidden(r, viewer, &post.author)? {
            return Ok(None);
        }
        let Some(view) = self.post_in(r, post)? else {
            return Ok(None);
        };
        if view.deleted {
            return Ok(None);
        }
        Ok(Some(FeedEntry {
            by: *by,
            item,
            at,
            entry: self.entry(r, view, viewer)?,
        }))
    }

    /// An author's posts and reposts, newest first.
    pub fn author_feed(
        &self,
        author: &AccountId,
        viewer: Option<&AccountId>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<FeedEntry>, AppViewError> {
        let limit = clamp(limit);
        let mut before = cursor.map(TimeKey::from_cursor).transpose()?;
        let r = self.env.read_txn()?;
        let mut items = Vec::new();
        if self.hidden(&r, viewer, author)? {
            return Ok(Page { items, next: None });
        }
        loop {
            let rows = self.feed_rows(&r, author, before, limit + 1)?;
            let exhausted = rows.len() <= limit;
            for (at, item) in rows {
                if items.len() == limit {
                    return Ok(Page {
                        next: before.map(TimeKey::cursor),
                        items,
                    });
                }
                before = Some(at);
                if let Some(e) = self.feed_entry(&r, author, at, item, viewer)? {
                    items.push(e);
                }
            }
            if exhausted {
                return Ok(Page { items, next: None });
            }
        }
    }

    /// The accounts `account` follows (all of them, up to [`MAX_HOME_SOURCES`]).
    fn followees(&self, r: &RoTxn, account: &AccountId) -> Result<Vec<AccountId>, AppViewError> {
        let prefix = keys::account(account);
        let mut out = Vec::new();
        for row in self.t.following.prefix_iter(r, &prefix)? {
            let (k, _) = row?;
            out.push(keys::decode_account(&k[keys::ACCOUNT_LEN..])?);
            if out.len() >= MAX_HOME_SOURCES {
                break;
            }
        }
        Ok(out)
    }

    /// Forgets the cached feed-head bounds, as a restart does (they are read again lazily).
    pub fn clear_head_cache(&self) {
        self.heads
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Raises the head bounds of feeds that gained rows.
    fn raise_heads(&self, rows: Vec<(AccountId, TimeKey)>) {
        if rows.is_empty() {
            return;
        }
        let mut heads = self.heads.write().unwrap_or_else(|p| p.into_inner());
        for (account, at) in rows {
            let h = heads.entry(head_slot(&account)).or_insert(at.at_ms);
            *h = (*h).max(at.at_ms);
        }
    }

    /// Upper bounds of the newest feed row of each of `authors` (`None`: an empty feed),
    /// reading the tables only for accounts not yet cached.
    fn head_bounds(
        &self,
        r: &RoTxn,
        authors: &[AccountId],
    ) -> Result<Vec<Option<TimeKey>>, AppViewError> {
        let mut out = Vec::with_capacity(authors.len());
        let mut missing = Vec::new();
        {
            let heads = self.heads.read().unwrap_or_else(|p| p.into_inner());
            for (i, a) in authors.iter().enumerate() {
                // The latest key of that millisecond: no row of it can be later.
                let h = heads.get(&head_slot(a)).map(|&at_ms| TimeKey {
                    at_ms,
                    shard: u16::MAX,
                    height: u64::MAX,
                    index: u32::MAX,
                });
                if h.is_none() {
                    missing.push(i);
                }
                out.push(h);
            }
        }
        if !missing.is_empty() {
            let mut found = Vec::new();
            for i in missing {
                match self.feed_rows(r, &authors[i], None, 1)?.into_iter().next() {
                    Some((at, _)) => {
                        out[i] = Some(at);
                        found.push((authors[i], at));
                    }
                    // An empty feed is cached too (as time zero), so it is not read again;
                    // its first row raises the bound.
                    None => found.push((
                        authors[i],
                        TimeKey {
                            at_ms: 0,
                            shard: 0,
                            height: 0,
                            index: 0,
                        },
                    )),
                }
            }
            self.raise_heads(found);
        }
        Ok(out)
    }

    /// Accounts under `prefix` in a table keyed `account ‖ account`.
    fn account_set(
        &self,
        r: &RoTxn,
        table: Db,
        account: &AccountId,
    ) -> Result<HashSet<AccountId>, AppViewError> {
        let prefix = keys::account(account);
        let mut out = HashSet::new();
        for row in table.prefix_iter(r, &prefix)? {
            let (k, _) = row?;
            out.insert(keys::decode_account(&k[keys::ACCOUNT_LEN..])?);
        }
        Ok(out)
    }

    /// The home timeline of `viewer`: posts and reposts of the accounts they follow and their
    /// own, newest first, merged across feeds.
    ///
    /// The merge opens feeds in order of their head bounds (newest first) and stops opening
    /// once the newest row at hand is newer than every feed not yet opened, so a page reads
    /// a few dozen feeds however many accounts the viewer follows.
    pub fn home(
        &self,
        viewer: &AccountId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<FeedEntry>, AppViewError> {
        let limit = clamp(limit);
        let before = cursor.map(TimeKey::from_cursor).transpose()?;
        let epoch = self.follows.lock().unwrap_or_else(|p| p.into_inner()).epoch;
        let r = self.env.read_txn()?;
        let cached = self
            .follows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sets
            .get(viewer)
            .cloned();
        let followed = match cached {
            Some(set) => set,
            None => {
                let set = std::sync::Arc::new(self.followees(&r, viewer)?);
                let mut cache = self.follows.lock().unwrap_or_else(|p| p.into_inner());
                if cache.epoch == epoch {
                    if cache.sets.len() >= MAX_CACHED_FOLLOW_SETS {
                        cache.sets.clear();
                    }
                    cache.sets.insert(*viewer, set.clone());
                }
                set
            }
        };
        // The viewer's own blocks and mutes hide a feed outright; whether its owner blocked
        // the viewer is asked only of feeds that reach the page.
        let blocking = self.account_set(&r, self.t.blocks, viewer)?;
        let muting = self.account_set(&r, self.t.mutes, viewer)?;
        let mut sources: Vec<AccountId> = followed
            .iter()
            .filter(|s| !(blocking.contains(s) || muting.contains(s)))
            .copied()
            .collect();
        sources.push(*viewer);
        let bounds = self.head_bounds(&r, &sources)?;
        let mut order: BinaryHeap<(TimeKey, AccountId)> = sources
            .iter()
            .zip(bounds)
            .filter_map(|(s, b)| {
                let b = b?;
                // Rows of a feed are all older than `before`, and no newer than its head.
                let b = match before {
                    Some(c) if c <= b => c,
                    _ => b,
                };
                Some((b, *s))
            })
            .collect();

        const BATCH: usize = 8;
        struct Source {
            author: AccountId,
            rows: std::vec::IntoIter<(TimeKey, FeedItem)>,
            last: Option<TimeKey>,
            more: bool,
            /// Whether the owner blocked the viewer (asked once, when a row reaches the page).
            hidden: Option<bool>,
        }
        let mut srcs: Vec<Source> = Vec::new();
        let mut heap: BinaryHeap<(TimeKey, usize, FeedItem)> = BinaryHeap::new();
        let mut items = Vec::new();
        let mut last = None;
        loop {
            // Open feeds while one not yet opened may hold a row newer than the newest at hand.
            while order
                .peek()
                .is_some_and(|(b, _)| heap.peek().is_none_or(|(top, _, _)| b >= top))
            {
                let Some((_, author)) = order.pop() else {
                    break;
                };
                let rows = self.feed_rows(&r, &author, before, 2)?;
                let more = rows.len() == 2;
                let mut it = rows.into_iter();
                if let Some((at, item)) = it.next() {
                    heap.push((at, srcs.len(), item));
                    srcs.push(Source {
                        author,
                        rows: it,
                        last: Some(at),
                        more,
                        hidden: None,
                    });
                }
            }
            let Some((at, i, item)) = heap.pop() else {
                return Ok(Page { items, next: None });
            };
            if items.len() == limit {
                return Ok(Page {
                    items,
                    next: last.map(TimeKey::cursor),
                });
            }
            last = Some(at);
            let src = &mut srcs[i];
            src.last = Some(at);
            let author = src.author;
            let next = match src.rows.next() {
                Some(row) => Some(row),
                None if src.more => {
                    let rows = self.feed_rows(&r, &author, src.last, BATCH)?;
                    src.more = rows.len() == BATCH;
                    src.rows = rows.into_iter();
                    src.rows.next()
                }
                None => None,
            };
            if let Some((nat, nitem)) = next {
                heap.push((nat, i, nitem));
            }
            let hidden = match src.hidden {
                Some(h) => h,
                None => {
                    // The viewer's own blocks and mutes were applied to the sources.
                    let h = author != *viewer
                        && self
                            .t
                            .blocks
                            .get(
                                &r,
                                &keys::cat(&keys::account(&author), &keys::account(viewer)),
                            )?
                            .is_some();
                    src.hidden = Some(h);
                    h
                }
            };
            if hidden {
                continue;
            }
            if let Some(e) = self.feed_entry(&r, &author, at, item, Some(viewer))? {
                items.push(e);
            }
        }
    }

    /// Post ids under `prefix ‖ time key` in a table, oldest first (`ascending`) or newest
    /// first, after `cursor`.
    fn linked(
        &self,
        r: &RoTxn,
        table: Db,
        prefix: &[u8],
        cursor: Option<TimeKey>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<(TimeKey, PostId)>, AppViewError> {
        let end = keys::prefix_end(prefix).unwrap_or_default();
        let mut out = Vec::new();
        let mut push = |row: heed::Result<(&[u8], &[u8])>| -> Result<bool, AppViewError> {
            let (k, v) = row?;
            let at = TimeKey::from_bytes(&k[prefix.len()..])
                .ok_or_else(|| AppViewError::Corrupt("time key".into()))?;
            out.push((at, keys::decode_post(v)?));
            Ok(out.len() < max)
        };
        if ascending {
            let lo = match cursor {
                Some(c) => keys::cat(prefix, &c.to_bytes()),
                None => prefix.to_vec(),
            };
            let lo_bound = if cursor.is_some() {
                Bound::Excluded(&lo[..])
            } else {
                Bound::Included(&lo[..])
            };
            for row in table.range(r, &(lo_bound, Bound::Excluded(&end[..])))? {
                if !push(row)? {
                    break;
                }
            }
        } else {
            let hi = match cursor {
                Some(c) => keys::cat(prefix, &c.to_bytes()),
                None => end.clone(),
            };
            let range = (Bound::Included(prefix), Bound::Excluded(&hi[..]));
            for row in table.rev_range(r, &range)? {
                if !push(row)? {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Pages through linked posts (replies, quotes, a hashtag), skipping hidden and deleted.
    fn linked_page(
        &self,
        table: Db,
        prefix: &[u8],
        viewer: Option<&AccountId>,
        cursor: Option<&str>,
        limit: usize,
        ascending: bool,
    ) -> Result<Page<PostEntry>, AppViewError> {
        let limit = clamp(limit);
        let mut at = cursor.map(TimeKey::from_cursor).transpose()?;
        let r = self.env.read_txn()?;
        let mut items = Vec::new();
        loop {
            let rows = self.linked(&r, table, prefix, at, ascending, limit + 1)?;
            let exhausted = rows.len() <= limit;
            for (t, id) in rows {
                if items.len() == limit {
                    return Ok(Page {
                        items,
                        next: at.map(TimeKey::cursor),
                    });
                }
                at = Some(t);
                if self.hidden(&r, viewer, &id.author)? {
                    continue;
                }
                if let Some(p) = self.post_in(&r, &id)? {
                    if !p.deleted {
                        items.push(self.entry(&r, p, viewer)?);
                    }
                }
            }
            if exhausted {
                return Ok(Page { items, next: None });
            }
        }
    }

    /// Replies to a post, oldest first.
    pub fn replies(
        &self,
        post: &PostId,
        viewer: Option<&AccountId>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<PostEntry>, AppViewError> {
        self.linked_page(
            self.t.replies,
            &keys::post(post),
            viewer,
            cursor,
            limit,
            true,
        )
    }

    /// Posts quoting a post, newest first.
    pub fn quotes(
        &self,
        post: &PostId,
        viewer: Option<&AccountId>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<PostEntry>, AppViewError> {
        self.linked_page(
            self.t.quotes,
            &keys::post(post),
            viewer,
            cursor,
            limit,
            false,
        )
    }

    /// Posts with a hashtag, newest first (`tag` with or without `#`, any case).
    pub fn hashtag(
        &self,
        tag: &str,
        viewer: Option<&AccountId>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<PostEntry>, AppViewError> {
        let Some(tag) = text::normalize_tag(tag) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        self.linked_page(
            self.t.tags,
            &keys::tag_prefix(&tag),
            viewer,
            cursor,
            limit,
            false,
        )
    }

    /// A post in its thread (`None` if unknown or hidden from the viewer).
    pub fn thread(
        &self,
        id: &PostId,
        viewer: Option<&AccountId>,
        limit: usize,
    ) -> Result<Option<Thread>, AppViewError> {
        let Some(post) = self.post(id, viewer)? else {
            return Ok(None);
        };
        let r = self.env.read_txn()?;
        let mut ancestors = Vec::new();
        let mut up = post.post.reply_to;
        while let Some(pid) = up {
            if ancestors.len() == MAX_ANCESTORS {
                break;
            }
            let Some(p) = self.post_in(&r, &pid)? else {
                break;
            };
            up = p.reply_to;
            if self.hidden(&r, viewer, &pid.author)? {
                continue;
            }
            ancestors.push(self.entry(&r, p, viewer)?);
        }
        ancestors.reverse();
        drop(r);
        let replies = self.replies(id, viewer, None, limit)?;
        Ok(Some(Thread {
            ancestors,
            post,
            replies,
        }))
    }

    /// Followers (`followers = true`) or followed accounts of `account`, in key order.
    pub fn follows(
        &self,
        account: &AccountId,
        followers: bool,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AccountEntry>, AppViewError> {
        let limit = clamp(limit);
        let table = if followers {
            self.t.followers
        } else {
            self.t.following
        };
        let prefix = keys::account(account);
        let lo = match cursor {
            Some(c) => {
                let other = hex::decode(c)
                    .ok()
                    .filter(|b| b.len() == keys::ACCOUNT_LEN)
                    .ok_or(AppViewError::BadCursor)?;
                keys::cat(&prefix, &other)
            }
            None => prefix.clone(),
        };
        let end = keys::prefix_end(&prefix).unwrap_or_default();
        let lo_bound = if cursor.is_some() {
            Bound::Excluded(&lo[..])
        } else {
            Bound::Included(&lo[..])
        };
        let r = self.env.read_txn()?;
        let mut items = Vec::new();
        let mut next = None;
        for row in table.range(&r, &(lo_bound, Bound::Excluded(&end[..])))? {
            let (k, _) = row?;
            let other = &k[keys::ACCOUNT_LEN..];
            if items.len() == limit {
                next = items
                    .last()
                    .map(|e: &AccountEntry| hex::encode(keys::account(&e.account)));
                break;
            }
            let account = keys::decode_account(other)?;
            items.push(AccountEntry {
                view: self.account_in(&r, &account)?,
                account,
            });
        }
        Ok(Page { items, next })
    }

    /// An account's notifications, newest first, without those from accounts it blocked or
    /// muted.
    pub fn notifications(
        &self,
        account: &AccountId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Notification>, AppViewError> {
        let limit = clamp(limit);
        let before = match cursor {
            Some(c) => Some(
                hex::decode(c)
                    .ok()
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or(AppViewError::BadCursor)?,
            ),
            None => None,
        };
        let prefix = keys::account(account);
        let hi = match before {
            Some(s) => keys::cat(&prefix, &s.to_be_bytes()),
            None => keys::prefix_end(&prefix).unwrap_or_default(),
        };
        let r = self.env.read_txn()?;
        let mut items = Vec::new();
        let range = (Bound::Included(&prefix[..]), Bound::Excluded(&hi[..]));
        for row in self.t.notifs.rev_range(&r, &range)? {
            let (_, v) = row?;
            let n = Notification::from_bytes(v)?;
            if items.len() == limit {
                let next = items
                    .last()
                    .map(|n: &Notification| hex::encode(n.seq.to_be_bytes()));
                return Ok(Page { items, next });
            }
            if !self.hidden(&r, Some(account), &n.actor)? {
                items.push(n);
            }
        }
        Ok(Page { items, next: None })
    }

    /// Marks an account's notifications up to `seq` read; returns how many stay unread.
    pub fn mark_read(&self, account: &AccountId, seq: u64) -> Result<u64, AppViewError> {
        let mut w = self.env.write_txn()?;
        let k = keys::account(account);
        let mut view = match self.t.accounts.get(&w, &k)? {
            Some(b) => AccountView::from_bytes(b)?,
            None => AccountView::default(),
        };
        view.read_seq = view.read_seq.max(seq);
        let lo = keys::cat(&k, &(view.read_seq.saturating_add(1)).to_be_bytes());
        let end = keys::prefix_end(&k).unwrap_or_default();
        view.unread = self
            .t
            .notifs
            .range(&w, &(Bound::Included(&lo[..]), Bound::Excluded(&end[..])))?
            .count() as u64;
        let unread = view.unread;
        self.t
            .accounts
            .put(&mut w, &k, &starling_types::Encode::to_bytes(&view))?;
        w.commit()?;
        Ok(unread)
    }

    /// The hashtags most posted with in the [`TRENDING_HOURS`] up to `now_ms`, with counts,
    /// most first.
    pub fn trending(&self, now_ms: u64, limit: usize) -> Result<Vec<(String, u64)>, AppViewError> {
        let now_h = now_ms / 3_600_000;
        let r = self.env.read_txn()?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for h in now_h.saturating_sub(TRENDING_HOURS - 1)..=now_h {
            for row in self.t.tag_hours.prefix_iter(&r, &h.to_be_bytes())? {
                let (k, v) = row?;
                let tag = String::from_utf8_lossy(&k[8..]).into_owned();
                *counts.entry(tag).or_default() += read_u64(v)?;
            }
        }
        let mut out: Vec<(String, u64)> = counts.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.truncate(clamp(limit));
        Ok(out)
    }
}

/// How one account stands to another.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Relation {
    pub following: bool,
    pub followed_by: bool,
    pub blocking: bool,
    pub blocked_by: bool,
    pub muting: bool,
}
