//! Commit order: the first commit offered for a group epoch wins it; the epoch is named by
//! the public half of a key only that epoch's members derive, so the relay learns neither the
//! group nor its members. The winner is kept (the newest, within bounds) for members who
//! never received it.
//!
//! Anyone can make up epoch names, so a flood of them must neither make the node forget a
//! live group's epoch (a second commit would then win it and split the group) nor come for
//! free: an epoch is remembered for at least [`ORDER_RETENTION_S`] (a full order refuses
//! new epochs until its oldest expire), and a new name costs proof of work that rises as
//! the order fills ([`OrderLimits::work_needed`]).

use crate::mailbox::{io, write_atomic, MailboxError};
use starling_protocol::chat::{now_ms, MAX_COMMIT_BYTES};
use starling_types::Hash;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Group epochs whose winning commit a node remembers.
pub const MAX_ORDERED: usize = 1_000_000;

/// Most bytes of winning commits kept (the newest); older epochs keep only their commit's
/// hash, enough to refuse a second commit.
pub const MAX_KEPT_COMMIT_BYTES: usize = 64 * 1024 * 1024;

/// How long an epoch is remembered at least (30 days, past any mail's expiry): while it is
/// younger, no flood of new epochs makes the node forget it; a full order refuses new
/// epochs instead.
pub const ORDER_RETENTION_S: u64 = 30 * 24 * 3600;

/// Proof of work a new epoch needs while the order is nearly empty; it rises by 2 bits each
/// time the order's fill doubles past 1/16, to 8 more when it is half full.
pub use starling_protocol::chat::ORDER_WORK_BITS;

/// A commit order record: epoch name, commit hash, time (seconds), commit length (0: not
/// kept), commit.
const ORDER_RECORD_HEADER: usize = 32 + 32 + 8 + 4;

/// What a node's commit order holds at most, and what a new epoch costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderLimits {
    /// Epochs remembered.
    pub epochs: usize,
    /// Bytes of winning commits kept (the newest).
    pub kept_bytes: usize,
    /// Seconds an epoch is remembered at least.
    pub retention_s: u64,
    /// Proof of work a new epoch needs while the order is nearly empty.
    pub work_bits: u8,
}

impl Default for OrderLimits {
    fn default() -> Self {
        OrderLimits {
            epochs: MAX_ORDERED,
            kept_bytes: MAX_KEPT_COMMIT_BYTES,
            retention_s: ORDER_RETENTION_S,
            work_bits: ORDER_WORK_BITS,
        }
    }
}

impl OrderLimits {
    /// Proof of work (leading zero bits) a new epoch needs when `len` epochs are remembered.
    pub fn work_needed(&self, len: usize) -> u8 {
        let mut extra = 0u8;
        let mut band = self.epochs / 16;
        while band > 0 && len >= band && extra < 8 {
            extra += 2;
            band = band.saturating_mul(2);
        }
        self.work_bits.saturating_add(extra)
    }
}

/// The winning commit of each group epoch this node orders, appended to a log: the epoch's
/// name, the commit's hash, when it won and (for the newest) the commit itself, which
/// members that never received it (its committer crashed before delivering it, say) can
/// fetch.
#[derive(Debug)]
pub struct CommitOrder {
    path: PathBuf,
    limits: OrderLimits,
    inner: Mutex<Ordered>,
}

/// A winning commit's bytes, while kept.
type Kept = std::sync::Arc<Vec<u8>>;

#[derive(Debug)]
struct Won {
    commit: Hash,
    /// When it won (seconds since 1970).
    at_s: u64,
    bytes: Option<Kept>,
}

#[derive(Debug, Default)]
struct Ordered {
    map: HashMap<Hash, Won>,
    /// Epochs oldest first: the first goes when more than the limit are remembered and it
    /// is past the retention.
    order: VecDeque<Hash>,
    /// Epochs whose commit is kept, oldest first, and their bytes in all.
    kept: VecDeque<Hash>,
    kept_bytes: usize,
    /// Bytes in the file (it is compacted when it holds twice what is remembered).
    file_bytes: u64,
    /// The latest time an epoch was won: the order's clock never runs back, so a clock set
    /// back does not stamp new epochs older than the last (which would let them expire
    /// early). Epochs stamped ahead of the clock are read as won at open.
    latest_s: u64,
}

impl Ordered {
    /// Remembers `epoch`'s winner, forgetting the oldest epochs past `limits.epochs` (the
    /// caller made room for a new epoch, or is loading a log) and the oldest commits' bytes
    /// past `limits.kept_bytes`.
    fn remember(&mut self, epoch: Hash, won: Won, limits: OrderLimits) {
        let bytes = won.bytes.clone().filter(|b| !b.is_empty());
        if let Some(b) = &bytes {
            self.kept.push_back(epoch);
            self.kept_bytes += b.len();
        }
        match self.map.insert(epoch, Won { bytes, ..won }) {
            None => self.order.push_back(epoch),
            // Remembered twice (a log with a repeat): the older bytes no longer count.
            Some(Won {
                bytes: Some(old), ..
            }) => self.kept_bytes -= old.len(),
            Some(_) => {}
        }
        while self.kept_bytes > limits.kept_bytes {
            let Some(old) = self.kept.pop_front() else {
                break;
            };
            if let Some(b) = self.map.get_mut(&old).and_then(|w| w.bytes.take()) {
                self.kept_bytes -= b.len();
            }
        }
        while self.order.len() > limits.epochs {
            self.forget_oldest();
        }
        // Entries of `kept` whose bytes went are dropped from its front as they come up
        // (both queues are oldest first), so it never holds much more than what is kept.
        while let Some(front) = self.kept.front() {
            if self.map.get(front).is_some_and(|w| w.bytes.is_some()) {
                break;
            }
            self.kept.pop_front();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some(old) = self.order.pop_front() {
            if let Some(Won { bytes: Some(b), .. }) = self.map.remove(&old) {
                self.kept_bytes -= b.len();
            }
        }
    }

    /// Makes room for one new epoch at `now_s` by forgetting epochs past the retention:
    /// false if every remembered epoch is younger (then none is forgotten).
    fn make_room(&mut self, now_s: u64, limits: OrderLimits) -> bool {
        while self.order.len() >= limits.epochs {
            let expired = self
                .order
                .front()
                .and_then(|e| self.map.get(e))
                .is_some_and(|w| w.at_s.saturating_add(limits.retention_s) <= now_s);
            if !expired {
                return false;
            }
            self.forget_oldest();
        }
        true
    }

    /// What the file would hold compacted.
    fn live_bytes(&self) -> u64 {
        (self.order.len() * ORDER_RECORD_HEADER + self.kept_bytes) as u64
    }
}

fn order_record(epoch: &Hash, won: &Won, out: &mut Vec<u8>) {
    let bytes = won.bytes.as_deref().map_or(&[][..], Vec::as_slice);
    out.extend_from_slice(&epoch.0);
    out.extend_from_slice(&won.commit.0);
    out.extend_from_slice(&won.at_s.to_be_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The answer to an offer: the epoch is the offered commit's, or another's (its bytes while
/// kept, else empty); or the epoch is new here and its offer needs this much proof of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    Won,
    Lost(Vec<u8>),
    WorkNeeded(u8),
}

/// The layouts the log had: hashes only (at `commit-order.log`), then with the commits
/// (`commit-order.v2.log`), then with when each won (`commit-order.v3.log`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    V1,
    V2,
    V3,
}

impl CommitOrder {
    /// Opens the commit order kept in `dir` with the default [`OrderLimits`].
    pub fn open(dir: &Path) -> Result<CommitOrder, MailboxError> {
        Self::open_with(dir, OrderLimits::default())
    }

    /// Opens the commit order kept in `dir` within `limits`, reading it a record at a time
    /// so memory stays bounded whatever the file holds (the newest records are kept), and
    /// compacting it. The logs of earlier versions are carried over and removed; their
    /// epochs count as won when they are carried over.
    pub fn open_with(dir: &Path, limits: OrderLimits) -> Result<CommitOrder, MailboxError> {
        let path = dir.join("commit-order.v3.log");
        let now_s = now_ms() / 1000;
        let mut inner = Ordered::default();
        let legacy: Vec<PathBuf> = [
            (dir.join("commit-order.log"), Layout::V1),
            (dir.join("commit-order.v2.log"), Layout::V2),
        ]
        .into_iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, layout)| {
            let f = File::open(&p).map_err(io)?;
            Self::load(f, &mut inner, limits, layout, now_s);
            Ok(p)
        })
        .collect::<Result<_, MailboxError>>()?;
        let whole = match File::open(&path) {
            Ok(f) => {
                let len = f.metadata().map_err(io)?.len();
                let read = Self::load(f, &mut inner, limits, Layout::V3, now_s);
                inner.file_bytes = read;
                read == len
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(io(e)),
        };
        let order = CommitOrder {
            path,
            limits,
            inner: Mutex::new(inner),
        };
        {
            let mut inner = order.inner.lock().unwrap_or_else(|p| p.into_inner());
            // A torn last record is cut off (appending after it would misalign the rest).
            if !whole || !legacy.is_empty() || inner.file_bytes > inner.live_bytes() {
                order.compact(&mut inner)?;
            }
        }
        for old in legacy {
            std::fs::remove_file(&old).map_err(io)?;
            starling_config::fs::sync_dir(&old);
        }
        Ok(order)
    }

    /// Reads whole records of `layout` from `f` into `inner` (those without a time won at
    /// `now_s`); returns the bytes they took.
    fn load(f: File, inner: &mut Ordered, limits: OrderLimits, layout: Layout, now_s: u64) -> u64 {
        let mut r = std::io::BufReader::new(f);
        let mut read = 0u64;
        loop {
            let (mut epoch, mut commit) = ([0u8; 32], [0u8; 32]);
            if r.read_exact(&mut epoch).is_err() || r.read_exact(&mut commit).is_err() {
                break;
            }
            let mut at_s = now_s;
            let mut head = 64;
            if layout == Layout::V3 {
                let mut t = [0u8; 8];
                if r.read_exact(&mut t).is_err() {
                    break;
                }
                // Won in the future (a clock that ran ahead and was set back): won now.
                at_s = u64::from_be_bytes(t).min(now_s);
                head += 8;
            }
            let mut bytes = Vec::new();
            if layout != Layout::V1 {
                let mut n = [0u8; 4];
                if r.read_exact(&mut n).is_err() {
                    break;
                }
                let n = u32::from_be_bytes(n) as usize;
                if n > MAX_COMMIT_BYTES {
                    break;
                }
                bytes = vec![0u8; n];
                if r.read_exact(&mut bytes).is_err()
                    || (n > 0 && *blake3::hash(&bytes).as_bytes() != commit)
                {
                    break;
                }
                head += 4;
            }
            read += (head + bytes.len()) as u64;
            inner.latest_s = inner.latest_s.max(at_s);
            let won = Won {
                commit: Hash(commit),
                at_s,
                bytes: Some(std::sync::Arc::new(bytes)),
            };
            inner.remember(Hash(epoch), won, limits);
        }
        read
    }

    /// Rewrites the log with what is remembered, oldest first.
    fn compact(&self, inner: &mut Ordered) -> Result<(), MailboxError> {
        let mut buf = Vec::with_capacity(inner.live_bytes() as usize);
        for e in &inner.order {
            order_record(e, &inner.map[e], &mut buf);
        }
        write_atomic(&self.path, &buf)?;
        inner.file_bytes = buf.len() as u64;
        Ok(())
    }

    /// Offers `commit` for the epoch named `epoch`, with proof of work of `work_bits` (see
    /// [`starling_protocol::chat::order_work_bits`]), now. (Who may offer is checked before:
    /// only the epoch's members can sign for its name.)
    pub fn offer(
        &self,
        epoch: Hash,
        commit: &[u8],
        work_bits: u32,
    ) -> Result<Offered, MailboxError> {
        self.offer_at(epoch, commit, work_bits, now_ms() / 1000)
    }

    /// As [`Self::offer`] at `now_s`: [`Offered::Won`] if the commit is (or already was) the
    /// epoch's, else the commit that was first. An epoch new here needs enough work, and room:
    /// a full order whose every epoch is younger than the retention refuses it
    /// ([`MailboxError::OrderFull`]) rather than forget one a group may still need.
    pub fn offer_at(
        &self,
        epoch: Hash,
        commit: &[u8],
        work_bits: u32,
        now_s: u64,
    ) -> Result<Offered, MailboxError> {
        if commit.len() > MAX_COMMIT_BYTES {
            return Err(MailboxError::TooLarge);
        }
        let hash = Hash(*blake3::hash(commit).as_bytes());
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.map.get(&epoch) {
            Some(w) if w.commit == hash => return Ok(Offered::Won),
            Some(w) => {
                return Ok(Offered::Lost(
                    w.bytes.as_deref().cloned().unwrap_or_default(),
                ))
            }
            None => {}
        }
        // Room first: a member is not asked for work that could not win a place anyway.
        let now_s = now_s.max(inner.latest_s);
        if !inner.make_room(now_s, self.limits) {
            return Err(MailboxError::OrderFull);
        }
        let needed = self.limits.work_needed(inner.order.len());
        if work_bits < u32::from(needed) {
            return Ok(Offered::WorkNeeded(needed));
        }
        inner.latest_s = now_s;
        let won = Won {
            commit: hash,
            at_s: now_s,
            bytes: Some(std::sync::Arc::new(commit.to_vec())),
        };
        let mut rec = Vec::with_capacity(ORDER_RECORD_HEADER + commit.len());
        order_record(&epoch, &won, &mut rec);
        starling_config::fs::append_whole(&self.path, &rec).map_err(io)?;
        inner.file_bytes += rec.len() as u64;
        inner.remember(epoch, won, self.limits);
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
            .map(|w| w.bytes.as_deref().cloned().unwrap_or_default())
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

    /// More proof of work than any order asks.
    const PLENTY: u32 = 128;

    fn limits(epochs: usize, kept_bytes: usize) -> OrderLimits {
        OrderLimits {
            epochs,
            kept_bytes,
            retention_s: 100,
            work_bits: 0,
        }
    }

    fn won(commit: Hash, bytes: Vec<u8>) -> Won {
        Won {
            commit,
            at_s: 0,
            bytes: Some(std::sync::Arc::new(bytes)),
        }
    }

    fn epoch(n: u32) -> Hash {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        Hash(b)
    }

    #[test]
    fn the_commit_order_loads_in_bounded_memory_and_stays_compact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("commit-order.v3.log");
        // A log far longer than the bounds (written by a node with larger ones, say).
        let o = CommitOrder::open_with(dir.path(), limits(10_000, 1 << 30)).unwrap();
        for n in 0..5_000 {
            o.offer_at(epoch(n), &[1; 100], PLENTY, 1).unwrap();
        }
        drop(o);
        // The newest 100 epochs, and the commits of the newest 10 of them.
        let o = CommitOrder::open_with(dir.path(), limits(100, 1_000)).unwrap();
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
        // The newest are still ordered.
        assert_eq!(
            o.offer_at(epoch(4_999), &[2], PLENTY, 2),
            Ok(Offered::Lost(vec![1; 100]))
        );
        assert_eq!(
            o.offer_at(epoch(4_900), &[2], PLENTY, 2),
            Ok(Offered::Lost(vec![]))
        );
        // Offers past the bound (once the oldest expire) keep the file within twice what is
        // remembered.
        for n in 10_000..14_000 {
            o.offer_at(epoch(n), &[1; 100], PLENTY, 200 * u64::from(n))
                .unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 2 * (1 << 20) + 200);
        assert_eq!(
            o.offer_at(epoch(1), &vec![0; MAX_COMMIT_BYTES + 1], PLENTY, 1_000),
            Err(MailboxError::TooLarge)
        );
    }

    /// A flood of made-up epochs (anyone can name one) filled the order and pushed a live
    /// group's epoch out; a second commit then won it, splitting the group. Now a full order
    /// refuses new epochs until its oldest are past the retention, and never forgets a
    /// younger one.
    #[test]
    fn a_flood_of_new_epochs_never_makes_the_order_forget_a_young_one() {
        let dir = tempfile::tempdir().unwrap();
        let o = CommitOrder::open_with(dir.path(), limits(1_000, 1 << 20)).unwrap();
        assert_eq!(
            o.offer_at(id(0xAA), b"alice's commit", PLENTY, 10),
            Ok(Offered::Won)
        );
        let mut refused = 0;
        for n in 0..5_000 {
            match o.offer_at(epoch(n), b"junk", PLENTY, 20) {
                Ok(Offered::Won) => {}
                Err(MailboxError::OrderFull) => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((o.len(), refused), (1_000, 4_001));
        // A full order asks no work of anyone: there is no place to win.
        assert_eq!(
            o.offer_at(id(0xCC), b"x", 0, 20),
            Err(MailboxError::OrderFull)
        );
        assert_eq!(
            o.offer_at(id(0xAA), b"bob's commit", PLENTY, 30),
            Ok(Offered::Lost(b"alice's commit".to_vec())),
            "the group's epoch is still taken"
        );
        // After a restart too.
        drop(o);
        let o = CommitOrder::open_with(dir.path(), limits(1_000, 1 << 20)).unwrap();
        assert_eq!(
            o.offer_at(id(0xAA), b"bob's commit", PLENTY, 30),
            Ok(Offered::Lost(b"alice's commit".to_vec()))
        );
        assert_eq!(
            o.offer_at(id(0xBB), b"carol's", PLENTY, 109),
            Err(MailboxError::OrderFull)
        );
        // Past the retention the oldest go, one for each new epoch.
        assert_eq!(
            o.offer_at(id(0xBB), b"carol's", PLENTY, 110),
            Ok(Offered::Won)
        );
        assert_eq!(o.winner(&id(0xAA)), None);
        assert_eq!(o.winner(&epoch(0)), Some(b"junk".to_vec()));
        assert_eq!(o.len(), 1_000);
    }

    #[test]
    fn a_new_epoch_costs_work_that_rises_as_the_order_fills() {
        let l = OrderLimits {
            epochs: 1_600,
            kept_bytes: 1 << 20,
            retention_s: 100,
            work_bits: 3,
        };
        let needed: Vec<u8> = [0, 99, 100, 199, 200, 400, 800, 1_599, 1_600]
            .iter()
            .map(|n| l.work_needed(*n))
            .collect();
        assert_eq!(needed, [3, 3, 5, 5, 7, 9, 11, 11, 11]);
        let dir = tempfile::tempdir().unwrap();
        let o = CommitOrder::open_with(dir.path(), l).unwrap();
        assert_eq!(o.offer_at(id(1), b"c", 2, 1), Ok(Offered::WorkNeeded(3)));
        assert_eq!(o.winner(&id(1)), None, "nothing remembered");
        assert_eq!(o.offer_at(id(1), b"c", 3, 1), Ok(Offered::Won));
        // An epoch already ordered answers without work.
        assert_eq!(o.offer_at(id(1), b"c", 0, 1), Ok(Offered::Won));
        assert_eq!(
            o.offer_at(id(1), b"d", 0, 1),
            Ok(Offered::Lost(b"c".to_vec()))
        );
        for n in 0..199 {
            o.offer_at(epoch(n), b"x", 5, 1).unwrap();
        }
        assert_eq!(o.offer_at(id(2), b"c", 5, 1), Ok(Offered::WorkNeeded(7)));
        assert_eq!(o.offer_at(id(2), b"c", 7, 1), Ok(Offered::Won));
    }

    #[test]
    fn the_orders_clock_never_runs_back() {
        let dir = tempfile::tempdir().unwrap();
        let o = CommitOrder::open_with(dir.path(), limits(10, 1 << 20)).unwrap();
        o.offer_at(id(1), b"x", PLENTY, 1_000).unwrap();
        // The machine's clock is set back: the next epoch is not stamped older than the last.
        o.offer_at(id(2), b"y", PLENTY, 10).unwrap();
        let at = |o: &CommitOrder, e: Hash| o.inner.lock().unwrap().map[&e].at_s;
        assert_eq!(at(&o, id(2)), 1_000);
        drop(o);
        // Stamped ahead of the clock (one that ran ahead, since set right): won at open.
        let mut rec = Vec::new();
        let won = Won {
            commit: Hash(*blake3::hash(b"z").as_bytes()),
            at_s: u64::MAX - 5,
            bytes: Some(std::sync::Arc::new(b"z".to_vec())),
        };
        order_record(&id(3), &won, &mut rec);
        let path = dir.path().join("commit-order.v3.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, &rec).unwrap();
        drop(f);
        let o = CommitOrder::open_with(dir.path(), limits(10, 1 << 20)).unwrap();
        let now = now_ms() / 1000;
        assert!((now..now + 5).contains(&at(&o, id(3))));
        assert_eq!(at(&o, id(1)), 1_000);
    }

    #[test]
    fn an_epoch_logged_twice_is_counted_once() {
        let mut o = Ordered::default();
        let l = limits(10, 100);
        o.remember(id(1), won(id(2), vec![1; 10]), l);
        o.remember(id(1), won(id(3), vec![2; 20]), l);
        assert_eq!((o.order.len(), o.kept_bytes), (1, 20));
        for n in 2..40 {
            o.remember(id(n), won(id(2), vec![3; 30]), l);
        }
        assert_eq!(o.order.len(), 10);
        assert!(o.kept_bytes <= 100);
        let kept: usize = o
            .map
            .values()
            .filter_map(|w| w.bytes.as_ref().map(|b| b.len()))
            .sum();
        assert_eq!(kept, o.kept_bytes, "the count matches what is kept");
        assert!(o.kept.len() <= 12, "{}", o.kept.len());
    }

    #[test]
    fn the_first_commit_wins_the_epoch_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let o = CommitOrder::open(dir.path()).unwrap();
        let w = u32::from(ORDER_WORK_BITS);
        assert_eq!(o.offer(id(1), b"ten", w), Ok(Offered::Won));
        assert_eq!(
            o.offer(id(1), b"ten", 0),
            Ok(Offered::Won),
            "offered again: still its own"
        );
        assert_eq!(
            o.offer(id(1), b"eleven", 0),
            Ok(Offered::Lost(b"ten".to_vec()))
        );
        assert_eq!(o.offer(id(2), b"eleven", w), Ok(Offered::Won));
        drop(o);
        let o = CommitOrder::open(dir.path()).unwrap();
        assert_eq!(
            o.offer(id(1), b"eleven", 0),
            Ok(Offered::Lost(b"ten".to_vec()))
        );
        assert_eq!(o.offer(id(1), b"ten", 0), Ok(Offered::Won));
        assert_eq!(o.winner(&id(2)), Some(b"eleven".to_vec()));
    }

    #[test]
    fn a_torn_commit_order_is_cut_back_and_older_ones_carried_over() {
        let dir = tempfile::tempdir().unwrap();
        // What the first version kept: epoch and commit hash, 64 bytes a record.
        let mut v1 = Vec::new();
        v1.extend_from_slice(&id(1).0);
        v1.extend_from_slice(blake3::hash(b"old").as_bytes());
        std::fs::write(dir.path().join("commit-order.log"), &v1).unwrap();
        // The second: and the commit's length and bytes.
        let mut v2 = Vec::new();
        v2.extend_from_slice(&id(4).0);
        v2.extend_from_slice(blake3::hash(b"four").as_bytes());
        v2.extend_from_slice(&4u32.to_be_bytes());
        v2.extend_from_slice(b"four");
        std::fs::write(dir.path().join("commit-order.v2.log"), &v2).unwrap();
        let o = CommitOrder::open(dir.path()).unwrap();
        for old in ["commit-order.log", "commit-order.v2.log"] {
            assert!(!dir.path().join(old).exists(), "{old} carried over");
        }
        // Their epochs count as won when carried over (they are kept 30 days from now).
        let now = now_ms() / 1000;
        for e in [id(1), id(4)] {
            assert!(o.inner.lock().unwrap().map[&e].at_s + 5 >= now);
        }
        assert_eq!(o.offer(id(1), b"new", 0), Ok(Offered::Lost(vec![])));
        assert_eq!(o.offer(id(1), b"old", 0), Ok(Offered::Won));
        assert_eq!(
            o.offer(id(4), b"new", 0),
            Ok(Offered::Lost(b"four".to_vec()))
        );
        o.offer(id(2), b"two", u32::from(ORDER_WORK_BITS)).unwrap();
        drop(o);
        // A crash in the middle of an append leaves half a record.
        let path = dir.path().join("commit-order.v3.log");
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, &[7; 40]).unwrap();
        drop(f);
        let o = CommitOrder::open(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "cut back");
        o.offer(id(3), b"three", u32::from(ORDER_WORK_BITS))
            .unwrap();
        drop(o);
        let o = CommitOrder::open(dir.path()).unwrap();
        assert_eq!(o.len(), 4);
        assert_eq!(o.winner(&id(3)), Some(b"three".to_vec()));
        assert_eq!(
            o.offer(id(2), b"other", 0),
            Ok(Offered::Lost(b"two".to_vec()))
        );
    }
}
