//! `starling bench ...`: benchmarks that print one JSON object (with `--json`).

pub mod chat;
pub mod chatnodes;
pub mod governance;
pub mod network;
pub mod timeline;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use starling_crypto::{verify_batch_uncached, SecretKey, SigItem};
use starling_ledger::{LedgerParams, MemLedger};
use starling_store::{ChainStore, DEFAULT_TREE_BITS};
use starling_types::tx::signing_hash;
use starling_types::{Action, Asset, Block, ChainId, KeyType, ShardId, TxBody, TxEnvelope};

use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum Which {
    /// Apply blocks of signed posts through signature checks, execution and state commit on
    /// disk, on one thread; compare with raw batch signature verification.
    Ledger(LedgerArgs),
    /// Load a devnet or cluster with signed posts and transfers through its API and time
    /// each transaction from submission to finality.
    Network(crate::bench::network::NetworkArgs),
    /// Seed an app view with synthetic accounts and posts, serve it over HTTP, and time
    /// home timelines and searches.
    Timeline(crate::bench::timeline::TimelineArgs),
    /// MLS chat: 1:1 encrypt and decrypt, and adding a member to a group.
    Chat(crate::bench::chat::ChatArgs),
    /// Members' anonymous ballots applied through the global shard's ledger (signature,
    /// credential, nullifier, count), then the tally and a public recount.
    Governance(crate::bench::governance::GovernanceArgs),
}

#[derive(Args, Debug)]
pub struct LedgerArgs {
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Blocks to apply (the default spans at least one state checkpoint).
    #[arg(long, default_value_t = 60)]
    blocks: u64,
    /// Transactions per block.
    #[arg(long, default_value_t = 5_000)]
    txs_per_block: usize,
    /// Distinct accounts posting.
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Tree levels kept in memory.
    #[arg(long, default_value_t = DEFAULT_TREE_BITS)]
    tree_bits: u8,
    /// Where to put the chain store (default: a temporary directory, removed afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub fn run(which: Which) -> anyhow::Result<()> {
    match which {
        Which::Ledger(args) => ledger(args),
        Which::Network(args) => crate::bench::network::network(args),
        Which::Timeline(args) => crate::bench::timeline::timeline(args),
        Which::Chat(args) => crate::bench::chat::chat(args),
        Which::Governance(args) => crate::bench::governance::governance(args),
    }
}

/// A progress bar on stderr (indicatif hides it when stderr is not a terminal).
pub(crate) fn bar(len: u64, msg: &'static str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

/// The benchmarks' chain: one account shard, three foundations with keys from `rng`.
pub(crate) fn bench_params(
    rng: &mut rand_chacha::ChaCha20Rng,
) -> anyhow::Result<(ChainId, LedgerParams)> {
    let chain = ChainId::new("starling-bench")?;
    let foundations = (0..3)
        .map(|_| SecretKey::generate(KeyType::Ed25519, rng).public_key())
        .collect();
    let params = LedgerParams::devnet(chain.clone(), 1, foundations)?;
    Ok((chain, params))
}

fn ledger(args: LedgerArgs) -> anyhow::Result<()> {
    if args.accounts == 0 || args.txs_per_block == 0 || args.blocks == 0 {
        bail!("--accounts, --txs-per-block and --blocks must be positive");
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let (chain, mut params) = bench_params(&mut rng)?;
    params.block_gas_limit = params
        .block_gas_limit
        .max(args.txs_per_block as u64 * 20_000);

    // Accounts on the one account shard (all of the space), funded at genesis.
    let pb = bar(args.accounts as u64, "keys");
    let keys: Vec<SecretKey> = (0..args.accounts)
        .map(|_| {
            pb.inc(1);
            SecretKey::generate(KeyType::Ed25519, &mut rng)
        })
        .collect();
    pb.finish_and_clear();
    let alloc: Vec<_> = keys
        .iter()
        .map(|k| (k.public_key(), Asset::Spend, 1u128 << 100))
        .collect();
    let proposer = keys[0].public_key();

    // Build the blocks on an in-memory replica (not timed).
    let total = args.blocks * args.txs_per_block as u64;
    let pb = bar(total, "signing");
    let mut builder =
        MemLedger::genesis(params.clone(), ShardId(1), &alloc, 1 << 90, args.tree_bits);
    let mut nonces = vec![0u64; keys.len()];
    let mut blocks: Vec<Block> = Vec::with_capacity(args.blocks as usize);
    let mut next = 0usize;
    for b in 0..args.blocks {
        let txs: Vec<TxEnvelope> = (0..args.txs_per_block)
            .map(|j| {
                let i = next % keys.len();
                next += 1;
                let body = TxBody {
                    account: keys[i].public_key(),
                    nonce: nonces[i],
                    max_fee: u128::MAX,
                    tip: 1,
                    expires_at_height: args.blocks + 10,
                    action: Action::Post {
                        text: format!("bench post {b}/{j}: the quick brown fox jumps over the lazy dog #starling"),
                        reply_to: None,
                        quote_of: None,
                        langs: vec!["en".into()],
                    },
                };
                nonces[i] += 1;
                pb.inc(1);
                keys[i].sign_tx(&chain, &body)
            })
            .collect();
        let (block, executed) = builder.propose(txs, vec![], (b + 1) * 1_000, proposer)?;
        if executed
            .events
            .iter()
            .any(|e| matches!(e, starling_ledger::Event::TxRejected { .. }))
        {
            bail!("benchmark block {b} has rejected transactions");
        }
        blocks.push(block);
    }
    pb.finish_and_clear();

    // 1. The physical limit, prepared: what raw batch verification of each block's signatures
    //    takes (public keys decoded from bytes and checked for weakness, then one batch),
    //    nothing else timed.
    let signed: Vec<
        Vec<(
            starling_types::PublicKey,
            starling_types::Hash,
            starling_types::Signature,
        )>,
    > = blocks
        .iter()
        .map(|block| {
            block
                .txs
                .iter()
                .map(|t| {
                    Ok((
                        t.body()?.account,
                        signing_hash(&chain, &t.body_bytes),
                        t.signature,
                    ))
                })
                .collect::<Result<_, starling_types::DecodeError>>()
        })
        .collect::<Result<_, _>>()?;
    // 2. The whole path into a store on disk. Each block's signatures are verified raw just
    //    after the block is applied, so that both figures see the machine in the same state
    //    (its speed drifts by more than the ratio's margin over a run).
    let tmp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let mut store = ChainStore::create(&dir, params, ShardId(1), &alloc, 1 << 90, args.tree_bits)
        .with_context(|| format!("creating a chain store in {}", dir.display()))?;
    let pb = bar(args.blocks, "sigverify and apply");
    let mut block_ms = Vec::with_capacity(blocks.len());
    let mut sig_secs = 0.0;
    let mut secs = 0.0;
    for (block, signed) in blocks.iter().zip(&signed) {
        let items: Vec<SigItem<'_>> = signed
            .iter()
            .map(|(key, msg, sig)| SigItem {
                key,
                msg: msg.as_bytes(),
                sig,
            })
            .collect();
        let t = Instant::now();
        store.apply(block)?;
        let took = t.elapsed().as_secs_f64();
        secs += took;
        block_ms.push(took * 1e3);
        // After the block, so that the ledger, not this, decodes each signer's key the first
        // time (both then find it decoded): the conservative order. Uncached, so nothing here
        // spares the ledger any work.
        let t = Instant::now();
        let failed = verify_batch_uncached(&items);
        sig_secs += t.elapsed().as_secs_f64();
        if !failed.is_empty() {
            bail!("benchmark signatures failed to verify");
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if store.head().state_root != builder.state.root() {
        bail!("the store's state root differs from the builder's");
    }
    block_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| block_ms[((block_ms.len() - 1) as f64 * p).round() as usize];

    let tx_per_s = total as f64 / secs;
    let sig_limit = total as f64 / sig_secs;
    let out = serde_json::json!({
        "bench": "ledger",
        "tx_per_s": tx_per_s.round(),
        "sigverify_limit_tx_per_s": sig_limit.round(),
        "ratio": (tx_per_s / sig_limit * 1000.0).round() / 1000.0,
        "blocks": args.blocks,
        "txs_per_block": args.txs_per_block,
        "accounts": args.accounts,
        "state_entries_after": builder.state.len(),
        "tree_bits": args.tree_bits,
        "p50_block_ms": (pct(0.5) * 10.0).round() / 10.0,
        "max_block_ms": (pct(1.0) * 10.0).round() / 10.0,
        "threads": 1,
    });
    if args.json {
        println!("{out}");
    } else {
        println!(
            "ledger: {:.0} tx/s applied on disk, {:.0} tx/s signature limit (ratio {:.2}); p50 block {:.1} ms",
            tx_per_s,
            sig_limit,
            tx_per_s / sig_limit,
            pct(0.5)
        );
    }
    Ok(())
}
