//! The social CLI: accounts, posts, timelines, notifications, search, transfers and (in
//! `gov`) governance, all through a node's HTTP API (the same one the web app uses). The node
//! holds the account's encrypted keystore and signs; the CLI keeps only a session token, in a
//! file readable by its owner alone (`--session`, default `~/.config/starling/session.json`).
//! Passwords come from `STARLING_PASSWORD`, `--password-file`, or a line on standard input.

pub mod gov;
pub mod proof;
mod session;
use session::{read_session, session_path, write_session};

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the node is and where the session is kept.
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// The node's API.
    #[arg(long, env = "STARLING_NODE", default_value = "http://127.0.0.1:8080")]
    pub node: String,
    /// The session file.
    #[arg(long, env = "STARLING_SESSION")]
    pub session: Option<PathBuf>,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Create an account on the node (a key pair in an encrypted keystore) and log in.
    Create {
        /// The account's name on the node; also claimed as its @handle unless --no-handle.
        label: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        no_handle: bool,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Import a secret key (a file of 64 hex digits) or an exported keystore, and log in.
    Import {
        /// A name for the account on the node (needed with --secret-file).
        #[arg(long)]
        label: Option<String>,
        #[arg(long, conflicts_with = "backup")]
        secret_file: Option<PathBuf>,
        #[arg(long)]
        backup: Option<PathBuf>,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Log in to an account the node holds (by label or key).
    Login {
        account: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// End the session.
    Logout,
    /// The accounts the node holds.
    List,
    /// Who this session is, with balances and fees paid.
    Whoami,
    /// Write the account's keystore (still encrypted) to a file.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SocialCmd {
    /// Post (at most 300 graphemes).
    Post {
        #[command(flatten)]
        opts: ClientOpts,
        text: String,
        /// Quote a post (`<author>/<seq>`).
        #[arg(long)]
        quote: Option<String>,
    },
    /// Reply to a post (`<author>/<seq>`).
    Reply {
        post: String,
        text: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Like a post (`--undo` to unlike).
    Like {
        #[command(flatten)]
        opts: ClientOpts,
        post: String,
        #[arg(long)]
        undo: bool,
    },
    /// Repost a post (`--undo` to take it back).
    Repost {
        #[command(flatten)]
        opts: ClientOpts,
        post: String,
        #[arg(long)]
        undo: bool,
    },
    /// Follow an account (`@handle` or key; `--undo` to unfollow).
    Follow {
        #[command(flatten)]
        opts: ClientOpts,
        who: String,
        #[arg(long)]
        undo: bool,
    },
    /// The home timeline (or `--of` an account's own posts).
    Timeline {
        #[command(flatten)]
        opts: ClientOpts,
        #[arg(long)]
        of: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Notifications, newest first; `--read` marks them read.
    Notifications {
        #[command(flatten)]
        opts: ClientOpts,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        read: bool,
    },
    /// Search posts (or `--people`).
    Search {
        #[command(flatten)]
        opts: ClientOpts,
        query: String,
        #[arg(long)]
        people: bool,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Send SPEND (or `--asset urc|core`) to an account (`@handle` or key).
    Transfer {
        #[command(flatten)]
        opts: ClientOpts,
        to: String,
        amount: String,
        #[arg(long, default_value = "spend")]
        asset: String,
    },
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    rt: tokio::runtime::Runtime,
}

fn password(file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(f) = file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_string());
    }
    if let Ok(p) = std::env::var("STARLING_PASSWORD") {
        return Ok(p);
    }
    eprint!("password: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

impl Client {
    pub(crate) fn new(opts: &ClientOpts, token: Option<String>) -> anyhow::Result<Client> {
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: opts.node.trim_end_matches('/').to_string(),
            token,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.rt.block_on(async {
            let resp = req
                .send()
                .await
                .with_context(|| format!("cannot reach the node at {}", self.base))?;
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                Ok(v)
            } else {
                let code = v["error"]["code"].as_str().unwrap_or("error");
                let msg = v["error"]["message"].as_str().unwrap_or("");
                Err(anyhow!("{code} ({status}): {msg}"))
            }
        })
    }

    pub(crate) fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None)
    }

    fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body))
    }

    fn act(&self, action: Value) -> anyhow::Result<Value> {
        self.post("/me/actions", json!({ "action": action }))
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `<author>/<seq>` as a post reference.
fn post_ref(s: &str) -> anyhow::Result<Value> {
    let (author, seq) = s
        .rsplit_once('/')
        .ok_or_else(|| anyhow!("a post is <author key>/<seq>, e.g. ed25519:ab…/3"))?;
    let seq: u64 = seq.parse().context("the post's seq is a number")?;
    Ok(json!({"author": author, "seq": seq}))
}

/// An account named by key or `@handle`.
fn resolve(c: &Client, who: &str) -> anyhow::Result<String> {
    match who.strip_prefix('@') {
        Some(h) => Ok(c.get(&format!("/handles/{}", enc(h)))?["account"]
            .as_str()
            .ok_or_else(|| anyhow!("no account for @{h}"))?
            .to_string()),
        None => Ok(who.to_string()),
    }
}

fn name(who: &Value) -> String {
    let handle = who["handle"]
        .as_str()
        .map(|h| format!(" @{h}"))
        .unwrap_or_default();
    let dn = who["display_name"].as_str().filter(|s| !s.is_empty());
    let key = who["account"].as_str().unwrap_or("");
    format!("{}{handle}", dn.unwrap_or(&key[..key.len().min(20)]))
}

fn print_post(p: &Value, prefix: &str) {
    let c = &p["counts"];
    println!(
        "{prefix}{} · {}/{}{}",
        name(&p["author"]),
        p["author"]["account"].as_str().unwrap_or(""),
        p["seq"],
        if p["edited"] == true { " (edited)" } else { "" }
    );
    let text = if p["deleted"] == true {
        "[deleted]"
    } else {
        p["text"].as_str().unwrap_or("")
    };
    for line in text.lines() {
        println!("{prefix}  {line}");
    }
    println!(
        "{prefix}  ↩ {}  ↻ {}  ♥ {}  ❝ {}",
        c["replies"], c["reposts"], c["likes"], c["quotes"]
    );
}

fn print_page(v: &Value, json_out: bool, each: impl Fn(&Value)) {
    if json_out {
        println!("{v:#}");
        return;
    }
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("(nothing)");
    }
    for it in &items {
        each(it);
        println!();
    }
}

fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

fn session_of(opts: &ClientOpts) -> anyhow::Result<(Client, String)> {
    let path = session_path(opts)?;
    let s = read_session(&path)?.ok_or_else(|| {
        anyhow!("not logged in: run `starling account login` or `account create`")
    })?;
    let token = s["token"]
        .as_str()
        .ok_or_else(|| anyhow!("session file has no token"))?;
    let account = s["account"].as_str().unwrap_or("").to_string();
    let node = s["node"].as_str().unwrap_or(&opts.node).to_string();
    let opts = ClientOpts {
        node,
        ..opts.clone()
    };
    Ok((Client::new(&opts, Some(token.to_string()))?, account))
}

fn save_started(opts: &ClientOpts, v: &Value) -> anyhow::Result<()> {
    let path = session_path(opts)?;
    write_session(
        &path,
        &json!({
            "node": opts.node,
            "account": v["account"],
            "label": v["label"],
            "token": v["token"],
        }),
    )?;
    Ok(())
}

pub fn account(cmd: AccountCmd, opts: ClientOpts) -> anyhow::Result<()> {
    let anon = Client::new(&opts, None)?;
    match cmd {
        AccountCmd::Create {
            label,
            display_name,
            no_handle,
            password_file,
        } => {
            let pw = password(password_file.as_deref())?;
            let v = anon.post(
                "/keystore",
                json!({"label": label, "password": pw, "bearer": true}),
            )?;
            save_started(&opts, &v)?;
            let account = v["account"].as_str().unwrap_or("").to_string();
            println!("created {label}: {account}");
            let (c, _) = session_of(&opts)?;
            // The account exists once funds reach it (the node's faucet, or a transfer).
            if v["funding"].is_string() {
                let pb = spinner("waiting for the faucet's funds to be final");
                let start = Instant::now();
                while c.get(&format!("/accounts/{account}")).is_err() {
                    if start.elapsed() > Duration::from_secs(120) {
                        pb.finish_and_clear();
                        bail!("the funds did not arrive within 2 minutes");
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                pb.finish_and_clear();
                if !no_handle {
                    c.act(json!({"type": "register_handle", "handle": label}))?;
                    println!("claimed @{label}");
                }
                let dn = display_name.unwrap_or_else(|| label.clone());
                c.act(json!({"type": "set_profile", "display_name": dn, "bio": ""}))?;
            } else {
                println!("this node has no faucet: send the account some SPEND before it acts");
            }
        }
        AccountCmd::Import {
            label,
            secret_file,
            backup,
            password_file,
        } => {
            let pw = password(password_file.as_deref())?;
            let body = match (secret_file, backup) {
                (Some(f), None) => {
                    let secret = std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    json!({"secret": secret.trim(), "label": label, "password": pw, "bearer": true})
                }
                (None, Some(f)) => {
                    let text = std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    json!({"backup": text, "password": pw, "bearer": true})
                }
                _ => bail!("give --secret-file (with --label) or --backup"),
            };
            let v = anon.post("/keystore/import", body)?;
            save_started(&opts, &v)?;
            println!(
                "imported {}: {}",
                v["label"].as_str().unwrap_or(""),
                v["account"].as_str().unwrap_or("")
            );
        }
        AccountCmd::Login {
            account,
            password_file,
        } => {
            let pw = password(password_file.as_deref())?;
            let v = anon.post(
                "/session",
                json!({"account": account, "password": pw, "bearer": true}),
            )?;
            save_started(&opts, &v)?;
            println!(
                "logged in as {} ({})",
                v["label"].as_str().unwrap_or(""),
                v["account"].as_str().unwrap_or("")
            );
        }
        AccountCmd::Logout => {
            let path = session_path(&opts)?;
            if let Ok((c, _)) = session_of(&opts) {
                // The session may have ended already; the file goes either way.
                let _ = c.call(reqwest::Method::DELETE, "/session", None);
            }
            match std::fs::remove_file(&path) {
                Ok(()) => println!("logged out"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("not logged in"),
                Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
            }
        }
        AccountCmd::List => {
            let v = anon.get("/keystore")?;
            print_page(&v, opts.json, |a| {
                print!(
                    "{}  {}",
                    a["label"].as_str().unwrap_or(""),
                    a["account"].as_str().unwrap_or("")
                );
            });
        }
        AccountCmd::Whoami => {
            let (c, account) = session_of(&opts)?;
            let s = c.get("/session")?;
            let a = c
                .get(&format!("/accounts/{account}"))
                .unwrap_or(Value::Null);
            let p = c
                .get(&format!("/accounts/{account}/profile"))
                .unwrap_or(Value::Null);
            if opts.json {
                println!("{:#}", json!({"session": s, "account": a, "profile": p}));
            } else {
                println!("{} ({})", s["label"].as_str().unwrap_or(""), account);
                if let Some(h) = p["handle"].as_str() {
                    println!("handle: @{h}");
                }
                println!(
                    "balances: spend {} · urc {} · core {}",
                    a["balances"]["spend"].as_str().unwrap_or("0"),
                    a["balances"]["urc"].as_str().unwrap_or("0"),
                    a["balances"]["core"].as_str().unwrap_or("0")
                );
                println!("fees paid: {}", p["fees_paid"].as_str().unwrap_or("0"));
                println!("unread notifications: {}", p["unread_notifications"]);
            }
        }
        AccountCmd::Export { out, password_file } => {
            let (c, _) = session_of(&opts)?;
            let pw = password(password_file.as_deref())?;
            let v = c.post("/session/export", json!({ "password": pw }))?;
            let backup = v["backup"]
                .as_str()
                .ok_or_else(|| anyhow!("no backup in the answer"))?;
            write_session(&out, &serde_json::from_str(backup)?)?;
            println!(
                "wrote {} (encrypted with the account's password)",
                out.display()
            );
        }
    }
    Ok(())
}

fn print_sent(v: &Value, json_out: bool, what: &str) {
    if json_out {
        println!("{v:#}");
    } else if let Some(p) = v["post"].as_object() {
        println!(
            "{what}: {}/{} (fee {}, tx {})",
            p["author"].as_str().unwrap_or(""),
            p["seq"],
            v["fee"]["fee"].as_str().unwrap_or("?"),
            v["hash"].as_str().unwrap_or("")
        );
    } else {
        println!(
            "{what} (fee {}, tx {})",
            v["fee"]["fee"].as_str().unwrap_or("?"),
            v["hash"].as_str().unwrap_or("")
        );
    }
}

impl SocialCmd {
    fn opts(&self) -> &ClientOpts {
        match self {
            SocialCmd::Post { opts, .. }
            | SocialCmd::Reply { opts, .. }
            | SocialCmd::Like { opts, .. }
            | SocialCmd::Repost { opts, .. }
            | SocialCmd::Follow { opts, .. }
            | SocialCmd::Timeline { opts, .. }
            | SocialCmd::Notifications { opts, .. }
            | SocialCmd::Search { opts, .. }
            | SocialCmd::Transfer { opts, .. } => opts,
        }
    }
}

pub fn social(cmd: SocialCmd) -> anyhow::Result<()> {
    let opts = cmd.opts().clone();
    let (c, me) = session_of(&opts)?;
    let j = opts.json;
    match cmd {
        SocialCmd::Post { text, quote, .. } => {
            let mut action = json!({"type": "post", "text": text});
            if let Some(q) = quote {
                action["quote_of"] = post_ref(&q)?;
            }
            print_sent(&c.act(action)?, j, "posted");
        }
        SocialCmd::Reply { post, text, .. } => {
            let action = json!({"type": "post", "text": text, "reply_to": post_ref(&post)?});
            print_sent(&c.act(action)?, j, "replied");
        }
        SocialCmd::Like { post, undo, .. } => {
            let t = if undo { "unlike" } else { "like" };
            print_sent(&c.act(json!({"type": t, "post": post_ref(&post)?}))?, j, t);
        }
        SocialCmd::Repost { post, undo, .. } => {
            let t = if undo { "unrepost" } else { "repost" };
            print_sent(&c.act(json!({"type": t, "post": post_ref(&post)?}))?, j, t);
        }
        SocialCmd::Follow { who, undo, .. } => {
            let target = resolve(&c, &who)?;
            let t = if undo { "unfollow" } else { "follow" };
            print_sent(&c.act(json!({"type": t, "target": target}))?, j, t);
        }
        SocialCmd::Timeline { of, limit, .. } => {
            let path = match of {
                Some(who) => format!(
                    "/accounts/{}/feed?limit={limit}&viewer={me}",
                    resolve(&c, &who)?
                ),
                None => format!("/accounts/{me}/home?limit={limit}"),
            };
            print_page(&c.get(&path)?, j, |it| {
                if it["kind"] == "repost" {
                    println!("↻ {} reposted", name(&it["by"]));
                }
                print_post(&it["post"], "");
            });
        }
        SocialCmd::Notifications { limit, read, .. } => {
            let v = c.get(&format!("/accounts/{me}/notifications?limit={limit}"))?;
            print_page(&v, j, |n| {
                let post = n["post"]
                    .as_object()
                    .map(|p| format!(" {}/{}", p["author"].as_str().unwrap_or(""), p["seq"]))
                    .unwrap_or_default();
                print!(
                    "{}: {}{post}",
                    n["kind"].as_str().unwrap_or(""),
                    name(&n["actor"])
                );
            });
            if read {
                c.post("/me/notifications/read", json!({}))?;
            }
        }
        SocialCmd::Search {
            query,
            people,
            limit,
            ..
        } => {
            let kind = if people { "people" } else { "posts" };
            let v = c.get(&format!(
                "/search/{kind}?q={}&limit={limit}&viewer={me}",
                enc(&query)
            ))?;
            print_page(&v, j, |it| {
                if people {
                    print!("{}  {}", name(it), it["account"].as_str().unwrap_or(""));
                } else {
                    print_post(it, "");
                }
            });
        }
        SocialCmd::Transfer {
            to, amount, asset, ..
        } => {
            let to = resolve(&c, &to)?;
            let action = json!({"type": "transfer", "asset": asset, "to": to, "amount": amount});
            print_sent(&c.act(action)?, j, "transfer sent");
        }
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum ChatCmd {
    /// Turn end-to-end encrypted chat on for the logged-in account on this node (publishes
    /// the device in the key directory on the ledger).
    Setup,
    /// Conversations, most recent first, with unread counts.
    List,
    /// Start a chat with accounts (`@handle` or key).
    New {
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Send a text to a chat (its id, or the start of it).
    Send { chat: String, text: String },
    /// Show a chat's messages and mark them read.
    Read {
        chat: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Add or remove members (`@handle` or key).
    Members {
        chat: String,
        #[arg(long)]
        add: Vec<String>,
        #[arg(long)]
        remove: Vec<String>,
    },
    /// Leave a chat.
    Leave { chat: String },
    /// Refresh this device's keys in a chat.
    Rekey { chat: String },
    /// Safety numbers with each other member of a chat, to compare out of band.
    Safety { chat: String },
    /// An account's chat devices in the key directory, with the ledger proof.
    Keys { who: String },
}

/// A chat by id or by the start of its id.
fn chat_id(c: &Client, s: &str) -> anyhow::Result<String> {
    let list = c.get("/me/chats")?;
    let ids: Vec<String> = list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let hits: Vec<&String> = ids.iter().filter(|id| id.starts_with(s)).collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(anyhow!(
            "no chat starts with `{s}` (see `starling chat list`)"
        )),
        _ => Err(anyhow!("`{s}` matches several chats; give more of the id")),
    }
}

fn short(account: &str) -> String {
    let k = account.strip_prefix("ed25519:").unwrap_or(account);
    k.chars().take(10).collect()
}

pub fn chat(cmd: ChatCmd, opts: ClientOpts) -> anyhow::Result<()> {
    let (c, _me) = session_of(&opts)?;
    let j = opts.json;
    let show = |v: &Value| println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match cmd {
        ChatCmd::Setup => {
            c.post("/me/chat", json!({}))?;
            let pb = spinner("publishing this device in the key directory");
            let start = std::time::Instant::now();
            let status = loop {
                let s = c.get("/me/chat")?;
                if s["published"] == json!(true) || start.elapsed() > Duration::from_secs(60) {
                    break s;
                }
                std::thread::sleep(Duration::from_millis(250));
            };
            pb.finish_and_clear();
            if j {
                show(&status);
            } else if status["published"] == json!(true) {
                println!(
                    "chat is on: device {} ({})",
                    status["device"],
                    status["encryption"].as_str().unwrap_or("")
                );
            } else {
                bail!(
                    "the device is not in the key directory yet; try `starling chat setup` again"
                );
            }
        }
        ChatCmd::List => {
            let v = c.get("/me/chats")?;
            if j {
                show(&v);
            } else {
                for ch in v["items"].as_array().into_iter().flatten() {
                    let members: Vec<String> = ch["members"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|m| m["account"].as_str().or(m.as_str()).map(short))
                        .collect();
                    let last = ch["last"]["text"].as_str().unwrap_or("");
                    let unread = ch["unread"].as_u64().unwrap_or(0);
                    let left = if ch["left"] == json!(true) {
                        " (left)"
                    } else {
                        ""
                    };
                    println!(
                        "{}  [{}]{left}  {}{}",
                        &ch["id"].as_str().unwrap_or("")
                            [..8.min(ch["id"].as_str().unwrap_or("").len())],
                        members.join(", "),
                        if unread > 0 {
                            format!("({unread} new) ")
                        } else {
                            String::new()
                        },
                        last
                    );
                }
            }
        }
        ChatCmd::New { members } => {
            let members = members
                .iter()
                .map(|m| resolve(&c, m))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let v = c.post("/me/chats", json!({ "members": members }))?;
            if j {
                show(&v);
            } else {
                println!(
                    "chat {} started (end-to-end encrypted)",
                    v["id"].as_str().unwrap_or("")
                );
            }
        }
        ChatCmd::Send { chat, text } => {
            let id = chat_id(&c, &chat)?;
            let v = c.post(&format!("/me/chats/{id}/messages"), json!({ "text": text }))?;
            if j {
                show(&v);
            } else {
                println!("sent");
            }
        }
        ChatCmd::Read { chat, limit } => {
            let id = chat_id(&c, &chat)?;
            let v = c.get(&format!("/me/chats/{id}/messages?limit=1000"))?;
            let items: Vec<Value> = v["items"].as_array().cloned().unwrap_or_default();
            let from = items.len().saturating_sub(limit);
            if j {
                show(&json!({"items": &items[from..]}));
            } else {
                println!("🔒 {}", v["encryption"].as_str().unwrap_or(""));
                for m in &items[from..] {
                    if m["kind"] == "event" {
                        println!("  · {}", m["text"].as_str().unwrap_or(""));
                    } else {
                        let who = if m["mine"] == json!(true) {
                            "you".to_string()
                        } else {
                            short(m["from"].as_str().unwrap_or(""))
                        };
                        println!("{who}: {}", m["text"].as_str().unwrap_or(""));
                    }
                }
            }
            c.post(&format!("/me/chats/{id}/read"), json!({}))?;
        }
        ChatCmd::Members { chat, add, remove } => {
            let id = chat_id(&c, &chat)?;
            let body = match (add.is_empty(), remove.is_empty()) {
                (false, true) => {
                    json!({ "add": add.iter().map(|m| resolve(&c, m)).collect::<anyhow::Result<Vec<_>>>()? })
                }
                (true, false) => {
                    json!({ "remove": remove.iter().map(|m| resolve(&c, m)).collect::<anyhow::Result<Vec<_>>>()? })
                }
                _ => bail!("give either --add or --remove"),
            };
            let v = c.post(&format!("/me/chats/{id}/members"), body)?;
            if j {
                show(&v);
            } else {
                println!("members changed; the chat is at epoch {}", v["epoch"]);
            }
        }
        ChatCmd::Leave { chat } => {
            let id = chat_id(&c, &chat)?;
            c.post(&format!("/me/chats/{id}/leave"), json!({}))?;
            println!("left the chat");
        }
        ChatCmd::Rekey { chat } => {
            let id = chat_id(&c, &chat)?;
            let v = c.post(&format!("/me/chats/{id}/update"), json!({}))?;
            println!("new keys; the chat is at epoch {}", v["epoch"]);
        }
        ChatCmd::Safety { chat } => {
            let id = chat_id(&c, &chat)?;
            let v = c.get(&format!("/me/chats/{id}/safety"))?;
            if j {
                show(&v);
            } else {
                for m in v["members"].as_array().into_iter().flatten() {
                    println!("{}", m["account"].as_str().unwrap_or(""));
                    println!(
                        "  safety number: {}",
                        m["safety_number"].as_str().unwrap_or("")
                    );
                    println!("  ({} device(s), directory version {}, proof checked at shard {} height {})", m["devices"], m["directory_version"], m["proof_checked_at"]["shard"], m["proof_checked_at"]["height"]);
                }
            }
        }
        ChatCmd::Keys { who } => {
            let account = resolve(&c, &who)?;
            show(&c.get(&format!("/accounts/{}/chat-keys", enc(&account)))?);
        }
    }
    Ok(())
}
