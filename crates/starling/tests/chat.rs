//! End-to-end encrypted chat across real processes on 127.0.0.1: a devnet (its relay is the
//! mailbox relay and the home of a third account) and two user nodes (`starling node`, relay
//! role) that name it as their mailbox relay.
//!
//! Alice and Bob chat both ways node to node; Bob's node is killed, Alice writes, and the
//! restarted node takes everything from the relay once and in order; the relay's files hold
//! none of the texts; tampered, replayed and truncated envelopes are refused without harm; a
//! member removed from a group reads nothing after; malformed protocol requests are answered
//! with clear refusals. A node killed at each step of a commit recovers; an account's new
//! device joins its chats with their history, and the chat export fills in another; and a
//! chaos run (a relay and a node killed, a mailbox flooded, a crash during a commit) ends
//! with every text read once and in order.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use starling_protocol::chat::{ChatRequest, ChatResponse};
use starling_types::{Decode as _, Encode as _, Hash};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "a password for the chat test";

/// A JSON request with a bearer token; the status and the parsed body.
fn call(api: SocketAddr, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let (status, out) =
        http_bytes(api, method, path, &[("Authorization", &auth)], &body).expect("the API answers");
    (status, serde_json::from_slice(&out).unwrap_or(Value::Null))
}

fn ok(api: SocketAddr, method: &str, path: &str, token: &str, body: Value) -> Value {
    let (status, v) = call(api, method, path, token, body);
    assert_eq!(status, 200, "{method} {path}: {v}");
    v
}

/// A chat protocol request over the node's HTTP gateway.
fn protocol(api: SocketAddr, bytes: &[u8]) -> ChatResponse {
    let (status, out) = http_bytes(
        api,
        "POST",
        "/api/v1/chat/protocol",
        &[("Content-Type", "application/octet-stream")],
        bytes,
    )
    .unwrap();
    assert_eq!(status, 200);
    ChatResponse::from_bytes(&out).unwrap()
}

fn refusal(r: ChatResponse) -> String {
    match r {
        ChatResponse::Refused { code, .. } => code,
        other => panic!("not refused: {other:?}"),
    }
}

struct UserNode {
    config: PathBuf,
    api: SocketAddr,
    child: Option<Killed>,
    /// Where its chat services are reached (`<key>@<address>`), as it says when it starts.
    reachable: String,
}

impl UserNode {
    fn create(
        dir: &Path,
        name: &str,
        genesis: &Path,
        bootstrap: &[String],
        relays: &[&str],
        key_update_secs: u64,
    ) -> UserNode {
        starling(dir, &["keys", "generate", "--out", &format!("{name}.key")]);
        let api = free_addr();
        let config = dir.join(format!("{name}.toml"));
        let bootstrap: Vec<String> = bootstrap.iter().map(|b| format!("\"{b}\"")).collect();
        std::fs::write(
            &config,
            format!(
                "roles = [\"relay\"]\ndata_dir = \"{name}-data\"\nkey_file = \"{name}.key\"\ngenesis = \"{}\"\n\n[p2p]\nlisten = \"{}\"\nbootstrap = [{}]\n\n[api]\nlisten = \"{api}\"\n\n[metrics]\nlisten = \"{}\"\n\n[chat]\nrelays = [{}]\nkey_update_secs = {key_update_secs}\n",
                genesis.display(),
                free_addr(),
                bootstrap.join(", "),
                free_addr(),
                relays
                    .iter()
                    .map(|r| format!("\"{r}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        )
        .unwrap();
        starling(dir, &["init", "--config", config.to_str().unwrap()]);
        let mut n = UserNode {
            config,
            api,
            child: None,
            reachable: String::new(),
        };
        n.start(dir);
        n
    }

    fn start(&mut self, dir: &Path) {
        self.start_with(dir, &[]);
    }

    /// Starts the node with `env` (`STARLING_CHAT_CRASH_AT=<step>`: it stops itself at that
    /// step of a commit; `STARLING_CHAT_FAULT=commit-unordered`: it delivers its commits
    /// without having them ordered).
    fn start_with(&mut self, dir: &Path, env: &[(&str, &str)]) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_starling"));
        command
            .current_dir(dir)
            .args(["node", "--config", self.config.to_str().unwrap()]);
        for (k, v) in env {
            command.env(k, v);
        }
        let (child, lines) = spawn_until_api_lines(&mut command);
        self.child = Some(Killed(child));
        if let Some(r) = lines
            .iter()
            .find_map(|l| l.strip_prefix("chat reachable at "))
        {
            self.reachable = r.to_string();
        }
    }
}

/// Imports devnet user `i` (funded at genesis) into the node; returns (account, token).
fn import(api: SocketAddr, label: &str, i: u32) -> (String, String) {
    let key = starling_node::devnet::user_key(i);
    let body = json!({"label": label, "password": PASSWORD, "secret": hex::encode(*key.to_seed()), "bearer": true});
    let (status, v) = http(
        api,
        "POST",
        "/api/v1/keystore/import",
        Some(&body.to_string()),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    let v: Value = serde_json::from_str(&v).unwrap();
    (
        key.public_key().to_text(),
        v["token"].as_str().unwrap().to_string(),
    )
}

fn login(api: SocketAddr, label: &str) -> String {
    let body = json!({"account": label, "password": PASSWORD, "bearer": true});
    let (status, v) = http(api, "POST", "/api/v1/session", Some(&body.to_string())).unwrap();
    assert_eq!(status, 200, "{v}");
    let v: Value = serde_json::from_str(&v).unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// Turns chat on and waits until the device is in the key directory with key packages at
/// home (and at `relays_needed` relays).
fn chat_on(api: SocketAddr, token: &str, relays_needed: usize) {
    ok(api, "POST", "/api/v1/me/chat", token, Value::Null);
    let mut last = Value::Null;
    let start = std::time::Instant::now();
    loop {
        let s = ok(api, "GET", "/api/v1/me/chat", token, Value::Null);
        let ready = s["published"] == json!(true)
            && s["key_packages_at_home"].as_u64().unwrap_or(0) > 0
            && s["key_packages_at_relays"].as_array().map_or(0, Vec::len) >= relays_needed;
        if ready {
            return;
        }
        if s != last {
            last = s;
        }
        assert!(
            start.elapsed() < common::TIMEOUT,
            "timed out waiting for the chat device on {api} to be published: {last}; the node: {}; the account: {}",
            get(api, "/api/v1/status").unwrap_or_default(),
            last["identity"]
                .as_str()
                .and_then(|i| i.split('#').next())
                .and_then(|a| get(api, &format!("/api/v1/accounts/{a}/chat-keys")))
                .unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The texts of a conversation, in order (events left out).
fn texts(api: SocketAddr, token: &str, chat: &str) -> Vec<(String, String)> {
    let v = ok(
        api,
        "GET",
        &format!("/api/v1/me/chats/{chat}/messages?limit=1000"),
        token,
        Value::Null,
    );
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "text")
        .map(|m| {
            (
                m["from"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Starts a chat with `members` (account ids or handles); returns its id.
fn new_chat(api: SocketAddr, token: &str, members: &[&str]) -> String {
    ok(
        api,
        "POST",
        "/api/v1/me/chats",
        token,
        json!({ "members": members }),
    )["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn send(api: SocketAddr, token: &str, chat: &str, text: &str) {
    ok(
        api,
        "POST",
        &format!("/api/v1/me/chats/{chat}/messages"),
        token,
        json!({ "text": text }),
    );
}

fn wait_texts(api: SocketAddr, token: &str, chat: &str, n: usize) -> Vec<(String, String)> {
    wait_for(&format!("{n} texts"), || {
        let t = texts(api, token, chat);
        (t.len() >= n).then_some(t)
    })
}

/// Every file under `dir`, read whole.
fn files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The envelopes in a relay's mailbox log (records: len, seq, expiry, checksum, bytes).
fn logged_envelopes(log: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while log.len() - at >= 28 {
        let n = u32::from_be_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        out.push(log[at + 28..at + 28 + n].to_vec());
        at += 28 + n;
    }
    out
}

/// A devnet (in `<dir>/devnet`) whose relay is the chat's mailbox relay, and what user nodes
/// need to join it.
struct Network {
    devnet: Killed,
    /// What it printed on start.
    lines: Vec<String>,
    api: SocketAddr,
    relay: String,
    bootstrap: Vec<String>,
    genesis: PathBuf,
}

impl Network {
    fn start(dir: &Path) -> Network {
        let devnet_dir = dir.join("devnet");
        let (child, lines) = spawn_until_api_lines(
            Command::new(env!("CARGO_BIN_EXE_starling"))
                .args(["devnet", "--data-dir", devnet_dir.to_str().unwrap()])
                .args([
                    "--api",
                    &free_addr().to_string(),
                    "--block-interval-ms",
                    "50",
                ]),
        );
        let devnet = Killed(child);
        let api: SocketAddr = lines
            .iter()
            .find_map(|l| l.split("http://").nth(1))
            .and_then(|s| s.split('/').next())
            .unwrap()
            .parse()
            .unwrap();
        let relay = lines
            .iter()
            .find_map(|l| l.strip_prefix("chat relay at "))
            .expect("the devnet names its chat relay")
            .to_string();
        let bootstrap: Vec<String> = std::fs::read_to_string(devnet_dir.join("p2p-addresses"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        Network {
            devnet,
            lines,
            api,
            relay,
            bootstrap,
            genesis: devnet_dir.join("genesis.toml"),
        }
    }
}

#[test]
fn chat_across_user_nodes_and_a_mailbox_relay() {
    let _one = common::one_network_at_a_time();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let devnet_dir = dir.join("devnet");
    let Network {
        devnet: _devnet,
        lines,
        api: devnet_api,
        relay,
        bootstrap,
        genesis,
    } = Network::start(dir);
    // The first screen says where the web app and the data are, and how to stop.
    for (what, value) in [
        ("web app", "http://"),
        ("data", devnet_dir.file_name().unwrap().to_str().unwrap()),
        ("stop", "Ctrl-C"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.trim_start().starts_with(what) && l.contains(value)),
            "no {what:?} line in {lines:#?}"
        );
    }
    let mut alice_node =
        UserNode::create(dir, "alice-node", &genesis, &bootstrap, &[&relay], 86_400);
    // Bob's device refreshes its keys every few seconds: its commits race Alice's below.
    let mut bob_node = UserNode::create(dir, "bob-node", &genesis, &bootstrap, &[&relay], 3);
    let (a_api, b_api) = (alice_node.api, bob_node.api);

    let (alice, at) = import(a_api, "alice", 1);
    let (bob, mut bt) = import(b_api, "bob", 2);
    // Carol lives on the devnet's relay (signed up there, funded by its faucet).
    let (status, v) = http(
        devnet_api,
        "POST",
        "/api/v1/keystore",
        Some(&json!({"label": "carol", "password": PASSWORD, "bearer": true}).to_string()),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    let v: Value = serde_json::from_str(&v).unwrap();
    let (carol, ct) = (
        v["account"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    );

    // Before chat is on: clear errors.
    let (status, v) = call(a_api, "GET", "/api/v1/me/chats", &at, Value::Null);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("chat_not_set_up")),
        "{v}"
    );
    chat_on(a_api, &at, 1);
    chat_on(b_api, &bt, 1);
    wait_for("carol's funds", || {
        let (s, _) = call(devnet_api, "POST", "/api/v1/me/chat", &ct, Value::Null);
        (s == 200).then_some(())
    });
    chat_on(devnet_api, &ct, 0);

    // The key directory, with a proof, as any node serves it.
    let keys = get(a_api, &format!("/api/v1/accounts/{bob}/chat-keys")).unwrap();
    assert_eq!(keys["devices"].as_array().unwrap().len(), 1, "{keys}");
    assert!(
        keys["devices"][0]["relays"][0].as_str().unwrap() == relay,
        "{keys}"
    );
    assert!(!keys["proof"].as_str().unwrap().is_empty());
    let bob_mailbox = keys["devices"][0]["mailbox"].as_str().unwrap().to_string();
    let (status, _) = http(
        a_api,
        "GET",
        &format!("/api/v1/accounts/{carol}/chat-keys"),
        None,
    )
    .unwrap();
    assert_eq!(status, 200);

    // Alice starts a chat with Bob; both ways, node to node.
    let chat = new_chat(a_api, &at, &[&bob]);
    wait_for("bob to join", || {
        let v = ok(b_api, "GET", "/api/v1/me/chats", &bt, Value::Null);
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == json!(chat))
            .then_some(())
    });
    send(a_api, &at, &chat, "hello bob");
    assert_eq!(
        wait_texts(b_api, &bt, &chat, 1),
        vec![(alice.clone(), "hello bob".to_string())]
    );
    let list = ok(b_api, "GET", "/api/v1/me/chats", &bt, Value::Null);
    assert_eq!(list["items"][0]["unread"], json!(1), "{list}");
    ok(
        b_api,
        "POST",
        &format!("/api/v1/me/chats/{chat}/read"),
        &bt,
        json!({}),
    );
    let list = ok(b_api, "GET", "/api/v1/me/chats", &bt, Value::Null);
    assert_eq!(list["items"][0]["unread"], json!(0), "{list}");
    send(b_api, &bt, &chat, "hi alice");
    assert_eq!(
        wait_texts(a_api, &at, &chat, 2),
        vec![
            (alice.clone(), "hello bob".into()),
            (bob.clone(), "hi alice".into())
        ]
    );
    // Both see the same safety number.
    let sa = ok(
        a_api,
        "GET",
        &format!("/api/v1/me/chats/{chat}/safety"),
        &at,
        Value::Null,
    );
    let sb = ok(
        b_api,
        "GET",
        &format!("/api/v1/me/chats/{chat}/safety"),
        &bt,
        Value::Null,
    );
    assert_eq!(
        sa["members"][0]["safety_number"],
        sb["members"][0]["safety_number"]
    );
    assert_eq!(
        sa["members"][0]["safety_number"].as_str().unwrap().len(),
        71
    );

    // Bob's node goes down hard; Alice keeps writing: the mail waits at the relay.
    bob_node.child = None;
    let down: Vec<String> = (1..=3)
        .map(|i| format!("while you were away {i}"))
        .collect();
    for t in &down {
        send(a_api, &at, &chat, t);
    }
    let relay_dir = devnet_dir.join("relay");
    let mailboxes = relay_dir.join("mail").join("mailboxes");
    // They wait in the mailbox Bob named for this chat inside it, not in the one the key
    // directory lists for his device, so the relay's files do not say whose they are.
    let holding: Vec<(PathBuf, Vec<Vec<u8>>)> = std::fs::read_dir(&mailboxes)
        .expect("the relay keeps mailboxes")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| {
            let envelopes = logged_envelopes(&std::fs::read(&p).unwrap());
            (p, envelopes)
        })
        .filter(|(_, envelopes)| !envelopes.is_empty())
        .collect();
    let [(log, envelopes)] = &holding[..] else {
        let held: Vec<_> = holding.iter().map(|(p, e)| (p, e.len())).collect();
        panic!("one mailbox at the relay holds mail: {held:?}");
    };
    let (log, envelopes) = (log.clone(), envelopes.clone());
    assert_ne!(
        log.file_stem().unwrap().to_str().unwrap(),
        bob_mailbox,
        "bob's mail for the chat is not in his directory mailbox"
    );
    assert_eq!(envelopes.len(), 3);
    // Each deposit is sealed to Bob's device (its seal key is in the key directory), so the
    // relay cannot match it with what other members' mailboxes receive.
    assert!(
        envelopes.iter().all(|e| e.starts_with(b"SLSEAL01")),
        "deposits for bob are sealed"
    );
    // The relay's files hold none of the texts (nor do the user nodes' files).
    let mut all = Vec::new();
    files(&relay_dir, &mut all);
    files(&dir.join("alice-node-data"), &mut all);
    files(&dir.join("bob-node-data"), &mut all);
    for (path, bytes) in &all {
        for t in down
            .iter()
            .map(String::as_str)
            .chain(["hello bob", "hi alice"])
        {
            assert!(
                !contains(bytes, t.as_bytes()),
                "{} holds `{t}`",
                path.display()
            );
        }
    }

    // Bob's node restarts; once Bob logs in, everything arrives once and in order.
    bob_node.start(dir);
    bt = login(b_api, "bob");
    let got = wait_texts(b_api, &bt, &chat, 5);
    let expected: Vec<(String, String)> = [("hello bob", &alice), ("hi alice", &bob)]
        .into_iter()
        .map(|(t, w)| (w.clone(), t.to_string()))
        .chain(down.iter().map(|t| (alice.clone(), t.clone())))
        .collect();
    assert_eq!(got, expected);
    // Bob's keys were refreshed on schedule (Alice saw his commits) and nothing was lost.
    wait_for("bob's scheduled key refresh", || {
        let v = ok(a_api, "GET", "/api/v1/me/chats", &at, Value::Null);
        (v["items"][0]["epoch"].as_u64().unwrap() >= 2).then_some(())
    });

    // The CLI, on Bob's node with his session.
    let session = dir.join("bob-session.json");
    std::fs::write(
        &session,
        json!({"node": format!("http://{b_api}"), "account": bob, "label": "bob", "token": bt})
            .to_string(),
    )
    .unwrap();
    let cli = |args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_starling"))
            .args(args)
            .env("STARLING_SESSION", &session)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let list = cli(&["chat", "list"]);
    assert!(list.contains(&chat[..8]), "{list}");
    let read = cli(&["chat", "read", &chat[..8]]);
    assert!(
        read.contains("MLS")
            && read.contains("you: hi alice")
            && read.contains("while you were away 3"),
        "{read}"
    );
    cli(&["chat", "send", &chat[..6], "from the command line"]);
    let safety = cli(&["chat", "safety", &chat[..8]]);
    assert!(
        safety.contains(sb["members"][0]["safety_number"].as_str().unwrap()),
        "{safety}"
    );
    let keys = cli(&["chat", "keys", &alice]);
    assert!(keys.contains("\"proof\""), "{keys}");
    assert_eq!(
        wait_texts(a_api, &at, &chat, 6)[5],
        (bob.clone(), "from the command line".to_string())
    );

    wait_for("the relay to drop what Bob took", || {
        (!log.exists() || logged_envelopes(&std::fs::read(&log).unwrap()).is_empty()).then_some(())
    });

    // Replayed, tampered and truncated envelopes are refused and change nothing.
    let mailbox = Hash::from_hex(&bob_mailbox).unwrap();
    let before = ok(b_api, "GET", "/api/v1/me/chat", &bt, Value::Null)["refused_envelopes"]
        .as_u64()
        .unwrap();
    let mut bad = vec![envelopes[0].clone()];
    let mut flipped = envelopes[1].clone();
    let n = flipped.len();
    flipped[n / 2] ^= 0x40;
    bad.push(flipped);
    bad.push(envelopes[2][..envelopes[2].len() - 7].to_vec());
    bad.push(b"not an MLS message at all".to_vec());
    let deposit = ChatRequest::Deposit {
        mailbox,
        envelopes: bad,
    };
    assert!(matches!(
        protocol(devnet_api, &deposit.to_bytes()),
        ChatResponse::Stored { .. }
    ));
    wait_for("bob's node to refuse the bad envelopes", || {
        let s = ok(b_api, "GET", "/api/v1/me/chat", &bt, Value::Null);
        (s["refused_envelopes"].as_u64().unwrap() >= before + 3).then_some(())
    });
    send(a_api, &at, &chat, "still fine");
    let got = wait_texts(b_api, &bt, &chat, 7);
    assert_eq!(got.len(), 7, "{got:?}");
    assert_eq!(got[6], (alice.clone(), "still fine".to_string()));

    // Mallory poses as Alice: a device under Alice's name with a key of her own takes one of
    // Bob's key packages at the relay, adds Bob to a group and writes "as Alice". Bob's node
    // checks the welcome's members against the key directory and refuses it: no chat appears.
    let bob_device = ok(b_api, "GET", "/api/v1/me/chat", &bt, Value::Null)["device"]
        .as_u64()
        .unwrap() as u32;
    let take = ChatRequest::TakeKeyPackage {
        account: starling_types::PublicKey::from_text(&bob).unwrap(),
        device: bob_device,
    };
    let ChatResponse::KeyPackage(kp) = protocol(devnet_api, &take.to_bytes()) else {
        panic!("no key package of Bob's at the relay");
    };
    // Only Bob's device may put his key packages: one taken and put back by someone else
    // (with a signature of their own) is refused, so it cannot push out fresh ones.
    let ChatResponse::KeyPackage(taken) = protocol(devnet_api, &take.to_bytes()) else {
        panic!("no key package of Bob's at the relay");
    };
    let stranger_key =
        starling_crypto::SecretKey::from_seed(starling_types::KeyType::Ed25519, &[8; 32]).unwrap();
    let bob_key = starling_types::PublicKey::from_text(&bob).unwrap();
    let at_ms = starling_protocol::chat::now_ms();
    let put_back = ChatRequest::PutKeyPackages {
        account: bob_key,
        device: bob_device,
        packages: vec![taken],
        at_ms,
        signature: stranger_key.sign(b"anything"),
    };
    assert_eq!(
        refusal(protocol(devnet_api, &put_back.to_bytes())),
        "bad_signature"
    );
    let mut mallory = starling_chat::Device::new(&alice, 0).unwrap();
    let posed = mallory.create_group().unwrap();
    let out = mallory.add(&posed, &[kp]).unwrap();
    mallory.confirm(&posed).unwrap();
    let lure = mallory
        .send(&posed, b"it's Alice: what is your password?")
        .unwrap();
    let before = ok(b_api, "GET", "/api/v1/me/chat", &bt, Value::Null)["refused_envelopes"]
        .as_u64()
        .unwrap();
    let deposit = ChatRequest::Deposit {
        mailbox,
        envelopes: vec![out.welcome.unwrap(), lure],
    };
    assert!(matches!(
        protocol(devnet_api, &deposit.to_bytes()),
        ChatResponse::Stored { .. }
    ));
    wait_for("bob's node to refuse the impostor's welcome", || {
        let s = ok(b_api, "GET", "/api/v1/me/chat", &bt, Value::Null);
        (s["refused_envelopes"].as_u64().unwrap() > before).then_some(())
    });
    let list = ok(b_api, "GET", "/api/v1/me/chats", &bt, Value::Null);
    let posed_id = posed.clone();
    let posed = hex::encode(&posed);
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != posed.as_str()),
        "{list}"
    );
    send(a_api, &at, &chat, "the real alice");
    assert_eq!(
        wait_texts(b_api, &bt, &chat, 8)[7],
        (alice.clone(), "the real alice".to_string())
    );

    // Junk for groups Bob is not in (Mallory's, well formed): a few wait for a welcome that
    // may be on the way, the rest are refused, and none of it goes into Bob's device state.
    let before = ok(b_api, "GET", "/api/v1/me/chat", &bt, Value::Null)["refused_envelopes"]
        .as_u64()
        .unwrap();
    let junk: Vec<Vec<u8>> = (0..100)
        .map(|_| mallory.send(&posed_id, &[b'j'; 16_000]).unwrap())
        .collect();
    for part in junk.chunks(25) {
        let deposit = ChatRequest::Deposit {
            mailbox,
            envelopes: part.to_vec(),
        };
        assert!(matches!(
            protocol(devnet_api, &deposit.to_bytes()),
            ChatResponse::Stored { .. }
        ));
    }
    wait_for("bob's node to refuse the junk it does not keep", || {
        let s = ok(b_api, "GET", "/api/v1/me/chat", &bt, Value::Null);
        (s["refused_envelopes"].as_u64().unwrap() >= before + 60).then_some(())
    });
    let bob_dir = dir.join("bob-node-data").join("chat").join(hex::encode(
        starling_types::PublicKey::from_text(&bob).unwrap().bytes,
    ));
    let size = |f: &str| std::fs::metadata(bob_dir.join(f)).map_or(0, |m| m.len());
    assert!(
        size("device.sealed") < 512 * 1024,
        "{}",
        size("device.sealed")
    );
    assert!(
        size("deferred.sealed") < 3 * 1024 * 1024,
        "{}",
        size("deferred.sealed")
    );

    // A group: Alice adds Carol (the commit ordered by the delivery relay), then removes her.
    let epoch = ok(
        a_api,
        "POST",
        &format!("/api/v1/me/chats/{chat}/members"),
        &at,
        json!({ "add": [carol] }),
    )["epoch"]
        .as_u64()
        .unwrap();
    assert!(epoch >= 2);
    wait_for("carol to join", || {
        let v = ok(devnet_api, "GET", "/api/v1/me/chats", &ct, Value::Null);
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == json!(chat))
            .then_some(())
    });
    send(a_api, &at, &chat, "to all three");
    assert_eq!(wait_texts(devnet_api, &ct, &chat, 1)[0].1, "to all three");
    assert_eq!(wait_texts(b_api, &bt, &chat, 9)[8].1, "to all three");
    send(devnet_api, &ct, &chat, "carol here");
    assert_eq!(wait_texts(a_api, &at, &chat, 10)[9].1, "carol here");
    ok(
        a_api,
        "POST",
        &format!("/api/v1/me/chats/{chat}/members"),
        &at,
        json!({ "remove": [carol] }),
    );
    wait_for("carol to learn she was removed", || {
        let v = ok(devnet_api, "GET", "/api/v1/me/chats", &ct, Value::Null);
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == json!(chat) && c["left"] == json!(true))
            .then_some(())
    });
    send(a_api, &at, &chat, "just us again");
    assert_eq!(wait_texts(b_api, &bt, &chat, 11)[10].1, "just us again");
    // Bob answers too (his commit view agrees), and Carol never reads either.
    send(b_api, &bt, &chat, "indeed");
    assert_eq!(wait_texts(a_api, &at, &chat, 12)[11].1, "indeed");
    let carol_texts = texts(devnet_api, &ct, &chat);
    assert!(
        carol_texts
            .iter()
            .all(|(_, t)| t != "just us again" && t != "indeed"),
        "{carol_texts:?}"
    );
    let (status, v) = call(
        devnet_api,
        "POST",
        &format!("/api/v1/me/chats/{chat}/messages"),
        &ct,
        json!({"text": "let me back"}),
    );
    assert_eq!(status, 404, "{v}");

    // Concurrent commits: Alice and Bob refresh their keys at once. The delivery relay takes
    // one commit per epoch; the other is dropped and made again in the next epoch, so both
    // succeed at different epochs and the group does not fork.
    let update = |api: SocketAddr, token: String, chat: String| {
        std::thread::spawn(move || {
            call(
                api,
                "POST",
                &format!("/api/v1/me/chats/{chat}/update"),
                &token,
                Value::Null,
            )
        })
    };
    let (ha, hb) = (
        update(a_api, at.clone(), chat.clone()),
        update(b_api, bt.clone(), chat.clone()),
    );
    let (ra, rb) = (ha.join().unwrap(), hb.join().unwrap());
    assert_eq!(ra.0, 200, "{}", ra.1);
    assert_eq!(rb.0, 200, "{}", rb.1);
    assert_ne!(ra.1["epoch"], rb.1["epoch"], "two commits for one epoch");
    send(a_api, &at, &chat, "after the race");
    assert_eq!(wait_texts(b_api, &bt, &chat, 13)[12].1, "after the race");
    send(b_api, &bt, &chat, "no fork");
    assert_eq!(wait_texts(a_api, &at, &chat, 14)[13].1, "no fork");

    // Leaving: in a new group of three, Carol leaves; Alice, the first member, removes her
    // device, and the two others go on without her.
    let trio = new_chat(a_api, &at, &[&bob, &carol]);
    for (api, token) in [(b_api, &bt), (devnet_api, &ct)] {
        wait_for("the trio to be joined", || {
            let v = ok(api, "GET", "/api/v1/me/chats", token, Value::Null);
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == json!(trio))
                .then_some(())
        });
    }
    ok(
        devnet_api,
        "POST",
        &format!("/api/v1/me/chats/{trio}/leave"),
        &ct,
        Value::Null,
    );
    wait_for("alice to remove carol's device", || {
        let v = ok(a_api, "GET", "/api/v1/me/chats", &at, Value::Null);
        let c = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == json!(trio))?
            .clone();
        let members: Vec<&str> = c["members"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        (members.len() == 2 && !members.contains(&carol.as_str())).then_some(())
    });
    send(a_api, &at, &trio, "two of us now");
    assert_eq!(wait_texts(b_api, &bt, &trio, 1)[0].1, "two of us now");
    let v = ok(devnet_api, "GET", "/api/v1/me/chats", &ct, Value::Null);
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == json!(trio) && c["left"] == json!(true)),
        "{v}"
    );
    assert!(texts(devnet_api, &ct, &trio).is_empty());

    // Malformed requests get clear answers.
    assert_eq!(refusal(protocol(devnet_api, b"")), "malformed");
    assert_eq!(refusal(protocol(devnet_api, &[2, 0, 1])), "malformed");
    assert_eq!(refusal(protocol(devnet_api, &[77])), "malformed");
    let too_many = {
        let mut b = vec![1u8];
        mailbox.encode(&mut b);
        b.extend_from_slice(&100_000u32.to_be_bytes());
        b
    };
    assert_eq!(refusal(protocol(devnet_api, &too_many)), "malformed");
    let empty = ChatRequest::Deposit {
        mailbox,
        envelopes: vec![],
    };
    assert_eq!(refusal(protocol(devnet_api, &empty.to_bytes())), "empty");
    let stranger =
        starling_crypto::SecretKey::from_seed(starling_types::KeyType::Ed25519, &[9; 32]).unwrap();
    let forged = match ChatRequest::fetch(&stranger.public_key(), &stranger, 0) {
        ChatRequest::Fetch {
            at_ms, signature, ..
        } => ChatRequest::Fetch {
            key: starling_types::PublicKey::ed25519(mailbox.0),
            after: 0,
            at_ms,
            signature,
        },
        _ => unreachable!(),
    };
    assert_eq!(
        refusal(protocol(devnet_api, &forged.to_bytes())),
        "bad_signature"
    );
    let take = ChatRequest::TakeKeyPackage {
        account: stranger.public_key(),
        device: 0,
    };
    assert_eq!(
        refusal(protocol(devnet_api, &take.to_bytes())),
        "no_key_package"
    );
    // The API's own bad requests.
    let (status, v) = call(
        a_api,
        "POST",
        "/api/v1/me/chats",
        &at,
        json!({"members": []}),
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = call(
        a_api,
        "POST",
        "/api/v1/me/chats",
        &at,
        json!({"members": ["@nobody_here"]}),
    );
    assert_eq!(status, 404, "{v}");
    let (status, _) = call(
        a_api,
        "POST",
        "/api/v1/me/chats/zz/messages",
        &at,
        json!({"text": "x"}),
    );
    assert_eq!(status, 400);
    let (status, _) = call(
        a_api,
        "POST",
        &format!("/api/v1/me/chats/{chat}/messages"),
        &at,
        json!({"text": "  "}),
    );
    assert_eq!(status, 400);
    let (status, _) = call(
        a_api,
        "POST",
        &format!("/api/v1/me/chats/{chat}/messages"),
        &at,
        json!({"txt": "x"}),
    );
    assert_eq!(status, 400);
    drop(alice_node.child.take());
}

/// The epoch each of `nodes` (API, token) has `chat` at.
fn epochs(nodes: &[(SocketAddr, &str)], chat: &str) -> Vec<u64> {
    nodes
        .iter()
        .map(|(api, token)| {
            let v = ok(*api, "GET", "/api/v1/me/chats", token, Value::Null);
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == json!(chat))
                .map_or(0, |c| c["epoch"].as_u64().unwrap())
        })
        .collect()
}

/// Alice's node is killed at each step of ordering a commit (staged and saved; ordered by the
/// delivery relay; queued for delivery) and restarted. Each time the commit settles: Bob's
/// next commit goes through, both reach the same epoch, and texts go both ways once and in
/// order.
#[test]
fn a_node_killed_at_each_step_of_a_commit_recovers() {
    let _one = common::one_network_at_a_time();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let net = Network::start(dir);
    let (genesis, bootstrap, relay) = (&net.genesis, &net.bootstrap, &net.relay);
    let mut alice_node = UserNode::create(dir, "alice-node", genesis, bootstrap, &[relay], 86_400);
    // Bob's device names no relay: while his node is down, nobody takes his mail.
    let mut bob_node = UserNode::create(dir, "bob-node", genesis, bootstrap, &[], 86_400);
    let (a_api, b_api) = (alice_node.api, bob_node.api);
    let (_, mut at) = import(a_api, "alice", 1);
    let (bob, bt) = import(b_api, "bob", 2);
    chat_on(a_api, &at, 1);
    chat_on(b_api, &bt, 0);
    let chat = new_chat(a_api, &at, &[&bob]);
    send(a_api, &at, &chat, "hello");
    assert_eq!(wait_texts(b_api, &bt, &chat, 1).len(), 1);
    let mut expected: Vec<String> = vec!["hello".into()];
    for step in ["commit-staged", "commit-ordered", "commit-queued"] {
        alice_node.child = None;
        alice_node.start_with(dir, &[("STARLING_CHAT_CRASH_AT", step)]);
        at = login(a_api, "alice");
        // Alice refreshes her keys, and her node dies at the step.
        let path = format!("/api/v1/me/chats/{chat}/update");
        let auth = format!("Bearer {at}");
        let answer = http_bytes(a_api, "POST", &path, &[("Authorization", &auth)], &[]);
        assert!(answer.is_none(), "{step}: the node answered {answer:?}");
        let status = alice_node.child.as_mut().unwrap().0.wait().unwrap();
        assert!(!status.success(), "{step}: {status}");
        alice_node.child = None;
        alice_node.start(dir);
        at = login(a_api, "alice");
        // Bob changes the group too: his commit must win an epoch, whatever Alice's did.
        let bob_epoch = ok(b_api, "POST", &path, &bt, Value::Null)["epoch"]
            .as_u64()
            .unwrap();
        wait_for(&format!("{step}: both at the same epoch"), || {
            let e = epochs(&[(a_api, &at), (b_api, &bt)], &chat);
            (e[0] == e[1] && e[0] >= bob_epoch).then_some(())
        });
        // One after the other (each read before the next is written): the same order on
        // both sides.
        for (from, to, text) in [
            ((a_api, &at), (b_api, &bt), "from alice"),
            ((b_api, &bt), (a_api, &at), "from bob"),
        ] {
            let text = format!("{text} after a crash at {step}");
            send(from.0, from.1, &chat, &text);
            expected.push(text);
            let got: Vec<String> = wait_texts(to.0, to.1, &chat, expected.len())
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            assert_eq!(got, expected, "{step}");
        }
        let mine: Vec<String> = texts(a_api, &at, &chat)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(mine, expected, "{step}");
    }

    // Bob's node is down, and his device names no relay: Alice's texts wait in her node's
    // outbox (on disk), tried again and again. Her node is killed and restarted; when Bob's
    // comes back, he reads them once and in order.
    bob_node.child = None;
    let away: Vec<String> = (1..=3).map(|i| format!("queued {i}")).collect();
    ok(
        a_api,
        "POST",
        &format!("/api/v1/me/chats/{chat}/messages"),
        &at,
        json!({ "texts": away }),
    );
    alice_node.child = None;
    alice_node.start(dir);
    bob_node.start(dir);
    let bt = login(b_api, "bob");
    expected.extend(away);
    let got: Vec<String> = wait_texts(b_api, &bt, &chat, expected.len())
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(got, expected);
}

/// Alice turns chat on on a second node (her account imported there): her first device adds
/// the new one to her chats, after sending it their history sealed for her account alone;
/// the new device then reads and writes like the first. Her chat export fills in a third
/// device's history, only once, and nobody else's.
#[test]
fn a_new_device_joins_the_accounts_chats_with_their_history() {
    let _one = common::one_network_at_a_time();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let net = Network::start(dir);
    let (genesis, bootstrap, relay) = (&net.genesis, &net.bootstrap, &net.relay);
    let node = |name: &str| UserNode::create(dir, name, genesis, bootstrap, &[relay], 86_400);
    let (first, second, bob_node) = (node("alice-1"), node("alice-2"), node("bob-node"));
    let (a1, a2, b) = (first.api, second.api, bob_node.api);
    let (alice, t1) = import(a1, "alice", 1);
    let (bob, bt) = import(b, "bob", 2);
    chat_on(a1, &t1, 1);
    chat_on(b, &bt, 1);
    let chat = new_chat(a1, &t1, &[&bob]);
    send(a1, &t1, &chat, "one");
    wait_texts(b, &bt, &chat, 1);
    send(b, &bt, &chat, "two");
    wait_texts(a1, &t1, &chat, 2);

    // The second device: the chat appears on it with what was said before it existed.
    let (_, t2) = import(a2, "alice", 1);
    chat_on(a2, &t2, 1);
    wait_chat(a2, &t2, &chat);
    let before = vec![
        (alice.clone(), "one".to_string()),
        (bob.clone(), "two".into()),
    ];
    assert_eq!(wait_texts(a2, &t2, &chat, 2), before);
    wait_for("the second device to be a member", || {
        let v = ok(a2, "GET", "/api/v1/me/chats", &t2, Value::Null);
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == json!(chat) && c["left"] == json!(false))
            .then_some(())
    });
    // Both ways, with every device.
    send(b, &bt, &chat, "three");
    let three = |api, t: &str| wait_texts(api, t, &chat, 3)[2].1.clone();
    assert_eq!(three(a2, &t2), "three");
    assert_eq!(three(a1, &t1), "three");
    send(a2, &t2, &chat, "four");
    for (api, t) in [(b, &bt), (a1, &t1)] {
        assert_eq!(
            wait_texts(api, t, &chat, 4)[3],
            (alice.clone(), "four".into())
        );
    }

    // The export opens only for Alice's account, and fills in a device's history once.
    let export = ok(a1, "GET", "/api/v1/me/chat/export", &t1, Value::Null);
    let parts = export["parts"].clone();
    assert!(!parts.as_array().unwrap().is_empty());
    for part in parts.as_array().unwrap() {
        let bytes = hex::decode(part.as_str().unwrap()).unwrap();
        for t in ["one", "two", "three", "four"] {
            assert!(
                !contains(&bytes, t.as_bytes()),
                "an export holds `{t}` in the clear"
            );
        }
    }
    let (status, v) = call(
        b,
        "POST",
        "/api/v1/me/chat/import",
        &bt,
        json!({ "parts": parts }),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{v}"
    );
    let third = node("alice-3");
    let (_, t3) = import(third.api, "alice", 1);
    chat_on(third.api, &t3, 1);
    let took = ok(
        third.api,
        "POST",
        "/api/v1/me/chat/import",
        &t3,
        json!({ "parts": parts }),
    );
    assert!(took["chats"].as_u64().unwrap() <= 1, "{took}");
    wait_chat(third.api, &t3, &chat);
    let all: Vec<String> = wait_texts(third.api, &t3, &chat, 4)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(all, ["one", "two", "three", "four"]);
    // Again (or the history its first device sends it): nothing twice.
    let again = ok(
        third.api,
        "POST",
        "/api/v1/me/chat/import",
        &t3,
        json!({ "parts": parts }),
    );
    assert_eq!(again["chats"], json!(0), "{again}");
    wait_for("the third device to be a member", || {
        let v = ok(third.api, "GET", "/api/v1/me/chats", &t3, Value::Null);
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == json!(chat) && c["left"] == json!(false))
            .then_some(())
    });
    let all: Vec<String> = texts(third.api, &t3, &chat)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(all, ["one", "two", "three", "four"]);
}

/// Waits for `chat` to be in the account's list on the node.
fn wait_chat(api: SocketAddr, token: &str, chat: &str) {
    wait_for("the chat to appear", || {
        let v = ok(api, "GET", "/api/v1/me/chats", token, Value::Null);
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == json!(chat))
            .then_some(())
    });
}

/// Chaos: a mailbox relay is killed (with a member's node, so mail waits in the sender's
/// outbox), a member's mailbox is flooded with junk, and a member's node is killed in the
/// middle of a commit. Afterwards every member reads every text once and in order.
#[test]
fn chat_survives_killed_relays_a_flooded_mailbox_and_a_crash_during_a_commit() {
    let _one = common::one_network_at_a_time();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let net = Network::start(dir);
    let (genesis, bootstrap, relay) = (&net.genesis, &net.bootstrap, &net.relay);
    // A mailbox relay of its own, which goes down and comes back.
    let mut spare = UserNode::create(dir, "spare-relay", genesis, bootstrap, &[relay], 86_400);
    let spare_at = spare.reachable.clone();
    assert!(!spare_at.is_empty());
    // Alice's mail waits at the devnet's relay, Bob's at the spare one only.
    let mut alice_node = UserNode::create(dir, "alice-node", genesis, bootstrap, &[relay], 86_400);
    let mut bob_node = UserNode::create(dir, "bob-node", genesis, bootstrap, &[&spare_at], 86_400);
    let (a_api, b_api) = (alice_node.api, bob_node.api);
    let (alice, mut at) = import(a_api, "alice", 1);
    let (bob, mut bt) = import(b_api, "bob", 2);
    chat_on(a_api, &at, 1);
    chat_on(b_api, &bt, 1);
    let chat = new_chat(a_api, &at, &[&bob]);
    let mut expected: Vec<String> = Vec::new();
    // One text, read on the other side before the next is written.
    let say = |expected: &mut Vec<String>,
               from: (SocketAddr, &str),
               to: (SocketAddr, &str),
               text: &str| {
        send(from.0, from.1, &chat, text);
        expected.push(text.to_string());
        let got: Vec<String> = wait_texts(to.0, to.1, &chat, expected.len())
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(&got, expected);
    };
    say(&mut expected, (a_api, &at), (b_api, &bt), "a1");
    say(&mut expected, (b_api, &bt), (a_api, &at), "b1");

    // Bob's node and his only relay go down: Alice's texts wait in her node's outbox.
    bob_node.child = None;
    spare.child = None;
    let waiting = ["a2", "a3"];
    ok(
        a_api,
        "POST",
        &format!("/api/v1/me/chats/{chat}/messages"),
        &at,
        json!({ "texts": waiting }),
    );
    // Meanwhile Alice's mailbox at the devnet's relay is flooded with junk, and strangers
    // open mailboxes by the hundred.
    let keys = get(a_api, &format!("/api/v1/accounts/{alice}/chat-keys")).unwrap();
    let alice_mailbox = Hash::from_hex(keys["devices"][0]["mailbox"].as_str().unwrap()).unwrap();
    for i in 0u32..300 {
        let mut junk = vec![0u8; 64];
        junk[..4].copy_from_slice(&i.to_be_bytes());
        let to_alice = ChatRequest::Deposit {
            mailbox: alice_mailbox,
            envelopes: vec![junk.clone()],
        };
        let elsewhere = ChatRequest::Deposit {
            mailbox: Hash::of(&[&junk]),
            envelopes: vec![junk],
        };
        protocol(net.api, &to_alice.to_bytes());
        protocol(net.api, &elsewhere.to_bytes());
    }
    // The relay comes back and takes what waited; then Bob's node, which fetches it.
    spare.start(dir);
    bob_node.start(dir);
    bt = login(b_api, "bob");
    expected.extend(waiting.iter().map(|t| t.to_string()));
    let got: Vec<String> = wait_texts(b_api, &bt, &chat, expected.len())
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(got, expected);
    say(&mut expected, (b_api, &bt), (a_api, &at), "b2");
    wait_for("alice's node to refuse the junk", || {
        let s = ok(a_api, "GET", "/api/v1/me/chat", &at, Value::Null);
        (s["refused_envelopes"].as_u64().unwrap() >= 1).then_some(())
    });

    // Alice's node dies in the middle of a commit, after the relay ordered it.
    alice_node.child = None;
    alice_node.start_with(dir, &[("STARLING_CHAT_CRASH_AT", "commit-ordered")]);
    at = login(a_api, "alice");
    let path = format!("/api/v1/me/chats/{chat}/update");
    let auth = format!("Bearer {at}");
    assert!(http_bytes(a_api, "POST", &path, &[("Authorization", &auth)], &[]).is_none());
    let _ = alice_node.child.as_mut().unwrap().0.wait();
    alice_node.start(dir);
    at = login(a_api, "alice");
    let bob_epoch = ok(b_api, "POST", &path, &bt, Value::Null)["epoch"]
        .as_u64()
        .unwrap();
    wait_for("both at the same epoch", || {
        let e = epochs(&[(a_api, &at), (b_api, &bt)], &chat);
        (e[0] == e[1] && e[0] >= bob_epoch).then_some(())
    });
    say(&mut expected, (a_api, &at), (b_api, &bt), "a4");
    say(&mut expected, (b_api, &bt), (a_api, &at), "b3");

    // Bob's node and his relay go down again, and his node comes back at a new address with
    // the devnet's relay instead: it publishes where it is now, and Alice's outbox, which
    // holds a text for him, follows it there.
    bob_node.child = None;
    spare.child = None;
    send(a_api, &at, &chat, "a5");
    expected.push("a5".into());
    let config = std::fs::read_to_string(&bob_node.config).unwrap();
    let p2p = config
        .split("[p2p]")
        .nth(1)
        .and_then(|rest| rest.lines().find_map(|l| l.strip_prefix("listen = ")))
        .unwrap()
        .to_string();
    let moved = config
        .replace(&p2p, &format!("\"{}\"", free_addr()))
        .replace(
            &format!("relays = [\"{spare_at}\"]"),
            &format!("relays = [\"{relay}\"]"),
        );
    assert_ne!(moved, config);
    std::fs::write(&bob_node.config, moved).unwrap();
    bob_node.start(dir);
    bt = login(b_api, "bob");
    let got: Vec<String> = wait_texts(b_api, &bt, &chat, expected.len())
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(got, expected);
    // Once each, in order, on both sides.
    for (api, token) in [(a_api, &at), (b_api, &bt)] {
        let got: Vec<String> = texts(api, token, &chat)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(got, expected);
    }
}

/// A member whose node delivers a commit its group's delivery relay never ordered (made
/// dishonest in that one way by `STARLING_CHAT_FAULT`) moves nobody else: Bob holds the
/// commit until the relay says which commit won the epoch; his own, ordered, wins, and
/// Alice's is dropped. (Applied at once, as before, such commits sent differently to
/// different members would split the group.)
#[test]
fn a_commit_its_relay_did_not_order_is_not_applied() {
    let _one = common::one_network_at_a_time();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let net = Network::start(dir);
    let (genesis, bootstrap, relay) = (&net.genesis, &net.bootstrap, &net.relay);
    let mut alice_node = UserNode::create(dir, "alice-node", genesis, bootstrap, &[relay], 86_400);
    let bob_node = UserNode::create(dir, "bob-node", genesis, bootstrap, &[relay], 86_400);
    let (a_api, b_api) = (alice_node.api, bob_node.api);
    let (_, mut at) = import(a_api, "alice", 1);
    let (bob, bt) = import(b_api, "bob", 2);
    chat_on(a_api, &at, 1);
    chat_on(b_api, &bt, 1);
    let chat = new_chat(a_api, &at, &[&bob]);
    send(a_api, &at, &chat, "hello");
    wait_texts(b_api, &bt, &chat, 1);
    let before = epochs(&[(b_api, &bt)], &chat)[0];
    let refused = |api, token: &str| {
        ok(api, "GET", "/api/v1/me/chat", token, Value::Null)["refused_envelopes"]
            .as_u64()
            .unwrap()
    };
    let refused_before = refused(b_api, &bt);

    alice_node.child = None;
    alice_node.start_with(dir, &[("STARLING_CHAT_FAULT", "commit-unordered")]);
    at = login(a_api, "alice");
    let path = format!("/api/v1/me/chats/{chat}/update");
    let rogue = ok(a_api, "POST", &path, &at, Value::Null)["epoch"]
        .as_u64()
        .unwrap();
    assert_eq!(rogue, before + 1, "alice's node applied its own commit");
    wait_for("bob's node to hold the unordered commit", || {
        let s = ok(b_api, "GET", "/api/v1/me/chat", &bt, Value::Null);
        (s["unconfirmed_commits"].as_u64() == Some(1)).then_some(())
    });
    assert_eq!(epochs(&[(b_api, &bt)], &chat)[0], before, "not applied");
    // Bob's own commit for the epoch is ordered and wins; Alice's is dropped.
    let bob_epoch = ok(b_api, "POST", &path, &bt, Value::Null)["epoch"]
        .as_u64()
        .unwrap();
    assert_eq!(bob_epoch, before + 1);
    wait_for("bob's node to drop the unordered commit", || {
        let s = ok(b_api, "GET", "/api/v1/me/chat", &bt, Value::Null);
        (s["unconfirmed_commits"].as_u64() == Some(0)).then_some(())
    });
    assert!(refused(b_api, &bt) > refused_before);
    assert_eq!(epochs(&[(b_api, &bt)], &chat)[0], bob_epoch);
}

/// The members of `chat` that `api`'s device has not heard from, or `None` if it does not
/// have the chat.
fn not_heard(api: SocketAddr, token: &str, chat: &str) -> Option<Vec<String>> {
    let l = ok(api, "GET", "/api/v1/me/chats", token, Value::Null);
    let c = l["items"].as_array()?.iter().find(|c| c["id"] == chat)?;
    Some(
        c["not_heard"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect(),
    )
}

/// A welcome shows a newcomer members, but only those it hears from (a text or a commit it
/// can open, or the welcome they signed) share its epochs. A device that joins says so at
/// once, so the others hear it; a newcomer added by a commit its relay never ordered (a fork
/// only the adder is in) sees the members it was shown as not heard from, and stays so when
/// they write in the group's real epoch.
#[test]
fn only_members_heard_from_count_as_present_and_a_forked_welcome_shows_it() {
    let _one = common::one_network_at_a_time();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let net = Network::start(dir);
    let (genesis, bootstrap, relay) = (&net.genesis, &net.bootstrap, &net.relay);
    let mut alice_node = UserNode::create(dir, "alice-node", genesis, bootstrap, &[relay], 86_400);
    let bob_node = UserNode::create(dir, "bob-node", genesis, bootstrap, &[relay], 86_400);
    let carol_node = UserNode::create(dir, "carol-node", genesis, bootstrap, &[relay], 86_400);
    let (a_api, b_api, c_api) = (alice_node.api, bob_node.api, carol_node.api);
    let (alice, mut at) = import(a_api, "alice", 1);
    let (bob, bt) = import(b_api, "bob", 2);
    let (carol, ct) = import(c_api, "carol", 3);
    chat_on(a_api, &at, 1);
    chat_on(b_api, &bt, 1);
    chat_on(c_api, &ct, 1);

    // Honest: Bob joins and says so; Alice signed his welcome.
    let chat = new_chat(a_api, &at, &[&bob]);
    wait_for("alice to hear bob join", || {
        (not_heard(a_api, &at, &chat)? == Vec::<String>::new()).then_some(())
    });
    wait_for("bob to join", || {
        (not_heard(b_api, &bt, &chat)? == Vec::<String>::new()).then_some(())
    });

    // Alice forks the group: she adds Carol with a commit her relay never ordered.
    alice_node.child = None;
    alice_node.start_with(dir, &[("STARLING_CHAT_FAULT", "commit-unordered")]);
    at = login(a_api, "alice");
    ok(
        a_api,
        "POST",
        &format!("/api/v1/me/chats/{chat}/members"),
        &at,
        json!({ "add": [carol] }),
    );
    let shown = wait_for("carol to be welcomed into the fork", || {
        not_heard(c_api, &ct, &chat)
    });
    assert_eq!(
        shown,
        vec![bob.clone()],
        "alice signed the welcome; bob is not heard"
    );
    // What Alice writes reaches Carol in the fork; Bob, still in the group's real epoch,
    // neither sees Carol nor writes anything Carol can open.
    send(a_api, &at, &chat, "welcome, carol");
    send(b_api, &bt, &chat, "is anyone new here?");
    assert_eq!(
        wait_texts(c_api, &ct, &chat, 1),
        vec![(alice.clone(), "welcome, carol".to_string())]
    );
    assert_eq!(not_heard(c_api, &ct, &chat), Some(vec![bob.clone()]));
    let bobs = ok(b_api, "GET", "/api/v1/me/chats", &bt, Value::Null);
    let members = bobs["items"][0]["members"].as_array().unwrap().clone();
    assert!(!members.contains(&json!(carol)), "{members:?}");
    assert!(members.contains(&json!(alice)));
}
