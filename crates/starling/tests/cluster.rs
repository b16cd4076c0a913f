//! A real cluster: four `starling node` validator processes on 127.0.0.1, created with the
//! CLI (keys, genesis, init). Under load one validator is killed with SIGKILL and restarted;
//! every transaction a node acknowledged is finalized exactly once, the restarted validator
//! catches up, and all four hold the same chain (same block ids, hence the same state roots)
//! on every shard.
//!
//! Load goes to the APIs of the three validators that stay up: an acknowledgement means
//! "admitted to this node's pool", which a node that is then killed cannot keep.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;
use common::*;
use starling_types::{Action, ChainId, Encode as _, ShardMap, TxBody};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Instant;

const USERS: u32 = 24;
/// Short epochs: the run crosses epoch boundaries, also while a validator is down.
const EPOCH_BLOCKS: u64 = 5;

/// `key`'s transaction with `nonce` and `action`, signed for `chain`, as the API takes it.
fn signed_hex(
    chain: &ChainId,
    key: &starling_crypto::SecretKey,
    nonce: u64,
    action: Action,
) -> String {
    let body = TxBody {
        account: key.public_key(),
        nonce,
        max_fee: 1_000_000_000_000,
        tip: 1,
        expires_at_height: 10_000,
        action,
    };
    hex::encode(key.sign_tx(chain, &body).to_bytes())
}

fn post(text: String) -> Action {
    Action::Post {
        text,
        reply_to: None,
        quote_of: None,
        langs: vec![],
    }
}

struct Validator {
    config: PathBuf,
    api: SocketAddr,
    child: Option<Child>,
}

impl Validator {
    fn start(&mut self, dir: &Path) {
        self.child = Some(spawn_until_api(
            Command::new(env!("CARGO_BIN_EXE_starling"))
                .current_dir(dir)
                .args(["node", "--config", self.config.to_str().unwrap()]),
        ));
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    /// Sends `kill -<signal>` to the running process (STOP, CONT).
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    fn heights(&self) -> Option<BTreeMap<u64, u64>> {
        let s = get(self.api, "/api/v1/status")?;
        Some(
            s["shards"]
                .as_array()?
                .iter()
                .map(|x| (x["shard"].as_u64().unwrap(), x["height"].as_u64().unwrap()))
                .collect(),
        )
    }
}

/// Checks that all `nodes` hold the same block at every height up to `target` (per shard).
fn assert_same_blocks(nodes: &[&Validator], target: &BTreeMap<u64, u64>) {
    for (shard, top) in target {
        for height in 1..=*top {
            let ids: Vec<String> = nodes
                .iter()
                .map(|v| {
                    wait_for("a finalized block", || {
                        get(v.api, &format!("/api/v1/shards/{shard}/blocks/{height}"))
                    })["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            assert!(
                ids.windows(2).all(|w| w[0] == w[1]),
                "nodes disagree on shard {shard} block {height}: {ids:?}"
            );
        }
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn four_validator_processes_survive_a_sigkill_and_agree() {
    let _one = common::one_network_at_a_time();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let mut vals = Vec::new();
    let mut entries = Vec::new();
    for i in 0..4 {
        let pk = starling(dir, &["keys", "generate", "--out", &format!("v{i}.key")]);
        let p2p = free_addr();
        entries.push(format!("{}@{p2p}", pk.trim()));
        vals.push(p2p);
    }
    let mut args: Vec<String> = vec![
        "genesis".into(),
        "new".into(),
        "--chain-id".into(),
        "cluster-test".into(),
        "--account-shards".into(),
        "2".into(),
        "--epoch-blocks".into(),
        EPOCH_BLOCKS.to_string(),
        "--out".into(),
        "genesis.toml".into(),
    ];
    for e in &entries {
        args.extend(["--validator".into(), e.clone()]);
    }
    for name in ["North", "East", "West"] {
        let pk = starling(dir, &["keys", "generate", "--out", &format!("{name}.key")]);
        args.extend(["--foundation".into(), format!("{name}={}", pk.trim())]);
    }
    let users: Vec<_> = (0..USERS).map(starling_node::devnet::user_key).collect();
    // The relay operator's onboarding key: it sponsors sign ups' fees.
    let sponsor = starling_node::devnet::user_key(50_000);
    starling_node::keyfile::write(&dir.join("sponsor.key"), &sponsor).unwrap();
    for u in users.iter().chain([&sponsor]) {
        args.extend([
            "--alloc".into(),
            format!("{}=1000000000000000000", u.public_key().to_text()),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    starling(dir, &args);

    let mut validators = Vec::new();
    let mut open_addrs = Vec::new();
    for (i, p2p) in vals.iter().enumerate() {
        let api = free_addr();
        let open = free_addr();
        open_addrs.push(format!("\"{open}\""));
        let config = dir.join(format!("v{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "roles = [\"validator\"]\ndata_dir = \"data-{i}\"\nkey_file = \"v{i}.key\"\ngenesis = \"genesis.toml\"\n\n[validator]\nlisten = \"{p2p}\"\nblock_interval_ms = 100\n\n[p2p]\nlisten = \"{open}\"\n\n[api]\nlisten = \"{api}\"\n"
            ),
        )
        .unwrap();
        starling(dir, &["init", "--config", config.to_str().unwrap()]);
        validators.push(Validator {
            config,
            api,
            child: None,
        });
    }
    for v in &mut validators {
        v.start(dir);
    }
    // A relay: follows every shard over the open network, checking certificates.
    starling(dir, &["keys", "generate", "--out", "relay.key"]);
    let relay_config = dir.join("relay.toml");
    std::fs::write(
        &relay_config,
        format!(
            "roles = [\"relay\"]\ndata_dir = \"relay-data\"\nkey_file = \"relay.key\"\ngenesis = \"genesis.toml\"\n\n[p2p]\nlisten = \"{}\"\nbootstrap = [{}]\n\n[onboarding]\nkey_file = \"sponsor.key\"\namount = 5000000\nper_hour = 1\n\n[api]\nlisten = \"{}\"\n",
            free_addr(),
            open_addrs.join(", "),
            free_addr()
        ),
    )
    .unwrap();
    starling(dir, &["init", "--config", relay_config.to_str().unwrap()]);
    let relay_api: SocketAddr = {
        let text = std::fs::read_to_string(&relay_config).unwrap();
        let line = text.lines().last().unwrap();
        line.split('"').nth(1).unwrap().parse().unwrap()
    };
    let mut relay = Validator {
        config: relay_config,
        api: relay_api,
        child: None,
    };
    relay.start(dir);
    wait_for("every shard to finalize a block on every validator", || {
        validators
            .iter()
            .all(|v| {
                v.heights()
                    .is_some_and(|h| h.len() == 3 && h.values().all(|&x| x >= 1))
            })
            .then_some(())
    });

    let chain = ChainId::new("cluster-test").unwrap();
    let map = ShardMap::even(2).unwrap();
    let mut nonces = vec![0u64; users.len()];
    // Every acknowledged transaction: hash -> shard.
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut round = 0usize;
    let mut submit_round = |validators: &[&Validator], acked: &mut HashMap<String, u64>| {
        let mut txs = Vec::new();
        for (u, key) in users.iter().enumerate() {
            let text = format!("round {round} from user {u}");
            txs.push(signed_hex(&chain, key, nonces[u], post(text)));
        }
        let target = &validators[round % 3];
        round += 1;
        let body = serde_json::json!({ "txs": txs }).to_string();
        let (status, resp) = http(target.api, "POST", "/api/v1/txs", Some(&body)).unwrap();
        assert_eq!(status, 200, "{resp}");
        let resp: serde_json::Value = serde_json::from_str(&resp).unwrap();
        for (u, r) in resp["results"].as_array().unwrap().iter().enumerate() {
            if let Some(h) = r["hash"].as_str() {
                let shard = map.shard_of(&users[u].public_key()).0 as u64;
                assert_eq!(r["shard"].as_u64(), Some(shard));
                acked.insert(h.to_string(), shard);
                nonces[u] += 1;
            } else {
                panic!("transaction refused: {r}");
            }
        }
    };

    for _ in 0..5 {
        submit_round(
            &[&validators[0], &validators[1], &validators[2]],
            &mut acked,
        );
    }
    validators[3].kill();
    relay.kill();
    let at_kill = validators[0].heights().unwrap();
    for _ in 0..10 {
        submit_round(
            &[&validators[0], &validators[1], &validators[2]],
            &mut acked,
        );
    }
    // The three left keep finalizing.
    wait_for("progress without validator 3", || {
        let h = validators[0].heights()?;
        h.iter().all(|(s, x)| *x > at_kill[s] + 2).then_some(())
    });
    validators[3].start(dir);
    relay.start(dir);
    for _ in 0..5 {
        submit_round(
            &[&validators[0], &validators[1], &validators[2]],
            &mut acked,
        );
    }
    // A validator paused (SIGSTOP) under load, then resumed (SIGCONT), and the relay killed
    // again meanwhile: the other three keep finalizing, the paused one catches up.
    validators[2].signal("STOP");
    let at_pause = validators[0].heights().unwrap();
    relay.kill();
    for _ in 0..6 {
        submit_round(
            &[&validators[0], &validators[1], &validators[3]],
            &mut acked,
        );
    }
    wait_for("progress while validator 2 is paused", || {
        let h = validators[0].heights()?;
        h.iter().all(|(s, x)| *x > at_pause[s] + 2).then_some(())
    });
    validators[2].signal("CONT");
    relay.start(dir);
    for _ in 0..3 {
        submit_round(
            &[&validators[0], &validators[1], &validators[2]],
            &mut acked,
        );
    }

    // Transfers to new accounts, most of them on another shard than the sender's: each
    // credit crosses shards as a message and must be applied exactly once.
    let recipients: Vec<_> = (0..USERS)
        .map(|u| starling_node::devnet::user_key(10_000 + u))
        .collect();
    let mut crossing = 0;
    let mut txs = Vec::new();
    for (u, key) in users.iter().enumerate() {
        let to = recipients[u].public_key();
        if map.shard_of(&to) != map.shard_of(&key.public_key()) {
            crossing += 1;
        }
        let transfer = Action::Transfer {
            asset: starling_types::Asset::Spend,
            to,
            amount: 1_000 + u as u128,
        };
        txs.push(signed_hex(&chain, key, nonces[u], transfer));
    }
    assert!(crossing > 0, "no transfer crosses shards");
    let body = serde_json::json!({ "txs": txs }).to_string();
    let (status, resp) = http(validators[1].api, "POST", "/api/v1/txs", Some(&body)).unwrap();
    assert_eq!(status, 200, "{resp}");
    let resp: serde_json::Value = serde_json::from_str(&resp).unwrap();
    for (u, r) in resp["results"].as_array().unwrap().iter().enumerate() {
        let hash = r["hash"]
            .as_str()
            .unwrap_or_else(|| panic!("transfer refused: {r}"));
        acked.insert(
            hash.to_string(),
            map.shard_of(&users[u].public_key()).0 as u64,
        );
    }

    // Every acknowledged transaction finalizes, exactly once, in validator 0's chain.
    let mut found: HashMap<String, (u32, u64)> = HashMap::new();
    let mut next: BTreeMap<u64, u64> = (0..3).map(|s| (s, 1)).collect();
    wait_for("every acknowledged transaction to finalize", || {
        for (shard, h) in next.iter_mut() {
            while let Some(block) = get(
                validators[0].api,
                &format!("/api/v1/shards/{shard}/blocks/{h}"),
            ) {
                for tx in block["txs"].as_array().unwrap() {
                    let e = found
                        .entry(tx["hash"].as_str().unwrap().to_string())
                        .or_insert((0, *shard));
                    e.0 += 1;
                }
                *h += 1;
            }
        }
        acked.keys().all(|h| found.contains_key(h)).then_some(())
    });
    for (hash, (count, _)) in &found {
        assert_eq!(*count, 1, "{hash} finalized {count} times");
    }
    for (hash, shard) in &acked {
        assert_eq!(found[hash].1, *shard, "{hash} finalized on the wrong shard");
    }
    // Every node, the relay too, has the same block ids and state roots at every height.
    let nodes: Vec<&Validator> = validators.iter().chain(std::iter::once(&relay)).collect();
    for (shard, upto) in &next {
        for h in 1..*upto {
            let path = format!("/api/v1/shards/{shard}/blocks/{h}");
            let want = get(validators[0].api, &path).unwrap();
            for n in &nodes {
                let got = wait_for("a node to reach the height", || get(n.api, &path));
                assert_eq!(got["id"], want["id"], "shard {shard} height {h}");
                assert_eq!(
                    got["state_root"], want["state_root"],
                    "shard {shard} height {h}"
                );
            }
        }
    }

    // Every credit arrives on the recipient's shard, once.
    for (u, r) in recipients.iter().enumerate() {
        let path = format!("/api/v1/accounts/{}", r.public_key().to_text());
        let account = wait_for("a cross-shard credit", || get(validators[0].api, &path));
        assert_eq!(
            account["balances"]["spend"].as_str().unwrap(),
            (1_000 + u).to_string(),
            "recipient {u}"
        );
    }

    onboarding_checks(
        relay.api,
        validators[0].api,
        &sponsor.public_key().to_text(),
    );

    // The restarted validator catches up to where validator 0 was, and all four agree on
    // every block of every shard up to there.
    // Every shard goes through several epochs (the idle global shard the fewest).
    let target = wait_for("three epochs on every shard", || {
        let h = validators[0].heights()?;
        h.values().all(|x| *x > 3 * EPOCH_BLOCKS).then_some(h)
    });
    wait_for("validator 3 to catch up", || {
        let h = validators[3].heights()?;
        target.iter().all(|(s, x)| h[s] >= *x).then_some(())
    });
    wait_for("the restarted relay to catch up", || {
        let h = relay.heights()?;
        target.iter().all(|(s, x)| h[s] >= *x).then_some(())
    });
    let all: Vec<&Validator> = validators.iter().chain([&relay]).collect();
    assert_same_blocks(&all, &target);
    // Same chain, same state: the heads' state roots agree where the heights agree.
    let heads: Vec<serde_json::Value> = validators
        .iter()
        .chain([&relay])
        .map(|v| {
            let top = target[&1];
            get(v.api, &format!("/api/v1/shards/1/blocks/{top}")).unwrap()
        })
        .collect();
    assert!(heads
        .windows(2)
        .all(|w| w[0]["state_root"] == w[1]["state_root"]));
    // A client of the relay: its transaction reaches the validators through the open network.
    let via_relay = signed_hex(
        &chain,
        &users[0],
        nonces[0] + 1,
        post("posted through a relay".into()),
    );
    let body = serde_json::json!({ "txs": [via_relay] }).to_string();
    let (status, resp) = http(relay.api, "POST", "/api/v1/txs", Some(&body)).unwrap();
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("\"accepted\":1"), "{resp}");
    let who = users[0].public_key().to_text();
    let post = wait_for("the relay's post to finalize and reach the relay", || {
        get(relay.api, &format!("/api/v1/posts/{who}/{}", nonces[0] + 1))
    });
    assert_eq!(post["text"], "posted through a relay");
    wait_for("the post in the relay's app view", || {
        get(relay.api, &format!("/api/v1/accounts/{who}/feed"))
            .filter(|v| v["items"][0]["post"]["text"] == "posted through a relay")
    });
    // A light client of the restarted relay checks the post from the genesis file alone,
    // following the committee hand-offs the relay kept across its restart.
    let seq = (nonces[0] + 1).to_string();
    let v = proof_json(relay.api, dir, &["posts", &who, &seq]);
    assert_eq!(v["record"]["text"], "posted through a relay", "{v}");
    assert!(v["epoch"].as_u64().unwrap() >= 3, "{v}");

    // Still exactly once after all of that, on the restarted validator and the relay too.
    for v in [&validators[0], &validators[3], &relay] {
        for (u, r) in recipients.iter().enumerate() {
            let path = format!("/api/v1/accounts/{}", r.public_key().to_text());
            let account = get(v.api, &path).unwrap();
            assert_eq!(
                account["balances"]["spend"].as_str().unwrap(),
                (1_000 + u).to_string()
            );
        }
    }
}

/// Runs `starling devnet` until its API answers; returns the process and the API address.
fn start_devnet(data_dir: &Path) -> (Killed, SocketAddr) {
    let api = free_addr();
    let child = spawn_until_api(
        Command::new(env!("CARGO_BIN_EXE_starling"))
            .args(["devnet", "--data-dir", data_dir.to_str().unwrap()])
            .args(["--api", &api.to_string(), "--block-interval-ms", "50"]),
    );
    (Killed(child), api)
}

fn status_heights(api: SocketAddr) -> Option<(String, Vec<u64>)> {
    let s = get(api, "/api/v1/status")?;
    let heights = s["shards"]
        .as_array()?
        .iter()
        .map(|x| x["height"].as_u64().unwrap())
        .collect();
    Some((s["genesis_id"].as_str()?.to_string(), heights))
}

#[test]
fn devnet_runs_every_shard_and_resumes_after_a_kill() {
    let _one = common::one_network_at_a_time();
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("devnet");
    let (child, api) = start_devnet(&data);
    let (genesis, before) = wait_for("blocks on every shard", || {
        let (g, h) = status_heights(api)?;
        (h.len() == 3 && h.iter().all(|&x| x >= 3)).then_some((g, h))
    });
    // A devnet user can post.
    let user = starling_node::devnet::user_key(7);
    let chain = ChainId::new(starling_node::devnet::CHAIN_ID).unwrap();
    let tx = signed_hex(&chain, &user, 0, post("first post on a devnet".into()));
    let req = serde_json::json!({ "txs": [tx] });
    let (status, resp) = http(api, "POST", "/api/v1/txs", Some(&req.to_string())).unwrap();
    assert_eq!(status, 200);
    assert!(resp.contains("\"accepted\":1"), "{resp}");
    let who = user.public_key().to_text();
    wait_for("the post to finalize", || {
        get(api, &format!("/api/v1/posts/{who}/0"))
    });
    // The relay's app view indexes it from the blocks it applied.
    let feed_path = format!("/api/v1/accounts/{who}/feed");
    let in_feed = |v: serde_json::Value| {
        (v["items"][0]["post"]["text"] == "first post on a devnet").then_some(v)
    };
    wait_for("the post in the relay's app view", || {
        get(api, &feed_path).and_then(in_feed)
    });
    drop(child);

    // Run again: the same network, from where it was.
    let (_child, api) = start_devnet(&data);
    let (again, after) = wait_for("the resumed devnet", || {
        let (g, h) = status_heights(api)?;
        h.iter().zip(&before).all(|(a, b)| a > b).then_some((g, h))
    });
    assert_eq!(again, genesis, "a resumed devnet keeps its genesis");
    assert!(after.iter().zip(&before).all(|(a, b)| a > b));
    let post = get(api, &format!("/api/v1/posts/{who}/0")).unwrap();
    assert_eq!(post["text"], "first post on a devnet");
    // The app view was kept on disk (a resumed view indexes only what it missed).
    let feed = get(api, &feed_path).unwrap();
    assert_eq!(feed["items"].as_array().unwrap().len(), 1, "{feed}");
    assert!(in_feed(feed).is_some());
}

/// A fifth validator process, not in the genesis, bonds through a `RegisterValidator`
/// transaction: the others connect to it once the registry on the global shard lists it, it
/// catches up, and the committees of the next epochs include it. Then a genesis validator is
/// killed: five-member committees need four votes, so every shard keeps finalizing only
/// because the newcomer votes. All four running validators agree on every block.
#[test]
fn a_validator_that_bonds_joins_the_committees_and_carries_the_network() {
    let _one = common::one_network_at_a_time();
    let started = Instant::now();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let mut keys = Vec::new();
    let mut p2p = Vec::new();
    for i in 0..5 {
        keys.push(
            starling(dir, &["keys", "generate", "--out", &format!("v{i}.key")])
                .trim()
                .to_string(),
        );
        p2p.push(free_addr());
    }
    let operator = starling_node::devnet::user_key(0);
    let mut args: Vec<String> = [
        "genesis",
        "new",
        "--chain-id",
        "join-test",
        "--account-shards",
        "1",
        "--epoch-blocks",
        &EPOCH_BLOCKS.to_string(),
        "--out",
        "genesis.toml",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..4 {
        args.extend(["--validator".into(), format!("{}@{}", keys[i], p2p[i])]);
    }
    for name in ["North", "East", "West"] {
        let pk = starling(dir, &["keys", "generate", "--out", &format!("{name}.key")]);
        args.extend(["--foundation".into(), format!("{name}={}", pk.trim())]);
    }
    args.extend([
        "--alloc".into(),
        format!("{}=1000000000000000000", operator.public_key().to_text()),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    starling(dir, &args);

    let mut validators = Vec::new();
    for (i, listen) in p2p.iter().enumerate() {
        let api = free_addr();
        let config = dir.join(format!("v{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "roles = [\"validator\"]\ndata_dir = \"data-{i}\"\nkey_file = \"v{i}.key\"\ngenesis = \"genesis.toml\"\n\n[validator]\nlisten = \"{listen}\"\nblock_interval_ms = 100\n\n[p2p]\nlisten = \"{}\"\n\n[api]\nlisten = \"{api}\"\n",
                free_addr()
            ),
        )
        .unwrap();
        starling(dir, &["init", "--config", config.to_str().unwrap()]);
        let mut v = Validator {
            config,
            api,
            child: None,
        };
        v.start(dir);
        eprintln!("{:?}: validator {i} started", started.elapsed());
        validators.push(v);
    }
    let committee = |v: &Validator, shard: u64| -> Option<(u64, Vec<String>)> {
        let s = get(v.api, "/api/v1/status")?;
        let entry = s["shards"]
            .as_array()?
            .iter()
            .find(|x| x["shard"].as_u64() == Some(shard))?
            .clone();
        let members = entry["committee"]
            .as_array()?
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        Some((entry["height"].as_u64()?, members))
    };
    wait_for("the genesis validators to finalize", || {
        validators[..4]
            .iter()
            .all(|v| v.heights().is_some_and(|h| h.values().all(|&x| x >= 1)))
            .then_some(())
    });
    assert_eq!(committee(&validators[0], 0).unwrap().1.len(), 4);

    eprintln!("{:?}: genesis validators finalize", started.elapsed());
    // The operator bonds validator 4.
    let chain = ChainId::new("join-test").unwrap();
    let newcomer = starling_types::PublicKey::from_text(&keys[4]).unwrap();
    let newcomer_key = starling_node::keyfile::read(&dir.join("v4.key")).unwrap();
    assert_eq!(newcomer_key.public_key(), newcomer);
    let tx = signed_hex(
        &chain,
        &operator,
        0,
        Action::RegisterValidator {
            consensus_key: newcomer,
            address: p2p[4].to_string(),
            proof: newcomer_key.validator_pop(&chain, &operator.public_key()),
        },
    );
    let body = serde_json::json!({ "txs": [tx] }).to_string();
    let (status, resp) = http(validators[0].api, "POST", "/api/v1/txs", Some(&body)).unwrap();
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("\"accepted\":1"), "{resp}");

    // Every shard's committee grows to five, on the newcomer's own replica too.
    for shard in [0, 1] {
        wait_for("the newcomer in the committee", || {
            validators
                .iter()
                .all(|v| {
                    committee(v, shard).is_some_and(|(_, c)| c.len() == 5 && c.contains(&keys[4]))
                })
                .then_some(())
        });
    }

    eprintln!(
        "{:?}: the newcomer is in every committee",
        started.elapsed()
    );
    // A genesis validator dies: from now on four of five votes are needed, the newcomer's too.
    validators[0].kill();
    let at_kill = validators[1].heights().unwrap();
    wait_for("two more epochs on every shard without validator 0", || {
        let h = validators[4].heights()?;
        at_kill
            .iter()
            .all(|(s, x)| h[s] >= x + 2 * EPOCH_BLOCKS)
            .then_some(())
    });
    eprintln!("{:?}: two epochs without validator 0", started.elapsed());
    let target = validators[4].heights().unwrap();
    assert_same_blocks(&validators[1..].iter().collect::<Vec<_>>(), &target);

    // A light client that trusts only the genesis file follows the committees through the
    // newcomer's arrival, hand-off by hand-off, and checks the operator's account.
    let operator_key = operator.public_key().to_text();
    let v = proof_json(validators[4].api, dir, &["accounts", &operator_key]);
    assert!(
        v["epoch"].as_u64().unwrap() >= 2 && v["record"]["nonce"] == 1,
        "{v}"
    );
}

/// `starling proof <what> --json` against `api`, trusting `dir/genesis.toml`: its checked
/// answer.
fn proof_json(api: SocketAddr, dir: &Path, what: &[&str]) -> serde_json::Value {
    let genesis = dir.join("genesis.toml");
    let mut args = vec!["proof"];
    args.extend_from_slice(what);
    args.extend(["--json", "--genesis", genesis.to_str().unwrap()]);
    let out = cli_ok(api, &dir.join("no-session.json"), &args);
    serde_json::from_str(&out).unwrap()
}

/// Runs a social CLI command against `api` as the user whose session file is `session`.
fn cli(api: SocketAddr, session: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_starling"))
        .args(args)
        .env("STARLING_NODE", format!("http://{api}"))
        .env("STARLING_SESSION", session)
        .env("STARLING_PASSWORD", "a password for the CLI test")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The relay sponsors its first sign up's fees from the operator's key (set aside on the
/// ledger, not given), and no more than its hourly budget (one here).
fn onboarding_checks(relay: SocketAddr, validator: SocketAddr, sponsor: &str) {
    let signup = |label: &str| {
        let body = serde_json::json!({"label": label, "password": "a long enough password"});
        let (s, v) = http(relay, "POST", "/api/v1/keystore", Some(&body.to_string())).unwrap();
        assert_eq!(s, 200, "{v}");
        serde_json::from_str::<serde_json::Value>(&v).unwrap()
    };
    let first = signup("newcomer");
    assert_eq!(first["funded_by"], "sponsorship", "{first}");
    let key = first["account"].as_str().unwrap().to_string();
    let account = wait_for("the newcomer's sponsorship on chain", || {
        get(validator, &format!("/api/v1/accounts/{key}"))
    });
    assert_eq!(account["sponsor"]["by"], sponsor, "{account}");
    assert_eq!(account["sponsor"]["left"], "5000000", "{account}");
    assert_eq!(account["balances"]["spend"], "0", "{account}");
    let second = signup("latecomer");
    assert!(
        second["funding"].is_null() && second["funded_by"].is_null(),
        "{second}"
    );
}

/// `starling gov`: the foundations, ann's membership (none: she is nobody's verified member
/// yet), and ann sponsoring ben's base fees until she ends it.
fn gov_checks(api: SocketAddr, ann: &Path, ann_key: &str) {
    let out = cli_ok(api, ann, &["gov", "foundations"]);
    assert_eq!(out.matches("verified members").count(), 3, "{out}");
    assert!(out.contains("registrar ed25519:"), "{out}");
    let out = cli_ok(api, ann, &["gov", "membership"]);
    assert!(out.contains("not a verified member"), "{out}");
    let ben = get(api, "/api/v1/handles/ben").unwrap()["account"]
        .as_str()
        .unwrap()
        .to_string();
    let sent = cli_ok(api, ann, &["gov", "sponsor", "@ben", "5000000"]);
    assert!(sent.contains("sponsorship sent"), "{sent}");
    let sponsored = wait_for("ben's sponsorship", || {
        get(api, &format!("/api/v1/accounts/{ben}")).filter(|v| !v["sponsor"].is_null())
    });
    assert_eq!(sponsored["sponsor"]["by"], ann_key, "{sponsored}");
    cli_ok(api, ann, &["gov", "sponsor", "@ben", "--end"]);
    wait_for("ben's sponsorship to end", || {
        get(api, &format!("/api/v1/accounts/{ben}")).filter(|v| v["sponsor"].is_null())
    });
    let (ok, _, err) = cli(api, ann, &["gov", "sponsor", "@ben"]);
    assert!(!ok && err.contains("<AMOUNT>"), "{err}");
}

/// Logs in, in a new session file, as the devnet account whose key file is `keys/<name>`.
fn import_devnet_key(api: SocketAddr, devnet: &Path, tmp: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(devnet.join("keys").join(format!("{name}.key"))).unwrap();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("secret = "))
        .unwrap()
        .trim_matches('"');
    let secret_file = tmp.join(format!("{name}.secret"));
    std::fs::write(&secret_file, secret).unwrap();
    let session = tmp.join(format!("{name}.json"));
    let args = [
        "account",
        "import",
        "--label",
        name,
        "--secret-file",
        secret_file.to_str().unwrap(),
    ];
    cli_ok(api, &session, &args);
    session
}

/// `starling gov` proposals on real processes: foundation 0's president proposes ann as an
/// officer; its board votes (n votes cost n² tokens); anyone tallies it and, in a later
/// block, puts it into effect; ann then holds the seat, and another account challenges the
/// decision within its window.
fn proposal_checks(api: SocketAddr, devnet: &Path, tmp: &Path, ann: &Path) {
    let president = import_devnet_key(api, devnet, tmp, "president-0");
    let board: Vec<PathBuf> = (0..3)
        .map(|j| import_devnet_key(api, devnet, tmp, &format!("board-0-{j}")))
        .collect();
    let args = [
        "gov",
        "propose",
        "0",
        "Ann for officer",
        "appoint",
        "officer",
        "@ann",
        "--text",
        "She runs the relays.",
    ];
    assert!(cli_ok(api, &president, &args).contains("proposal sent"));
    let p = wait_for("the proposal", || get(api, "/api/v1/proposals/0"));
    assert_eq!(
        (p["status"].as_str(), p["electorate"].as_u64()),
        (Some("voting"), Some(3)),
        "{p}"
    );
    for (session, side, votes) in [
        (&board[0], "yes", "3"),
        (&board[1], "yes", "1"),
        (&board[2], "no", "2"),
    ] {
        let (ok, out, err) = cli(api, session, &["gov", "vote", "0", side, votes]);
        assert!(ok && out.contains("vote sent"), "{out}{err}");
        let n: u64 = votes.parse().unwrap();
        assert!(err.contains(&format!(" {} vote tokens", n * n)), "{err}");
    }
    let p = wait_for("three votes", || {
        get(api, "/api/v1/proposals/0").filter(|p| p["roll"]["voters"] == 3)
    });
    assert_eq!(
        (p["roll"]["yes"].as_u64(), p["roll"]["no"].as_u64()),
        (Some(4), Some(2)),
        "{p}"
    );
    let tokens = cli_ok(api, &board[0], &["gov", "tokens"]);
    assert!(tokens.contains("board: 9991 of 10000 left"), "{tokens}");
    // Everyone voted: anyone may tally now; it takes effect at a later advance.
    for status in ["passed", "enacted"] {
        cli_ok(api, ann, &["gov", "advance", "0"]);
        wait_for(status, || {
            get(api, "/api/v1/proposals/0").filter(|p| p["status"] == status)
        });
    }
    let ann_key = get(api, "/api/v1/handles/ann").unwrap()["account"].clone();
    let f = get(api, "/api/v1/foundations").unwrap();
    let seated = f["foundations"][0]["offices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["office"] == "officer" && o["holder"] == ann_key);
    assert!(seated, "{f}");
    // A board member challenges it (with a deposit); the challenge gathers support.
    assert!(cli_ok(api, &board[2], &["gov", "challenge", "0"]).contains("challenge sent"));
    wait_for("the challenge", || {
        get(api, "/api/v1/proposals/0").filter(|p| p["challenge"]["stage"] == "gathering")
    });
    let out = cli_ok(api, ann, &["gov", "proposal", "0"]);
    assert!(
        out.contains("[enacted]") && out.contains("gathering"),
        "{out}"
    );
    assert!(cli_ok(api, ann, &["gov", "proposals"]).contains("Ann for officer"));
    // No registrar has published a ballot key for round 0: the issuance log is empty.
    let round = get(api, "/api/v1/foundations/0/ballots/0").expect("a ballot round");
    assert!(
        round["key"].is_null() && round["issued"] == 0 && round["forged"] == false,
        "{round}"
    );
    assert!(get(api, "/api/v1/foundations/0/ballots/0?member=nonsense").is_none());
}

fn cli_ok(api: SocketAddr, session: &Path, args: &[&str]) -> String {
    let (ok, out, err) = cli(api, session, args);
    assert!(ok, "starling {args:?} failed:\n{out}\n{err}");
    out
}

/// The social CLI drives a devnet through its API: two accounts are created on the relay
/// (funded by the devnet's faucet, handles claimed), one posts, the other follows by handle,
/// likes and replies; timelines, notifications, search and a transfer work; log out and in;
/// bad input is a clear error.
#[test]
fn the_social_cli_drives_a_devnet() {
    let _one = common::one_network_at_a_time();
    let d = tempfile::tempdir().unwrap();
    let (_child, api) = start_devnet(&d.path().join("devnet"));
    let (ann, ben) = (d.path().join("ann.json"), d.path().join("ben.json"));
    let out = cli_ok(
        api,
        &ann,
        &["account", "create", "ann", "--display-name", "Ann"],
    );
    assert!(
        out.contains("created ann") && out.contains("claimed @ann"),
        "{out}"
    );
    let out = cli_ok(api, &ben, &["account", "create", "ben"]);
    assert!(out.contains("claimed @ben"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&ann).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the session file is its owner's alone");
    }

    let out = cli_ok(api, &ann, &["post", "hello from the CLI #cli"]);
    let post = out
        .split_whitespace()
        .nth(1)
        .expect("posted: <author>/<seq>")
        .to_string();
    assert!(post.starts_with("ed25519:") && post.contains('/'), "{out}");
    // A light client checks the post from the genesis committee alone (the relay serves the
    // proof; its certificate is one the relay verified).
    let genesis = d.path().join("devnet").join("genesis.toml");
    let genesis = genesis.to_str().unwrap();
    let (author, seq) = post.split_once('/').unwrap();
    let proven = wait_for("the post's proof", || {
        let (ok, out, _) = cli(
            api,
            &ann,
            &[
                "proof",
                "posts",
                author,
                seq,
                "--genesis",
                genesis,
                "--json",
            ],
        );
        ok.then_some(out)
            .filter(|o| o.contains("hello from the CLI"))
    });
    let v: serde_json::Value = serde_json::from_str(&proven).unwrap();
    assert_eq!(
        (v["verified"].as_bool(), v["record"]["text"].as_str()),
        (Some(true), Some("hello from the CLI #cli")),
        "{proven}"
    );
    let out = cli_ok(
        api,
        &ann,
        &["proof", "posts", author, "999999", "--genesis", genesis],
    );
    assert!(
        out.contains("verified:") && out.contains("absence is proven"),
        "{out}"
    );
    let (ok, _, err) = cli(api, &ann, &["proof", "posts", author, "--genesis", genesis]);
    assert!(!ok && err.contains("no record kind"), "{err}");
    // Ann's foundation (rule FD1), read by the light client from the federation record it
    // checked: the same one the node names.
    let charged = proof_json(api, &d.path().join("devnet"), &["charges", author]);
    assert_eq!(charged["verified"], true, "{charged}");
    let named = wait_for("ann's foundation", || {
        get(api, &format!("/api/v1/foundations/of/{author}"))
    });
    assert_eq!(
        charged["record"]["foundation"]["index"], named["foundation"]["index"],
        "{charged} {named}"
    );
    // The handle is claimed on the global shard; once the view has it, ben can follow it.
    wait_for("@ann to resolve", || {
        cli(api, &ben, &["follow", "@ann"]).0.then_some(())
    });
    cli_ok(api, &ben, &["like", &post]);
    cli_ok(api, &ben, &["reply", &post, "hi ann, from ben"]);
    let timeline = wait_for("ann's post in ben's timeline", || {
        let out = cli_ok(api, &ben, &["timeline"]);
        out.contains("hello from the CLI").then_some(out)
    });
    assert!(timeline.contains("Ann @ann"), "{timeline}");
    let notes = wait_for("ann's notifications", || {
        let out = cli_ok(api, &ann, &["notifications", "--read"]);
        (out.contains("like: ben") && out.contains("reply: ben") && out.contains("follow: ben"))
            .then_some(out)
    });
    assert!(notes.contains(&post), "{notes}");
    wait_for("search to find the post", || {
        cli_ok(api, &ben, &["search", "cli"])
            .contains("hello from the CLI")
            .then_some(())
    });
    // Handles are indexed from the global shard, which the app view follows on its own.
    wait_for("people search to find ann", || {
        cli_ok(api, &ben, &["search", "--people", "ann"])
            .contains("@ann")
            .then_some(())
    });
    // Ben's handle too is claimed on the global shard: the view may have it a little later
    // than ann's.
    wait_for("@ben to resolve", || {
        get(api, "/api/v1/handles/ben").filter(|v| v["account"].is_string())
    });
    let sent = cli_ok(api, &ann, &["transfer", "@ben", "1000"]);
    assert!(sent.contains("transfer sent"), "{sent}");
    gov_checks(api, &ann, author);
    proposal_checks(api, &d.path().join("devnet"), d.path(), &ann);
    let json_out = cli_ok(api, &ann, &["timeline", "--of", "@ann", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v["items"][0]["post"]["text"], "hello from the CLI #cli");
    let me = cli_ok(api, &ann, &["account", "whoami"]);
    assert!(
        me.contains("handle: @ann") && me.contains("fees paid:"),
        "{me}"
    );

    // Bad input: clear errors, nothing sent.
    let long = "é".repeat(301);
    let (ok, _, err) = cli(api, &ann, &["post", &long]);
    assert!(!ok && err.contains("invalid_action"), "{err}");
    let (ok, _, err) = cli(api, &ann, &["like", "not-a-post"]);
    assert!(!ok && err.contains("<author key>/<seq>"), "{err}");
    let (ok, _, err) = cli(api, &ann, &["follow", "@nobody_here"]);
    assert!(!ok && err.contains("not_found"), "{err}");

    // Export, log out (the session ends on the node too), log back in.
    let backup = d.path().join("ann-backup.json");
    cli_ok(
        api,
        &ann,
        &["account", "export", "--out", backup.to_str().unwrap()],
    );
    assert!(std::fs::read_to_string(&backup)
        .unwrap()
        .contains("argon2id"));
    let token = std::fs::read_to_string(&ann).unwrap();
    cli_ok(api, &ann, &["account", "logout"]);
    let (ok, _, err) = cli(api, &ann, &["post", "after logout"]);
    assert!(!ok && err.contains("not logged in"), "{err}");
    std::fs::write(&ann, token).unwrap();
    let (ok, _, err) = cli(api, &ann, &["post", "with a dead token"]);
    assert!(!ok && err.contains("no_session"), "{err}");
    let out = cli_ok(api, &ann, &["account", "login", "ann"]);
    assert!(out.contains("logged in as ann"), "{out}");
    let list = cli_ok(api, &ann, &["account", "list"]);
    assert!(list.contains("ann") && list.contains("ben"), "{list}");
}
