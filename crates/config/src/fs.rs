//! The one way Starling writes a file that must survive a crash whole: a temporary file in
//! the same directory, readable by its owner only, written and synced, then renamed into
//! place (or linked, when an existing file must not be replaced), and the directory synced.
//! A crash leaves the old file or the new one, never half of either.
//!
//! And the one way it appends to a log of records ([`append_whole`]): written and synced,
//! or, if the write fails (a full disk, an I/O error), cut back to where it was, so the
//! next record never lands after half of this one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// What to do when the file already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Replace it, atomically.
    Replace,
    /// Keep it and fail with [`std::io::ErrorKind::AlreadyExists`] (key files).
    Keep,
}

/// Writes `bytes` to `path` whole or not at all, mode 0600 on Unix (see the module docs).
pub fn write_private(path: &Path, bytes: &[u8], existing: Existing) -> std::io::Result<()> {
    let tmp = temporary(path);
    let written = write_synced(&tmp, bytes).and_then(|()| match existing {
        Existing::Replace => std::fs::rename(&tmp, path),
        // A hard link fails if `path` exists; then the temporary name goes.
        Existing::Keep => match std::fs::hard_link(&tmp, path) {
            Ok(()) => std::fs::remove_file(&tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
            // A file system without hard links: check, then rename (callers that may race on
            // one name hold their own lock).
            Err(_) if path.exists() => Err(std::io::ErrorKind::AlreadyExists.into()),
            Err(_) => std::fs::rename(&tmp, path),
        },
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    sync_dir(path);
    Ok(())
}

/// An append-only file: what [`append_whole_to`] needs of it.
pub trait Log: std::io::Write {
    fn length(&self) -> std::io::Result<u64>;
    fn truncate(&self, len: u64) -> std::io::Result<()>;
    fn sync(&self) -> std::io::Result<()>;
}

impl Log for std::fs::File {
    fn length(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn truncate(&self, len: u64) -> std::io::Result<()> {
        self.set_len(len)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.sync_data()
    }
}

/// Appends `bytes` to `log` and syncs it; if that fails, cuts the log back to its length
/// before, so a failed append leaves nothing behind.
pub fn append_whole_to<L: Log>(log: &mut L, bytes: &[u8]) -> std::io::Result<()> {
    let before = log.length()?;
    let written = log.write_all(bytes).and_then(|()| log.sync());
    if let Err(e) = written {
        if let Err(cut) = log.truncate(before).and_then(|()| log.sync()) {
            return Err(std::io::Error::other(format!(
                "{e}; and cutting back the half-written record failed too: {cut}"
            )));
        }
        return Err(e);
    }
    Ok(())
}

/// Appends `bytes` to the file at `path` (made, mode 0600 on Unix, if need be) whole or not
/// at all; see [`append_whole_to`].
pub fn append_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let new = !path.exists();
    let mut f = options.open(path)?;
    append_whole_to(&mut f, bytes)?;
    if new {
        sync_dir(path);
    }
    Ok(())
}

/// Removes the temporary files a crashed process left in `dir` (those of other processes:
/// this one's may be in use). Best effort; returns how many went.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let me = std::process::id().to_string();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // `.{name}.{pid}.{n}.tmp`
        let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        let mut parts = inner.rsplitn(3, '.');
        let (Some(n), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if numeric(n) && numeric(pid) && pid != me && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A name beside `path` no other writer in this process or another uses at the same time.
fn temporary(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Syncs the directory holding `path`, so a rename or removal there survives a crash (best effort:
/// not every platform can open a directory).
pub fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log in memory whose writes fail after `room` more bytes (a disk filling up).
    struct Filling {
        data: std::cell::RefCell<Vec<u8>>,
        room: usize,
    }

    impl std::io::Write for Filling {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::other("no space left on device"));
            }
            let n = buf.len().min(self.room);
            self.data.borrow_mut().extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Log for Filling {
        fn length(&self) -> std::io::Result<u64> {
            Ok(self.data.borrow().len() as u64)
        }
        fn truncate(&self, len: u64) -> std::io::Result<()> {
            self.data.borrow_mut().truncate(len as usize);
            Ok(())
        }
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_append_leaves_nothing_for_the_next_to_land_after() {
        let mut log = Filling {
            data: Default::default(),
            room: 12,
        };
        append_whole_to(&mut log, b"first.").unwrap();
        // Six bytes of room for a ten-byte record: the write fails half way.
        assert!(append_whole_to(&mut log, b"second....").is_err());
        assert_eq!(log.data.borrow().as_slice(), b"first.", "cut back");
        log.room = 100;
        append_whole_to(&mut log, b"third.").unwrap();
        assert_eq!(log.data.borrow().as_slice(), b"first.third.");
    }

    #[test]
    fn appends_go_to_the_end_of_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        append_whole(&path, b"ab").unwrap();
        append_whole(&path, b"cd").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcd");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn replaces_whole_keeps_on_request_and_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_private(&p, b"one", Existing::Replace).unwrap();
        write_private(&p, b"two", Existing::Replace).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let e = write_private(&p, b"three", Existing::Keep).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        write_private(&d.path().join("g"), b"new", Existing::Keep).unwrap();
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A directory that does not exist: an error, nothing left behind.
        assert!(write_private(&d.path().join("no/such/f"), b"x", Existing::Replace).is_err());
    }

    #[test]
    fn stale_temporaries_of_other_processes_are_swept() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(".key.toml.1.0.tmp");
        let mine = d
            .path()
            .join(format!(".key.toml.{}.0.tmp", std::process::id()));
        let other = d.path().join(".notes.tmp");
        for f in [&stale, &mine, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(d.path()), 1);
        assert!(!stale.exists() && mine.exists() && other.exists());
    }
}
