//! The mailboxes a node knows: their holders took mail from them lately, so a deposit to one
//! does not count as opening a new mailbox even while it is empty and its files are gone.
//! Kept in memory and in an append-only file, so that a restart does not make every empty
//! mailbox a stranger's (new mailboxes have their own, smaller quota).
//!
//! The file is a run of 40-byte records, `id:[u8; 32] || at_ms:u64` (big-endian), newest
//! last; a torn last record is ignored. It is rewritten from memory when it holds twice as
//! many records as are kept. Writing is best effort: a record lost to a crash only makes a
//! mailbox count as new once more, and loses no mail.

use starling_types::Hash;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Most mailboxes remembered as known; past it, the half taken from longest ago is
/// forgotten.
pub(crate) const MAX_KNOWN: usize = 200_000;

/// A known mailbox's time is written again once it is older than this (a holder taking
/// mail every few seconds writes one record a day, not one a take).
const REWRITE_AFTER_MS: u64 = 24 * 3600 * 1000;

const RECORD: usize = 40;

/// The file's name under the mailboxes' directory.
pub(crate) const KNOWN_FILE: &str = "known-mailboxes.v1";

#[derive(Debug)]
pub(crate) struct Known {
    at: HashMap<Hash, u64>,
    max: usize,
    path: PathBuf,
    file: Option<File>,
    /// Records in the file.
    records: usize,
    /// After a failed write, when to try the file again (memory is kept up meanwhile).
    retry_at: Option<std::time::Instant>,
}

/// How long a failed write waits before the file is tried again.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl Known {
    /// Reads what `dir` remembers (the newest time of each mailbox, at most `max` of them).
    pub(crate) fn open(dir: &Path, max: usize, now: u64) -> Known {
        let path = dir.join(KNOWN_FILE);
        let max = max.max(2);
        // At most what the file may legitimately hold (twice the kept, then a rewrite);
        // a larger one is read that far.
        let cap = (max as u64 * 2 + 1) * RECORD as u64;
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(f) => {
                if let Err(e) =
                    std::io::Read::read_to_end(&mut std::io::Read::take(f, cap), &mut bytes)
                {
                    tracing::warn!(error = %e, path = %path.display(), "reading the known mailboxes");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "reading the known mailboxes")
            }
        }
        let mut at = HashMap::new();
        let mut records = 0;
        for r in bytes.chunks_exact(RECORD) {
            let mut id = [0u8; 32];
            id.copy_from_slice(&r[..32]);
            let mut t = [0u8; 8];
            t.copy_from_slice(&r[32..]);
            // A time ahead of the clock (a clock set back, a damaged record) counts as now,
            // so it cannot stay young for ever.
            let t = u64::from_be_bytes(t).min(now);
            let e = at.entry(Hash(id)).or_insert(t);
            *e = (*e).max(t);
            records += 1;
        }
        let mut known = Known {
            at,
            max,
            path,
            file: None,
            records,
            retry_at: None,
        };
        if known.at.len() > known.max {
            known.forget_older_half();
        }
        // Start from a compact file (which also cuts a torn record off).
        known.rewrite();
        known
    }

    pub(crate) fn contains(&self, id: &Hash) -> bool {
        self.at.contains_key(id)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.at.len()
    }

    /// Notes that `id`'s holder took mail at `now` (ms).
    pub(crate) fn remember(&mut self, id: &Hash, now: u64) {
        let before = self.at.get(id).copied();
        if before.is_none() && self.at.len() >= self.max {
            self.forget_older_half();
        }
        self.at.insert(*id, now.max(before.unwrap_or(0)));
        if before.is_some_and(|t| now.saturating_sub(t) < REWRITE_AFTER_MS) {
            return;
        }
        if self.retry_at.is_some_and(|t| std::time::Instant::now() < t) {
            return;
        }
        if self.file.is_none() || self.records >= self.max.saturating_mul(2) {
            self.rewrite();
            return;
        }
        let mut r = Vec::with_capacity(RECORD);
        r.extend_from_slice(&id.0);
        r.extend_from_slice(&now.to_be_bytes());
        let written = match self.file.as_mut() {
            Some(f) => f.write_all(&r),
            None => Err(std::io::Error::other("not open")),
        };
        match written {
            Ok(()) => self.records += 1,
            Err(e) => {
                tracing::warn!(error = %e, "remembering a known mailbox; tried again in a minute");
                self.file = None;
                self.retry_at = Some(std::time::Instant::now() + RETRY_AFTER);
            }
        }
    }

    fn forget_older_half(&mut self) {
        let mut ages: Vec<u64> = self.at.values().copied().collect();
        let half = ages.len() / 2;
        let (_, median, _) = ages.select_nth_unstable(half);
        let median = *median;
        self.at.retain(|_, t| *t > median);
    }

    /// Writes the file anew from memory (whole or not at all) and appends from there on.
    fn rewrite(&mut self) {
        let mut buf = Vec::with_capacity(self.at.len() * RECORD);
        let mut all: Vec<(&Hash, &u64)> = self.at.iter().collect();
        all.sort_by_key(|(id, t)| (**t, **id));
        for (id, t) in all {
            buf.extend_from_slice(&id.0);
            buf.extend_from_slice(&t.to_be_bytes());
        }
        let written = starling_config::fs::write_private(
            &self.path,
            &buf,
            starling_config::fs::Existing::Replace,
        )
        .and_then(|()| OpenOptions::new().append(true).open(&self.path));
        match written {
            Ok(f) => {
                self.file = Some(f);
                self.records = self.at.len();
                self.retry_at = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, path = %self.path.display(), "writing the known mailboxes; tried again in a minute");
                self.file = None;
                self.retry_at = Some(std::time::Instant::now() + RETRY_AFTER);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> Hash {
        Hash::of(&[&n.to_be_bytes()])
    }

    #[test]
    fn known_mailboxes_survive_a_restart_and_a_torn_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut k = Known::open(dir.path(), 100, u64::MAX);
        k.remember(&id(1), 1_000);
        k.remember(&id(2), 2_000);
        drop(k);
        // A crash cut a record short.
        let path = dir.path().join(KNOWN_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[7u8; 17]).unwrap();
        drop(f);
        let k = Known::open(dir.path(), 100, u64::MAX);
        assert!(k.contains(&id(1)) && k.contains(&id(2)));
        assert!(!k.contains(&id(3)));
        assert_eq!(k.len(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * RECORD as u64);
    }

    #[test]
    fn the_known_set_and_its_file_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KNOWN_FILE);
        let mut k = Known::open(dir.path(), 100, u64::MAX);
        for n in 0..1_000u32 {
            k.remember(&id(n), u64::from(n) * 1_000);
            // Taking again soon writes nothing more.
            k.remember(&id(n), u64::from(n) * 1_000 + 1);
            assert!(k.len() <= 100);
            assert!(std::fs::metadata(&path).unwrap().len() <= 201 * RECORD as u64);
        }
        // The newest are kept, the oldest forgotten, after a restart too.
        drop(k);
        let k = Known::open(dir.path(), 100, u64::MAX);
        assert!(k.contains(&id(999)));
        assert!(!k.contains(&id(0)));
        assert!(k.len() <= 100);
        // A time a day old is written again.
        let mut k = k;
        let before = k.records;
        k.remember(&id(999), 999_000 + REWRITE_AFTER_MS + 1);
        assert_eq!(k.records, before + 1);
    }

    #[test]
    fn a_damaged_file_is_bounded_and_its_future_times_count_as_now() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KNOWN_FILE);
        // Far more records than the file may hold, all stamped far in the future.
        let mut junk = Vec::new();
        for n in 0..1_000u32 {
            junk.extend_from_slice(&id(n).0);
            junk.extend_from_slice(&u64::MAX.to_be_bytes());
        }
        std::fs::write(&path, &junk).unwrap();
        let mut k = Known::open(dir.path(), 100, 5_000);
        assert!(k.len() <= 100);
        assert!(k.at.values().all(|t| *t <= 5_000));
        // So they age like any other: newer holders push them out.
        for n in 10_000..10_200u32 {
            k.remember(&id(n), 6_000 + u64::from(n));
        }
        assert!(k.len() <= 100);
        assert!(
            k.at.values().all(|t| *t > 5_000),
            "the damaged records aged out"
        );
    }
}
