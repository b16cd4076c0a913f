//! The HTTP API of a running one-validator network: every endpoint, and a clear 4xx (never a
//! 500, never a panic) for each bad input.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use commonware_runtime::{Runner as _, Supervisor as _};
use serde_json::{json, Value};
use starling_crypto::SecretKey;
use starling_node::genesis::{
    AllocationEntry, Amount, FoundationEntry, Genesis, GenesisFile, ValidatorEntry,
};
use starling_node::run::{self, ValidatorSpec};
use starling_node::{api, config::NodeConfig, config::Role, init};
use starling_types::{Action, Encode as _, KeyType, TxBody, TxEnvelope};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(KeyType::Ed25519, &[seed; 32]).unwrap()
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // A refused oversized body may close the connection before all of it is written.
    let _ = s.write_all(body.as_bytes());
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status: u16 = out.split(' ').nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1;
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
    )
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("(none)")
}

fn checks(addr: SocketAddr, alice: SecretKey, chain: starling_types::ChainId) {
    // Status: every shard, and it moves.
    let start = Instant::now();
    loop {
        let (s, v) = http(addr, "GET", "/api/v1/status", "");
        assert_eq!(s, 200);
        assert_eq!(v["chain_id"], "api-test");
        let shards = v["shards"].as_array().unwrap();
        assert_eq!(shards.len(), 3);
        if shards.iter().all(|x| x["height"].as_u64().unwrap() >= 1) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no blocks");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Submitting: malformed JSON, wrong shape, empty and oversized batches.
    for (body, code) in [
        ("{", "bad_json"),
        ("{\"txs\": 5}", "bad_json"),
        ("{\"txs\": [], \"extra\": 1}", "bad_json"),
        ("{\"txs\": []}", "bad_batch"),
    ] {
        let (s, v) = http(addr, "POST", "/api/v1/txs", body);
        assert_eq!((s, error_code(&v)), (400, code), "{body}");
    }
    let too_many = json!({ "txs": vec!["00"; api::MAX_SUBMIT_TXS + 1] }).to_string();
    let (s, v) = http(addr, "POST", "/api/v1/txs", &too_many);
    assert_eq!((s, error_code(&v)), (400, "bad_batch"));
    let huge = format!("{{\"txs\": [\"{}\"]}}", "a".repeat(api::MAX_BODY_BYTES));
    let (s, v) = http(addr, "POST", "/api/v1/txs", &huge);
    assert_eq!((s, error_code(&v)), (413, "too_large"));

    // Per transaction: not hex, not an envelope, forged, and a good one.
    let body = |nonce| TxBody {
        account: alice.public_key(),
        nonce,
        max_fee: 1_000_000_000_000,
        tip: 1,
        expires_at_height: 10_000,
        action: Action::Post {
            text: "hello from the API test".into(),
            reply_to: None,
            quote_of: None,
            langs: vec!["en".into()],
        },
    };
    let good = alice.sign_tx(&chain, &body(0));
    let forged = TxEnvelope {
        body_bytes: good.body_bytes.clone(),
        signature: key(9).sign_tx(&chain, &body(0)).signature,
    };
    let req = json!({ "txs": ["zz", "00ff", hex::encode(forged.to_bytes()), hex::encode(good.to_bytes())] });
    let (s, v) = http(addr, "POST", "/api/v1/txs", &req.to_string());
    assert_eq!(s, 200, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!(error_code(&r[0]), "malformed");
    assert_eq!(error_code(&r[1]), "malformed");
    assert_eq!(error_code(&r[2]), "bad_signature");
    assert_eq!(r[3]["hash"], good.hash().to_hex());
    assert_eq!(v["accepted"], 1);
    // The same again is a duplicate (or already used, if it finalized meanwhile).
    let (_, v) = http(
        addr,
        "POST",
        "/api/v1/txs",
        &json!({ "txs": [hex::encode(good.to_bytes())] }).to_string(),
    );
    let code = error_code(&v["results"][0]).to_string();
    assert!(code == "duplicate" || code == "nonce_too_low", "{v}");

    // The post finalizes and can be read.
    let who = alice.public_key().to_text();
    let start = Instant::now();
    let post = loop {
        let (s, v) = http(addr, "GET", &format!("/api/v1/posts/{who}/0"), "");
        if s == 200 {
            break v;
        }
        assert_eq!((s, error_code(&v)), (404, "not_found"));
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "post never finalized"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(post["text"], "hello from the API test");
    assert_eq!(post["langs"], json!(["en"]));
    let (s, acct) = http(addr, "GET", &format!("/api/v1/accounts/{who}"), "");
    assert_eq!(s, 200);
    assert_eq!(acct["nonce"], 1);
    assert!(
        acct["balances"]["spend"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
            > 0
    );
    // The block that holds it lists it.
    let height = post["created_height"].as_u64().unwrap();
    let shard = acct["shard"].as_u64().unwrap();
    let (s, block) = http(
        addr,
        "GET",
        &format!("/api/v1/shards/{shard}/blocks/{height}"),
        "",
    );
    assert_eq!(s, 200);
    assert!(block["txs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["hash"] == good.hash().to_hex() && t["status"] == 0));

    // Bad reads.
    let nobody = key(77).public_key().to_text();
    for (path, status, code) in [
        ("/api/v1/accounts/ed25519:00".to_string(), 400, "bad_key"),
        ("/api/v1/accounts/nonsense".to_string(), 400, "bad_key"),
        (format!("/api/v1/accounts/{nobody}"), 404, "not_found"),
        (format!("/api/v1/posts/{who}/x"), 400, "bad_seq"),
        (format!("/api/v1/posts/{who}/99"), 404, "not_found"),
        ("/api/v1/shards/x/blocks/1".to_string(), 400, "bad_shard"),
        ("/api/v1/shards/1/blocks/-1".to_string(), 400, "bad_height"),
        ("/api/v1/shards/9/blocks/1".to_string(), 404, "not_found"),
        (
            "/api/v1/shards/1/blocks/999999999".to_string(),
            404,
            "not_found",
        ),
        ("/api/v2/anything".to_string(), 404, "not_found"),
    ] {
        let (s, v) = http(addr, "GET", &path, "");
        assert_eq!((s, error_code(&v)), (status, code), "{path}");
    }

    // Metrics in the Prometheus text format.
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"));
    assert!(out.contains("# TYPE"), "{out}");
}

#[test]
fn the_api_serves_every_endpoint_and_refuses_bad_input_clearly() {
    let d = tempfile::tempdir().unwrap();
    let v = key(1);
    let alice = key(2);
    let bob = key(3);
    let p2p = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut g = GenesisFile::template("api-test", 2);
    for (i, name) in ["North", "East", "West"].iter().enumerate() {
        g.foundations.push(FoundationEntry {
            name: (*name).into(),
            account: key(50 + i as u8).public_key().to_text(),
        });
    }
    g.validators.push(ValidatorEntry {
        key: v.public_key().to_text(),
        address: Some(p2p.to_string()),
        shards: None,
    });
    for who in [&alice, &bob] {
        g.allocations.push(AllocationEntry {
            account: who.public_key().to_text(),
            asset: "spend".into(),
            amount: Amount::Text("1000000000000000000".into()),
        });
    }
    let genesis_path = d.path().join("genesis.toml");
    std::fs::write(&genesis_path, g.to_toml().unwrap()).unwrap();
    let cfg = NodeConfig {
        roles: vec![Role::Validator],
        data_dir: d.path().join("data"),
        ..NodeConfig::default()
    };
    init::init(&cfg, &genesis_path, &v.public_key()).unwrap();
    let (genesis, stores): (Genesis, _) = init::open(&cfg.data_dir).unwrap();
    let chain = genesis.params.chain_id.clone();
    let data_dir = cfg.data_dir.clone();

    let runtime = commonware_runtime::tokio::Runner::new(
        commonware_runtime::tokio::Config::new().with_storage_directory(d.path().join("consensus")),
    );
    runtime.start(|context| async move {
        let spec = ValidatorSpec {
            key: v,
            listen: p2p,
            partition_prefix: String::new(),
            mempool: starling_mempool::MempoolConfig::default(),
            block_interval: Duration::from_millis(50),
        };
        let node = run::start_validator(context.child("validator"), genesis, stores, spec)
            .await
            .unwrap();
        starling_node::view::attach(&node, &data_dir).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = {
            let c = context.child("metrics");
            Arc::new(move || commonware_runtime::Metrics::encode(&c)) as api::MetricsFn
        };
        let server = tokio::spawn(api::serve(listener, node, metrics));
        tokio::task::spawn_blocking(move || {
            checks(addr, key(2), chain.clone());
            social_checks(addr, &alice, &bob, &chain);
        })
        .await
        .unwrap();
        server.abort();
    });
}

fn submit(addr: SocketAddr, envs: &[TxEnvelope]) {
    let hexes: Vec<String> = envs.iter().map(|e| hex::encode(e.to_bytes())).collect();
    let (s, v) = http(
        addr,
        "POST",
        "/api/v1/txs",
        &json!({ "txs": hexes }).to_string(),
    );
    assert_eq!(
        (s, v["accepted"].as_u64()),
        (200, Some(envs.len() as u64)),
        "{v}"
    );
}

/// Polls `path` until `done` says the answer is complete (the indexer runs behind finality).
fn until(addr: SocketAddr, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (s, v) = http(addr, "GET", path, "");
        assert_eq!(s, 200, "{path}: {v}");
        if done(&v) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{path}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The social API over the app view: bob follows alice, likes and replies to her post, and
/// each read shows it; then every bad input is a clear 4xx.
fn social_checks(
    addr: SocketAddr,
    alice: &SecretKey,
    bob: &SecretKey,
    chain: &starling_types::ChainId,
) {
    let (a, b) = (alice.public_key(), bob.public_key());
    let tx = |k: &SecretKey, nonce, action| {
        k.sign_tx(
            chain,
            &TxBody {
                account: k.public_key(),
                nonce,
                max_fee: 1_000_000_000_000,
                tip: 1,
                expires_at_height: 10_000,
                action,
            },
        )
    };
    let post0 = starling_types::PostId { author: a, seq: 0 };
    submit(
        addr,
        &[
            tx(
                alice,
                1,
                Action::Post {
                    text: "second, about #Starling".into(),
                    reply_to: None,
                    quote_of: None,
                    langs: vec![],
                },
            ),
            tx(bob, 0, Action::Follow { target: a }),
            tx(bob, 1, Action::Like { post: post0 }),
            tx(
                bob,
                2,
                Action::Post {
                    text: "a reply".into(),
                    reply_to: Some(post0),
                    quote_of: None,
                    langs: vec![],
                },
            ),
        ],
    );
    let (at, bt) = (a.to_text(), b.to_text());
    let n = until(addr, &format!("/api/v1/accounts/{at}/notifications"), |v| {
        v["items"].as_array().unwrap().len() == 3
    });
    let kinds: Vec<&str> = n["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["reply", "like", "follow"]);
    assert_eq!(n["unread"], 3);
    assert_eq!(n["items"][0]["actor"]["account"], bt);

    let feed = until(addr, &format!("/api/v1/accounts/{at}/feed?limit=1"), |_| {
        true
    });
    assert_eq!(feed["items"][0]["post"]["text"], "second, about #Starling");
    let next = feed["next"].as_str().unwrap().to_string();
    let rest = until(
        addr,
        &format!("/api/v1/accounts/{at}/feed?cursor={next}"),
        |_| true,
    );
    assert_eq!(rest["items"][0]["post"]["text"], "hello from the API test");
    assert_eq!(rest["next"], Value::Null);

    let home = until(addr, &format!("/api/v1/accounts/{bt}/home"), |v| {
        v["items"].as_array().unwrap().len() == 3
    });
    let texts: Vec<&str> = home["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["post"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        vec![
            "a reply",
            "second, about #Starling",
            "hello from the API test"
        ]
    );

    let t = until(
        addr,
        &format!("/api/v1/posts/{at}/0/thread?viewer={bt}"),
        |_| true,
    );
    assert_eq!(t["post"]["counts"]["likes"], 1);
    assert_eq!(t["post"]["counts"]["replies"], 1);
    assert_eq!(t["post"]["liked"], true);
    assert_eq!(t["replies"]["items"][0]["text"], "a reply");
    let r = until(addr, &format!("/api/v1/posts/{bt}/2/thread"), |_| true);
    assert_eq!(r["ancestors"][0]["text"], "hello from the API test");

    let tag = until(addr, "/api/v1/hashtags/STARLING", |v| {
        !v["items"].as_array().unwrap().is_empty()
    });
    assert_eq!(tag["items"][0]["seq"], 1);
    let trending = until(addr, "/api/v1/trending", |_| true);
    assert_eq!(trending["items"][0], json!({"tag": "starling", "posts": 1}));

    let p = until(
        addr,
        &format!("/api/v1/accounts/{at}/profile?viewer={bt}"),
        |_| true,
    );
    assert_eq!(
        (p["posts"].as_u64(), p["followers"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(p["relation"]["following"], true);
    let f = until(addr, &format!("/api/v1/accounts/{at}/followers"), |_| true);
    assert_eq!(f["items"][0]["account"], bt);
    let f = until(addr, &format!("/api/v1/accounts/{bt}/following"), |_| true);
    assert_eq!(f["items"][0]["account"], at);
    assert!(p["fees_paid"].as_str().unwrap().parse::<u128>().unwrap() > 0);

    let found = until(addr, "/api/v1/search/posts?q=starling", |v| {
        !v["items"].as_array().unwrap().is_empty()
    });
    assert_eq!(found["items"][0]["seq"], 1);
    assert_eq!(found["items"][0]["author"]["account"], at);
    let none = until(addr, "/api/v1/search/posts?q=pelican", |_| true);
    assert!(none["items"].as_array().unwrap().is_empty());
    let long_q = "a".repeat(300);
    for (path, status, code) in [
        ("/api/v1/search/posts".to_string(), 400, "bad_query"),
        (
            "/api/v1/search/posts?q=%20%20".to_string(),
            400,
            "bad_query",
        ),
        (
            format!("/api/v1/search/people?q={long_q}"),
            400,
            "bad_query",
        ),
        (
            "/api/v1/search/posts?q=x&cursor=5000".to_string(),
            400,
            "bad_cursor",
        ),
        (
            format!("/api/v1/accounts/{at}/feed?cursor=zz"),
            400,
            "bad_cursor",
        ),
        (
            format!("/api/v1/accounts/{at}/home?cursor=00"),
            400,
            "bad_cursor",
        ),
        (
            format!("/api/v1/accounts/{at}/notifications?cursor=0g"),
            400,
            "bad_cursor",
        ),
        (
            format!("/api/v1/accounts/{at}/followers?cursor=abc"),
            400,
            "bad_cursor",
        ),
        (
            format!("/api/v1/accounts/{at}/feed?limit=0"),
            400,
            "bad_limit",
        ),
        (
            format!("/api/v1/accounts/{at}/feed?limit=101"),
            400,
            "bad_limit",
        ),
        (
            format!("/api/v1/accounts/{at}/feed?limit=many"),
            400,
            "bad_limit",
        ),
        (
            format!("/api/v1/accounts/{at}/feed?viewer=nobody"),
            400,
            "bad_key",
        ),
        ("/api/v1/accounts/nobody/home".to_string(), 400, "bad_key"),
        ("/api/v1/posts/nobody/0/thread".to_string(), 400, "bad_key"),
        (format!("/api/v1/posts/{at}/x/replies"), 400, "bad_seq"),
        (format!("/api/v1/posts/{at}/999/thread"), 404, "not_found"),
        ("/api/v1/hashtags/a%20b".to_string(), 400, "bad_tag"),
        ("/api/v1/hashtags/2024".to_string(), 400, "bad_tag"),
        ("/api/v1/handles/nobody_here".to_string(), 404, "not_found"),
    ] {
        let (s, v) = http(addr, "GET", &path, "");
        assert_eq!((s, error_code(&v)), (status, code), "{path}: {v}");
    }
}
