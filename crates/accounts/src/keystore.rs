//! Encrypted keystores: the accounts a node holds for the people who use it.
//!
//! One JSON file per account, `<dir>/<key type>-<64 hex>.json`, readable only by the node's
//! user:
//!
//! ```json
//! {"version": 1, "account": "ed25519:…", "label": "alice",
//!  "kdf": {"alg": "argon2id", "m_kib": 19456, "t": 2, "p": 1, "salt": "<32 hex>"},
//!  "cipher": {"alg": "xchacha20poly1305", "nonce": "<48 hex>", "ciphertext": "<hex>"}}
//! ```
//!
//! The password is stretched with Argon2id into a 256-bit key that seals the account's 32-byte
//! secret seed with XChaCha20-Poly1305. The associated data binds the account and the KDF
//! parameters, so a file whose account or parameters were changed does not open. A file is
//! also a backup: `export` hands out exactly these bytes, and `import_backup` takes them back
//! after checking that the password opens them (one Argon2 run). Secrets live in [`Zeroizing`]
//! buffers and are never logged (the [`SecretKey`] `Debug` prints only the public key).
//!
//! Argon2 is the costliest thing a stranger can make a node do (log in, import): a file's
//! cost is bounded ([`MAX_M_KIB`] KiB, 10 passes, 4 lanes), and at most
//! [`MAX_CONCURRENT_KDF`] runs are under way at once in the process; the rest wait.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use starling_config::fs::{write_private, Existing};
use starling_crypto::SecretKey;
use starling_types::{KeyType, PublicKey};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Shortest password accepted for a new keystore.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password (bytes).
pub const MAX_PASSWORD_BYTES: usize = 1_024;
/// Longest label (bytes): a name for the account on this node.
pub const MAX_LABEL_BYTES: usize = 64;
/// Largest keystore file read or imported.
pub const MAX_FILE_BYTES: usize = 4_096;
/// Most accounts one node holds.
pub const MAX_ACCOUNTS: usize = 1_000;

/// Argon2id cost of new keystores: 19 MiB, two passes, one lane (OWASP's minimum).
const M_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// Bounds on the cost of a file being opened, so an imported file cannot exhaust the node:
/// the most memory a keystore file may ask Argon2 for, in KiB (256 MiB).
pub const MAX_M_KIB: u32 = 262_144;
const MAX_T_COST: u32 = 10;
const MAX_P_COST: u32 = 4;
const AAD_DOMAIN: &str = "starling/keystore/v1";

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("wrong password (or the keystore is damaged)")]
    BadPassword,
    #[error("password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} bytes")]
    WeakPassword,
    #[error("label must be 1 to {MAX_LABEL_BYTES} bytes of letters, digits, '.', '_' or '-'")]
    BadLabel,
    #[error("this node already holds {0}")]
    Exists(String),
    #[error("this node holds no keystore for {0}")]
    NotFound(String),
    #[error("this node holds {MAX_ACCOUNTS} accounts, the most it keeps")]
    Full,
    #[error("not a keystore: {0}")]
    Malformed(String),
    #[error("keystore I/O: {0}")]
    Io(String),
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct Kdf {
    alg: String,
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct Cipher {
    alg: String,
    nonce: String,
    ciphertext: String,
}

/// A keystore file as stored and exported.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct KeystoreFile {
    version: u8,
    account: String,
    label: String,
    kdf: Kdf,
    cipher: Cipher,
}

/// An account this node holds, as anyone may see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAccount {
    pub account: PublicKey,
    pub label: String,
}

fn check_password(password: &str) -> Result<(), KeystoreError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(KeystoreError::WeakPassword);
    }
    Ok(())
}

/// Whether `label` is a usable account label.
pub fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_BYTES
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn aad(account: &str, kdf: &Kdf) -> Vec<u8> {
    format!(
        "{AAD_DOMAIN}\n{account}\n{}\n{}\n{}\n{}\n{}",
        kdf.alg, kdf.m_kib, kdf.t, kdf.p, kdf.salt
    )
    .into_bytes()
}

/// Argon2 runs at once on this node; more wait for a slot (each may take up to
/// [`MAX_M_KIB`] KiB of memory, and anyone may ask for one by logging in or importing).
pub const MAX_CONCURRENT_KDF: usize = 2;

static KDF_RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static KDF_RUNNING: Mutex<(usize, usize)> = Mutex::new((0, 0));
static KDF_FREED: std::sync::Condvar = std::sync::Condvar::new();

/// Argon2 runs so far in this process (a counter in `/metrics`).
pub fn kdf_runs() -> u64 {
    KDF_RUNS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The most Argon2 runs this process has had at once (never above [`MAX_CONCURRENT_KDF`]).
pub fn kdf_peak() -> usize {
    KDF_RUNNING.lock().unwrap_or_else(|p| p.into_inner()).1
}

/// A slot of [`MAX_CONCURRENT_KDF`], given back when dropped.
struct KdfSlot;

impl KdfSlot {
    fn take() -> KdfSlot {
        let guard = KDF_RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        let mut running = KDF_FREED
            .wait_while(guard, |(n, _)| *n >= MAX_CONCURRENT_KDF)
            .unwrap_or_else(|p| p.into_inner());
        running.0 += 1;
        running.1 = running.1.max(running.0);
        KdfSlot
    }
}

impl Drop for KdfSlot {
    fn drop(&mut self) {
        KDF_RUNNING.lock().unwrap_or_else(|p| p.into_inner()).0 -= 1;
        KDF_FREED.notify_one();
    }
}

fn stretch(password: &str, kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    if kdf.alg != "argon2id" {
        return Err(KeystoreError::Malformed(format!(
            "unknown kdf `{}`",
            kdf.alg
        )));
    }
    if !(8..=MAX_M_KIB).contains(&kdf.m_kib)
        || !(1..=MAX_T_COST).contains(&kdf.t)
        || !(1..=MAX_P_COST).contains(&kdf.p)
    {
        return Err(KeystoreError::Malformed(
            "kdf cost out of bounds (m_kib 8-262144, t 1-10, p 1-4)".into(),
        ));
    }
    let salt = hex::decode(&kdf.salt)
        .ok()
        .filter(|s| (16..=64).contains(&s.len()))
        .ok_or_else(|| KeystoreError::Malformed("salt must be 16 to 64 bytes of hex".into()))?;
    let params = Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
        .map_err(|e| KeystoreError::Malformed(format!("kdf parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    let _slot = KdfSlot::take();
    KDF_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), &salt, out.as_mut())
        .map_err(|e| KeystoreError::Malformed(format!("kdf: {e}")))?;
    Ok(out)
}

/// Seals `key` under `password`.
pub fn seal<R: RngCore + CryptoRng>(
    key: &SecretKey,
    password: &str,
    label: &str,
    rng: &mut R,
) -> Result<KeystoreFile, KeystoreError> {
    check_password(password)?;
    if !valid_label(label) {
        return Err(KeystoreError::BadLabel);
    }
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let account = key.public_key().to_text();
    let kdf = Kdf {
        alg: "argon2id".into(),
        m_kib: M_KIB,
        t: T_COST,
        p: P_COST,
        salt: hex::encode(salt),
    };
    let k = stretch(password, &kdf)?;
    let seed = key.to_seed();
    let ciphertext = XChaCha20Poly1305::new(k.as_ref().into())
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: seed.as_ref(),
                aad: &aad(&account, &kdf),
            },
        )
        .map_err(|_| KeystoreError::Malformed("encryption failed".into()))?;
    Ok(KeystoreFile {
        version: 1,
        account,
        label: label.to_owned(),
        kdf,
        cipher: Cipher {
            alg: "xchacha20poly1305".into(),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        },
    })
}

impl KeystoreFile {
    /// Parses a keystore file (at most [`MAX_FILE_BYTES`]).
    pub fn parse(text: &str) -> Result<KeystoreFile, KeystoreError> {
        if text.len() > MAX_FILE_BYTES {
            return Err(KeystoreError::Malformed(format!(
                "over {MAX_FILE_BYTES} bytes"
            )));
        }
        let file: KeystoreFile =
            serde_json::from_str(text).map_err(|e| KeystoreError::Malformed(e.to_string()))?;
        if file.version != 1 {
            return Err(KeystoreError::Malformed(format!(
                "version {} (this node reads version 1)",
                file.version
            )));
        }
        if !valid_label(&file.label) {
            return Err(KeystoreError::BadLabel);
        }
        file.public_key()?;
        Ok(file)
    }

    pub fn public_key(&self) -> Result<PublicKey, KeystoreError> {
        PublicKey::from_text(&self.account)
            .map_err(|e| KeystoreError::Malformed(format!("account: {e}")))
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Opens the file with `password`: the secret key, checked against the account.
    pub fn open(&self, password: &str) -> Result<SecretKey, KeystoreError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(KeystoreError::BadPassword);
        }
        let account = self.public_key()?;
        if self.cipher.alg != "xchacha20poly1305" {
            return Err(KeystoreError::Malformed(format!(
                "unknown cipher `{}`",
                self.cipher.alg
            )));
        }
        let nonce: [u8; 24] = hex::decode(&self.cipher.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| KeystoreError::Malformed("nonce must be 24 bytes of hex".into()))?;
        let ciphertext = hex::decode(&self.cipher.ciphertext)
            .map_err(|_| KeystoreError::Malformed("ciphertext is not hex".into()))?;
        let k = stretch(password, &self.kdf)?;
        let seed = Zeroizing::new(
            XChaCha20Poly1305::new(k.as_ref().into())
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: &aad(&self.account, &self.kdf),
                    },
                )
                .map_err(|_| KeystoreError::BadPassword)?,
        );
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            seed.as_slice()
                .try_into()
                .map_err(|_| KeystoreError::BadPassword)?,
        );
        let key = SecretKey::from_seed(account.key_type, &seed)
            .map_err(|_| KeystoreError::BadPassword)?;
        if key.public_key() != account {
            return Err(KeystoreError::BadPassword);
        }
        Ok(key)
    }
}

/// The keystores of one node: a directory of files.
#[derive(Debug)]
pub struct Keystore {
    dir: PathBuf,
    /// Serializes creation so two requests cannot race past the existence check.
    write: Mutex<()>,
}

fn file_name(account: &PublicKey) -> String {
    let kind = match account.key_type {
        KeyType::Ed25519 => "ed25519",
        KeyType::Secp256k1 => "secp256k1",
    };
    format!("{kind}-{}.json", hex::encode(account.bytes))
}

fn io(e: std::io::Error) -> KeystoreError {
    KeystoreError::Io(e.to_string())
}

impl Keystore {
    /// The keystore under `dir` (created if missing, mode 0700).
    pub fn open(dir: &Path) -> Result<Keystore, KeystoreError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        // What a crash mid-write left (it may hold a sealed key): never read, so it goes.
        starling_config::fs::remove_stale_temporaries(dir);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Ok(Keystore {
            dir: dir.to_owned(),
            write: Mutex::new(()),
        })
    }

    fn path(&self, account: &PublicKey) -> PathBuf {
        self.dir.join(file_name(account))
    }

    fn read(&self, account: &PublicKey) -> Result<KeystoreFile, KeystoreError> {
        let path = self.path(account);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeystoreError::NotFound(account.to_text()))
            }
            Err(e) => return Err(io(e)),
        };
        let text = String::from_utf8(text)
            .map_err(|_| KeystoreError::Malformed(format!("{} is not UTF-8", path.display())))?;
        KeystoreFile::parse(&text)
    }

    /// Every account held, by label. Files that do not parse are skipped (and logged).
    pub fn list(&self) -> Result<Vec<StoredAccount>, KeystoreError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let parsed = std::fs::read_to_string(&path)
                .map_err(io)
                .and_then(|t| KeystoreFile::parse(&t))
                .and_then(|f| Ok((f.public_key()?, f)));
            match parsed {
                Ok((account, f)) => out.push(StoredAccount {
                    account,
                    label: f.label,
                }),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping keystore file")
                }
            }
        }
        out.sort_by(|a, b| a.label.cmp(&b.label).then(a.account.cmp(&b.account)));
        Ok(out)
    }

    /// The account with `label`, if one is held.
    pub fn find_label(&self, label: &str) -> Result<Option<PublicKey>, KeystoreError> {
        Ok(self
            .list()?
            .into_iter()
            .find(|a| a.label == label)
            .map(|a| a.account))
    }

    fn store(&self, file: &KeystoreFile) -> Result<PublicKey, KeystoreError> {
        let account = file.public_key()?;
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.path(&account);
        if path.exists() {
            return Err(KeystoreError::Exists(account.to_text()));
        }
        let held = self.list()?;
        if held.len() >= MAX_ACCOUNTS {
            return Err(KeystoreError::Full);
        }
        if held.iter().any(|a| a.label == file.label) {
            return Err(KeystoreError::Exists(format!(
                "an account labelled `{}`",
                file.label
            )));
        }
        // Whole or not at all, and never over another keystore.
        write_private(&path, file.to_json().as_bytes(), Existing::Keep).map_err(io)?;
        Ok(account)
    }

    /// Seals `key` under `password` and keeps it.
    pub fn add<R: RngCore + CryptoRng>(
        &self,
        key: &SecretKey,
        password: &str,
        label: &str,
        rng: &mut R,
    ) -> Result<PublicKey, KeystoreError> {
        self.store(&seal(key, password, label, rng)?)
    }

    /// Keeps an exported keystore once `password` opens it.
    /// Imports a backup that `password` opens, and returns its key: the backup's KDF (whose
    /// cost its maker chose, within bounds) runs once.
    pub fn import_backup(&self, text: &str, password: &str) -> Result<SecretKey, KeystoreError> {
        let file = KeystoreFile::parse(text)?;
        let key = file.open(password)?;
        self.store(&file)?;
        Ok(key)
    }

    /// The secret key of `account`, if `password` opens its keystore.
    pub fn unlock(&self, account: &PublicKey, password: &str) -> Result<SecretKey, KeystoreError> {
        self.read(account)?.open(password)
    }

    /// The keystore of `account` as a backup file (still encrypted), once `password` opens it.
    pub fn export(&self, account: &PublicKey, password: &str) -> Result<String, KeystoreError> {
        let file = self.read(account)?;
        file.open(password)?;
        Ok(file.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }

    /// However many ask at once (log ins and imports are anyone's to send), at most
    /// `MAX_CONCURRENT_KDF` Argon2 runs are under way; the rest wait their turn.
    #[test]
    fn kdf_runs_are_bounded_node_wide() {
        let kdf = Kdf {
            alg: "argon2id".into(),
            m_kib: 4_096,
            t: 1,
            p: 1,
            salt: hex::encode([9u8; 16]),
        };
        let start = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..4 {
                        stretch("a password", &kdf).unwrap();
                    }
                });
            }
        });
        assert!(kdf_runs() >= 24);
        assert!(
            (1..=MAX_CONCURRENT_KDF).contains(&kdf_peak()),
            "{} at once",
            kdf_peak()
        );
    }

    #[test]
    fn seal_open_and_wrong_passwords() {
        let mut rng = rng();
        let key = SecretKey::generate(KeyType::Ed25519, &mut rng);
        let file = seal(&key, "correct horse", "alice", &mut rng).unwrap();
        let text = file.to_json();
        assert!(!text.contains(&hex::encode(key.to_seed().as_ref())));
        let back = KeystoreFile::parse(&text).unwrap();
        assert_eq!(
            back.open("correct horse").unwrap().public_key(),
            key.public_key()
        );
        assert!(matches!(
            back.open("correct horsE"),
            Err(KeystoreError::BadPassword)
        ));
        assert!(matches!(
            seal(&key, "short", "alice", &mut rng),
            Err(KeystoreError::WeakPassword)
        ));
        assert!(matches!(
            seal(&key, "long enough", "no spaces", &mut rng),
            Err(KeystoreError::BadLabel)
        ));
    }

    #[test]
    fn tampered_files_do_not_open() {
        let mut rng = rng();
        let key = SecretKey::generate(KeyType::Secp256k1, &mut rng);
        let other = SecretKey::generate(KeyType::Secp256k1, &mut rng);
        let file = seal(&key, "pass phrase", "bob", &mut rng).unwrap();
        // Another account named on the file: the associated data no longer matches.
        let mut swapped = file.clone();
        swapped.account = other.public_key().to_text();
        assert!(matches!(
            swapped.open("pass phrase"),
            Err(KeystoreError::BadPassword)
        ));
        // Cheaper KDF parameters: bound into the associated data too.
        let mut cheaper = file.clone();
        cheaper.kdf.t = 1;
        assert!(matches!(
            cheaper.open("pass phrase"),
            Err(KeystoreError::BadPassword)
        ));
        // Costs beyond the bounds are refused before any work.
        let mut costly = file.clone();
        costly.kdf.m_kib = MAX_M_KIB + 1;
        assert!(matches!(
            costly.open("pass phrase"),
            Err(KeystoreError::Malformed(_))
        ));
        // Every flipped ciphertext byte fails authentication.
        let ct = hex::decode(&file.cipher.ciphertext).unwrap();
        for i in [0, ct.len() / 2, ct.len() - 1] {
            let mut bad = file.clone();
            let mut c = ct.clone();
            c[i] ^= 1;
            bad.cipher.ciphertext = hex::encode(c);
            assert!(matches!(
                bad.open("pass phrase"),
                Err(KeystoreError::BadPassword)
            ));
        }
    }

    #[test]
    fn malformed_files_are_errors() {
        for text in [
            "",
            "{}",
            "not json",
            "{\"version\": 2}",
            &"x".repeat(MAX_FILE_BYTES + 1),
        ] {
            assert!(KeystoreFile::parse(text).is_err(), "{text:.20}");
        }
        let mut rng = rng();
        let key = SecretKey::generate(KeyType::Ed25519, &mut rng);
        let good = seal(&key, "pass phrase", "c", &mut rng).unwrap().to_json();
        // Every truncation is an error, never a panic.
        for n in 0..good.len() {
            assert!(KeystoreFile::parse(&good[..n]).is_err());
        }
        let extra = good.replacen("{", "{\"extra\": 1, ", 1);
        assert!(KeystoreFile::parse(&extra).is_err());
    }

    #[test]
    fn directory_holds_several_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Keystore::open(dir.path()).unwrap();
        let mut rng = rng();
        let a = SecretKey::generate(KeyType::Ed25519, &mut rng);
        let b = SecretKey::generate(KeyType::Ed25519, &mut rng);
        store.add(&a, "password a", "alice", &mut rng).unwrap();
        store.add(&b, "password b", "bob", &mut rng).unwrap();
        assert!(matches!(
            store.add(&a, "password a", "alice2", &mut rng),
            Err(KeystoreError::Exists(_))
        ));
        let c = SecretKey::generate(KeyType::Ed25519, &mut rng);
        assert!(matches!(
            store.add(&c, "password c", "alice", &mut rng),
            Err(KeystoreError::Exists(_))
        ));
        let list = store.list().unwrap();
        assert_eq!(
            list.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        assert_eq!(store.find_label("bob").unwrap(), Some(b.public_key()));
        assert_eq!(
            store
                .unlock(&b.public_key(), "password b")
                .unwrap()
                .public_key(),
            b.public_key()
        );
        assert!(store.unlock(&b.public_key(), "password a").is_err());
        // A backup moves to another node's keystore and opens there with the same password.
        let backup = store.export(&a.public_key(), "password a").unwrap();
        assert!(store.export(&a.public_key(), "wrong one").is_err());
        let dir2 = tempfile::tempdir().unwrap();
        let store2 = Keystore::open(dir2.path()).unwrap();
        assert!(store2.import_backup(&backup, "password b").is_err());
        assert_eq!(
            store2
                .import_backup(&backup, "password a")
                .unwrap()
                .public_key(),
            a.public_key()
        );
        assert!(matches!(
            store2.unlock(&b.public_key(), "password b"),
            Err(KeystoreError::NotFound(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = dir2.path().join(file_name(&a.public_key()));
            assert_eq!(
                std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
