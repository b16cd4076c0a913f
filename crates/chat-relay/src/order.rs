//! Commit order: the first commit offered for a group epoch wins it; the epoch is named by
//! the public half of a key only that epoch's members derive, so the relay learns neither the
//! group nor its members. The winner is kept (the newest, within bounds) for members who
//! never received it.

use crate::mailbox::{io, write_atomic, MailboxError};
use starling_protocol::chat::MAX_COMMIT_BYTES;
use starling_types::Hash;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Group epochs whose winning commit a node remembers (the newest; offers from others are
/// rate-limited per requester, so filling it takes many hosts a long time).
pub const MAX_ORDERED: usize = 1_000_000;

/// Most bytes of winning commits kept (the newest); older epochs keep only their commit's
/// hash, enough to refuse a second commit.
pub const MAX_KEPT_COMMIT_BYTES: usize = 64 * 1024 * 1024;

/// A commit order record: epoch name, commit hash, commit length (0: not kept), commit.
const ORDER_RECORD_HEADER: usize = 32 + 32 + 4;

/// The winning commit of each group epoch this node orders, appended to a log: the epoch's
/// name, the commit's hash and (for the newest) the commit itself, which members that never
/// received it (its committer crashed before delivering it, say) can fetch.
#[derive(Debug)]
pub struct CommitOrder {
    path: PathBuf,
    max: usize,
    max_bytes: usize,
    inner: Mutex<Ordered>,
}

/// A winning commit's bytes, while kept.
type Kept = std::sync::Arc<Vec<u8>>;

#[derive(Debug, Default)]
struct Ordered {
    /// Epoch name → (commit hash, the commit while it is kept).
    map: HashMap<Hash, (Hash, Option<Kept>)>,
    /// Epochs oldest first: the first goes when more than `max` are remembered.
    order: VecDeque<Hash>,
    /// Epochs whose commit is kept, oldest first, and their bytes in all.
    kept: VecDeque<Hash>,
    kept_bytes: usize,
    /// Bytes in the file (it is compacted when it holds twice what is remembered).
    file_bytes: u64,
}

impl Ordered {
    fn remember(
        &mut self,
        epoch: Hash,
        commit: Hash,
        bytes: Option<Vec<u8>>,
        limits: (usize, usize),
    ) {
        let (max, max_bytes) = limits;
        let bytes = bytes.filter(|b| !b.is_empty()).map(std::sync::Arc::new);
        if let Some(b) = &bytes {
            self.kept.push_back(epoch);
            self.kept_bytes += b.len();
        }
        match self.map.insert(epoch, (commit, bytes)) {
            None => self.order.push_back(epoch),
            // Remembered twice (a log with a repeat): the older bytes no longer count.
            Some((_, Some(old))) => self.kept_bytes -= old.len(),
            Some((_, None)) => {}
        }
        while self.kept_bytes > max_bytes {
            let Some(old) = self.kept.pop_front() else {
                break;
            };
            if let Some((_, b)) = self.map.get_mut(&old) {
                if let Some(b) = b.take() {
                    self.kept_bytes -= b.len();
                }
            }
        }
        while self.order.len() > max {
            if let Some(old) = self.order.pop_front() {
                if let Some((_, Some(b))) = self.map.remove(&old) {
                    self.kept_bytes -= b.len();
                }
            }
        }
        // Entries of `kept` whose bytes went are dropped from its front as they come up
        // (both queues are oldest first), so it never holds much more than what is kept.
        while let Some(front) = self.kept.front() {
            if self.map.get(front).is_some_and(|(_, b)| b.is_some()) {
                break;
            }
            self.kept.pop_front();
        }
    }

    /// What the file would hold compacted.
    fn live_bytes(&self) -> u64 {
        (self.order.len() * ORDER_RECORD_HEADER + self.kept_bytes) as u64
    }
}

fn order_record(epoch: &Hash, commit: &Hash, bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&epoch.0);
    out.extend_from_slice(&commit.0);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The answer to an offer: the epoch is the offered commit's, or another's (its bytes while
/// kept, else empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    Won,
    Lost(Vec<u8>),
}

impl CommitOrder {
    /// Opens the commit order kept in `dir`, remembering at most [`MAX_ORDERED`] epochs and
    /// [`MAX_KEPT_COMMIT_BYTES`] of commits.
    pub fn open(dir: &Path) -> Result<CommitOrder, MailboxError> {
        Self::open_with(
            &dir.join("commit-order.v2.log"),
            Some(&dir.join("commit-order.log")),
            (MAX_ORDERED, MAX_KEPT_COMMIT_BYTES),
        )
    }

    /// Opens the log at `path` remembering at most `limits.0` epochs (the newest) and keeping
    /// at most `limits.1` bytes of commits, reading it a record at a time so memory stays
    /// bounded whatever the file holds, and compacting it. A log of hashes only, as older
    /// versions kept at `legacy`, is carried over and removed.
    pub fn open_with(
        path: &Path,
        legacy: Option<&Path>,
        limits: (usize, usize),
    ) -> Result<CommitOrder, MailboxError> {
        let (max, max_bytes) = limits;
        let mut inner = Ordered::default();
        let legacy = legacy.filter(|l| l.exists());
        if let Some(old) = legacy {
            let f = File::open(old).map_err(io)?;
            let mut r = std::io::BufReader::new(f);
            let mut rec = [0u8; 64];
            while r.read_exact(&mut rec).is_ok() {
                let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
                a.copy_from_slice(&rec[..32]);
                b.copy_from_slice(&rec[32..]);
                inner.remember(Hash(a), Hash(b), None, limits);
            }
        }
        let whole = match File::open(path) {
            Ok(f) => {
                let len = f.metadata().map_err(io)?.len();
                let read = Self::load(f, &mut inner, limits);
                inner.file_bytes = read;
                read == len
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(io(e)),
        };
        let order = CommitOrder {
            path: path.to_path_buf(),
            max,
            max_bytes,
            inner: Mutex::new(inner),
        };
        {
            let mut inner = order.inner.lock().unwrap_or_else(|p| p.into_inner());
            // A torn last record is cut off (appending after it would misalign the rest).
            if !whole || legacy.is_some() || inner.file_bytes > inner.live_bytes() {
                order.compact(&mut inner)?;
            }
        }
        if let Some(old) = legacy {
            std::fs::remove_file(old).map_err(io)?;
            starling_config::fs::sync_dir(old);
        }
        Ok(order)
    }

    /// Reads whole records from `f` into `inner`; returns the bytes they took.
    fn load(f: File, inner: &mut Ordered, limits: (usize, usize)) -> u64 {
        let mut r = std::io::BufReader::new(f);
        let mut read = 0u64;
        let mut head = [0u8; ORDER_RECORD_HEADER];
        while r.read_exact(&mut head).is_ok() {
            let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
            a.copy_from_slice(&head[..32]);
            b.copy_from_slice(&head[32..64]);
            let n = u32::from_be_bytes([head[64], head[65], head[66], head[67]]) as usize;
            if n > MAX_COMMIT_BYTES {
                break;
            }
            let mut bytes = vec![0u8; n];
            if r.read_exact(&mut bytes).is_err()
                || (n > 0 && Hash(*blake3::hash(&bytes).as_bytes()) != Hash(b))
            {
                break;
            }
            inner.remember(Hash(a), Hash(b), Some(bytes), limits);
            read += (ORDER_RECORD_HEADER + n) as u64;
        }
        read
    }

    /// Rewrites the log with what is remembered, oldest first.
    fn compact(&self, inner: &mut Ordered) -> Result<(), MailboxError> {
        let mut buf = Vec::with_capacity(inner.live_bytes() as usize);
        for e in &inner.order {
            let (commit, bytes) = &inner.map[e];
            order_record(
                e,
                commit,
                bytes.as_deref().map_or(&[], Vec::as_slice),
                &mut buf,
            );
        }
        write_atomic(&self.path, &buf)?;
        inner.file_bytes = buf.len() as u64;
        Ok(())
    }

    /// Offers `commit` for the epoch named `epoch`: [`Offered::Won`] if it is (or already
    /// was) the epoch's commit, else the commit that was first. (Who may offer is checked
    /// before: only the epoch's members can sign for its name.)
    pub fn offer(&self, epoch: Hash, commit: &[u8]) -> Result<Offered, MailboxError> {
        if commit.len() > MAX_COMMIT_BYTES {
            return Err(MailboxError::TooLarge);
        }
        let hash = Hash(*blake3::hash(commit).as_bytes());
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.map.get(&epoch) {
            Some((c, _)) if *c == hash => return Ok(Offered::Won),
            Some((_, bytes)) => {
                return Ok(Offered::Lost(bytes.as_deref().cloned().unwrap_or_default()))
            }
            None => {}
        }
        let mut rec = Vec::with_capacity(ORDER_RECORD_HEADER + commit.len());
        order_record(&epoch, &hash, commit, &mut rec);
        starling_config::fs::append_whole(&self.path, &rec).map_err(io)?;
        inner.file_bytes += rec.len() as u64;
        inner.remember(
            epoch,
            hash,
            Some(commit.to_vec()),
            (self.max, self.max_bytes),
        );
        if inner.file_bytes > 2 * inner.live_bytes().max(1 << 20) {
            self.compact(&mut inner)?;
        }
        Ok(Offered::Won)
    }

    /// The winning commit of the epoch named `epoch`: `None` if none was offered here, empty
    /// if it is no longer kept.
    pub fn winner(&self, epoch: &Hash) -> Option<Vec<u8>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .map
            .get(epoch)
            .map(|(_, b)| b.as_deref().cloned().unwrap_or_default())
    }

    /// Epochs remembered.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .order
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::fs::OpenOptions;

    fn id(n: u8) -> Hash {
        Hash([n; 32])
    }

    #[test]
    fn the_commit_order_loads_in_bounded_memory_and_stays_compact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("order.log");
        let epoch = |n: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&n.to_be_bytes());
            Hash(b)
        };
        // A log far longer than the bounds (written by a node with larger ones, say).
        let o = CommitOrder::open_with(&path, None, (10_000, 1 << 30)).unwrap();
        for n in 0..5_000 {
            o.offer(epoch(n), &[1; 100]).unwrap();
        }
        drop(o);
        // The newest 100 epochs, and the commits of the newest 10 of them.
        let o = CommitOrder::open_with(&path, None, (100, 1_000)).unwrap();
        assert_eq!(o.len(), 100, "only the newest are kept");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            100 * ORDER_RECORD_HEADER + 10 * 100,
            "and compacted"
        );
        assert_eq!(o.winner(&epoch(4_999)), Some(vec![1; 100]));
        assert_eq!(
            o.winner(&epoch(4_900)),
            Some(vec![]),
            "remembered, no longer kept"
        );
        assert_eq!(o.winner(&epoch(0)), None, "forgotten");
        // The newest are still ordered; the oldest are forgotten.
        assert_eq!(o.offer(epoch(4_999), &[2]), Ok(Offered::Lost(vec![1; 100])));
        assert_eq!(o.offer(epoch(4_900), &[2]), Ok(Offered::Lost(vec![])));
        assert_eq!(o.offer(epoch(0), &[2]), Ok(Offered::Won));
        // Offers past the bound keep the file within twice what is remembered.
        for n in 10_000..14_000 {
            o.offer(epoch(n), &[1; 100]).unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 2 * (1 << 20) + 200);
        assert_eq!(
            o.offer(epoch(1), &vec![0; MAX_COMMIT_BYTES + 1]),
            Err(MailboxError::TooLarge)
        );
    }

    #[test]
    fn an_epoch_logged_twice_is_counted_once() {
        let mut o = Ordered::default();
        o.remember(id(1), id(2), Some(vec![1; 10]), (10, 100));
        o.remember(id(1), id(3), Some(vec![2; 20]), (10, 100));
        assert_eq!((o.order.len(), o.kept_bytes), (1, 20));
        for n in 2..40 {
            o.remember(id(n), id(2), Some(vec![3; 30]), (10, 100));
        }
        assert_eq!(o.order.len(), 10);
        assert!(o.kept_bytes <= 100);
        let kept: usize = o
            .map
            .values()
            .filter_map(|(_, b)| b.as_ref().map(|b| b.len()))
            .sum();
        assert_eq!(kept, o.kept_bytes, "the count matches what is kept");
        assert!(o.kept.len() <= 12, "{}", o.kept.len());
    }

    #[test]
    fn the_first_commit_wins_the_epoch_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let o = CommitOrder::open(dir.path()).unwrap();
        assert_eq!(o.offer(id(1), b"ten"), Ok(Offered::Won));
        assert_eq!(
            o.offer(id(1), b"ten"),
            Ok(Offered::Won),
            "offered again: still its own"
        );
        assert_eq!(
            o.offer(id(1), b"eleven"),
            Ok(Offered::Lost(b"ten".to_vec()))
        );
        assert_eq!(o.offer(id(2), b"eleven"), Ok(Offered::Won));
        drop(o);
        let o = CommitOrder::open(dir.path()).unwrap();
        assert_eq!(
            o.offer(id(1), b"eleven"),
            Ok(Offered::Lost(b"ten".to_vec()))
        );
        assert_eq!(o.offer(id(1), b"ten"), Ok(Offered::Won));
        assert_eq!(o.winner(&id(2)), Some(b"eleven".to_vec()));
    }

    #[test]
    fn a_torn_commit_order_is_cut_back_and_an_old_one_carried_over() {
        let dir = tempfile::tempdir().unwrap();
        // What an older version kept: epoch and commit hash, 64 bytes a record.
        let mut old = Vec::new();
        old.extend_from_slice(&id(1).0);
        old.extend_from_slice(blake3::hash(b"old").as_bytes());
        std::fs::write(dir.path().join("commit-order.log"), &old).unwrap();
        let o = CommitOrder::open(dir.path()).unwrap();
        assert!(
            !dir.path().join("commit-order.log").exists(),
            "carried over"
        );
        assert_eq!(o.offer(id(1), b"new"), Ok(Offered::Lost(vec![])));
        assert_eq!(o.offer(id(1), b"old"), Ok(Offered::Won));
        o.offer(id(2), b"two").unwrap();
        drop(o);
        // A crash in the middle of an append leaves half a record.
        let path = dir.path().join("commit-order.v2.log");
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, &[7; 40]).unwrap();
        drop(f);
        let o = CommitOrder::open(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "cut back");
        o.offer(id(3), b"three").unwrap();
        drop(o);
        let o = CommitOrder::open(dir.path()).unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o.winner(&id(3)), Some(b"three".to_vec()));
        assert_eq!(o.offer(id(2), b"other"), Ok(Offered::Lost(b"two".to_vec())));
    }
}
