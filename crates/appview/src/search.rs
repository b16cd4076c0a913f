//! Full-text search of posts and people (tantivy), beside the LMDB tables.
//!
//! Two indexes under `<dir>/appview/search`: `posts` (a post's id and text, and when it was
//! written) and `people` (an account's handle, display name and bio). What changes them is
//! read off each block (`ops`): posts, edits (the old text is replaced), deletes, profiles
//! and accepted handles. Each commit records the indexed height of every shard in its payload,
//! so after a crash between the LMDB commit and this one, the blocks in between are read
//! again for search alone.

use crate::keys;
use crate::AppViewError;
use crate::BlockTxs;
use starling_types::{AccountId, Action, BlockHeader, PostId, ShardId};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, Schema, Value as _, FAST, STORED, STRING, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Memory the writer of each index may use before it flushes a segment.
const WRITER_BYTES: usize = 32 * 1024 * 1024;
/// How long indexed changes may wait before a commit makes them searchable. Committing every
/// block would write a segment (and sync) several times a second per shard under load; new
/// posts show up in search within this time instead.
pub const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// Deepest a search pages (offset plus page).
pub const MAX_SEARCH_DEPTH: usize = 1_000;
/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 256;

/// A change to the search indexes, read off a block.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Op {
    /// A post was written or edited: (re)index its text.
    Post {
        id: PostId,
        text: String,
        at_ms: u64,
    },
    /// A post was deleted.
    Delete(PostId),
    /// An account's profile or handle changed: reindex the person from the view.
    Person(AccountId),
}

/// What a block changes in search: only applied transactions, and accepted handle claims on
/// the global shard.
pub(crate) fn ops(header: &BlockHeader, txs: &BlockTxs<'_>) -> Vec<Op> {
    let at_ms = header.timestamp_ms;
    let mut out = Vec::new();
    for (_, body, _) in txs.applied() {
        match &body.action {
            Action::Post { text, .. } => out.push(Op::Post {
                id: PostId {
                    author: body.account,
                    seq: body.nonce,
                },
                text: text.clone(),
                at_ms,
            }),
            Action::EditPost { post, text } => out.push(Op::Post {
                id: *post,
                text: text.clone(),
                at_ms,
            }),
            Action::DeletePost { post } => out.push(Op::Delete(*post)),
            Action::SetProfile { .. } => out.push(Op::Person(body.account)),
            _ => {}
        }
    }
    out.extend(txs.handles.iter().map(|(account, _)| Op::Person(**account)));
    out
}

struct Side {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    id: Field,
    body: Field,
    at: Field,
}

impl Side {
    fn open(path: &Path) -> Result<Side, AppViewError> {
        std::fs::create_dir_all(path)
            .map_err(|e| AppViewError::Io(format!("{}: {e}", path.display())))?;
        let mut sb = Schema::builder();
        let id = sb.add_text_field("id", STRING | STORED);
        let body = sb.add_text_field("body", TEXT);
        let at = sb.add_u64_field("at_ms", FAST | STORED);
        let dir = tantivy::directory::MmapDirectory::open(path).map_err(search_err)?;
        let index = Index::open_or_create(dir, sb.build()).map_err(search_err)?;
        // One indexing thread: the relay's cores belong to the chain first.
        let writer = index
            .writer_with_num_threads(1, WRITER_BYTES)
            .map_err(search_err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(search_err)?;
        Ok(Side {
            index,
            reader,
            writer: Mutex::new(writer),
            id,
            body,
            at,
        })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn put(&self, w: &IndexWriter, id: &str, body: &str, at_ms: u64) -> Result<(), AppViewError> {
        w.delete_term(Term::from_field_text(self.id, id));
        let mut doc = TantivyDocument::default();
        doc.add_text(self.id, id);
        doc.add_text(self.body, body);
        doc.add_u64(self.at, at_ms);
        w.add_document(doc).map_err(search_err)?;
        Ok(())
    }

    /// Ids of the best matches of `query`, best first, from `offset`.
    fn search(
        &self,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<String>, AppViewError> {
        let searcher = self.reader.searcher();
        let parser = QueryParser::for_index(&self.index, vec![self.body]);
        let (q, _) = parser.parse_query_lenient(query);
        let top = searcher
            .search(&q, &TopDocs::with_limit(limit).and_offset(offset))
            .map_err(search_err)?;
        let mut out = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr).map_err(search_err)?;
            if let Some(id) = doc.get_first(self.id).and_then(|v| v.as_str()) {
                out.push(id.to_owned());
            }
        }
        Ok(out)
    }
}

fn search_err(e: impl std::fmt::Display) -> AppViewError {
    AppViewError::Search(e.to_string())
}

/// The two search indexes and the heights they hold.
pub(crate) struct Search {
    posts: Side,
    people: Side,
    /// Heights whose changes the writers hold (committed or not).
    heights: Mutex<BTreeMap<u16, u64>>,
    /// When changes were last committed (`None`: nothing waits).
    last_commit: Mutex<Option<std::time::Instant>>,
    /// How long changes may wait for a commit.
    interval: std::time::Duration,
}

fn encode_heights(h: &BTreeMap<u16, u64>) -> String {
    h.iter()
        .map(|(s, h)| format!("{s}:{h}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn decode_heights(s: &str) -> BTreeMap<u16, u64> {
    s.split(',')
        .filter_map(|p| {
            let (a, b) = p.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

impl Search {
    pub fn open(dir: &Path, interval: std::time::Duration) -> Result<Search, AppViewError> {
        let posts = Side::open(&dir.join("posts"))?;
        let people = Side::open(&dir.join("people"))?;
        // Both commit together with the same payload; the older of the two is what holds.
        let read = |s: &Side| -> Result<BTreeMap<u16, u64>, AppViewError> {
            let metas = s.index.load_metas().map_err(search_err)?;
            Ok(metas
                .payload
                .as_deref()
                .map(decode_heights)
                .unwrap_or_default())
        };
        let (a, b) = (read(&posts)?, read(&people)?);
        let heights = a
            .iter()
            .map(|(s, h)| (*s, (*h).min(b.get(s).copied().unwrap_or(0))))
            .filter(|(s, _)| b.contains_key(s))
            .collect();
        Ok(Search {
            posts,
            people,
            heights: Mutex::new(heights),
            last_commit: Mutex::new(Some(std::time::Instant::now())),
            interval,
        })
    }

    fn heights(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, u64>> {
        self.heights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last height of `shard` search holds.
    pub fn indexed(&self, shard: ShardId) -> Option<u64> {
        self.heights().get(&shard.0).copied()
    }

    /// Applies the ops of blocks (each `(shard, height, ops)`, heights above what search
    /// holds) and commits; `person` renders an account's searchable text.
    pub fn apply(
        &self,
        blocks: &[(ShardId, u64, Vec<Op>)],
        person: &dyn Fn(&AccountId) -> Result<Option<String>, AppViewError>,
    ) -> Result<(), AppViewError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let mut pw = self.posts.writer();
        let mut aw = self.people.writer();
        let mut heights = self.heights().clone();
        for (shard, height, ops) in blocks {
            for op in ops {
                match op {
                    Op::Post { id, text, at_ms } => {
                        self.posts
                            .put(&pw, &hex::encode(keys::post(id)), text, *at_ms)?
                    }
                    Op::Delete(id) => {
                        pw.delete_term(Term::from_field_text(
                            self.posts.id,
                            &hex::encode(keys::post(id)),
                        ));
                    }
                    Op::Person(account) => {
                        if let Some(text) = person(account)? {
                            self.people.put(&aw, &account.to_text(), &text, 0)?;
                        }
                    }
                }
            }
            heights.insert(shard.0, *height);
        }
        *self.heights() = heights;
        let due = self
            .last_commit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none_or(|t| t.elapsed() >= self.interval);
        if due {
            self.commit(&mut pw, &mut aw)?;
        }
        Ok(())
    }

    /// Commits what the writers hold, with the heights it covers, and makes it searchable.
    fn commit(&self, pw: &mut IndexWriter, aw: &mut IndexWriter) -> Result<(), AppViewError> {
        let payload = encode_heights(&self.heights());
        for (w, side) in [(pw, &self.posts), (aw, &self.people)] {
            let mut prepared = w.prepare_commit().map_err(search_err)?;
            prepared.set_payload(&payload);
            prepared.commit().map_err(search_err)?;
            side.reader.reload().map_err(search_err)?;
        }
        *self
            .last_commit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
        Ok(())
    }

    /// Commits now whatever waits (for tests, and before a node stops).
    pub fn flush(&self) -> Result<(), AppViewError> {
        let mut pw = self.posts.writer();
        let mut aw = self.people.writer();
        self.commit(&mut pw, &mut aw)
    }

    /// Post ids matching `query`, best first.
    pub fn posts(
        &self,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<PostId>, AppViewError> {
        self.posts
            .search(query, offset, limit)?
            .iter()
            .map(|h| {
                hex::decode(h)
                    .map_err(|e| AppViewError::Corrupt(format!("search id: {e}")))
                    .and_then(|b| keys::decode_post(&b))
            })
            .collect()
    }

    /// Accounts matching `query`, best first.
    pub fn people(
        &self,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<AccountId>, AppViewError> {
        self.people
            .search(query, offset, limit)?
            .iter()
            .map(|t| {
                AccountId::from_text(t)
                    .map_err(|e| AppViewError::Corrupt(format!("search id: {e}")))
            })
            .collect()
    }
}
