//! Crash safety: a child process applies a stream of blocks to a store on disk and is killed
//! with SIGKILL at random moments; each time, the store must reopen at the last fully applied
//! block with the right state root, and carry on from there.
//!
//! `harness = false`: the same binary is the parent (no arguments) and the child
//! (`STARLING_CRASH_CHILD=<dir>`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::{Rng, SeedableRng};
use starling_crypto::SecretKey;
use starling_ledger::{LedgerParams, MemLedger};
use starling_store::ChainStore;
use starling_types::{Action, Asset, ChainId, KeyType, ShardId, TxBody, TxEnvelope};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const ACCOUNTS: usize = 24;
const BITS: u8 = 10;

fn params() -> LedgerParams {
    let foundations = (0..3u8)
        .map(|i| {
            SecretKey::from_seed(KeyType::Ed25519, &[100 + i; 32])
                .unwrap()
                .public_key()
        })
        .collect();
    LedgerParams::devnet(ChainId::new("crash-test").unwrap(), 1, foundations).unwrap()
}

fn keys() -> Vec<SecretKey> {
    (0..ACCOUNTS)
        .map(|i| SecretKey::from_seed(KeyType::Ed25519, &[i as u8 + 1; 32]).unwrap())
        .collect()
}

fn alloc(keys: &[SecretKey]) -> Vec<(starling_types::AccountId, Asset, u128)> {
    keys.iter()
        .map(|k| (k.public_key(), Asset::Spend, 1u128 << 100))
        .collect()
}

/// Block `h`'s transactions: every account acts once (so its nonce is `h - 1`).
fn txs_for(params: &LedgerParams, keys: &[SecretKey], h: u64) -> Vec<TxEnvelope> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let action = if (h + i as u64).is_multiple_of(3) {
                Action::Transfer {
                    asset: Asset::Spend,
                    to: keys[(i + 1) % keys.len()].public_key(),
                    amount: h as u128,
                }
            } else {
                Action::Post {
                    text: format!("block {h} from {i}"),
                    reply_to: None,
                    quote_of: None,
                    langs: vec![],
                }
            };
            let body = TxBody {
                account: k.public_key(),
                nonce: h - 1,
                max_fee: u128::MAX,
                tip: 1,
                expires_at_height: h + 10,
                action,
            };
            k.sign_tx(&params.chain_id, &body)
        })
        .collect()
}

fn proposer() -> starling_types::AccountId {
    SecretKey::from_seed(KeyType::Ed25519, &[200; 32])
        .unwrap()
        .public_key()
}

fn child(dir: &Path) {
    let params = params();
    let keys = keys();
    let mut store = match ChainStore::open(dir) {
        Ok(s) => s,
        Err(starling_store::StoreError::NotInitialized(_)) => ChainStore::create(
            dir,
            params.clone(),
            ShardId(1),
            &alloc(&keys),
            1u128 << 90,
            BITS,
        )
        .unwrap(),
        Err(e) => panic!("child cannot open store: {e}"),
    };
    // A checkpoint every other block: kills land while one is being written in the
    // background, as well as between and during block commits.
    store.set_checkpoint_blocks(2);
    let mut out = std::io::stdout().lock();
    loop {
        let h = store.head().height + 1;
        store
            .propose(txs_for(&params, &keys, h), vec![], h * 1000, proposer())
            .unwrap();
        writeln!(out, "applied {h}").unwrap();
        out.flush().unwrap();
    }
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let keys = keys();
    let mut reference =
        MemLedger::genesis(params.clone(), ShardId(1), &alloc(&keys), 1u128 << 90, 4);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(20261122);
    let exe = std::env::current_exe().unwrap();
    let mut last_reported = 0u64;
    for round in 0..12 {
        let mut child = Command::new(&exe)
            .env("STARLING_CRASH_CHILD", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill after a random number of committed blocks (0 = while it opens or creates).
        let wait_for = rng.gen_range(0..6);
        for _ in 0..wait_for {
            let line = lines.next().expect("child exited early").unwrap();
            last_reported = line.trim_start_matches("applied ").parse().unwrap();
        }
        // Fault injection, not synchronisation: vary where in the next block the kill lands.
        std::thread::sleep(std::time::Duration::from_micros(rng.gen_range(0..3_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Reports the child wrote before it died but this loop had not read yet: on a busy
        // machine the child can commit several blocks between the last line read and the kill.
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(h) = line.strip_prefix("applied ") {
                last_reported = h.parse().unwrap();
            }
        }

        match ChainStore::open(dir.path()) {
            Err(starling_store::StoreError::NotInitialized(_)) if last_reported == 0 => {
                println!("round {round}: killed before genesis was committed; store absent, as it should be");
                continue;
            }
            Err(e) => panic!("round {round}: store does not reopen after SIGKILL: {e}"),
            Ok(store) => {
                let head = store.head();
                // Every block the child reported is there; at most one more got committed
                // between its last report and the kill.
                assert!(
                    head.height >= last_reported && head.height <= last_reported + 1
                        || wait_for == 0,
                    "round {round}: head {} vs last reported {last_reported}",
                    head.height
                );
                assert!(
                    head.height >= last_reported,
                    "round {round}: lost committed block {last_reported}"
                );
                while reference.height < head.height {
                    let h = reference.height + 1;
                    reference
                        .propose(txs_for(&params, &keys, h), vec![], h * 1000, proposer())
                        .unwrap();
                }
                assert_eq!(
                    head.state_root,
                    reference.state.root(),
                    "round {round}: wrong root at height {}",
                    head.height
                );
                assert_eq!(head.id, reference.head, "round {round}: wrong head block");
                if head.height > 0 {
                    let block = store
                        .block(head.height)
                        .unwrap()
                        .expect("head block stored");
                    assert_eq!(block.header.state_root, head.state_root);
                    assert_eq!(
                        store.receipts(head.height).unwrap().unwrap().len(),
                        ACCOUNTS
                    );
                }
                // The reopened state proves what the reference holds.
                for k in keys.iter().take(3) {
                    let kh = starling_ledger::records::StateKey::Account(&k.public_key()).hash();
                    let (value, proof) = store.prove(&kh).unwrap();
                    let value = value.expect("account exists");
                    assert_eq!(Some(value.as_slice()), reference.state.get(&kh));
                    proof
                        .verify(
                            &head.state_root,
                            &kh,
                            Some(&starling_state::value_hash(&value)),
                        )
                        .unwrap();
                }
                println!("round {round}: killed after {wait_for} reports, reopened at height {} with the right root", head.height);
                last_reported = head.height;
            }
        }
    }
    assert!(last_reported > 0, "the child never committed a block");
    println!("test crash_safety_under_sigkill ... ok");
}

fn main() {
    match std::env::var_os("STARLING_CRASH_CHILD") {
        Some(dir) => child(Path::new(&dir)),
        None => parent(),
    }
}
