//! The `starling` binary end to end: create keys, a genesis and data directories, and get a
//! clear error (and a failing exit status) for every bad input.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn starling(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_starling"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = starling(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(dir: &Path, args: &[&str], expect: &str) {
    let out = starling(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        err.contains(expect),
        "{args:?}: expected `{expect}` in: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

#[test]
fn create_a_network_from_the_command_line() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let mut validators = Vec::new();
    for i in 0..4 {
        let pk = ok(dir, &["keys", "generate", "--out", &format!("v{i}.key")])
            .trim()
            .to_owned();
        assert!(pk.starts_with("ed25519:"));
        validators.push(format!("{pk}@127.0.0.1:{}", 7100 + i));
    }
    let mut foundations = Vec::new();
    for name in ["North", "East", "West"] {
        let pk = ok(dir, &["keys", "generate", "--out", &format!("{name}.key")])
            .trim()
            .to_owned();
        foundations.push(format!("{name}={pk}"));
    }
    let alice = ok(
        dir,
        &[
            "keys",
            "generate",
            "--type",
            "secp256k1",
            "--out",
            "alice.key",
        ],
    )
    .trim()
    .to_owned();
    assert!(alice.starts_with("secp256k1:"));
    assert!(ok(dir, &["keys", "show", "--key", "alice.key"]).contains(&alice));

    let mut args = vec![
        "genesis",
        "new",
        "--chain-id",
        "cli-net",
        "--account-shards",
        "2",
        "--out",
        "genesis.toml",
    ];
    for v in &validators {
        args.extend(["--validator", v]);
    }
    for f in &foundations {
        args.extend(["--foundation", f]);
    }
    let alloc = format!("{alice}=1000000:urc");
    args.extend(["--alloc", &alloc]);
    ok(dir, &args);
    let check = ok(dir, &["genesis", "check", "genesis.toml"]);
    assert!(check.contains("shard 2: 4 validators"), "{check}");
    fails(dir, &args, "already exists");

    std::fs::write(
        dir.join("node.toml"),
        "roles = [\"validator\"]\ndata_dir = \"data-v0\"\nkey_file = \"v0.key\"\n",
    )
    .unwrap();
    let out = ok(dir, &["init", "--config", "node.toml"]);
    assert!(out.contains("shards 0, 1, 2"), "{out}");
    assert!(dir.join("data-v0/shards/1").exists());
    fails(
        dir,
        &["init", "--config", "node.toml"],
        "already initialized",
    );

    // A relay with the defaults and flags only.
    let out = ok(dir, &["init", "--data-dir", "relay", "--key", "alice.key"]);
    assert!(out.contains("shards 0, 1, 2"), "{out}");

    assert!(ok(dir, &["config", "default"]).contains("[mempool]"));
}

#[test]
fn bad_inputs_fail_with_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    fails(
        dir,
        &["keys", "show", "--key", "missing.key"],
        "missing.key",
    );
    std::fs::write(
        dir.join("bad.toml"),
        "chain_id = \"x\"\naccount_shards = 1\n",
    )
    .unwrap();
    fails(dir, &["genesis", "check", "bad.toml"], "missing field");
    let k = ok(dir, &["keys", "generate", "--out", "k.key"])
        .trim()
        .to_owned();
    let v = k.clone();
    fails(
        dir,
        &[
            "genesis",
            "new",
            "--chain-id",
            "x",
            "--validator",
            &v,
            "--foundation",
            &format!("A={k}"),
            "--out",
            "g.toml",
        ],
        "foundations",
    );
    assert!(
        !dir.join("g.toml").exists(),
        "a rejected genesis must not be written"
    );
    fails(
        dir,
        &[
            "genesis",
            "new",
            "--chain-id",
            "x",
            "--validator",
            &v,
            "--foundation",
            "nokey",
            "--out",
            "g.toml",
        ],
        "Name=<key>",
    );
    std::fs::write(dir.join("node.toml"), "[api]\nlisten = \"nowhere\"\n").unwrap();
    fails(dir, &["init", "--config", "node.toml"], "api.listen");
    std::fs::write(dir.join("node.toml"), "rolez = [\"relay\"]\n").unwrap();
    fails(dir, &["init", "--config", "node.toml"], "unknown field");
    fails(
        dir,
        &["init", "--key", "k.key", "--genesis", "absent.toml"],
        "absent.toml",
    );
    fails(dir, &["frobnicate"], "unrecognized subcommand");
}

/// The network benchmark, briefly: it starts its own devnet, loads it, and accounts for every
/// transaction it sent.
#[test]
fn bench_network_accounts_for_every_transaction() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(
        d.path(),
        &[
            "bench",
            "network",
            "--json",
            "--duration",
            "3",
            "--rate",
            "200",
            "--accounts",
            "50",
            "--block-interval-ms",
            "50",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let submitted = report["submitted"].as_u64().unwrap();
    assert!(submitted >= 400, "{report}");
    assert_eq!(report["accepted"], report["submitted"], "{report}");
    assert_eq!(report["finalized"], report["submitted"], "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["failed_in_block"], 0, "{report}");
    assert!(report["finalized_tps"].as_f64().unwrap() > 0.0, "{report}");
    let p50 = report["p50_finality_ms"].as_f64().unwrap();
    let p99 = report["p99_finality_ms"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99, "{report}");
    let windows = report["windows"].as_array().unwrap();
    let counted: u64 = windows
        .iter()
        .map(|w| w["finalized"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, submitted, "{report}");
}
