//! The app view fed by real ledger blocks: one account shard executed by the ledger, every
//! block indexed with its receipts, then read back as people would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use starling_appview::{AppView, AppViewError, FeedItem, NotificationKind};
use starling_crypto::SecretKey;
use starling_ledger::{LedgerParams, MemLedger};
use starling_types::receipt::ShardMessage;
use starling_types::{
    AccountId, Action, Asset, Block, BlockHeader, ChainId, Hash, Payload, PostId, Receipt, ShardId,
    TxBody,
};

const FUND: u128 = 1_000_000_000_000_000;

struct World {
    chain: ChainId,
    shard: MemLedger,
    view: AppView,
    _dir: tempfile::TempDir,
    nonces: std::collections::HashMap<AccountId, u64>,
    time_ms: u64,
    proposer: AccountId,
    global_height: u64,
    /// Every block indexed, with its receipts.
    history: Vec<(Block, Vec<Receipt>)>,
}

use starling_testkit::seeded_key as key;

impl World {
    fn new(users: &[&SecretKey]) -> World {
        Self::with_search_commit(users, std::time::Duration::ZERO)
    }

    fn with_search_commit(users: &[&SecretKey], search_commit: std::time::Duration) -> World {
        let chain = ChainId::new("starling-appview-test").unwrap();
        let foundations = (0..3).map(|i| key(9_000 + i).public_key()).collect();
        let params = LedgerParams::devnet(chain.clone(), 1, foundations).unwrap();
        let alloc: Vec<_> = users
            .iter()
            .map(|k| (k.public_key(), Asset::Spend, FUND))
            .collect();
        let shard = MemLedger::genesis(params, ShardId(1), &alloc, 1_000_000, 4);
        let dir = tempfile::tempdir().unwrap();
        World {
            chain,
            shard,
            view: AppView::open_with(dir.path(), search_commit).unwrap(),
            _dir: dir,
            nonces: Default::default(),
            time_ms: 1_700_000_000_000,
            proposer: key(77).public_key(),
            global_height: 0,
            history: Vec::new(),
        }
    }

    /// Signs `actions` (in order, one transaction each), puts them in one block, indexes it;
    /// returns the post ids the transactions would create.
    fn block(&mut self, actions: Vec<(&SecretKey, Action)>) -> Vec<PostId> {
        let mut ids = Vec::new();
        let txs = actions
            .into_iter()
            .map(|(k, action)| {
                let account = k.public_key();
                let nonce = self.nonces.entry(account).or_insert(0);
                let body = TxBody {
                    account,
                    nonce: *nonce,
                    max_fee: 1_000_000_000_000,
                    tip: 0,
                    expires_at_height: 1_000,
                    action,
                };
                ids.push(PostId {
                    author: account,
                    seq: *nonce,
                });
                *nonce += 1;
                k.sign_tx(&self.chain, &body)
            })
            .collect();
        self.time_ms += 1_000;
        let (block, executed) = self
            .shard
            .propose(txs, Vec::new(), self.time_ms, self.proposer)
            .unwrap();
        for r in &executed.receipts {
            if let Receipt::Tx(t) = r {
                assert_eq!(t.status, 0, "a transaction failed in the ledger");
            }
        }
        self.view.index_block(&block, &executed.receipts).unwrap();
        self.history.push((block, executed.receipts));
        ids
    }

    fn post(&mut self, k: &SecretKey, text: &str) -> PostId {
        self.block(vec![(k, post(text, None, None))])[0]
    }

    /// A global-shard block whose only content is the answer to a handle claim.
    fn handle(&mut self, k: &SecretKey, handle: &str) {
        self.global_height += 1;
        let header = BlockHeader {
            chain_id: self.chain.clone(),
            shard: ShardId::GLOBAL,
            height: self.global_height,
            parent: Hash::ZERO,
            timestamp_ms: self.time_ms,
            proposer: self.proposer,
            tx_root: Hash::ZERO,
            receipt_root: Hash::ZERO,
            state_root: Hash::ZERO,
            base_fee: 0,
            reveal: starling_types::Hash::ZERO,
        };
        let receipts = vec![Receipt::Message(ShardMessage {
            source: ShardId::GLOBAL,
            dest: ShardId(1),
            seq: self.global_height - 1,
            payload: Payload::HandleResult {
                account: k.public_key(),
                handle: handle.into(),
                accepted: true,
            },
        })];
        let block = Block {
            header,
            txs: Vec::new(),
            inbound: Vec::new(),
        };
        self.view.index_block(&block, &receipts).unwrap();
        self.history.push((block, receipts));
    }
}

fn post(text: &str, reply_to: Option<PostId>, quote_of: Option<PostId>) -> Action {
    Action::Post {
        text: text.into(),
        reply_to,
        quote_of,
        langs: vec!["en".into()],
    }
}

fn texts(page: &starling_appview::Page<starling_appview::FeedEntry>) -> Vec<String> {
    page.items
        .iter()
        .map(|e| e.entry.post.text.clone())
        .collect()
}

#[test]
fn home_timeline_merges_followed_feeds_newest_first_with_reposts() {
    let (a, b, c, d) = (key(1), key(2), key(3), key(4));
    let mut w = World::new(&[&a, &b, &c, &d]);
    w.block(vec![
        (
            &a,
            Action::Follow {
                target: b.public_key(),
            },
        ),
        (
            &a,
            Action::Follow {
                target: c.public_key(),
            },
        ),
    ]);
    w.post(&b, "b1");
    w.post(&c, "c1");
    let d1 = w.post(&d, "d1 (not followed)");
    w.post(&a, "a1 (own)");
    w.post(&b, "b2");
    w.block(vec![(&c, Action::Repost { post: d1 })]);

    let home = w.view.home(&a.public_key(), None, 10).unwrap();
    assert_eq!(
        texts(&home),
        vec!["d1 (not followed)", "b2", "a1 (own)", "c1", "b1"]
    );
    assert_eq!(home.items[0].item, FeedItem::Repost(d1));
    assert_eq!(home.items[0].by, c.public_key());
    assert_eq!(home.next, None);

    // Pages of two follow on from each other.
    let p1 = w.view.home(&a.public_key(), None, 2).unwrap();
    let p2 = w.view.home(&a.public_key(), p1.next.as_deref(), 2).unwrap();
    let p3 = w.view.home(&a.public_key(), p2.next.as_deref(), 2).unwrap();
    let all: Vec<String> = [texts(&p1), texts(&p2), texts(&p3)].concat();
    assert_eq!(all, texts(&home));
    assert_eq!(p3.next, None);

    // Unrepost takes it out; unfollow drops a feed.
    w.block(vec![
        (&c, Action::Unrepost { post: d1 }),
        (
            &a,
            Action::Unfollow {
                target: b.public_key(),
            },
        ),
    ]);
    let home = w.view.home(&a.public_key(), None, 10).unwrap();
    assert_eq!(texts(&home), vec!["a1 (own)", "c1"]);
    let av = w.view.account(&a.public_key()).unwrap();
    assert_eq!((av.following, av.posts), (1, 1));
    assert_eq!(w.view.account(&b.public_key()).unwrap().followers, 0);
}

#[test]
fn threads_counts_quotes_edits_and_deletes() {
    let (a, b, c) = (key(1), key(2), key(3));
    let mut w = World::new(&[&a, &b, &c]);
    let root = w.post(&a, "root #Rust");
    let r1 = w.block(vec![(&b, post("reply one", Some(root), None))])[0];
    let r2 = w.block(vec![(&c, post("reply to reply", Some(r1), None))])[0];
    let r3 = w.block(vec![(&c, post("second reply", Some(root), None))])[0];
    let q = w.block(vec![(&b, post("quoting", None, Some(root)))])[0];
    w.block(vec![
        (&b, Action::Like { post: root }),
        (&c, Action::Like { post: root }),
        (&b, Action::Repost { post: root }),
    ]);

    let t = w.view.thread(&r2, None, 10).unwrap().unwrap();
    let chain: Vec<&str> = t.ancestors.iter().map(|e| e.post.text.as_str()).collect();
    assert_eq!(chain, vec!["root #Rust", "reply one"]);
    let t = w
        .view
        .thread(&root, Some(&b.public_key()), 10)
        .unwrap()
        .unwrap();
    assert!(t.ancestors.is_empty());
    let replies: Vec<&str> = t
        .replies
        .items
        .iter()
        .map(|e| e.post.text.as_str())
        .collect();
    assert_eq!(replies, vec!["reply one", "second reply"]);
    let c0 = t.post.counts;
    assert_eq!((c0.likes, c0.reposts, c0.replies, c0.quotes), (2, 1, 2, 1));
    assert!(t.post.liked && t.post.reposted);
    let quotes = w.view.quotes(&root, None, None, 10).unwrap();
    assert_eq!(quotes.items[0].post.id, q);

    // Edit keeps history and moves the hashtag.
    w.block(vec![(
        &a,
        Action::EditPost {
            post: root,
            text: "root, edited #Starling".into(),
        },
    )]);
    let e = w.view.post(&root, None).unwrap().unwrap();
    assert_eq!(e.post.text, "root, edited #Starling");
    assert_eq!(e.post.revisions.len(), 1);
    assert_eq!(e.post.revisions[0].0, "root #Rust");
    assert!(w
        .view
        .hashtag("rust", None, None, 10)
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        w.view.hashtag("#STARLING", None, None, 10).unwrap().items[0]
            .post
            .id,
        root
    );

    // Deleting a reply takes it out of the thread and the count; the tombstone stays.
    w.block(vec![(&c, Action::DeletePost { post: r3 })]);
    let t = w.view.thread(&root, None, 10).unwrap().unwrap();
    assert_eq!(t.replies.items.len(), 1);
    assert_eq!(t.post.counts.replies, 1);
    let gone = w.view.post(&r3, None).unwrap().unwrap();
    assert!(gone.post.deleted && gone.post.text.is_empty());
    assert_eq!(
        texts(&w.view.author_feed(&c.public_key(), None, None, 10).unwrap()),
        vec!["reply to reply"]
    );
}

#[test]
fn notifications_for_every_kind_and_mark_read() {
    let (a, b) = (key(1), key(2));
    let mut w = World::new(&[&a, &b]);
    w.handle(&a, "alice");
    assert_eq!(w.view.by_handle("Alice").unwrap(), Some(a.public_key()));
    let p = w.post(&a, "hello");
    w.block(vec![(
        &b,
        Action::Follow {
            target: a.public_key(),
        },
    )]);
    w.block(vec![(&b, Action::Like { post: p })]);
    w.block(vec![(&b, Action::Repost { post: p })]);
    w.block(vec![(&b, post("a reply", Some(p), None))]);
    w.block(vec![(&b, post("a quote", None, Some(p)))]);
    w.block(vec![(&b, post("hey @alice and @nobody", None, None))]);
    // Acting on one's own post notifies no one.
    w.block(vec![(&a, Action::Like { post: p })]);

    let n = w.view.notifications(&a.public_key(), None, 50).unwrap();
    let kinds: Vec<NotificationKind> = n.items.iter().map(|n| n.kind).collect();
    use NotificationKind::*;
    assert_eq!(kinds, vec![Mention, Quote, Reply, Repost, Like, Follow]);
    assert!(n.items.iter().all(|n| n.actor == b.public_key()));
    assert_eq!(w.view.account(&a.public_key()).unwrap().unread, 6);
    // Read up to the third newest: two stay unread.
    assert_eq!(
        w.view.mark_read(&a.public_key(), n.items[2].seq).unwrap(),
        2
    );
    assert_eq!(w.view.account(&b.public_key()).unwrap().unread, 0);

    // Paging by cursor.
    let p1 = w.view.notifications(&a.public_key(), None, 4).unwrap();
    let p2 = w
        .view
        .notifications(&a.public_key(), p1.next.as_deref(), 4)
        .unwrap();
    assert_eq!(p1.items.len() + p2.items.len(), 6);
    assert_eq!(p2.next, None);

    // Muting hides the actor's notifications when read.
    w.block(vec![(
        &a,
        Action::Mute {
            target: b.public_key(),
        },
    )]);
    assert!(w
        .view
        .notifications(&a.public_key(), None, 50)
        .unwrap()
        .items
        .is_empty());
}

#[test]
fn blocks_and_mutes_apply_when_reading() {
    let (a, b, c) = (key(1), key(2), key(3));
    let mut w = World::new(&[&a, &b, &c]);
    w.block(vec![
        (
            &a,
            Action::Follow {
                target: b.public_key(),
            },
        ),
        (
            &a,
            Action::Follow {
                target: c.public_key(),
            },
        ),
    ]);
    let pb = w.post(&b, "from b #tag");
    w.post(&c, "from c #tag");
    w.block(vec![(&c, Action::Repost { post: pb })]);
    assert_eq!(
        w.view.home(&a.public_key(), None, 10).unwrap().items.len(),
        3
    );

    // a mutes b: b's posts go, also as c's repost; c stays.
    w.block(vec![(
        &a,
        Action::Mute {
            target: b.public_key(),
        },
    )]);
    let home = w.view.home(&a.public_key(), None, 10).unwrap();
    assert_eq!(texts(&home), vec!["from c #tag"]);
    assert_eq!(
        w.view
            .hashtag("tag", Some(&a.public_key()), None, 10)
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(w.view.post(&pb, Some(&a.public_key())).unwrap().is_none());
    assert!(w.view.post(&pb, None).unwrap().is_some());

    // c blocks a: a no longer sees c either, nor c's feed.
    w.block(vec![(
        &c,
        Action::Block {
            target: a.public_key(),
        },
    )]);
    assert!(w
        .view
        .home(&a.public_key(), None, 10)
        .unwrap()
        .items
        .is_empty());
    assert!(w
        .view
        .author_feed(&c.public_key(), Some(&a.public_key()), None, 10)
        .unwrap()
        .items
        .is_empty());
    let rel = w.view.relation(&a.public_key(), &c.public_key()).unwrap();
    assert!(rel.blocked_by && rel.following && !rel.blocking);

    // Unmute brings b back.
    w.block(vec![(
        &a,
        Action::Unmute {
            target: b.public_key(),
        },
    )]);
    assert_eq!(
        texts(&w.view.home(&a.public_key(), None, 10).unwrap()),
        vec!["from b #tag"]
    );
}

#[test]
fn followers_trending_fees_and_restart() {
    let users: Vec<SecretKey> = (1..=5).map(key).collect();
    let refs: Vec<&SecretKey> = users.iter().collect();
    let mut w = World::new(&refs);
    let star = &users[0];
    w.block(
        users[1..]
            .iter()
            .map(|u| {
                (
                    u,
                    Action::Follow {
                        target: star.public_key(),
                    },
                )
            })
            .collect(),
    );
    let f1 = w.view.follows(&star.public_key(), true, None, 3).unwrap();
    let f2 = w
        .view
        .follows(&star.public_key(), true, f1.next.as_deref(), 3)
        .unwrap();
    assert_eq!((f1.items.len(), f2.items.len()), (3, 1));
    assert_eq!(f2.next, None);
    let mut all: Vec<AccountId> = f1
        .items
        .iter()
        .chain(&f2.items)
        .map(|e| e.account)
        .collect();
    all.sort();
    let mut want: Vec<AccountId> = users[1..].iter().map(|u| u.public_key()).collect();
    want.sort();
    assert_eq!(all, want);
    assert_eq!(w.view.account(&users[1].public_key()).unwrap().following, 1);

    w.block(vec![
        (&users[1], post("#a #b", None, None)),
        (&users[2], post("#a", None, None)),
        (&users[3], post("#a #c #b", None, None)),
    ]);
    let trending = w.view.trending(w.time_ms, 10).unwrap();
    assert_eq!(
        trending,
        vec![("a".into(), 3), ("b".into(), 2), ("c".into(), 1)]
    );
    // A day later they no longer trend.
    assert!(w
        .view
        .trending(w.time_ms + 25 * 3_600_000, 10)
        .unwrap()
        .is_empty());
    assert!(w.view.account(&users[1].public_key()).unwrap().fees_paid > 0);

    // Reopened from disk, the view is the same; a block indexed twice changes nothing, and
    // one that skips a height is refused.
    let before = w.view.home(&users[1].public_key(), None, 10).unwrap();
    let (mut shard, proposer, time_ms) = (w.shard.clone(), w.proposer, w.time_ms);
    let World {
        view, _dir: dir, ..
    } = w;
    drop(view);
    let view = AppView::open_with(dir.path(), std::time::Duration::ZERO).unwrap();
    assert_eq!(view.home(&users[1].public_key(), None, 10).unwrap(), before);
    assert_eq!(view.indexed(ShardId(1)).unwrap(), Some(2));
    let (block, executed) = shard
        .propose(Vec::new(), Vec::new(), time_ms + 1, proposer)
        .unwrap();
    let mut skipped = block.clone();
    skipped.header.height += 1;
    assert!(matches!(
        view.index_block(&skipped, &executed.receipts),
        Err(AppViewError::OutOfOrder { .. })
    ));
    let mut old = block.clone();
    old.header.height = 1;
    view.index_block(&old, &executed.receipts).unwrap();
    assert_eq!(view.indexed(ShardId(1)).unwrap(), Some(2));
    view.index_block(&block, &executed.receipts).unwrap();
    assert_eq!(view.indexed(ShardId(1)).unwrap(), Some(3));
}

#[test]
fn bad_cursors_are_clear_errors() {
    let a = key(1);
    let w = World::new(&[&a]);
    let me = a.public_key();
    for bad in ["zz", "", "00", &"ab".repeat(40)] {
        assert!(matches!(
            w.view.home(&me, Some(bad), 10),
            Err(AppViewError::BadCursor)
        ));
        assert!(matches!(
            w.view.notifications(&me, Some(bad), 10),
            Err(AppViewError::BadCursor)
        ));
        assert!(matches!(
            w.view.follows(&me, true, Some(bad), 10),
            Err(AppViewError::BadCursor)
        ));
    }
}

#[test]
fn search_finds_posts_and_people_and_follows_edits_and_deletes() {
    let (a, b) = (key(1), key(2));
    let mut w = World::new(&[&a, &b]);
    let p1 = w.post(&a, "Sparrows and starlings at dawn");
    let p2 = w.post(&b, "a murmuration of starlings over the lake");
    w.post(&b, "nothing to see here");
    w.block(vec![(
        &b,
        Action::SetProfile {
            display_name: "Bob Birdwatcher".into(),
            bio: "counts starlings for a living".into(),
            avatar_url: String::new(),
        },
    )]);
    w.handle(&a, "alice");

    let mut found = ids(&w.view, "starlings", None);
    found.sort();
    let mut want = vec![p1, p2];
    want.sort();
    assert_eq!(found, want);
    assert_eq!(ids(&w.view, "murmuration", None), vec![p2]);
    assert!(ids(&w.view, "pelican", None).is_empty());
    // User syntax that is not a valid query is searched leniently, not refused.
    let _ = ids(&w.view, "starlings AND (", None);

    assert_eq!(people(&w.view, "birdwatcher"), vec![b.public_key()]);
    assert_eq!(people(&w.view, "alice"), vec![a.public_key()]);

    // Edits replace the text searched; deletes take the post out; mutes apply.
    w.block(vec![
        (
            &a,
            Action::EditPost {
                post: p1,
                text: "Sparrows at dawn".into(),
            },
        ),
        (&b, Action::DeletePost { post: p2 }),
    ]);
    assert!(ids(&w.view, "starlings", None).is_empty());
    assert_eq!(ids(&w.view, "sparrows", None), vec![p1]);
    w.block(vec![(
        &b,
        Action::Mute {
            target: a.public_key(),
        },
    )]);
    assert!(ids(&w.view, "sparrows", Some(&b.public_key())).is_empty());

    // Paging by offset; a cursor past the depth limit is refused.
    let page = w.view.search_posts("sparrows", None, None, 1).unwrap();
    assert_eq!(page.next.as_deref(), Some("1"));
    assert!(matches!(
        w.view.search_posts("x", None, Some("1000"), 10),
        Err(AppViewError::BadCursor)
    ));
    assert!(matches!(
        w.view.search_people("x", Some("-1"), 10),
        Err(AppViewError::BadCursor)
    ));

    // Reopened, the index is there and holds the same heights.
    let World {
        view,
        _dir: dir,
        history,
        ..
    } = w;
    let resume = view.resume_from(ShardId(1)).unwrap();
    drop(view);
    let view = AppView::open_with(dir.path(), std::time::Duration::ZERO).unwrap();
    assert_eq!(view.resume_from(ShardId(1)).unwrap(), resume);
    assert_eq!(
        view.search_posts("sparrows", None, None, 10)
            .unwrap()
            .items
            .len(),
        1
    );

    // A view whose search index is gone (or behind, after a crash between the two commits)
    // asks for the blocks again and rebuilds search alone: the tables do not count twice.
    let before = view.account(&b.public_key()).unwrap();
    drop(view);
    std::fs::remove_dir_all(dir.path().join("appview").join("search")).unwrap();
    let view = AppView::open_with(dir.path(), std::time::Duration::ZERO).unwrap();
    assert_eq!(view.resume_from(ShardId(1)).unwrap(), 1);
    assert!(view
        .search_posts("sparrows", None, None, 10)
        .unwrap()
        .items
        .is_empty());
    view.index_blocks(history.iter().map(|(b, r)| Ok((b, &r[..]))))
        .unwrap();
    assert_eq!(
        view.search_posts("sparrows", None, None, 10)
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(people(&view, "birdwatcher"), vec![b.public_key()]);
    assert_eq!(view.account(&b.public_key()).unwrap(), before);
}

fn ids(view: &AppView, q: &str, viewer: Option<&AccountId>) -> Vec<PostId> {
    view.search_posts(q, viewer, None, 10)
        .unwrap()
        .items
        .iter()
        .map(|e| e.post.id)
        .collect()
}

fn people(view: &AppView, q: &str) -> Vec<AccountId> {
    view.search_people(q, None, 10)
        .unwrap()
        .items
        .iter()
        .map(|e| e.account)
        .collect()
}

#[test]
fn search_sees_changes_at_the_next_commit() {
    let a = key(1);
    let mut w = World::with_search_commit(&[&a], std::time::Duration::from_secs(3_600));
    let p = w.post(&a, "patience is a virtue");
    // The tables have it at once; search at its next commit.
    assert!(w.view.post(&p, None).unwrap().is_some());
    assert!(ids(&w.view, "patience", None).is_empty());
    w.view.flush_search().unwrap();
    assert_eq!(ids(&w.view, "patience", None), vec![p]);
}

/// Every item of a home timeline, paging with `limit`.
fn all_home(view: &AppView, viewer: &AccountId, limit: usize) -> Vec<(AccountId, FeedItem)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = view.home(viewer, cursor.as_deref(), limit).unwrap();
        out.extend(page.items.iter().map(|e| (e.by, e.item)));
        match page.next {
            Some(n) => cursor = Some(n),
            None => return out,
        }
    }
}

/// The pruned merge (feeds opened newest head first, cached head bounds) gives exactly the
/// timeline of a plain merge of every followed feed, through random posts, reposts,
/// unreposts, deletes, mutes and blocks, on every page size, with the cache warm or cold.
#[test]
fn home_timeline_matches_a_plain_merge_of_every_feed() {
    use rand::{Rng as _, SeedableRng as _};
    let users: Vec<SecretKey> = (0..12).map(|i| key(500 + i)).collect();
    let refs: Vec<&SecretKey> = users.iter().collect();
    let mut w = World::new(&refs);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let viewer = &users[0];
    let v = viewer.public_key();
    let mut follows: Vec<usize> = (1..9).collect();
    w.block(
        follows
            .iter()
            .map(|&i| {
                (
                    viewer,
                    Action::Follow {
                        target: users[i].public_key(),
                    },
                )
            })
            .collect(),
    );
    let mut posts: Vec<PostId> = Vec::new();
    let mut reposted: std::collections::HashSet<(usize, PostId)> = Default::default();
    let mut deleted: std::collections::HashSet<PostId> = Default::default();
    for round in 0..40 {
        let mut actions = Vec::new();
        let mut used = std::collections::HashSet::new();
        for _ in 0..rng.gen_range(1..6) {
            let u = rng.gen_range(0..users.len());
            // One transaction per account per block keeps the test's bookkeeping simple.
            if !used.insert(u) {
                continue;
            }
            let roll = rng.gen_range(0..10);
            let live: Vec<PostId> = posts
                .iter()
                .filter(|p| !deleted.contains(p))
                .copied()
                .collect();
            let action = if roll < 5 || live.is_empty() {
                post(&format!("post {round} by {u}"), None, None)
            } else if roll < 7 {
                let p = live[rng.gen_range(0..live.len())];
                if reposted.insert((u, p)) {
                    Action::Repost { post: p }
                } else {
                    reposted.remove(&(u, p));
                    Action::Unrepost { post: p }
                }
            } else if roll < 8 {
                let own: Vec<PostId> = live
                    .iter()
                    .filter(|p| p.author == users[u].public_key())
                    .copied()
                    .collect();
                match own.first() {
                    Some(p) => {
                        deleted.insert(*p);
                        Action::DeletePost { post: *p }
                    }
                    None => post("fallback", None, None),
                }
            } else {
                post(&format!("another {round} by {u}"), None, None)
            };
            actions.push((&users[u], action));
        }
        let is_post: Vec<bool> = actions
            .iter()
            .map(|(_, a)| matches!(a, Action::Post { .. }))
            .collect();
        let ids = w.block(actions);
        posts.extend(
            ids.into_iter()
                .zip(is_post)
                .filter(|(_, p)| *p)
                .map(|(id, _)| id),
        );
        if round == 25 {
            // Warm the caches, then change whom the viewer follows: the cached set must go.
            all_home(&w.view, &v, 10);
            w.block(vec![(
                viewer,
                Action::Unfollow {
                    target: users[2].public_key(),
                },
            )]);
            w.block(vec![(
                viewer,
                Action::Follow {
                    target: users[9].public_key(),
                },
            )]);
            follows.retain(|&i| i != 2);
            follows.push(9);
        }
        if round == 20 {
            // The viewer mutes one followed account; another followed account blocks them.
            w.block(vec![
                (
                    viewer,
                    Action::Mute {
                        target: users[3].public_key(),
                    },
                ),
                (&users[5], Action::Block { target: v }),
            ]);
        }
    }
    // The plain merge: every visible source's whole feed, as the viewer sees it.
    let mut expected: Vec<(starling_appview::TimeKey, AccountId, FeedItem)> = Vec::new();
    for s in follows.iter().map(|&i| users[i].public_key()).chain([v]) {
        let mut cursor: Option<String> = None;
        loop {
            let page = w
                .view
                .author_feed(&s, Some(&v), cursor.as_deref(), 50)
                .unwrap();
            expected.extend(page.items.iter().map(|e| (e.at, e.by, e.item)));
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
    }
    expected.sort_by_key(|e| std::cmp::Reverse(e.0));
    let expected: Vec<(AccountId, FeedItem)> =
        expected.into_iter().map(|(_, by, i)| (by, i)).collect();
    assert!(
        expected.len() > 40,
        "the random history is too thin: {}",
        expected.len()
    );
    assert!(expected
        .iter()
        .all(|(by, _)| *by != users[3].public_key() && *by != users[5].public_key()));
    for limit in [1, 3, 7, 100] {
        assert_eq!(
            all_home(&w.view, &v, limit),
            expected,
            "warm cache, limit {limit}"
        );
        w.view.clear_head_cache();
        assert_eq!(
            all_home(&w.view, &v, limit),
            expected,
            "cold cache, limit {limit}"
        );
    }
}
