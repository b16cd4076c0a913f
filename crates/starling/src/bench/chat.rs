//! `starling bench chat`: the cost of MLS chat on this machine.
//!
//! - **Delivery** (`msgs_per_s`, `p50_delivery_ms`): two nodes' chat protocol endpoints
//!   (libp2p over TCP on 127.0.0.1, each with its own mailboxes on disk in a temporary
//!   directory). Alice's device encrypts each 1:1 text and deposits it in Bob's mailbox at
//!   Bob's node (batched as the node's outbox does, synced to disk before it is
//!   acknowledged); Bob takes the mail as it arrives, decrypts it and acknowledges it. The
//!   latency of a text is from just before encryption to just after decryption: first one
//!   text at a time (`p50_delivery_ms`), then with up to `--window` texts in flight
//!   (`msgs_per_s`, `p50_delivery_ms_loaded`).
//! - **Cryptographic core**, in one process with no network: encrypt and decrypt
//!   (`crypto_msgs_per_s`, `p50_crypto_us`), and the commit that adds a member to a group of
//!   `--group-size` (`add_member_commit_ms`, and the new member joining from the welcome).

use anyhow::bail;
use clap::Args;
use serde_json::json;
use starling_chat::{Device, Received};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// Print one JSON object instead of a summary.
    #[arg(long, default_value_t = false)]
    json: bool,
    /// Messages sent one way in the 1:1 chat.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Members of the group a member is added to.
    #[arg(long, default_value_t = 50)]
    group_size: usize,
    /// Bytes of text per message.
    #[arg(long, default_value_t = 140)]
    text_bytes: usize,
    /// Texts sent between the two nodes, one at a time and then pipelined.
    #[arg(long, default_value_t = 2_000)]
    delivered: usize,
    /// Texts in flight at once in the pipelined run.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Also measure the whole product path across processes: a devnet and two user nodes,
    /// texts sent and read through the HTTP API (`nodes_*` figures).
    #[arg(long)]
    nodes: bool,
    /// With --nodes: texts sent one at a time.
    #[arg(long, default_value_t = 200)]
    nodes_one: usize,
    /// With --nodes: requests of --nodes-batch texts each.
    #[arg(long, default_value_t = 40)]
    nodes_batches: usize,
    #[arg(long, default_value_t = 50)]
    nodes_batch: usize,
}

/// Members by identity and signature key.
type Members = std::collections::HashSet<(String, Vec<u8>)>;
/// The key directory of the benchmark: every device [`device`] made.
static LISTED: std::sync::Mutex<Option<Members>> = std::sync::Mutex::new(None);

fn device(name: &str) -> anyhow::Result<Device> {
    let d = Device::new(&format!("bench:{name}"), 0)?;
    LISTED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(Default::default)
        .insert((d.identity().to_string(), d.signature_key()));
    Ok(d)
}

/// Whether the benchmark's directory lists `identity` with `key` (what a node's cached
/// directory answers).
fn listed(identity: &str, key: &[u8]) -> bool {
    LISTED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_some_and(|l| l.contains(&(identity.to_string(), key.to_vec())))
}

pub fn chat(args: ChatArgs) -> anyhow::Result<()> {
    if args.messages == 0 || args.group_size < 2 || args.group_size > starling_chat::MAX_MEMBERS - 1
    {
        bail!(
            "need some messages and a group of 2 to {}",
            starling_chat::MAX_MEMBERS - 1
        );
    }
    // 1:1.
    let (mut alice, mut bob) = (device("alice")?, device("bob")?);
    let id = alice.create_group()?;
    let kp = bob.key_package()?;
    let out = alice.add(&id, &[kp])?;
    alice.confirm(&id)?;
    bob.receive(&out.welcome.unwrap_or_default(), &listed)?;
    let text = vec![b'x'; args.text_bytes];
    let mut lat = Vec::with_capacity(args.messages);
    let start = Instant::now();
    for _ in 0..args.messages {
        let t = Instant::now();
        let m = alice.send(&id, &text)?;
        match bob.receive(&m, &listed)? {
            Received::Text { text: got, .. } if got.len() == text.len() => {}
            other => bail!("unexpected {other:?}"),
        }
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let p50 = lat[lat.len() / 2];
    let p99 = lat[(lat.len() - 1) * 99 / 100];

    // A member added to a group of `group_size`.
    let mut owner = device("owner")?;
    let gid = owner.create_group()?;
    let mut members: Vec<Device> = (1..args.group_size)
        .map(|i| device(&format!("m{i}")))
        .collect::<anyhow::Result<_>>()?;
    let kps: Vec<Vec<u8>> = members
        .iter_mut()
        .map(|d| d.key_package())
        .collect::<Result<_, _>>()?;
    owner.add(&gid, &kps)?;
    owner.confirm(&gid)?;
    let mut newcomer = device("newcomer")?;
    let kp = newcomer.key_package()?;
    let t = Instant::now();
    let out = owner.add(&gid, &[kp])?;
    owner.confirm(&gid)?;
    let commit_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    newcomer.receive(&out.welcome.unwrap_or_default(), &listed)?;
    let join_ms = t.elapsed().as_secs_f64() * 1e3;
    if owner.members(&gid)?.len() != args.group_size + 1 {
        bail!("the group did not grow");
    }

    let net = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(delivery(&args))?;

    let mut report = json!({
        "messages": args.messages,
        "text_bytes": args.text_bytes,
        "msgs_per_s": net.msgs_per_s.round(),
        "p50_delivery_ms": (net.p50_one_ms * 1000.0).round() / 1000.0,
        "p99_delivery_ms": (net.p99_one_ms * 1000.0).round() / 1000.0,
        "p50_delivery_ms_loaded": (net.p50_loaded_ms * 100.0).round() / 100.0,
        "delivered": args.delivered,
        "window": args.window,
        "delivery": "two nodes' chat endpoints over libp2p on 127.0.0.1; deposits synced to disk at the recipient's node",
        "crypto_msgs_per_s": (args.messages as f64 / secs).round(),
        "p50_crypto_us": (p50 * 10.0).round() / 10.0,
        "p99_crypto_us": (p99 * 10.0).round() / 10.0,
        "group_size": args.group_size,
        "add_member_commit_ms": (commit_ms * 100.0).round() / 100.0,
        "add_member_join_ms": (join_ms * 100.0).round() / 100.0,
        "commit_bytes": out.commit.len(),
    });
    if args.nodes {
        let n = super::chatnodes::measure(args.nodes_one, args.nodes_batches, args.nodes_batch)?;
        report["nodes_p50_delivery_ms"] = json!((n.one_p50_ms * 100.0).round() / 100.0);
        report["nodes_p99_delivery_ms"] = json!((n.one_p99_ms * 100.0).round() / 100.0);
        report["nodes_msgs_per_s"] = json!(n.msgs_per_s.round());
        report["nodes_p50_delivery_ms_loaded"] = json!((n.loaded_p50_ms * 100.0).round() / 100.0);
        report["nodes"] = json!("a devnet and two user nodes as processes; texts sent and read through the HTTP API (sealed, synced state and history on both nodes)");
        if !args.json {
            println!(
                "through the API across processes: one at a time p50 {:.2} ms (p99 {:.2} ms); {:.0} msgs/s in requests of {} (p50 {:.1} ms)",
                n.one_p50_ms, n.one_p99_ms, n.msgs_per_s, args.nodes_batch, n.loaded_p50_ms
            );
        }
    }
    if args.json {
        println!("{report}");
    } else {
        println!(
            "1:1 between two nodes: {} msgs/s (p50 {:.2} ms loaded), one at a time p50 {:.3} ms; crypto alone {} msgs/s (p50 {:.1} µs); adding a member to {}: commit {:.2} ms, join {:.2} ms",
            report["msgs_per_s"], net.p50_loaded_ms, net.p50_one_ms, report["crypto_msgs_per_s"], p50, args.group_size, commit_ms, join_ms
        );
    }
    Ok(())
}

struct Delivery {
    msgs_per_s: f64,
    p50_one_ms: f64,
    p99_one_ms: f64,
    p50_loaded_ms: f64,
}

fn free_port() -> anyhow::Result<std::net::SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Texts from Alice's node to Bob's: encrypt, deposit over libp2p, take, decrypt.
async fn delivery(args: &ChatArgs) -> anyhow::Result<Delivery> {
    use starling_net::chat::{self as chatnet, ChatRequest};
    use starling_types::Endpoint;
    use std::sync::Arc;
    let dir = tempfile::tempdir()?;
    let key =
        |b: u8| starling_crypto::SecretKey::from_seed(starling_types::KeyType::Ed25519, &[b; 32]);
    let (alice_key, bob_key, mailbox_key) = (key(1)?, key(2)?, key(3)?);
    let bob_addr = free_port()?;
    let bob_services = Arc::new(starling_chat_relay::ChatServices::open(
        &dir.path().join("bob"),
        bob_key.public_key(),
        None,
    )?);
    let alice_services = Arc::new(starling_chat_relay::ChatServices::open(
        &dir.path().join("alice"),
        alice_key.public_key(),
        None,
    )?);
    let _bob_net = chatnet::standalone(&bob_key, Some(bob_addr), Some(bob_services.clone()))?;
    let alice_net = chatnet::standalone(&alice_key, Some(free_port()?), Some(alice_services))?;
    let bob_at = Endpoint {
        node: bob_key.public_key(),
        address: bob_addr.to_string(),
    };
    let mailbox = chatnet::mailbox_id(&mailbox_key.public_key());

    let (mut alice, mut bob) = (device("alice")?, device("bob")?);
    let id = alice.create_group()?;
    let out = alice.add(&id, &[bob.key_package()?])?;
    alice.confirm(&id)?;
    bob.receive(&out.welcome.unwrap_or_default(), &listed)?;

    // Bob's side: takes mail as it lands in his node's mailbox, decrypts, acknowledges.
    let start = Instant::now();
    let total = args.delivered * 2; // Room for every latency of the run: never full.
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::channel::<f64>(total.max(1));
    let mut watch = bob_services.mailboxes.watch();
    let boxes = bob_services.mailboxes.clone();
    let receiver = tokio::task::spawn(async move {
        let mut after = 0;
        let mut taken = 0;
        while taken < total {
            let (mail, _) = boxes.fetch(&mailbox, after, chatnet::MAX_FETCH_BYTES);
            if mail.is_empty() {
                if watch.changed().await.is_err() {
                    break;
                }
                continue;
            }
            for m in &mail {
                after = m.seq;
                if let Ok(Received::Text { text, .. }) = bob.receive(&m.bytes, &listed) {
                    let sent = u64::from_be_bytes(text[..8].try_into().unwrap_or_default());
                    let now = start.elapsed().as_nanos() as u64;
                    let _ = lat_tx.try_send(now.saturating_sub(sent) as f64 / 1e6);
                    taken += 1;
                }
            }
            let _ = boxes.ack(&mailbox, after);
        }
    });

    let mut text = vec![b'x'; args.text_bytes.max(8)];
    let mut seal = |alice: &mut Device| -> anyhow::Result<Vec<u8>> {
        text[..8].copy_from_slice(&(start.elapsed().as_nanos() as u64).to_be_bytes());
        Ok(alice.send(&id, &text)?)
    };
    // One at a time: each text delivered and read before the next.
    let mut one = Vec::with_capacity(args.delivered);
    for _ in 0..args.delivered {
        let e = seal(&mut alice)?;
        alice_net
            .request(
                &bob_at,
                &ChatRequest::Deposit {
                    mailbox,
                    envelopes: vec![e],
                },
            )
            .await?;
        one.push(
            lat_rx
                .recv()
                .await
                .ok_or_else(|| anyhow::anyhow!("the receiver stopped"))?,
        );
    }
    // Pipelined: batches of what is ready, at most `window` in flight.
    let t = Instant::now();
    let mut loaded = Vec::with_capacity(args.delivered);
    let (mut sent, mut in_flight) = (0usize, 0usize);
    while loaded.len() < args.delivered {
        let room = args
            .window
            .saturating_sub(in_flight)
            .min(args.delivered - sent)
            .min(chatnet::MAX_DEPOSIT);
        if room > 0 {
            let envelopes = (0..room)
                .map(|_| seal(&mut alice))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let req = ChatRequest::Deposit { mailbox, envelopes };
            let net = alice_net.clone();
            let to = bob_at.clone();
            // Deposits go one after another, as an outbox sends them.
            net.request(&to, &req).await?;
            sent += room;
            in_flight += room;
        }
        // Take what has arrived (waiting for at least one when the window is full).
        if in_flight >= args.window || sent == args.delivered {
            let l = lat_rx
                .recv()
                .await
                .ok_or_else(|| anyhow::anyhow!("the receiver stopped"))?;
            loaded.push(l);
            in_flight -= 1;
        }
        while let Ok(l) = lat_rx.try_recv() {
            loaded.push(l);
            in_flight -= 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    receiver.await?;
    one.sort_by(f64::total_cmp);
    loaded.sort_by(f64::total_cmp);
    Ok(Delivery {
        msgs_per_s: args.delivered as f64 / secs,
        p50_one_ms: pct(&one, 0.5),
        p99_one_ms: pct(&one, 0.99),
        p50_loaded_ms: pct(&loaded, 0.5),
    })
}
