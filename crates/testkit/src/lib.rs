//! What the workspace's tests share: keys from seeds, chain parameters and genesis files, free
//! loopback ports, a plain HTTP/1.1 client, and fixtures that pin an encoding.
//!
//! Test support only (a dev-dependency everywhere): its helpers fail loudly, with the reason,
//! instead of returning errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use starling_config::genesis::{
    AllocationEntry, Amount, FoundationEntry, GenesisFile, ValidatorEntry,
};
use starling_crypto::SecretKey;
use starling_ledger::LedgerParams;
use starling_types::{ChainId, KeyType, PublicKey};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The Ed25519 key whose seed is 32 bytes of `seed`.
pub fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(KeyType::Ed25519, &[seed; 32]).unwrap()
}

/// An Ed25519 key drawn from a ChaCha20 generator seeded with `seed` (a larger seed space than
/// [`key`], for tests that need thousands of keys).
pub fn seeded_key(seed: u64) -> SecretKey {
    use rand_chacha::rand_core::SeedableRng as _;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    SecretKey::generate(KeyType::Ed25519, &mut rng)
}

/// Three foundations' keys, from seeds `first`, `first + 1` and `first + 2`.
pub fn foundations(first: u8) -> Vec<PublicKey> {
    (0..3).map(|i| key(first + i).public_key()).collect()
}

/// Devnet ledger parameters for chain `chain` with `account_shards` account shards and the
/// three [`foundations`] from seed `first_foundation`.
pub fn devnet_params(chain: &str, account_shards: u16, first_foundation: u8) -> LedgerParams {
    LedgerParams::devnet(
        ChainId::new(chain).unwrap(),
        account_shards,
        foundations(first_foundation),
    )
    .unwrap()
}

/// A genesis file for chain `chain` with `account_shards` account shards and three foundations
/// (North, East and West: keys 50, 51 and 52); no validators or allocations yet.
pub fn genesis_file(chain: &str, account_shards: u16) -> GenesisFile {
    let mut g = GenesisFile::template(chain, account_shards);
    for (i, name) in ["North", "East", "West"].iter().enumerate() {
        g.foundations.push(FoundationEntry::new(
            name,
            key(50 + i as u8).public_key().to_text(),
        ));
    }
    g
}

/// Adds a validator of every shard, listening at `address`.
pub fn add_validator(g: &mut GenesisFile, key: &SecretKey, address: Option<String>) {
    g.validators.push(ValidatorEntry {
        key: key.public_key().to_text(),
        address,
        shards: None,
    });
}

/// Gives `key` `amount` SPEND at genesis.
pub fn fund(g: &mut GenesisFile, key: &SecretKey, amount: u128) {
    g.allocations.push(AllocationEntry {
        account: key.public_key().to_text(),
        asset: "spend".into(),
        amount: Amount::Text(amount.to_string()),
    });
}

/// A loopback address with a port that was free a moment ago, below the range the OS hands
/// out for outgoing connections (so a node started meanwhile cannot take it by connecting).
pub fn free_addr() -> SocketAddr {
    starling_config::net::free_loopback_port().unwrap()
}

/// An HTTP/1.1 response: its status, its head (status line and headers) and its body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON, or as a JSON string when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        let text = String::from_utf8_lossy(&self.body);
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.into_owned()))
    }
}

/// One HTTP/1.1 request (`Connection: close`; JSON unless a header names another content
/// type; `Host` is the address unless a header names another). An error says why there is no answer (the server cannot be reached, or did not
/// answer in HTTP). A server may answer and close before the whole body is written (a
/// refused oversized body): the answer still counts.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let io = |what: &str, e: std::io::Error| format!("{method} {path} at {addr}: {what}: {e}");
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| io("connect", e))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| io("timeout", e))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).map_err(|e| io("send", e))?;
    let _ = s.write_all(body);
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| io("read", e))?;
    let not_http = || format!("{method} {path} at {addr}: not an HTTP answer");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(not_http)?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(not_http)?;
    Ok(Response {
        status,
        head,
        body: out[split + 4..].to_vec(),
    })
}

/// Checks `bytes` against the hex fixture `<manifest_dir>/tests/fixtures/<name>.hex`, so an
/// encoding cannot drift unnoticed. With `STARLING_BLESS` set, writes the fixture first (for a
/// deliberate change of format, reviewed in the diff).
pub fn pinned(manifest_dir: &str, name: &str, bytes: &[u8]) {
    let path = format!("{manifest_dir}/tests/fixtures/{name}.hex");
    let hex_now = hex::encode(bytes);
    if std::env::var("STARLING_BLESS").is_ok() {
        std::fs::write(&path, format!("{hex_now}\n")).unwrap();
    }
    let fixture =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing fixture {path}"));
    assert_eq!(
        hex_now,
        fixture.trim(),
        "encoding of {name} drifted from {path}"
    );
}
