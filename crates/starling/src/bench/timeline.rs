//! `starling bench timeline`: the app view and the social API under read load.
//!
//! Seeding writes synthetic blocks straight into an app view through its block indexer (the
//! same `index_blocks` a relay runs, tables and search), not through consensus: transactions
//! carry zero signatures, which the view never checks. The blocks hold a profile for every
//! account, `--follows` follows for each of `--viewers` accounts, `--posts` posts from
//! random authors (a tenth with a hashtag, a twentieth replies) and a like for every tenth
//! post. A relay node then serves that view over HTTP on loopback, and the benchmark
//! measures:
//! - `timeline_p99_ms`: home timelines (30 items) of the viewers, one request at a time, over
//!   HTTP: the server's time plus a loopback round trip;
//! - `timeline_view_p99_ms`: the same reads straight from the view, without HTTP or JSON;
//! - `timeline_rps`: home timelines per second with `--concurrency` keep-alive connections
//!   for `--duration` seconds (load generator and server share the machine);
//! - `search_p99_ms`: post searches for two words, one at a time, over HTTP.

use anyhow::{bail, Context as _};
use clap::Args;
use rand::{Rng as _, SeedableRng as _};
use serde_json::json;
use starling_api::Services;
use starling_appview::AppView;
use starling_node::genesis::{FoundationEntry, GenesisFile, ValidatorEntry};
use starling_node_api::Node;
use starling_types::{
    AccountId, Action, Block, BlockHeader, ChainId, Encode as _, Hash, KeyType, PostId, PublicKey,
    Receipt, ShardId, Signature, TxBody, TxEnvelope, TxReceipt,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Args, Debug)]
pub struct TimelineArgs {
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Accounts (each gets a profile).
    #[arg(long, default_value_t = 100_000)]
    accounts: u32,
    /// Posts, from random authors.
    #[arg(long, default_value_t = 1_000_000)]
    posts: u64,
    /// How many accounts each viewer follows.
    #[arg(long, default_value_t = 1_000)]
    follows: u32,
    /// Accounts whose home timelines are read.
    #[arg(long, default_value_t = 100)]
    viewers: u32,
    /// Requests timed one at a time (each of timelines and searches).
    #[arg(long, default_value_t = 2_000)]
    samples: usize,
    /// Keep-alive connections for the throughput run.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of the throughput run.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Where to keep the seeded view (reused when seeded with the same figures); default a
    /// temporary directory, removed afterwards.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

const TXS_PER_BLOCK: usize = 1_000;
const BLOCKS_PER_BATCH: usize = 20;
const SHARD: ShardId = ShardId(1);

fn account(i: u32) -> AccountId {
    PublicKey {
        key_type: KeyType::Ed25519,
        bytes: Hash::of(&[b"starling/bench/timeline", &i.to_be_bytes()]).0,
    }
}

/// A vocabulary of pronounceable words, the same every run.
fn vocabulary(n: usize) -> Vec<String> {
    const C: &[&str] = &[
        "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "st", "tr",
    ];
    const V: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou"];
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while out.len() < n {
        let mut w = String::new();
        let mut x = i;
        for _ in 0..3 {
            w.push_str(C[x % C.len()]);
            x /= C.len();
            w.push_str(V[x % V.len()]);
            x /= V.len();
        }
        out.push(w);
        i += 7_919; // a prime stride spreads the words
    }
    out
}

struct Seeder {
    chain: ChainId,
    height: u64,
    ts: u64,
    txs: Vec<TxEnvelope>,
    batch: Vec<(Block, Vec<Receipt>)>,
    nonces: Vec<u64>,
}

impl Seeder {
    fn push(&mut self, view: &AppView, who: u32, action: Action) -> anyhow::Result<u64> {
        let nonce = self.nonces[who as usize];
        self.nonces[who as usize] += 1;
        let body = TxBody {
            account: account(who),
            nonce,
            max_fee: 0,
            tip: 0,
            expires_at_height: u64::MAX,
            action,
        };
        self.txs.push(TxEnvelope {
            body_bytes: body.to_bytes(),
            signature: Signature([0; 64]),
        });
        if self.txs.len() == TXS_PER_BLOCK {
            self.seal(view)?;
        }
        Ok(nonce)
    }

    fn seal(&mut self, view: &AppView) -> anyhow::Result<()> {
        if self.txs.is_empty() {
            return Ok(());
        }
        self.height += 1;
        self.ts += 100;
        let txs = std::mem::take(&mut self.txs);
        let receipts = txs
            .iter()
            .map(|t| {
                Receipt::Tx(TxReceipt {
                    tx_hash: t.hash(),
                    status: 0,
                    gas_used: 0,
                    fee_paid: 0,
                })
            })
            .collect();
        let header = BlockHeader {
            chain_id: self.chain.clone(),
            shard: SHARD,
            height: self.height,
            parent: Hash::ZERO,
            timestamp_ms: self.ts,
            proposer: account(0),
            tx_root: Hash::ZERO,
            receipt_root: Hash::ZERO,
            state_root: Hash::ZERO,
            base_fee: 0,
            reveal: starling_types::Hash::ZERO,
        };
        self.batch.push((
            Block {
                header,
                txs,
                inbound: Vec::new(),
            },
            receipts,
        ));
        if self.batch.len() == BLOCKS_PER_BATCH {
            self.flush(view)?;
        }
        Ok(())
    }

    fn flush(&mut self, view: &AppView) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut self.batch);
        view.index_blocks(batch.into_iter().map(Ok))
            .context("indexing seeded blocks")
    }
}

fn seed(args: &TimelineArgs, view: &AppView) -> anyhow::Result<()> {
    let words = vocabulary(5_000);
    let tags: Vec<String> = (0..50).map(|i| format!("topic{i}")).collect();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
    let blocks = (u64::from(args.accounts)
        + u64::from(args.viewers) * u64::from(args.follows)
        + args.posts * 11 / 10)
        / TXS_PER_BLOCK as u64;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut s = Seeder {
        chain: ChainId::new("bench-timeline")?,
        height: 0,
        // The posts end about now, so trending (the last 24 hours) sees them.
        ts: now_ms.saturating_sub((blocks + 10) * 100),
        txs: Vec::new(),
        batch: Vec::new(),
        nonces: vec![0; args.accounts as usize],
    };
    let total =
        u64::from(args.accounts) + u64::from(args.viewers) * u64::from(args.follows) + args.posts;
    let pb = crate::bench::bar(total, "seeding");
    for i in 0..args.accounts {
        let name = format!(
            "{} {}",
            words[rng.gen_range(0..words.len())],
            words[rng.gen_range(0..words.len())]
        );
        s.push(
            view,
            i,
            Action::SetProfile {
                display_name: name,
                bio: format!("bench account {i}"),
                avatar_url: String::new(),
            },
        )?;
        pb.inc(1);
    }
    for v in 0..args.viewers {
        let mut seen = std::collections::HashSet::new();
        while seen.len() < args.follows.min(args.accounts - 1) as usize {
            let t = rng.gen_range(0..args.accounts);
            if t != v && seen.insert(t) {
                s.push(view, v, Action::Follow { target: account(t) })?;
                pb.inc(1);
            }
        }
    }
    let mut recent: Vec<PostId> = Vec::with_capacity(1024);
    for n in 0..args.posts {
        let who = rng.gen_range(0..args.accounts);
        let len = rng.gen_range(6..16);
        let mut text = String::new();
        for k in 0..len {
            if k > 0 {
                text.push(' ');
            }
            // Squared: some words are much more common than others.
            let r: f64 = rng.gen();
            text.push_str(&words[((r * r) * words.len() as f64) as usize % words.len()]);
        }
        if n % 10 == 0 {
            text.push_str(&format!(" #{}", tags[rng.gen_range(0..tags.len())]));
        }
        let reply_to =
            (n % 20 == 7 && !recent.is_empty()).then(|| recent[rng.gen_range(0..recent.len())]);
        let seq = s.push(
            view,
            who,
            Action::Post {
                text,
                reply_to,
                quote_of: None,
                langs: Vec::new(),
            },
        )?;
        let id = PostId {
            author: account(who),
            seq,
        };
        if recent.len() < 1024 {
            recent.push(id);
        } else {
            recent[(n % 1024) as usize] = id;
        }
        if n % 10 == 3 {
            let liker = rng.gen_range(0..args.accounts);
            s.push(view, liker, Action::Like { post: id })?;
        }
        pb.inc(1);
    }
    s.seal(view)?;
    s.flush(view)?;
    pb.finish_and_clear();
    view.flush_search()?;
    Ok(())
}

/// A relay node (no network, no indexer) that serves `view`, filled beforehand.
fn serving_node(dir: &Path, view: Arc<AppView>) -> anyhow::Result<(Node, Services)> {
    let mut g = GenesisFile::template("bench-timeline", 1);
    for (i, name) in ["North", "East", "West"].iter().enumerate() {
        g.foundations.push(FoundationEntry::new(
            name,
            account(u32::MAX - i as u32).to_text(),
        ));
    }
    let validator = starling_crypto::SecretKey::from_seed(KeyType::Ed25519, &[7; 32])?;
    g.validators.push(ValidatorEntry {
        key: validator.public_key().to_text(),
        address: Some("127.0.0.1:1".into()),
        shards: None,
    });
    std::fs::create_dir_all(dir)?;
    let genesis_path = dir.join("genesis.toml");
    std::fs::write(&genesis_path, g.to_toml()?)?;
    let cfg = starling_node::config::NodeConfig {
        roles: vec![starling_node::config::Role::Relay],
        data_dir: dir.join("relay"),
        ..Default::default()
    };
    if !cfg.data_dir.join("GENESIS_ID").exists() {
        starling_node::init::init(&cfg, &genesis_path, &validator.public_key())?;
    }
    let (genesis, stores) = starling_node::init::open(&cfg.data_dir)?;
    let services = Services {
        view: Some(starling_api::view::View::fixed(view)),
        ..Default::default()
    };
    Ok((Node::follower(genesis, stores), services))
}

/// One keep-alive HTTP/1.1 connection that sends GETs and reads whole answers.
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// GETs `path`; returns the status and the body's length.
    async fn get(&mut self, path: &str) -> anyhow::Result<(u16, usize)> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.stream.write_all(req.as_bytes()).await?;
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end])?;
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .context("bad status line")?;
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .context("no content-length")?;
                while self.buf.len() < end + 4 + len {
                    let n = self.stream.read(&mut chunk).await?;
                    if n == 0 {
                        bail!("connection closed mid-answer");
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                return Ok((status, len));
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn timeline(args: TimelineArgs) -> anyhow::Result<()> {
    if args.accounts < 2 || args.viewers == 0 || args.viewers > args.accounts || args.posts == 0 {
        bail!("need at least 2 accounts, 1 to --accounts viewers and some posts");
    }
    let tmp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let marker = dir.join("seeded.json");
    let figures = json!({"accounts": args.accounts, "posts": args.posts, "follows": args.follows, "viewers": args.viewers}).to_string();
    let reuse = std::fs::read_to_string(&marker).is_ok_and(|m| m == figures);
    if !reuse && dir.join("appview").exists() {
        std::fs::remove_dir_all(dir.join("appview"))?;
    }
    let view = Arc::new(AppView::open_with(
        &dir.join("appview"),
        Duration::from_secs(2),
    )?);
    let seed_start = Instant::now();
    if !reuse {
        seed(&args, &view)?;
        std::fs::write(&marker, &figures)?;
    }
    let seed_s = seed_start.elapsed().as_secs_f64();
    let view_bytes = dir_size(&dir.join("appview"));

    let viewers: Vec<AccountId> = (0..args.viewers).map(account).collect();
    let direct = direct_reads(&view, &viewers, args.samples)?;

    let (node, services) = serving_node(&dir.join("node"), view.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let metrics: starling_api::MetricsFn = Arc::new(String::new);
        let options = starling_api::ApiOptions::default();
        let server = tokio::spawn(starling_api::serve(
            listener, node, services, metrics, options,
        ));
        let home = |i: usize| {
            format!(
                "/api/v1/accounts/{}/home?limit=30",
                viewers[i % viewers.len()].to_text()
            )
        };

        // One at a time.
        let mut conn = Conn::open(addr).await?;
        let mut seq = Vec::with_capacity(args.samples);
        for i in 0..args.samples {
            let t = Instant::now();
            let (status, len) = conn.get(&home(i)).await?;
            seq.push(ms(t.elapsed()));
            if status != 200 || len < 100 {
                bail!("home timeline answered {status} ({len} bytes)");
            }
        }
        seq.sort_by(f64::total_cmp);

        // Searches: two common words.
        let words = vocabulary(5_000);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut search = Vec::with_capacity(args.samples);
        let mut hits = 0usize;
        for _ in 0..args.samples {
            // Drawn like the posts' words: common words are common queries.
            let mut word = || &words[(rng.gen::<f64>().powi(2) * 5_000.0) as usize % 5_000];
            let (a, b) = (word().clone(), word().clone());
            let t = Instant::now();
            let (status, len) = conn
                .get(&format!("/api/v1/search/posts?q={a}+{b}&limit=30"))
                .await?;
            search.push(ms(t.elapsed()));
            if status != 200 {
                bail!("search answered {status}");
            }
            if len > 40 {
                hits += 1;
            }
        }
        search.sort_by(f64::total_cmp);

        // Throughput: keep-alive connections, as fast as they are answered.
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for c in 0..args.concurrency {
            let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
            let paths: Vec<String> = (0..viewers.len()).map(|i| home(i + c)).collect();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let Ok(mut conn) = Conn::open(addr).await else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return lat;
                };
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match conn.get(&paths[i % paths.len()]).await {
                        Ok((200, _)) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            lat.push(ms(t.elapsed()));
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    i += 1;
                }
                lat
            }));
        }
        let start = Instant::now();
        let pb = crate::bench::bar(args.duration, "load (s)");
        while start.elapsed() < Duration::from_secs(args.duration) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            pb.set_position(start.elapsed().as_secs());
        }
        stop.store(true, Ordering::Relaxed);
        let elapsed = start.elapsed().as_secs_f64();
        pb.finish_and_clear();
        let mut loaded = Vec::new();
        for t in tasks {
            loaded.extend(t.await.unwrap_or_default());
        }
        loaded.sort_by(f64::total_cmp);
        server.abort();
        let requests = done.load(Ordering::Relaxed);
        Ok::<_, anyhow::Error>(json!({
            "accounts": args.accounts,
            "posts": args.posts,
            "follows": args.follows,
            "viewers": args.viewers,
            "seeded": "synthetic blocks indexed straight into the app view (not through consensus)",
            "seed_s": (seed_s * 10.0).round() / 10.0,
            "view_bytes": view_bytes,
            "timeline_p50_ms": percentile(&seq, 0.5),
            "timeline_p99_ms": percentile(&seq, 0.99),
            "timeline_view_p50_ms": percentile(&direct, 0.5),
            "timeline_view_p99_ms": percentile(&direct, 0.99),
            "timeline_rps": (requests as f64 / elapsed).round(),
            "timeline_requests": requests,
            "timeline_failed": failed.load(Ordering::Relaxed),
            "timeline_load_p50_ms": percentile(&loaded, 0.5),
            "timeline_load_p99_ms": percentile(&loaded, 0.99),
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "search_p50_ms": percentile(&search, 0.5),
            "search_p99_ms": percentile(&search, 0.99),
            "search_with_hits": hits,
            "samples": args.samples,
        }))
    })?;
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{} accounts, {} posts, {} viewers following {} each (seeded in {:.1} s)",
            args.accounts, args.posts, args.viewers, args.follows, seed_s
        );
        println!(
            "home timeline: p50 {:.2} ms, p99 {:.2} ms one at a time over HTTP (view alone p99 {:.2} ms)",
            report["timeline_p50_ms"].as_f64().unwrap_or(0.0),
            report["timeline_p99_ms"].as_f64().unwrap_or(0.0),
            report["timeline_view_p99_ms"].as_f64().unwrap_or(0.0)
        );
        println!(
            "home timeline: {} requests/s with {} connections (p99 {:.2} ms under load)",
            report["timeline_rps"],
            args.concurrency,
            report["timeline_load_p99_ms"].as_f64().unwrap_or(0.0)
        );
        println!(
            "search: p50 {:.2} ms, p99 {:.2} ms",
            report["search_p50_ms"].as_f64().unwrap_or(0.0),
            report["search_p99_ms"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}

/// Home timeline reads straight from the view: their latencies in ms, sorted.
fn direct_reads(view: &AppView, viewers: &[AccountId], samples: usize) -> anyhow::Result<Vec<f64>> {
    let mut direct = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = Instant::now();
        let page = view.home(&viewers[i % viewers.len()], None, 30)?;
        direct.push(ms(t.elapsed()));
        if page.items.is_empty() {
            bail!("a viewer's home timeline is empty: the seed is wrong");
        }
    }
    direct.sort_by(f64::total_cmp);
    Ok(direct)
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
