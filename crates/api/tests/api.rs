//! The HTTP API of a running one-validator network: every endpoint, and a clear 4xx (never a
//! 500, never a panic) for each bad input.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use commonware_runtime::{Runner as _, Supervisor as _};
use serde_json::{json, Value};
use starling_api as api;
use starling_config::genesis::Genesis;
use starling_config::{config::NodeConfig, config::Role, init};
use starling_crypto::SecretKey;
use starling_testkit::key;
use starling_types::{Action, Encode as _, ShardId, TxBody, TxEnvelope};
use starling_validator::{start_validator, ValidatorSpec};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Blocks per epoch in this test's genesis.
const EPOCH_BLOCKS: u64 = 20;

fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let r = starling_testkit::http(addr, method, path, &[], body.as_bytes()).unwrap();
    (r.status, r.json())
}

/// A request with extra headers: the status, the JSON body and the response's headers.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value, String) {
    let r = starling_testkit::http(addr, method, path, headers, body.as_bytes()).unwrap();
    (r.status, r.json(), r.head)
}

/// Argon2 runs so far, from `/metrics`.
fn kdf_runs(addr: SocketAddr) -> u64 {
    let r = starling_testkit::http(addr, "GET", "/metrics", &[], b"").unwrap();
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("starling_keystore_kdf_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no KDF counter in {text}"))
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
        // What each pool dropped, by reason: nothing on a quiet devnet.
        for reason in ["evicted", "rejected", "kept_losing", "expired", "replaced"] {
            assert!(shards.iter().all(|x| x["mempool_drops"][reason] == 0));
        }
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
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
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
    let mut g = starling_testkit::genesis_file("api-test", 2);
    // Short epochs: proofs follow the committee hand-offs.
    g.epochs.blocks = EPOCH_BLOCKS;
    starling_testkit::add_validator(&mut g, &v, Some(p2p.to_string()));
    // (key 50 is the North foundation's account and registrar.)
    for who in [&alice, &bob, &key(4), &key(50)] {
        starling_testkit::fund(&mut g, who, 1_000_000_000_000_000_000);
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
    let trusted_genesis = genesis.clone();

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
        let node = start_validator(context.child("validator"), genesis, stores, spec)
            .await
            .unwrap();
        let view = starling_api::view::attach(&node, &data_dir).unwrap();
        let faucet = starling_accounts::Faucet {
            keys: vec![key(4)],
            amount: 1_000_000_000_000_000,
            grant: starling_accounts::Grant::Transfer,
            per_hour: 1_000,
        };
        let accounts = starling_accounts::open(&data_dir, Some(faucet)).unwrap();
        // Chat, on a chat-only swarm (this validator runs no open network).
        let chat_key = key(9);
        let services = Arc::new(
            starling_chat_relay::ChatServices::open(
                &data_dir.join("mail"),
                chat_key.public_key(),
                Some(node.clone()),
            )
            .unwrap(),
        );
        let chat_listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let chat_net =
            starling_net::chat::standalone(&chat_key, Some(chat_listen), Some(services.clone()))
                .unwrap();
        let place = starling_chat_client::ChatPlace {
            home: starling_types::Endpoint {
                node: chat_key.public_key(),
                address: chat_listen.to_string(),
            },
            relays: Vec::new(),
            key_update: Duration::from_secs(86_400),
            anon_key: Duration::from_secs(3_600),
        };
        let chat = starling_chat_client::Chat::new(
            node.clone(),
            &data_dir,
            chat_net,
            services,
            Some(accounts.clone()),
            place,
        )
        .unwrap();
        let services = api::Services {
            view: Some(view),
            accounts: Some(accounts),
            chat: Some(chat),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = {
            let c = context.child("metrics");
            Arc::new(move || commonware_runtime::Metrics::encode(&c)) as api::MetricsFn
        };
        // This node sits behind a proxy on its own machine, which names clients in
        // X-Forwarded-For.
        let options = api::ApiOptions {
            trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
            allowed_hosts: vec!["starling.example.org".into()],
        };
        // The same API, driven in-process.
        let app = api::router(
            node.clone(),
            services.clone(),
            metrics.clone(),
            options.clone(),
        );
        let server = tokio::spawn(api::serve(listener, node, services, metrics, options));
        let alice_key = alice.public_key().to_text();
        tokio::task::spawn_blocking(move || {
            checks(addr, key(2), chain.clone());
            proof_checks(addr, &trusted_genesis, &alice);
            social_checks(addr, &alice, &bob, &chain);
            account_checks(addr, &data_dir);
            client_checks(addr, &alice_key);
            failed_upgrades_give_their_slots_back(app, &alice_key);
            openapi_checks(addr, &alice_key);
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
/// Light-client proofs from a validator (its certificates come from marshal): alice's
/// account checks out against the genesis committee alone, a record that does not exist is
/// proven absent, and bad paths are clear 400s.
fn proof_checks(addr: SocketAddr, genesis: &Genesis, alice: &SecretKey) {
    use starling_node_api::proof::{ProofCheckError, RecordProof, RecordRef, Trusted};
    use starling_types::Decode as _;
    let fetch = |path: &str| -> RecordProof {
        let start = Instant::now();
        loop {
            let (s, v) = http(addr, "GET", path, "");
            // 503 while the newest block has no certificate of its own here yet.
            if s == 200 {
                return serde_json::from_value(v).unwrap();
            }
            assert_eq!((s, error_code(&v)), (503, "no_certificate"), "{path}: {v}");
            assert!(start.elapsed() < Duration::from_secs(60), "{path}: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let account = RecordRef::Account(alice.public_key());
    let shard = account.shard(&genesis.params.shard_map);
    let genesis_trust = Trusted::from_genesis(genesis, shard).unwrap();
    // Past two epochs, a proof stands on a block the genesis committee no longer certifies
    // for the checker: it follows the hand-offs, each checked against the committee before.
    until(addr, "/api/v1/status", |v: &Value| {
        v["shards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["shard"] == shard.0 && x["height"].as_u64().unwrap() > 2 * EPOCH_BLOCKS)
    });
    let p = fetch(&format!(
        "/api/v1/proofs/accounts/{}",
        alice.public_key().to_text()
    ));
    let epoch = genesis_trust.epoch_of(p.height);
    assert!(epoch >= 2, "{}", p.height);
    assert!(matches!(
        p.check(&account, shard, &genesis_trust),
        Err(ProofCheckError::UntrustedEpoch { .. })
    ));
    let mut trusted = genesis_trust.clone();
    while trusted.epoch < epoch {
        let handoff = fetch(&format!(
            "/api/v1/proofs/committees/{}/{}",
            shard.0,
            trusted.epoch + 1
        ));
        // The answer's own height is not believed (the header's is), and a hand-off is no
        // proof of the epoch after it.
        assert!(trusted
            .advance(
                shard,
                &RecordProof {
                    height: 0,
                    ..handoff.clone()
                }
            )
            .is_ok());
        let skipped = Trusted {
            epoch: trusted.epoch + 1,
            ..trusted.clone()
        };
        assert!(skipped.advance(shard, &handoff).is_err());
        trusted = trusted.advance(shard, &handoff).unwrap();
    }
    // The hand-off named the one validator: the same key the genesis trusts.
    assert_eq!(trusted.committee, genesis_trust.committee);
    p.check(&account, shard, &trusted).unwrap();
    for (path, status) in [
        (format!("/api/v1/proofs/committees/{}/0", shard.0), 400),
        ("/api/v1/proofs/committees/x/1".to_string(), 400),
        ("/api/v1/proofs/committees/77/1".to_string(), 404),
        (format!("/api/v1/proofs/committees/{}/99999", shard.0), 404),
    ] {
        let (s, v) = http(addr, "GET", &path, "");
        assert_eq!(s, status, "{path}: {v}");
    }
    let trusted = trusted;
    let alice_text = alice.public_key().to_text();
    let p = fetch(&format!("/api/v1/proofs/accounts/{alice_text}"));
    let checked = p.check(&account, shard, &trusted).unwrap();
    let record =
        starling_ledger::records::AccountRecord::from_bytes(&checked.value.unwrap()).unwrap();
    assert!(record.balance(starling_types::Asset::Spend) > 0);
    assert_eq!(p.record.as_ref().unwrap()["nonce"], record.nonce);
    assert_eq!(checked.header.height, p.height);

    // Absent: a post alice never wrote.
    let missing = RecordRef::parse("posts", &[&alice_text, "999999"]).unwrap();
    let p = fetch(&format!("/api/v1/proofs/posts/{alice_text}/999999"));
    assert!(p.value.is_none());
    assert!(p.check(&missing, shard, &trusted).unwrap().value.is_none());
    // The same answer is no proof of another record.
    assert!(p.check(&account, shard, &trusted).is_err());
    let like = RecordRef::parse("likes", &[&alice_text, &alice_text, "0"]).unwrap();
    let p = fetch(&format!("/api/v1/proofs/likes/{alice_text}/{alice_text}/0"));
    assert!(p.check(&like, shard, &trusted).unwrap().value.is_none());

    // Alice's foundation (rule FD1), from the federation record her shard holds: the answer
    // checks out, and the foundation is the one the checked record assigns her.
    let start = Instant::now();
    let of = loop {
        let (s, v) = http(
            addr,
            "GET",
            &format!("/api/v1/foundations/of/{alice_text}"),
            "",
        );
        if s == 200 {
            break v;
        }
        assert_eq!((s, error_code(&v)), (503, "no_certificate"), "{v}");
        assert!(start.elapsed() < Duration::from_secs(60), "{v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let charges = RecordRef::Charges(alice.public_key());
    let p: RecordProof = serde_json::from_value(of["proof"].clone()).unwrap();
    let checked = p.check(&charges, shard, &trusted).unwrap();
    let federation = starling_types::Federation::from_bytes(&checked.value.unwrap()).unwrap();
    let index = federation.charge_of(&alice.public_key());
    assert_eq!(of["foundation"]["index"], u64::from(index), "{of}");
    assert_eq!(
        of["foundation"]["treasury"],
        genesis.params.foundations[usize::from(index)].to_text()
    );
    assert_eq!(of["foundation"]["status"], "active");
    assert_eq!(of["foundations"].as_array().unwrap().len(), 3);
    // The federation: the genesis foundations by name, all taking charges, each with its
    // treasury (seeded at genesis on every shard).
    let (s, all) = http(addr, "GET", "/api/v1/foundations", "");
    assert_eq!(s, 200, "{all}");
    let listed = all["foundations"].as_array().unwrap();
    assert_eq!(listed.len(), genesis.foundations.len());
    for (x, g) in listed.iter().zip(&genesis.foundations) {
        assert_eq!(x["name"], g.name.as_str());
        assert_eq!(x["treasury"], g.account.to_text());
        assert_eq!(
            (x["status"].as_str(), x["takes_charges"].as_bool()),
            (Some("active"), Some(true))
        );
        assert!(
            x["treasury_spend"]
                .as_str()
                .unwrap()
                .parse::<u128>()
                .unwrap()
                > 0
        );
    }
    assert_eq!(all["period"], 0);
    // (This genesis names no office holders; the epoch is the global shard's.)
    assert_eq!(all["foundations"][0]["offices"], json!([]));
    assert!(all["epoch"].is_u64(), "{all}");
    // Not a key: a clear 400.
    let (s, v) = http(addr, "GET", "/api/v1/foundations/of/not-a-key", "");
    assert_eq!((s, error_code(&v)), (400, "bad_key"), "{v}");
    let (s, v) = http(addr, "GET", "/api/v1/foundations/members/not-a-key", "");
    assert_eq!((s, error_code(&v)), (400, "bad_key"), "{v}");
    membership_checks(addr, genesis, alice, &all);
}

/// Trust in the committee of the epoch `p` stands in, followed from `trusted` one hand-off
/// at a time.
fn follow_for(
    addr: SocketAddr,
    p: &starling_node_api::proof::RecordProof,
    mut trusted: starling_node_api::proof::Trusted,
) -> starling_node_api::proof::Trusted {
    let shard = ShardId(p.shard);
    let epoch = trusted.epoch_of(p.height);
    while trusted.epoch < epoch {
        let path = format!(
            "/api/v1/proofs/committees/{}/{}",
            shard.0,
            trusted.epoch + 1
        );
        let (s, v) = http(addr, "GET", &path, "");
        assert_eq!(s, 200, "{path}: {v}");
        let handoff = serde_json::from_value(v).unwrap();
        trusted = trusted.advance(shard, &handoff).unwrap();
    }
    trusted
}

/// North's registrar admits alice: the registry's entry for her, with a proof that checks
/// against the global shard's committee, her account's copy, and North's count.
fn membership_checks(addr: SocketAddr, genesis: &Genesis, alice: &SecretKey, before: &Value) {
    use starling_node_api::proof::{RecordProof, RecordRef, Trusted};
    let alice_text = alice.public_key().to_text();
    let member_path = format!("/api/v1/foundations/members/{alice_text}");
    let (s, v) = http(addr, "GET", &member_path, "");
    if s == 200 {
        assert!(v["member"].is_null(), "{v}");
    }
    assert_eq!(before["foundations"][0]["members"], 0);
    assert_eq!(
        before["foundations"][0]["registrar"],
        key(50).public_key().to_text()
    );
    let registrar = key(50);
    let body = TxBody {
        account: registrar.public_key(),
        nonce: 0,
        max_fee: 1_000_000_000,
        tip: 0,
        expires_at_height: 10_000,
        action: Action::AdmitMember {
            member: alice.public_key(),
        },
    };
    submit(addr, &[registrar.sign_tx(&genesis.params.chain_id, &body)]);
    let start = Instant::now();
    let v = loop {
        let (s, v) = http(addr, "GET", &member_path, "");
        if s == 200 && !v["member"].is_null() {
            break v;
        }
        // (503 while the newest block has no certificate here yet.)
        assert!(s == 200 || error_code(&v) == "no_certificate", "{v}");
        assert!(start.elapsed() < Duration::from_secs(60), "{v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(v["member"]["foundation"], 0, "{v}");
    assert_eq!(v["member"]["registrar"], key(50).public_key().to_text());
    let record = RecordRef::Member(alice.public_key());
    let p: RecordProof = serde_json::from_value(v["proof"].clone()).unwrap();
    assert_eq!(p.shard, 0);
    let trusted = Trusted::from_genesis(genesis, ShardId::GLOBAL).unwrap();
    let trusted = follow_for(addr, &p, trusted);
    assert!(p
        .check(&record, ShardId::GLOBAL, &trusted)
        .unwrap()
        .value
        .is_some());
    // Her own shard hears it: the account now carries the membership and an allowance.
    let account = until(
        addr,
        &format!("/api/v1/accounts/{alice_text}"),
        |v: &Value| !v["member"].is_null(),
    );
    assert_eq!(account["member"]["foundation"], 0, "{account}");
    assert_ne!(account["allowance"], "0");
    assert!(account["sponsor"].is_null());
    let all = until(addr, "/api/v1/foundations", |v: &Value| {
        v["foundations"][0]["members"] == 1
    });
    assert_eq!(all["foundations"][1]["members"], 0);

    for (path, code) in [
        ("/api/v1/proofs/nothing/abc".to_string(), "bad_record"),
        ("/api/v1/proofs/accounts/not-a-key".to_string(), "bad_key"),
        (format!("/api/v1/proofs/posts/{alice_text}"), "bad_record"),
        (format!("/api/v1/proofs/posts/{alice_text}/x"), "bad_record"),
        (
            format!("/api/v1/proofs/accounts/{alice_text}/extra"),
            "bad_record",
        ),
    ] {
        let (s, v) = http(addr, "GET", &path, "");
        assert_eq!((s, error_code(&v)), (400, code), "{path}: {v}");
    }
}

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

/// Polls `path` until it exists (an account appears once its funds are final).
fn until_found(addr: SocketAddr, path: &str) -> Value {
    let start = Instant::now();
    loop {
        let (s, v) = http(addr, "GET", path, "");
        if s == 200 {
            return v;
        }
        assert_eq!(s, 404, "{path}: {v}");
        assert!(start.elapsed() < Duration::from_secs(60), "{path}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The session cookie a response set.
fn cookie_of(head: &str) -> String {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {head}"));
    let cookie = line.split_once(':').unwrap().1.trim();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    cookie.split(';').next().unwrap().to_string()
}

/// Accounts held by the node: sign up, sessions, CSRF, signed actions, log in and out,
/// export and import, rate limits; each bad input or missing credential a clear 4xx.
fn account_checks(addr: SocketAddr, data_dir: &std::path::Path) {
    let (s, v) = http(addr, "GET", "/api/v1/keystore", "");
    assert_eq!((s, v["items"].as_array().unwrap().len()), (200, 0));

    // Sign up: bad input first.
    for (body, status, code) in [
        ("{", 400, "bad_json"),
        ("{\"label\": \"carol\"}", 400, "bad_json"),
        (
            "{\"label\": \"carol\", \"password\": \"short\"}",
            400,
            "weak_password",
        ),
        (
            "{\"label\": \"no spaces\", \"password\": \"long enough\"}",
            400,
            "bad_label",
        ),
        (
            "{\"label\": \"carol\", \"password\": \"long enough\", \"x\": 1}",
            400,
            "bad_json",
        ),
    ] {
        let (s, v) = http(addr, "POST", "/api/v1/keystore", body);
        assert_eq!((s, error_code(&v)), (status, code), "{body}");
    }
    let (s, v, head) = request(
        addr,
        "POST",
        "/api/v1/keystore",
        &[],
        r#"{"label": "carol", "password": "carol's password"}"#,
    );
    assert_eq!(s, 200, "{v}");
    let carol = v["account"].as_str().unwrap().to_string();
    let csrf = v["csrf"].as_str().unwrap().to_string();
    assert!(v.get("token").is_none(), "a browser sign up sees no token");
    assert!(
        v["funding"].is_string(),
        "the faucet funds new accounts: {v}"
    );
    let cookie = cookie_of(&head);
    // The secret is only in the keystore file, encrypted: never in the answer.
    let file = std::fs::read_dir(data_dir.join("keystore"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let file = std::fs::read_to_string(file).unwrap();
    assert!(file.contains("argon2id") && file.contains(&carol));
    let (s, v) = http(
        addr,
        "POST",
        "/api/v1/keystore",
        r#"{"label": "carol", "password": "another password"}"#,
    );
    assert_eq!((s, error_code(&v)), (409, "exists"));

    // The session: by cookie, and nothing without one.
    let with_cookie = [("Cookie", cookie.as_str())];
    let (s, v, _) = request(addr, "GET", "/api/v1/session", &with_cookie, "");
    assert_eq!((s, v["account"].as_str()), (200, Some(carol.as_str())));
    let (s, v) = http(addr, "GET", "/api/v1/session", "");
    assert_eq!((s, error_code(&v)), (401, "no_session"));
    let post = r##"{"action": {"type": "post", "text": "hello from carol #accounts"}}"##;
    let (s, v) = http(addr, "POST", "/api/v1/me/actions", post);
    assert_eq!((s, error_code(&v)), (401, "no_session"));
    let (s, v, _) = request(addr, "POST", "/api/v1/me/actions", &with_cookie, post);
    assert_eq!((s, error_code(&v)), (403, "bad_csrf"));
    let (s, v, _) = request(
        addr,
        "POST",
        "/api/v1/me/actions",
        &[("Cookie", &cookie), ("X-CSRF-Token", "0000")],
        post,
    );
    assert_eq!((s, error_code(&v)), (403, "bad_csrf"));
    let authed = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];

    // The fee before sending, with the text's length in graphemes.
    let (s, v, _) = request(
        addr,
        "POST",
        "/api/v1/me/fee",
        &authed,
        r#"{"action": {"type": "post", "text": "héllo 👍🏽"}}"#,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["graphemes"].as_u64(), v["valid"].as_bool()),
        (Some(7), Some(true))
    );
    let fee: u128 = v["fee"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        fee,
        u128::from(v["gas"].as_u64().unwrap()) * u128::from(v["base_fee"].as_u64().unwrap())
    );
    assert!(fee > 0);

    // Wait for the faucet's funds, then act.
    until_found(addr, &format!("/api/v1/accounts/{carol}"));
    let (s, v, _) = request(addr, "POST", "/api/v1/me/actions", &authed, post);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["post"]["author"], carol.as_str());
    let seq = v["post"]["seq"].as_u64().unwrap();
    let (s, v, _) = request(
        addr,
        "POST",
        "/api/v1/me/actions",
        &authed,
        r#"{"action": {"type": "set_profile", "display_name": "Carol", "bio": "signs on her node"}}"#,
    );
    assert_eq!(s, 200, "{v}");
    // Bad actions: each a clear 400 before anything is signed.
    let long = format!(
        r#"{{"action": {{"type": "post", "text": "{}"}}}}"#,
        "é".repeat(301)
    );
    for (body, code) in [
        (long.as_str(), "invalid_action"),
        (
            r#"{"action": {"type": "post", "text": ""}}"#,
            "invalid_action",
        ),
        (r#"{"action": {"type": "fly"}}"#, "bad_json"),
        (
            r#"{"action": {"type": "follow", "target": "bob"}}"#,
            "bad_key",
        ),
        (
            r#"{"action": {"type": "transfer", "asset": "gold", "to": "ed25519:00", "amount": "1"}}"#,
            "bad_asset",
        ),
        ("[]", "bad_json"),
    ] {
        let (s, v, _) = request(addr, "POST", "/api/v1/me/actions", &authed, body);
        assert_eq!((s, error_code(&v)), (400, code), "{body}");
    }
    let feed = until(addr, &format!("/api/v1/accounts/{carol}/feed"), |v| {
        !v["items"].as_array().unwrap().is_empty()
    });
    assert_eq!(
        feed["items"][0]["post"]["text"],
        "hello from carol #accounts"
    );
    assert_eq!(feed["items"][0]["post"]["seq"], seq);

    // A second account, by bearer token (no CSRF needed: browsers never send one).
    let (s, v) = http(
        addr,
        "POST",
        "/api/v1/keystore",
        r#"{"label": "dave", "password": "dave's password", "bearer": true}"#,
    );
    assert_eq!(s, 200, "{v}");
    let dave = v["account"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {}", v["token"].as_str().unwrap());
    let dave_auth = [("Authorization", bearer.as_str())];
    until_found(addr, &format!("/api/v1/accounts/{dave}"));
    for body in [
        format!(r#"{{"action": {{"type": "follow", "target": "{carol}"}}}}"#),
        format!(
            r#"{{"action": {{"type": "like", "post": {{"author": "{carol}", "seq": {seq}}}}}}}"#
        ),
    ] {
        let (s, v, _) = request(addr, "POST", "/api/v1/me/actions", &dave_auth, &body);
        assert_eq!(s, 200, "{v}");
    }
    stream_checks(addr, &carol, &dave, &authed, &dave_auth, seq);
    // Another user's post is not dave's to edit or delete.
    for kind in ["edit_post", "delete_post"] {
        let text = if kind == "edit_post" {
            r#", "text": "mine now""#
        } else {
            ""
        };
        let body = format!(
            r#"{{"action": {{"type": "{kind}", "post": {{"author": "{carol}", "seq": {seq}}}{text}}}}}"#
        );
        let (s, v, _) = request(addr, "POST", "/api/v1/me/actions", &dave_auth, &body);
        assert_eq!((s, error_code(&v)), (403, "not_yours"), "{body}");
    }
    let n = until(
        addr,
        &format!("/api/v1/accounts/{carol}/notifications"),
        |v| v["items"].as_array().unwrap().len() == 3,
    );
    assert_eq!(n["unread"], 3);
    let (s, v, _) = request(addr, "POST", "/api/v1/me/notifications/read", &authed, "{}");
    assert_eq!((s, v["unread"].as_u64()), (200, Some(0)), "{v}");

    // Export a backup; log out; log in by label; the old cookie is dead.
    let (s, v, _) = request(
        addr,
        "POST",
        "/api/v1/session/export",
        &authed,
        r#"{"password": "not carol's"}"#,
    );
    assert_eq!((s, error_code(&v)), (401, "bad_password"));
    let (s, v, _) = request(
        addr,
        "POST",
        "/api/v1/session/export",
        &authed,
        r#"{"password": "carol's password"}"#,
    );
    assert_eq!(s, 200, "{v}");
    let backup = v["backup"].as_str().unwrap().to_string();
    assert!(backup.contains("xchacha20poly1305"));
    let (s, v, head) = request(addr, "DELETE", "/api/v1/session", &authed, "");
    assert_eq!(s, 200, "{v}");
    assert!(head.contains("Max-Age=0"));
    let (s, v, _) = request(addr, "GET", "/api/v1/session", &with_cookie, "");
    assert_eq!((s, error_code(&v)), (401, "no_session"));
    let (s, v) = http(
        addr,
        "POST",
        "/api/v1/session",
        r#"{"account": "carol", "password": "wrong password"}"#,
    );
    assert_eq!((s, error_code(&v)), (401, "bad_password"));
    let (s, v) = http(
        addr,
        "POST",
        "/api/v1/session",
        r#"{"account": "nobody", "password": "whatever it is"}"#,
    );
    assert_eq!((s, error_code(&v)), (404, "not_found"));
    let (s, v, head) = request(
        addr,
        "POST",
        "/api/v1/session",
        &[],
        r#"{"account": "carol", "password": "carol's password"}"#,
    );
    assert_eq!((s, v["account"].as_str()), (200, Some(carol.as_str())));
    let _ = cookie_of(&head);

    // Import: the backup is already here; a raw secret becomes a new keystore.
    let body = json!({"backup": backup, "password": "carol's password"}).to_string();
    let (s, v) = http(addr, "POST", "/api/v1/keystore/import", &body);
    assert_eq!((s, error_code(&v)), (409, "exists"));
    let body = json!({"backup": "{\"version\": 1}", "password": "carol's password"}).to_string();
    let (s, v) = http(addr, "POST", "/api/v1/keystore/import", &body);
    assert_eq!((s, error_code(&v)), (400, "bad_keystore"));
    let (s, v) = http(
        addr,
        "POST",
        "/api/v1/keystore/import",
        r#"{"secret": "xyz", "label": "erin", "password": "erin's password"}"#,
    );
    assert_eq!((s, error_code(&v)), (400, "bad_secret"));
    let secret = hex::encode([5u8; 32]);
    let body =
        json!({"secret": secret, "label": "erin", "password": "erin's password"}).to_string();
    let (s, v) = http(addr, "POST", "/api/v1/keystore/import", &body);
    assert_eq!(
        (s, v["account"].as_str()),
        (200, Some(key(5).public_key().to_text().as_str())),
        "{v}"
    );
    // A backup from elsewhere: its KDF (whose cost its maker chose) runs once to import it.
    let frank = starling_accounts::keystore::seal(
        &key(6),
        "frank's password",
        "frank",
        &mut rand_core::OsRng,
    )
    .unwrap()
    .to_json();
    let runs = kdf_runs(addr);
    let body = json!({"backup": frank, "password": "frank's password"}).to_string();
    let (s, v) = http(addr, "POST", "/api/v1/keystore/import", &body);
    assert_eq!(
        (s, v["account"].as_str()),
        (200, Some(key(6).public_key().to_text().as_str())),
        "{v}"
    );
    assert_eq!(kdf_runs(addr) - runs, 1, "Argon2 runs for one import");
    let (_, v) = http(addr, "GET", "/api/v1/keystore", "");
    let labels: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["carol", "dave", "erin", "frank"]);
    assert!(!v.to_string().contains(&secret));

    // Password guessing on one account runs into its limit.
    let mut limited = false;
    for _ in 0..12 {
        let (s, v) = http(
            addr,
            "POST",
            "/api/v1/session",
            r#"{"account": "dave", "password": "guess guess"}"#,
        );
        if s == 429 {
            assert_eq!(error_code(&v), "rate_limited");
            limited = true;
            break;
        }
        assert_eq!((s, error_code(&v)), (401, "bad_password"));
    }
    assert!(
        limited,
        "ten wrong passwords in a row are the most tried at once"
    );
    // The guesser is limited, not the account: its owner logs in from elsewhere.
    let owner = login_from(
        "127.0.0.2",
        addr,
        r#"{"account": "dave", "password": "dave's password"}"#,
    );
    assert_eq!(owner, 200, "the owner, from another address, is let in");
}

/// A login attempt for an account this node does not hold, as the client `xff` (through the
/// trusted proxy): its status.
fn login_as(addr: SocketAddr, xff: &str) -> u16 {
    let (s, v, _) = request(
        addr,
        "POST",
        "/api/v1/session",
        &[("X-Forwarded-For", xff)],
        r#"{"account": "nobody-here", "password": "whatever it is"}"#,
    );
    assert!(s == 404 || s == 429, "{s} {v}");
    s
}

/// Logs in as `xff` until refused: how many attempts were let through.
fn exhaust_login(addr: SocketAddr, xff: &str) -> usize {
    (0..100)
        .position(|_| login_as(addr, xff) == 429)
        .expect("the login limit stops a client")
}

/// Client addresses through a trusted proxy (and not from anyone else), IPv6 by /64, the
/// Host allow-list, and who may list the node's accounts.
fn client_checks(addr: SocketAddr, alice: &str) {
    // Behind the proxy, one client exhausting the login limit leaves the next one alone.
    let burst = exhaust_login(addr, "203.0.113.1");
    assert!(burst >= 5, "{burst}");
    assert_eq!(login_as(addr, "203.0.113.1"), 429);
    assert_eq!(
        login_as(addr, "203.0.113.2"),
        404,
        "another client behind the proxy"
    );
    // What the client wrote before the proxy's entry does not count.
    assert_eq!(login_as(addr, "203.0.113.2, 203.0.113.1"), 429);
    // IPv6: one /64 is one client.
    exhaust_login(addr, "2001:db8:1:2::1");
    assert_eq!(login_as(addr, "2001:db8:1:2:ffff::9"), 429, "same /64");
    assert_eq!(login_as(addr, "2001:db8:1:3::1"), 404, "another /64");
    // From an address that is no trusted proxy, the header is the client's word: ignored.
    let from = |xff: &str| {
        login_from_with(
            "127.0.0.3",
            addr,
            &format!("X-Forwarded-For: {xff}\r\n"),
            r#"{"account": "nobody-here", "password": "whatever it is"}"#,
        )
    };
    let mut n = 0;
    while from(&format!("198.51.100.{n}")) != 429 {
        n += 1;
        assert!(n < 100, "rotating the header must not escape the limit");
    }

    // Host names: IP literals, localhost and the configured name; not others (a page on
    // another site whose name was pointed at this node).
    for (host, ok) in [
        ("127.0.0.1", true),
        ("localhost:8080", true),
        ("starling.example.org", true),
        ("evil.example", false),
        ("starling.example.org.evil.example:80", false),
    ] {
        let (s, v, _) = request(addr, "GET", "/api/v1/status", &[("Host", host)], "");
        if ok {
            assert_eq!(s, 200, "{host}: {v}");
        } else {
            assert_eq!((s, error_code(&v)), (403, "bad_host"), "{host}");
        }
    }
    let (s, _, _) = request(addr, "GET", "/", &[("Host", "evil.example")], "");
    assert_eq!(s, 403, "the web app too");

    // The accounts on this node: listed to its own machine, not to a stranger…
    let (s, v, _) = request(addr, "GET", "/api/v1/keystore", &[], "");
    assert_eq!(s, 200, "{v}");
    assert!(!v["items"].as_array().unwrap().is_empty());
    let stranger = [("X-Forwarded-For", "203.0.113.77")];
    let (s, v, _) = request(addr, "GET", "/api/v1/keystore", &stranger, "");
    assert_eq!((s, error_code(&v)), (403, "not_local"));
    // …unless the stranger has a session.
    let (s, v, _) = request(
        addr,
        "POST",
        "/api/v1/session",
        &stranger,
        r#"{"account": "dave", "password": "dave's password", "bearer": true}"#,
    );
    assert_eq!(s, 200, "{v}");
    let auth = format!("Bearer {}", v["token"].as_str().unwrap());
    let (s, v, _) = request(
        addr,
        "GET",
        "/api/v1/keystore",
        &[stranger[0], ("Authorization", &auth)],
        "",
    );
    assert_eq!(s, 200, "{v}");
    // Streams per client are bounded (the rest of this client's are refused).
    let mut open = Vec::new();
    let refused = loop {
        match open_stream(
            addr,
            &format!("?account={alice}"),
            &[("X-Forwarded-For", "203.0.113.9")],
        ) {
            Ok(ws) => open.push(ws),
            Err(refusal) => break refusal,
        }
        assert!(open.len() <= api::stream::MAX_STREAMS_PER_CLIENT);
    };
    assert_eq!(open.len(), api::stream::MAX_STREAMS_PER_CLIENT);
    assert_eq!((refused.0, error_code(&refused.1)), (503, "busy"));
    open_stream(
        addr,
        &format!("?account={alice}"),
        &[("X-Forwarded-For", "203.0.113.10")],
    )
    .expect("another client still gets a stream")
    .close(None)
    .unwrap();
    for mut ws in open {
        ws.close(None).unwrap();
    }
}

/// Streams open, from `/metrics` of the in-process API.
fn streams_open(app: &axum::Router) -> u64 {
    use tower::ServiceExt as _;
    let req = axum::http::Request::get("/metrics")
        .header("host", "127.0.0.1")
        .body(axum::body::Body::empty())
        .unwrap();
    tokio::runtime::Handle::current().block_on(async {
        let resp = app.clone().oneshot(req).await.unwrap();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("starling_api_streams_open "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no stream gauge in {text}"))
    })
}

/// A stream request whose upgrade never completes (the client went away between the answer
/// and the upgrade) gives its slot back: more of them than one client may hold at once are
/// each answered, and afterwards none is held.
fn failed_upgrades_give_their_slots_back(app: axum::Router, alice: &str) {
    use tower::ServiceExt as _;
    let rt = tokio::runtime::Handle::current();
    for i in 0..api::stream::MAX_STREAMS_PER_CLIENT + 8 {
        let mut req = axum::http::Request::get(format!("/api/v1/stream?account={alice}"))
            .header("host", "127.0.0.1")
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(axum::body::Body::empty())
            .unwrap();
        // No connection stands behind this request, so its upgrade fails.
        let upgrade = hyper::upgrade::on(&mut req);
        req.extensions_mut().insert(upgrade);
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from((
                [192, 0, 2, 1],
                4_000,
            ))));
        let resp = rt.block_on(app.clone().oneshot(req)).unwrap();
        assert_eq!(resp.status(), 101, "upgrade {i}");
        // The failed upgrade runs on its own task; its slot comes back once it has.
        let start = Instant::now();
        while streams_open(&app) != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "upgrade {i} kept its slot"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// `POST /api/v1/session` with `body`, from the loopback address `src`: the status.
fn login_from(src: &str, addr: SocketAddr, body: &str) -> u16 {
    login_from_with(src, addr, "", body)
}

/// `POST /api/v1/session` with `body` and the `extra` header lines, from `src`: the status.
fn login_from_with(src: &str, addr: SocketAddr, extra: &str, body: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let src: SocketAddr = format!("{src}:0").parse().unwrap();
    tokio::runtime::Handle::current().block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(src).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        let request = format!(
            "POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out.split(' ').nth(1).unwrap().parse().unwrap()
    })
}

type Ws = tungstenite::WebSocket<TcpStream>;

/// Opens `/api/v1/stream{query}` with `headers`: the socket, or the refusal's status and body.
fn open_stream(
    addr: SocketAddr,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, (u16, Value)> {
    use tungstenite::client::IntoClientRequest as _;
    let mut req = format!("ws://{addr}/api/v1/stream{query}")
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    match tungstenite::client(req, tcp) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let body = resp.body().clone().unwrap_or_default();
            Err((
                resp.status().as_u16(),
                serde_json::from_slice(&body).unwrap_or(Value::Null),
            ))
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

/// The next stream message that `want` accepts (others are skipped).
fn next_message(ws: &mut Ws, want: impl Fn(&Value) -> bool) -> Value {
    loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if want(&v) {
                    return v;
                }
            }
            tungstenite::Message::Close(c) => panic!("stream closed: {c:?}"),
            _ => {}
        }
    }
}

/// The live stream: a followed account's new post reaches the follower, and a reply
/// reaches the author as a notification; refusals are clear.
fn stream_checks(
    addr: SocketAddr,
    carol: &str,
    dave: &str,
    carol_auth: &[(&str, &str)],
    dave_auth: &[(&str, &str)],
    seq: u64,
) {
    let (s, v) = http(addr, "GET", "/api/v1/stream", "");
    assert_eq!((s, error_code(&v)), (400, "not_websocket"));
    let (s, v) = open_stream(addr, "", &[]).unwrap_err();
    assert_eq!((s, error_code(&v)), (401, "no_session"));
    let (s, v) = open_stream(addr, "?account=nobody", &[]).unwrap_err();
    assert_eq!((s, error_code(&v)), (400, "bad_key"));
    let (s, v) = open_stream(addr, "", &[("Origin", "http://evil.example")]).unwrap_err();
    assert_eq!((s, error_code(&v)), (403, "bad_origin"));

    // Dave follows carol (above); once that is indexed, his stream opens.
    until(addr, &format!("/api/v1/accounts/{dave}/home"), |v| {
        !v["items"].as_array().unwrap().is_empty()
    });
    let mut dave_ws = open_stream(addr, "", dave_auth).unwrap();
    let hello = next_message(&mut dave_ws, |_| true);
    assert_eq!(
        (hello["type"].as_str(), hello["account"].as_str()),
        (Some("hello"), Some(dave))
    );
    let mut carol_ws = open_stream(addr, &format!("?account={carol}"), &[]).unwrap();
    next_message(&mut carol_ws, |v| v["type"] == "hello");

    let (s, v, _) = request(
        addr,
        "POST",
        "/api/v1/me/actions",
        carol_auth,
        r#"{"action": {"type": "post", "text": "live to dave"}}"#,
    );
    assert_eq!(s, 200, "{v}");
    let m = next_message(&mut dave_ws, |v| v["type"] == "post");
    assert_eq!(m["item"]["post"]["text"], "live to dave");
    assert_eq!(m["item"]["by"]["account"], carol);

    let body = format!(
        r#"{{"action": {{"type": "post", "text": "live reply", "reply_to": {{"author": "{carol}", "seq": {seq}}}}}}}"#
    );
    let (s, v, _) = request(addr, "POST", "/api/v1/me/actions", dave_auth, &body);
    assert_eq!(s, 200, "{v}");
    let m = next_message(&mut carol_ws, |v| v["type"] == "notification");
    assert_eq!(m["item"]["kind"], "reply");
    assert_eq!(m["item"]["actor"]["account"], dave);
    // Dave's own reply is in his home timeline too.
    let m = next_message(&mut dave_ws, |v| v["type"] == "post");
    assert_eq!(m["item"]["post"]["text"], "live reply");
    dave_ws.close(None).unwrap();
}

/// The OpenAPI document is served, and every path it names answers (never the fallback's
/// "no such endpoint", never a 500).
fn openapi_checks(addr: SocketAddr, alice: &str) {
    let (s, doc) = http(addr, "GET", "/api/v1/openapi.json", "");
    assert_eq!((s, doc["openapi"].as_str()), (200, Some("3.1.0")));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 28, "{}", paths.len());
    for (path, ops) in paths {
        let concrete = path
            .replace("{key}", alice)
            .replace("{author}", alice)
            .replace("{seq}", "0")
            .replace("{shard}", "1")
            .replace("{height}", "1")
            .replace("{tag}", "starling")
            .replace("{handle}", "nobody");
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_uppercase();
            let body = if m == "GET" || m == "DELETE" {
                ""
            } else {
                "{}"
            };
            let (s, v) = http(addr, &m, &concrete, body);
            assert!(s < 500, "{m} {concrete}: {s} {v}");
            assert_ne!(
                v["error"]["message"].as_str(),
                Some("no such endpoint"),
                "{m} {concrete}"
            );
        }
    }
}
