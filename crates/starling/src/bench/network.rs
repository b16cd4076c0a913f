//! `starling bench network`: a load generator for a running devnet or cluster (or one it
//! starts itself). Devnet users sign posts and transfers at a target rate for a bounded
//! time; each shard's finalized blocks are followed through the API to time every
//! transaction from submission to finality and to check that each is finalized exactly once.

use anyhow::{bail, Context as _};
use clap::Args;
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use starling_crypto::SecretKey;
use starling_node::devnet;
use starling_types::{
    Action, Asset, ChainId, Encode as _, Hash, PublicKey, ShardId, ShardMap, TxBody,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most transactions in one request.
const MAX_BATCH: u64 = 2_048;

#[derive(Args, Debug)]
pub struct NetworkArgs {
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Base URL of a running node's API (e.g. http://127.0.0.1:8080); default: start a
    /// devnet in a temporary directory.
    #[arg(long)]
    api: Option<String>,
    /// Transactions per second to submit.
    #[arg(long, default_value_t = 6_000)]
    rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Devnet users that sign (at most the devnet's funded users).
    #[arg(long, default_value_t = 2_000)]
    accounts: u32,
    /// Percent of transactions that are transfers (to any other user, so most cross shards);
    /// the rest are posts.
    #[arg(long, default_value_t = 20)]
    transfer_pct: u64,
    /// Seconds to wait after the load for the last transactions to finalize.
    #[arg(long, default_value_t = 30)]
    grace: u64,
    /// Account shards of the devnet this command starts.
    #[arg(long, default_value_t = 2)]
    account_shards: u16,
    /// Block interval of the devnet this command starts, in milliseconds.
    #[arg(long, default_value_t = 200)]
    block_interval_ms: u64,
}

struct User {
    key: SecretKey,
    id: PublicKey,
    shard: ShardId,
    nonce: u64,
}

#[derive(Default)]
struct Tally {
    /// Submitted and not yet seen in a finalized block, with when each was first sent (kept
    /// when refused: the same transaction may be sent again and taken).
    pending: HashMap<Hash, Instant>,
    /// Seen finalized (to catch a transaction finalized twice).
    seen: HashSet<Hash>,
    latencies_ms: Vec<f64>,
    /// Each finalized transaction's latency by the 10-second window it was submitted in.
    by_window: BTreeMap<u64, Vec<f64>>,
    /// Each finalized transaction's time from its block's proposal (the block's timestamp)
    /// until this client saw the block final: consensus, the relay and the client's polling.
    after_proposal_ms: Vec<f64>,
    finalized: u64,
    finalized_in_window: u64,
    failed: u64,
    duplicates: u64,
    rejected: BTreeMap<String, u64>,
    /// Every transaction a node acknowledged. A user who signs again from a refused nonce may
    /// sign the very same transaction (same body, same hash) as one already acknowledged:
    /// the node answers `duplicate`, and the first acknowledgement still stands.
    /// With the user (by index) and nonce that signed it.
    acked: HashMap<Hash, (usize, u64)>,
    /// Acknowledged and not seen final yet.
    open: u64,
    /// The last height followed, per shard.
    followed: BTreeMap<u16, u64>,
    accepted: u64,
    blocks: BTreeMap<u16, u64>,
}

impl Tally {
    /// Acknowledged and not seen final: (hash, user, nonce), in hash order.
    fn unfinalized(&self) -> Vec<(Hash, usize, u64)> {
        let mut u: Vec<(Hash, usize, u64)> = self
            .acked
            .iter()
            .filter(|(h, _)| !self.seen.contains(*h))
            .map(|(h, &(who, nonce))| (*h, who, nonce))
            .collect();
        u.sort();
        u
    }

    /// Takes a node's answer to a batch: each transaction acknowledged or refused with a code.
    fn answered(
        &mut self,
        hashes: &[Hash],
        senders: &[(usize, u64)],
        body: Option<&Value>,
        rewind: &Mutex<HashMap<usize, u64>>,
    ) {
        let results = body.and_then(|b| b["results"].as_array());
        for (i, (h, &(who, nonce))) in hashes.iter().zip(senders).enumerate() {
            match results
                .and_then(|r| r.get(i))
                .map(|r| r["error"]["code"].as_str())
            {
                Some(None) => {
                    if self.acked.insert(*h, (who, nonce)).is_none() {
                        self.accepted += 1;
                        if !self.seen.contains(h) {
                            self.open += 1;
                        }
                    }
                }
                other => {
                    let code = other.flatten().unwrap_or("no_response");
                    *self.rejected.entry(code.to_string()).or_default() += 1;
                    // Sign again from this nonce only if nothing holds it: a nonce the chain
                    // took, or a pooled transaction holds, stays taken.
                    let held = matches!(
                        code,
                        "nonce_too_low" | "duplicate" | "replacement_underpriced"
                    );
                    if let (false, Ok(mut r)) = (held, rewind.lock()) {
                        let e = r.entry(who).or_insert(nonce);
                        *e = (*e).min(nonce);
                    }
                }
            }
        }
    }
}

/// Waits up to `grace` for everything acknowledged to be seen final. Then reads the next
/// nonce on chain of each user of what was not, and waits (30 s at most) until the
/// followers have reached every shard's height after that read, so that a block that took
/// one of them is seen before it is called lost.
async fn wind_down(
    tally: &Mutex<Tally>,
    grace: Duration,
    client: &reqwest::Client,
    base: &str,
    users: &[User],
) -> HashMap<usize, Option<u64>> {
    let lock = || tally.lock().unwrap_or_else(|p| p.into_inner());
    let grace_end = Instant::now() + grace;
    while Instant::now() < grace_end && lock().open > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = lock().unfinalized();
    let chain = chain_nonces(client, base, users, &before).await;
    let heads = shard_heights(client, base).await;
    let caught_up_by = Instant::now() + Duration::from_secs(30);
    while Instant::now() < caught_up_by {
        let behind = {
            let t = lock();
            heads
                .iter()
                .any(|(s, h)| t.followed.get(s).copied().unwrap_or(0) < *h)
        };
        if !behind {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    chain
}

/// What the API node's pools dropped after acknowledging it, by reason, summed over shards.
async fn pool_drops(client: &reqwest::Client, base: &str) -> serde_json::Map<String, Value> {
    let mut drops = serde_json::Map::new();
    if let Ok(Some(s)) = get_json(client, &format!("{base}/api/v1/status")).await {
        for shard in s["shards"].as_array().into_iter().flatten() {
            for (reason, n) in shard["mempool_drops"].as_object().into_iter().flatten() {
                let sum = drops.get(reason).and_then(Value::as_u64).unwrap_or(0);
                drops.insert(reason.clone(), json!(sum + n.as_u64().unwrap_or(0)));
            }
        }
    }
    drops
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Option<Value>> {
    let resp = client.get(url).send().await?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        bail!("GET {url}: {}", resp.status());
    }
    Ok(Some(resp.json().await?))
}

/// A devnet this command started: a `starling devnet` child process, killed on drop.
struct OwnDevnet(std::process::Child);

impl Drop for OwnDevnet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `starling devnet` in `dir` as a child process; returns it and its API base URL.
fn start_devnet(dir: &std::path::Path, args: &NetworkArgs) -> anyhow::Result<(OwnDevnet, String)> {
    let api = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let child = std::process::Command::new(std::env::current_exe()?)
        .arg("devnet")
        .arg("--data-dir")
        .arg(dir)
        .arg("--api")
        .arg(api.to_string())
        .arg("--account-shards")
        .arg(args.account_shards.to_string())
        .arg("--block-interval-ms")
        .arg(args.block_interval_ms.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting `starling devnet`")?;
    Ok((OwnDevnet(child), format!("http://{api}")))
}

pub fn network(args: NetworkArgs) -> anyhow::Result<()> {
    if args.accounts == 0 || args.accounts > devnet::USERS {
        bail!("--accounts must be between 1 and {}", devnet::USERS);
    }
    let tmp = tempfile::tempdir()?;
    let (base, own) = match &args.api {
        Some(url) => (url.trim_end_matches('/').to_string(), None),
        None => {
            let (child, url) = start_devnet(&tmp.path().join("devnet"), &args)?;
            (url, Some(child))
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(load(&base, &args))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    // Stop the devnet before its directory goes.
    drop(own);
    drop(tmp);
    Ok(())
}

/// Blocks every shard finalizes before the load starts.
const WARM_HEIGHT: u64 = 5;

async fn load(base: &str, args: &NetworkArgs) -> anyhow::Result<Value> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // Wait until every shard has finalized a few blocks: the validators are connected and
    // each has led a view, so the load meets a warm network, not its start-up.
    let wait_start = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = get_json(&client, &format!("{base}/api/v1/status")).await {
            let shards = s["shards"].as_array().cloned().unwrap_or_default();
            if !shards.is_empty()
                && shards
                    .iter()
                    .all(|x| x["height"].as_u64() >= Some(WARM_HEIGHT))
            {
                break s;
            }
        }
        if wait_start.elapsed() > Duration::from_secs(120) {
            bail!("{base} did not become ready within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let chain_id = ChainId::new(status["chain_id"].as_str().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("chain id: {e}"))?;
    let account_shards = status["account_shards"].as_u64().unwrap_or(0) as u16;
    let shard_map = ShardMap::even(account_shards).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut heights = BTreeMap::new();
    for s in status["shards"].as_array().into_iter().flatten() {
        heights.insert(
            s["shard"].as_u64().unwrap_or(0) as u16,
            s["height"].as_u64().unwrap_or(0),
        );
    }

    // The users and their nonces.
    let keys: Vec<SecretKey> = (0..args.accounts).map(devnet::user_key).collect();
    let nonces: Vec<anyhow::Result<u64>> = futures::stream::iter(keys.iter().map(|k| {
        let url = format!("{base}/api/v1/accounts/{}", k.public_key().to_text());
        let client = client.clone();
        async move {
            let v = get_json(&client, &url)
                .await?
                .context("a devnet user has no account: is this a devnet?")?;
            Ok(v["nonce"].as_u64().unwrap_or(0))
        }
    }))
    .buffered(32)
    .collect()
    .await;
    let mut users = Vec::new();
    for (key, nonce) in keys.into_iter().zip(nonces) {
        let id = key.public_key();
        users.push(User {
            shard: shard_map.shard_of(&id),
            id,
            key,
            nonce: nonce?,
        });
    }
    let all_ids: Vec<PublicKey> = users.iter().map(|u| u.id).collect();

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load_end = Arc::new(Mutex::new(None::<Instant>));
    // The load starts now (the windows count from here).
    let start = Instant::now();
    // Follow every shard's finalized blocks.
    let mut followers = Vec::new();
    for (&shard, &height) in &heights {
        let (client, base, tally, stop, load_end) = (
            client.clone(),
            base.to_string(),
            tally.clone(),
            stop.clone(),
            load_end.clone(),
        );
        followers.push(tokio::spawn(async move {
            let mut h = height + 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let url = format!("{base}/api/v1/shards/{shard}/blocks/{h}");
                match get_json(&client, &url).await {
                    Ok(Some(block)) => {
                        let now = Instant::now();
                        let proposed_ms = block["timestamp_ms"].as_u64().unwrap_or(0) as f64;
                        let wall_ms = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
                        let in_window = load_end
                            .lock()
                            .map(|e| e.is_none_or(|e| now <= e))
                            .unwrap_or(true);
                        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                        *t.blocks.entry(shard).or_default() += 1;
                        for tx in block["txs"].as_array().into_iter().flatten() {
                            let Some(hash) =
                                tx["hash"].as_str().and_then(|h| Hash::from_hex(h).ok())
                            else {
                                continue;
                            };
                            if !t.seen.insert(hash) {
                                t.duplicates += 1;
                                continue;
                            }
                            if t.acked.contains_key(&hash) {
                                t.open = t.open.saturating_sub(1);
                            }
                            if let Some(sent) = t.pending.remove(&hash) {
                                let ms = now.duration_since(sent).as_secs_f64() * 1e3;
                                t.latencies_ms.push(ms);
                                t.after_proposal_ms.push((wall_ms - proposed_ms).max(0.0));
                                let window = sent.duration_since(start).as_secs() / 10;
                                t.by_window.entry(window).or_default().push(ms);
                                t.finalized += 1;
                                if in_window {
                                    t.finalized_in_window += 1;
                                }
                                if tx["status"].as_u64() != Some(0) {
                                    t.failed += 1;
                                }
                            }
                        }
                        t.followed.insert(shard, h);
                        h += 1;
                    }
                    Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "following shard {shard}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }

    // Submit at the target rate.
    let pb = ProgressBar::new(args.duration);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} s")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let duration = Duration::from_secs(args.duration);
    let mut submitted: u64 = 0;
    let mut next_user = 0usize;
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let rewind: Arc<Mutex<HashMap<usize, u64>>> = Arc::default();
    while start.elapsed() < duration {
        let due = (start.elapsed().as_secs_f64() * args.rate as f64) as u64;
        let n = due.saturating_sub(submitted).min(MAX_BATCH);
        if n > 0 {
            let mut hexes = Vec::with_capacity(n as usize);
            let mut hashes = Vec::with_capacity(n as usize);
            let mut senders = Vec::with_capacity(n as usize);
            // A node refused an earlier nonce of some users: they sign from it again, as a
            // client would (their later ones were refused for the gap).
            if let Ok(mut r) = rewind.lock() {
                for (i, nonce) in r.drain() {
                    users[i].nonce = users[i].nonce.min(nonce);
                }
            }
            for _ in 0..n {
                let count = users.len();
                let who = next_user;
                let u = &mut users[next_user];
                next_user = (next_user + 1) % count;
                let expires = heights.get(&u.shard.0).copied().unwrap_or(0) + 50_000;
                let env = sign_at(
                    u,
                    who,
                    u.nonce,
                    (args.transfer_pct, &all_ids),
                    &chain_id,
                    expires,
                );
                senders.push((who, u.nonce));
                u.nonce += 1;
                hashes.push(env.hash());
                hexes.push(hex::encode(env.to_bytes()));
            }
            submitted += n;
            {
                let now = Instant::now();
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                for h in &hashes {
                    // A transaction sent again keeps the time it was first sent.
                    if !t.seen.contains(h) {
                        t.pending.entry(*h).or_insert(now);
                    }
                }
            }
            let (client, url, tally, rewind) = (
                client.clone(),
                format!("{base}/api/v1/txs"),
                tally.clone(),
                rewind.clone(),
            );
            in_flight.push(tokio::spawn(async move {
                let resp = client.post(&url).json(&json!({"txs": hexes})).send().await;
                let body: Option<Value> = match resp {
                    Ok(r) => r.json().await.ok(),
                    Err(_) => None,
                };
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                t.answered(&hashes, &senders, body.as_ref(), &rewind);
            }));
        }
        while let Some(Some(_)) = futures::FutureExt::now_or_never(in_flight.next()) {}
        pb.set_position(start.elapsed().as_secs());
        pb.set_message(format!("submitted {submitted}"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let load_secs = start.elapsed().as_secs_f64();
    if let Ok(mut e) = load_end.lock() {
        *e = Some(Instant::now());
    }
    while in_flight.next().await.is_some() {}
    pb.finish_and_clear();
    let chain = wind_down(
        &tally,
        Duration::from_secs(args.grace),
        &client,
        base,
        &users,
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in followers {
        let _ = f.await;
    }
    let pool_drops = pool_drops(&client, base).await;
    let unfinalized = classify(
        &tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unfinalized(),
        &chain,
    );
    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
    t.latencies_ms.sort_by(f64::total_cmp);
    t.after_proposal_ms.sort_by(f64::total_cmp);
    let windows: Vec<Value> = t
        .by_window
        .iter_mut()
        .map(|(w, l)| {
            l.sort_by(f64::total_cmp);
            json!({
                "from_s": w * 10,
                "finalized": l.len(),
                "p50_ms": percentile(l, 0.50).round(),
                "p99_ms": percentile(l, 0.99).round(),
            })
        })
        .collect();
    Ok(json!({
        "bench": "network",
        "api": base,
        "account_shards": account_shards,
        "target_rate": args.rate,
        "duration_s": args.duration,
        "submitted": submitted,
        "accepted": t.accepted,
        "rejected": t.rejected,
        "finalized": t.finalized,
        "failed_in_block": t.failed,
        "lost": unfinalized.lost,
        "lost_sample": unfinalized.lost_sample,
        "pending": unfinalized.pending,
        "unknown": unfinalized.unknown,
        "pool_drops": pool_drops,
        "duplicates": t.duplicates,
        "finalized_tps": (t.finalized_in_window as f64 / load_secs * 10.0).round() / 10.0,
        "p50_finality_ms": percentile(&t.latencies_ms, 0.50).round(),
        "p99_finality_ms": percentile(&t.latencies_ms, 0.99).round(),
        "max_finality_ms": t.latencies_ms.last().copied().unwrap_or(0.0).round(),
        "p50_after_proposal_ms": percentile(&t.after_proposal_ms, 0.50).round(),
        "p99_after_proposal_ms": percentile(&t.after_proposal_ms, 0.99).round(),
        "blocks": t.blocks,
        "windows": windows,
    }))
}

/// What became of the acknowledged transactions no finalized block carried.
#[derive(Debug, PartialEq, Eq)]
struct Unfinalized {
    /// Their nonce is still ahead of the account's on chain: still queued, or waiting behind
    /// an earlier nonce of their user that a node refused, when the load ended (a node holds
    /// them, and a client may fill the gap; nothing was dropped).
    pending: u64,
    /// The account's nonce on chain had passed theirs, and no block followed to a height
    /// after that carried them: lost (or replaced by another of the same nonce).
    lost: u64,
    /// Their account could not be read at the end.
    unknown: u64,
    lost_sample: Vec<String>,
}

/// Sorts `unfinalized` (hash, user, nonce) by what each user had used on chain (`chain`:
/// the next nonce, or `None` if it could not be read).
fn classify(
    unfinalized: &[(Hash, usize, u64)],
    chain: &HashMap<usize, Option<u64>>,
) -> Unfinalized {
    let mut out = Unfinalized {
        pending: 0,
        lost: 0,
        unknown: 0,
        lost_sample: Vec::new(),
    };
    for (hash, w, nonce) in unfinalized {
        match chain.get(w).copied().flatten() {
            None => out.unknown += 1,
            Some(next) if *nonce >= next => out.pending += 1,
            Some(_) => {
                out.lost += 1;
                if out.lost_sample.len() < 5 {
                    out.lost_sample.push(hash.to_hex());
                }
            }
        }
    }
    out
}

/// The next nonce on chain of each user of `unfinalized`.
async fn chain_nonces(
    client: &reqwest::Client,
    base: &str,
    users: &[User],
    unfinalized: &[(Hash, usize, u64)],
) -> HashMap<usize, Option<u64>> {
    let mut who: Vec<usize> = unfinalized.iter().map(|&(_, w, _)| w).collect();
    who.sort_unstable();
    who.dedup();
    futures::stream::iter(who.into_iter().map(|w| {
        let url = format!("{base}/api/v1/accounts/{}", users[w].id.to_text());
        async move {
            let v = get_json(client, &url).await.ok().flatten();
            (w, v.and_then(|v| v["nonce"].as_u64()))
        }
    }))
    .buffered(32)
    .collect()
    .await
}

/// Each shard's finalized height now.
async fn shard_heights(client: &reqwest::Client, base: &str) -> BTreeMap<u16, u64> {
    let mut out = BTreeMap::new();
    if let Ok(Some(s)) = get_json(client, &format!("{base}/api/v1/status")).await {
        for shard in s["shards"].as_array().into_iter().flatten() {
            if let (Some(id), Some(h)) = (shard["shard"].as_u64(), shard["height"].as_u64()) {
                out.insert(id as u16, h);
            }
        }
    }
    out
}

/// The transaction user `u` (number `who`) signs at `nonce`: a function of these alone
/// (Ed25519 signatures are deterministic), so signing again from a refused nonce sends the
/// very same transactions.
fn sign_at(
    u: &User,
    who: usize,
    nonce: u64,
    (transfer_pct, ids): (u64, &[PublicKey]),
    chain_id: &ChainId,
    expires_at_height: u64,
) -> starling_types::TxEnvelope {
    let body = TxBody {
        account: u.id,
        nonce,
        max_fee: 1_000_000_000_000,
        tip: 1,
        expires_at_height,
        action: action_at(who, nonce, transfer_pct, ids),
    };
    u.key.sign_tx(chain_id, &body)
}

/// What user `who` signs at `nonce`: a function of the two alone, so that a user who signs
/// again from a refused nonce sends the very transactions it sent before (as a wallet
/// would), never a second, rival one at a nonce a node already holds: only one of two could
/// ever be final, and the other would be counted lost.
fn action_at(who: usize, nonce: u64, transfer_pct: u64, ids: &[PublicKey]) -> Action {
    let digest = Hash::of(&[
        b"starling/bench/network",
        &(who as u64).to_le_bytes(),
        &nonce.to_le_bytes(),
    ]);
    let mut pick = [0u8; 8];
    pick.copy_from_slice(&digest.0[..8]);
    let pick = u64::from_le_bytes(pick);
    // Any other user: most transfers cross shards, as a credit message.
    match ids.get((pick >> 20) as usize % ids.len().max(1)) {
        Some(&to) if (pick >> 33) % 100 < transfer_pct && Some(&to) != ids.get(who) => {
            Action::Transfer {
                asset: Asset::Spend,
                to,
                amount: 1_000,
            }
        }
        _ => post_action(nonce),
    }
}

fn post_action(nonce: u64) -> Action {
    Action::Post {
        text: format!("load test post {nonce}: the quick brown fox jumps over the lazy dog"),
        reply_to: None,
        quote_of: None,
        langs: vec!["en".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_signs_the_same_transaction_at_the_same_nonce() {
        let ids: Vec<PublicKey> = (0..50).map(|i| devnet::user_key(i).public_key()).collect();
        let chain = ChainId::new("bench").unwrap();
        let user = |i: u32| User {
            key: devnet::user_key(i),
            id: devnet::user_key(i).public_key(),
            shard: ShardId(1),
            nonce: 0,
        };
        let (seven, eight) = (user(7), user(8));
        let mut transfers = 0;
        for nonce in 0..1_000 {
            // Signed again from a rewound nonce: the same envelope, so the same hash.
            let first = sign_at(&seven, 7, nonce, (20, &ids), &chain, 100).hash();
            assert_eq!(
                first,
                sign_at(&seven, 7, nonce, (20, &ids), &chain, 100).hash()
            );
            assert_ne!(
                first,
                sign_at(&seven, 7, nonce + 1, (20, &ids), &chain, 100).hash()
            );
            assert_ne!(
                first,
                sign_at(&eight, 8, nonce, (20, &ids), &chain, 100).hash()
            );
            let a = action_at(7, nonce, 20, &ids);
            if let Action::Transfer { to, .. } = a {
                assert_ne!(to, ids[7], "a transfer to oneself");
                transfers += 1;
            }
        }
        // About a fifth are transfers, and users differ.
        assert!((120..280).contains(&transfers), "{transfers} transfers");
        assert!((0..100).any(|n| action_at(7, n, 20, &ids) != action_at(8, n, 20, &ids)));
    }

    #[test]
    fn an_acknowledged_transaction_is_counted_once_and_stays_open_until_seen() {
        let mut t = Tally::default();
        let rewind = Mutex::new(HashMap::new());
        let (a, b) = (Hash([1; 32]), Hash([2; 32]));
        let ok = json!({"results": [{}, {}]});
        t.answered(&[a, b], &[(0, 5), (0, 6)], Some(&ok), &rewind);
        assert_eq!((t.accepted, t.open), (2, 2));
        // Sent again: "duplicate" for one, accepted again for the other. Neither counts
        // twice, and the duplicate does not rewind the user (its nonce is held).
        let again = json!({"results": [{"error": {"code": "duplicate"}}, {}]});
        t.answered(&[a, b], &[(0, 5), (0, 6)], Some(&again), &rewind);
        assert_eq!((t.accepted, t.open), (2, 2));
        assert!(rewind.lock().unwrap().is_empty());
        // A refusal that leaves the nonce free rewinds to it.
        let full = json!({"results": [{"error": {"code": "mempool_full"}}]});
        t.answered(&[Hash([3; 32])], &[(4, 9)], Some(&full), &rewind);
        assert_eq!(rewind.lock().unwrap().get(&4), Some(&9));
        assert_eq!(t.rejected.get("mempool_full"), Some(&1));
        assert_eq!(t.accepted, 2);
    }

    #[test]
    fn what_never_became_final_is_pending_lost_or_unknown_by_the_chains_nonce() {
        let chain: HashMap<usize, Option<u64>> = [(0, Some(10)), (1, None)].into();
        let u = [
            (Hash([1; 32]), 0, 9),  // the chain used nonce 9: lost
            (Hash([2; 32]), 0, 10), // still ahead: pending
            (Hash([3; 32]), 0, 12),
            (Hash([4; 32]), 1, 0), // account unread
            (Hash([5; 32]), 2, 0), // not asked
        ];
        let c = classify(&u, &chain);
        assert_eq!((c.lost, c.pending, c.unknown), (1, 2, 2));
        assert_eq!(c.lost_sample, vec![Hash([1; 32]).to_hex()]);
    }
}
