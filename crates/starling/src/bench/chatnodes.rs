//! `starling bench chat --nodes`: chat through the whole product path, across processes.
//!
//! Starts a devnet (its relay is the mailbox relay) and two user nodes (`starling node`,
//! relay role) as child processes on 127.0.0.1, imports a devnet user into each, turns chat
//! on, and has Alice's node send to Bob's through the HTTP API: the node encrypts, seals and
//! syncs the device state and the history, and deposits at Bob's node over libp2p; Bob's
//! node takes the mail, decrypts, seals, syncs and acknowledges. Delivery is timed from just
//! before Alice's request to the moment Bob's API shows the text (polled every millisecond).

use anyhow::{anyhow, bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Child processes killed on drop.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Spawns `starling <args>` in `dir`; returns once it serves its API, with what it printed.
fn spawn(dir: &Path, args: &[&str], children: &mut Children) -> anyhow::Result<Vec<String>> {
    let mut child = Command::new(std::env::current_exe()?)
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting `starling {}`", args.join(" ")))?;
    let out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    children.0.push(child);
    let mut lines = std::io::BufReader::new(out).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line?;
        let done = line.contains("API listening");
        seen.push(line);
        if done {
            std::thread::spawn(move || for _ in lines {});
            return Ok(seen);
        }
    }
    bail!(
        "`starling {}` exited before serving its API",
        args.join(" ")
    )
}

fn run(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(std::env::current_exe()?)
        .current_dir(dir)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "starling {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {v}");
        }
        Ok(v)
    }
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

/// Imports devnet user `i` on the node at `base` and returns a session on it.
async fn import(http: &reqwest::Client, base: &str, label: &str, i: u32) -> anyhow::Result<Api> {
    let key = starling_node::devnet::user_key(i);
    let body = json!({"label": label, "password": "a password for the chat benchmark", "secret": hex::encode(*key.to_seed()), "bearer": true});
    let v: Value = http
        .post(format!("{base}/api/v1/keystore/import"))
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    let token = v["token"]
        .as_str()
        .ok_or_else(|| anyhow!("import: {v}"))?
        .to_string();
    Ok(Api {
        http: http.clone(),
        base: base.to_string(),
        token,
    })
}

async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The figures of a run.
pub struct NodesRun {
    pub one_p50_ms: f64,
    pub one_p99_ms: f64,
    pub msgs_per_s: f64,
    pub loaded_p50_ms: f64,
}

/// Measures `one` texts one at a time, then `batches` requests of `batch` texts.
pub fn measure(one: usize, batches: usize, batch: usize) -> anyhow::Result<NodesRun> {
    let d = tempfile::tempdir()?;
    let dir = d.path();
    let mut children = Children(Vec::new());
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    pb.set_message("starting a devnet and two user nodes");
    let devnet_dir = dir.join("devnet");
    let devnet_api = free_addr()?.to_string();
    let lines = spawn(
        dir,
        &[
            "devnet",
            "--data-dir",
            devnet_dir.to_str().unwrap_or("devnet"),
            "--api",
            &devnet_api,
            "--block-interval-ms",
            "50",
        ],
        &mut children,
    )?;
    let relay = lines
        .iter()
        .find_map(|l| l.strip_prefix("chat relay at "))
        .ok_or_else(|| anyhow!("the devnet did not name its chat relay"))?
        .to_string();
    let bootstrap: Vec<String> = std::fs::read_to_string(devnet_dir.join("p2p-addresses"))?
        .lines()
        .map(|l| format!("\"{l}\""))
        .collect();
    let mut apis = Vec::new();
    for name in ["alice-node", "bob-node"] {
        run(dir, &["keys", "generate", "--out", &format!("{name}.key")])?;
        let api = free_addr()?;
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "roles = [\"relay\"]\ndata_dir = \"{name}-data\"\nkey_file = \"{name}.key\"\ngenesis = \"{}\"\n\n[p2p]\nlisten = \"{}\"\nbootstrap = [{}]\n\n[api]\nlisten = \"{api}\"\n\n[metrics]\nlisten = \"{}\"\n\n[chat]\nrelays = [\"{relay}\"]\n",
                devnet_dir.join("genesis.toml").display(),
                free_addr()?,
                bootstrap.join(", "),
                free_addr()?,
            ),
        )?;
        let config = config.to_str().unwrap_or_default().to_string();
        run(dir, &["init", "--config", &config])?;
        spawn(dir, &["node", "--config", &config], &mut children)?;
        apis.push(format!("http://{api}"));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let alice = import(&http, &apis[0], "alice", 1).await?;
        let bob = import(&http, &apis[1], "bob", 2).await?;
        pb.set_message("turning chat on (devices published on the ledger)");
        for a in [&alice, &bob] {
            a.post("/me/chat", json!({})).await?;
        }
        for a in [&alice, &bob] {
            until("a chat device to be published", || async {
                let s = a.get("/me/chat").await.ok()?;
                let ready = s["published"] == json!(true)
                    && s["key_packages_at_home"].as_u64().unwrap_or(0) > 0
                    && !s["key_packages_at_relays"].as_array()?.is_empty();
                ready.then_some(())
            })
            .await?;
        }
        let bob_key = starling_node::devnet::user_key(2).public_key().to_text();
        let chat = alice
            .post("/me/chats", json!({"members": [bob_key]}))
            .await?["id"]
            .as_str()
            .ok_or_else(|| anyhow!("no chat id"))?
            .to_string();
        until("bob to join", || async {
            let l = bob.get("/me/chats").await.ok()?;
            l["items"]
                .as_array()?
                .iter()
                .any(|c| c["id"] == json!(chat))
                .then_some(())
        })
        .await?;
        let start = Instant::now();
        let mut last = 0u64;
        // Bob's texts after `last`: (seq, the send time in the text, in µs since start).
        let take = |last: u64| {
            let path = format!("/me/chats/{chat}/messages?after={last}&limit=1000");
            let bob = &bob;
            async move {
                let v = bob.get(&path).await?;
                let mut out = Vec::new();
                for m in v["items"].as_array().into_iter().flatten() {
                    let seq = m["seq"].as_u64().unwrap_or(0);
                    let sent = m["text"]
                        .as_str()
                        .and_then(|t| t.split(' ').next())
                        .and_then(|t| t.parse::<u64>().ok());
                    out.push((seq, sent));
                }
                anyhow::Ok(out)
            }
        };
        // Catch up with the events so far.
        for (seq, _) in take(0).await? {
            last = last.max(seq);
        }
        pb.set_message(format!("{one} texts one at a time"));
        let mut singles = Vec::with_capacity(one);
        for _ in 0..one {
            let t = Instant::now();
            let stamp = start.elapsed().as_micros();
            alice
                .post(
                    &format!("/me/chats/{chat}/messages"),
                    json!({"text": format!("{stamp} one at a time")}),
                )
                .await?;
            'wait: loop {
                for (seq, sent) in take(last).await? {
                    last = last.max(seq);
                    if sent == Some(stamp as u64) {
                        break 'wait;
                    }
                }
                if t.elapsed() > Duration::from_secs(30) {
                    bail!("a text did not arrive within 30 s");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            singles.push(t.elapsed().as_secs_f64() * 1e3);
        }
        pb.set_message(format!("{} texts in requests of {batch}", batches * batch));
        let total = batches * batch;
        let t = Instant::now();
        let sender = async {
            for _ in 0..batches {
                let stamp = start.elapsed().as_micros();
                let texts: Vec<String> = (0..batch)
                    .map(|i| format!("{stamp} batch text {i}"))
                    .collect();
                alice
                    .post(
                        &format!("/me/chats/{chat}/messages"),
                        json!({ "texts": texts }),
                    )
                    .await?;
            }
            anyhow::Ok(())
        };
        let receiver = async {
            let mut got = Vec::with_capacity(total);
            while got.len() < total {
                for (seq, sent) in take(last).await? {
                    last = last.max(seq);
                    if let Some(s) = sent {
                        got.push(
                            (start.elapsed().as_micros() as u64).saturating_sub(s) as f64 / 1e3,
                        );
                    }
                }
                if t.elapsed() > Duration::from_secs(300) {
                    bail!("the batched texts did not all arrive within 5 minutes");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            anyhow::Ok(got)
        };
        let ((), mut loaded) = tokio::try_join!(sender, receiver)?;
        let secs = t.elapsed().as_secs_f64();
        singles.sort_by(f64::total_cmp);
        loaded.sort_by(f64::total_cmp);
        let pct = |v: &[f64], p: f64| {
            v.get(((v.len().max(1) - 1) as f64 * p) as usize)
                .copied()
                .unwrap_or(0.0)
        };
        anyhow::Ok(NodesRun {
            one_p50_ms: pct(&singles, 0.5),
            one_p99_ms: pct(&singles, 0.99),
            msgs_per_s: total as f64 / secs,
            loaded_p50_ms: pct(&loaded, 0.5),
        })
    });
    pb.finish_and_clear();
    drop(children);
    result
}
