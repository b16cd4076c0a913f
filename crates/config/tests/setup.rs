//! Keys, genesis, configuration and `init`: the happy paths, and a clear error for each bad input.
#![allow(clippy::unwrap_used, clippy::panic)]

use starling_config::config::{NodeConfig, Role, DEFAULT_CONFIG};
use starling_config::genesis::{AllocationEntry, Amount, Genesis, GenesisFile};
use starling_config::{init, keyfile, SetupError};
use starling_testkit::key;
use starling_types::{KeyType, ShardId};

fn genesis_file() -> GenesisFile {
    let mut g = starling_testkit::genesis_file("starling-test", 2);
    for i in 0..4 {
        let address = format!("127.0.0.1:{}", 7100 + u16::from(i));
        starling_testkit::add_validator(&mut g, &key(i), Some(address));
    }
    starling_testkit::fund(
        &mut g,
        &key(99),
        340_282_366_920_938_463_463_374_607_431_768_211,
    );
    g
}

/// The error for a genesis edited by `edit`, as text.
fn genesis_error(edit: impl FnOnce(&mut GenesisFile)) -> String {
    let mut g = genesis_file();
    edit(&mut g);
    match Genesis::from_file(&g, "genesis.toml") {
        Ok(_) => panic!("accepted a bad genesis"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn key_files_round_trip_privately_and_refuse_overwrite() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("keys/node.key");
    let mut rng = rand_core::OsRng;
    let k = keyfile::generate(&path, KeyType::Ed25519, &mut rng).unwrap();
    assert_eq!(keyfile::read(&path).unwrap().public_key(), k.public_key());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(matches!(
        keyfile::generate(&path, KeyType::Ed25519, &mut rng),
        Err(SetupError::Exists(_))
    ));
    let s = keyfile::generate(&d.path().join("nostr.key"), KeyType::Secp256k1, &mut rng).unwrap();
    assert_eq!(
        keyfile::read(&d.path().join("nostr.key"))
            .unwrap()
            .public_key(),
        s.public_key()
    );
}

#[test]
fn bad_key_files_say_what_is_wrong() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        ("key_type = \"rsa\"\nsecret = \"00\"", "key_type"),
        ("key_type = \"ed25519\"\nsecret = \"zz\"", "not hex"),
        ("key_type = \"ed25519\"\nsecret = \"0011\"", "32 bytes"),
        (
            "key_type = \"ed25519\"\nsecret = \"00\"\nextra = 1",
            "unknown field",
        ),
        ("this is not toml", "invalid TOML"),
    ];
    for (i, (text, expect)) in cases.iter().enumerate() {
        let p = d.path().join(format!("k{i}"));
        std::fs::write(&p, text).unwrap();
        let err = keyfile::read(&p).unwrap_err().to_string();
        assert!(err.contains(expect), "{text:?} gave {err}");
    }
    assert!(keyfile::read(&d.path().join("missing"))
        .unwrap_err()
        .to_string()
        .contains("missing"));
}

#[test]
fn genesis_round_trips_through_toml_with_a_stable_id() {
    let text = genesis_file().to_toml().unwrap();
    let a = Genesis::parse(&text, "a").unwrap();
    let b = Genesis::parse(&text, "b").unwrap();
    assert_eq!(a.id(), b.id());
    assert_eq!(a.committees.len(), 3);
    assert!(a.committees.values().all(|c| c.len() == 4));
    assert_eq!(a.allocations[0].2, 340282366920938463463374607431768211);
    let mut other = genesis_file();
    other.chain_id = "starling-other".into();
    assert_ne!(Genesis::from_file(&other, "o").unwrap().id(), a.id());
}

#[test]
fn bad_genesis_files_name_the_field() {
    type Edit = Box<dyn FnOnce(&mut GenesisFile)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|g| g.chain_id = "has space".into()), "chain_id"),
        (Box::new(|g| g.account_shards = 0), "account_shards"),
        (Box::new(|g| g.fees.burn_bps += 1), "fees"),
        (Box::new(|g| g.fees.min_base_fee = 1), "fees.min_base_fee"),
        (
            Box::new(|g| g.fees.initial_base_fee = 10),
            "fees.initial_base_fee",
        ),
        (
            Box::new(|g| {
                g.foundations.pop();
            }),
            "foundations",
        ),
        (
            Box::new(|g| g.foundations[1].account = g.foundations[0].account.clone()),
            "foundations[1].account",
        ),
        (
            Box::new(|g| g.foundations[2].name = "north".into()),
            "foundations[2].name",
        ),
        (Box::new(|g| g.validators.clear()), "validators"),
        (
            Box::new(|g| g.validators[1].key = g.validators[0].key.clone()),
            "validators[1].key",
        ),
        (
            Box::new(|g| g.validators[2].key = "ed25519:1234".into()),
            "validators[2].key",
        ),
        (
            Box::new(|g| g.validators[0].key = format!("secp256k1:{}", "11".repeat(32))),
            "validators[0].key",
        ),
        (
            Box::new(|g| g.validators[3].address = Some("nowhere".into())),
            "validators[3].address",
        ),
        (
            Box::new(|g| g.validators[0].shards = Some(vec![7])),
            "validators[0].shards",
        ),
        (
            Box::new(|g| {
                g.validators
                    .iter_mut()
                    .for_each(|v| v.shards = Some(vec![0, 1]))
            }),
            "no validator serves shard 2",
        ),
        (
            Box::new(|g| g.allocations[0].asset = "vote".into()),
            "allocations[0].asset",
        ),
        (
            Box::new(|g| g.allocations[0].amount = Amount::Text("-5".into())),
            "allocations[0].amount",
        ),
        (
            Box::new(|g| g.allocations[0].amount = Amount::Int(0)),
            "allocations[0].amount",
        ),
        (
            Box::new(|g| {
                let a = g.allocations[0].clone();
                g.allocations.push(AllocationEntry {
                    amount: Amount::Text(u128::MAX.to_string()),
                    ..a
                });
            }),
            "allocations[1].amount",
        ),
        (
            Box::new(|g| g.allowance.initial = Amount::Text(u128::MAX.to_string())),
            "allowance.initial",
        ),
        (
            Box::new(|g| g.foundations[0].board = vec!["ed25519:nothex".into()]),
            "foundations[0].board",
        ),
        (
            // One holder in two seats of one foundation.
            Box::new(|g| {
                let k = g.foundations[0].account.clone();
                g.foundations[0].president = Some(k.clone());
                g.foundations[0].senate = vec![k];
            }),
            "foundations[0].offices",
        ),
        (
            Box::new(|g| {
                let k = g.foundations[1].account.clone();
                g.foundations[1].staff = vec![k; 11];
            }),
            "foundations[1].offices",
        ),
        (
            Box::new(|g| g.governance.terms.president = 0),
            "governance.terms.president",
        ),
        (
            Box::new(|g| g.governance.terms.staff = u64::MAX),
            "governance.terms.staff",
        ),
        (
            Box::new(|g| g.governance.proposals.voting_epochs = 0),
            "governance.proposals.voting_epochs",
        ),
        (
            Box::new(|g| g.governance.proposals.round_epochs = u64::MAX),
            "governance.proposals.round_epochs",
        ),
        (
            Box::new(|g| {
                g.governance.proposals.tokens.insert("board".into(), 0);
            }),
            "governance.proposals.tokens.board",
        ),
        (
            Box::new(|g| {
                g.governance.proposals.tokens.insert("kings".into(), 5);
            }),
            "governance.proposals.tokens",
        ),
        (
            Box::new(|g| g.governance.proposals.spend_limit = Amount::Text("lots".into())),
            "governance.proposals.spend_limit",
        ),
    ];
    for (edit, field) in cases {
        let err = genesis_error(edit);
        assert!(
            err.contains(field),
            "expected an error about {field}, got: {err}"
        );
    }
    let err = Genesis::parse("chain_id = \"x\"\nsurprise = 1", "g.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("g.toml") && err.contains("invalid TOML"),
        "{err}"
    );
}

#[test]
fn default_config_is_documented_and_valid() {
    assert_eq!(
        NodeConfig::parse(DEFAULT_CONFIG, "default").unwrap(),
        NodeConfig::default()
    );
    assert_eq!(
        NodeConfig::parse("", "empty").unwrap(),
        NodeConfig::default()
    );
    let cfg = NodeConfig::parse(
        "roles = [\"validator\", \"relay\"]\n[api]\nlisten = \"0.0.0.0:80\"",
        "c",
    )
    .unwrap();
    assert!(cfg.has(Role::Validator) && cfg.has(Role::Relay));
}

#[test]
fn bad_configs_name_the_field() {
    let cases = [
        ("roles = []", "roles"),
        ("roles = [\"miner\"]", "unknown variant"),
        ("roles = [\"relay\", \"relay\"]", "roles"),
        ("[api]\nlisten = \"localhost\"", "api.listen"),
        ("[p2p]\nbootstrap = [\"1.2.3.4\"]", "p2p.bootstrap[0]"),
        ("[mempool]\nmax_txs = 0", "mempool"),
        (
            "[mempool]\nmax_txs = 5\nmax_per_account = 6",
            "mempool.max_per_account",
        ),
        ("dat_dir = \"typo\"", "unknown field"),
        ("[api]\nlisten = 8080", "invalid type"),
        (
            "[api]\ntrusted_proxies = [\"10.0.0.0/33\"]",
            "api.trusted_proxies[0]",
        ),
        (
            "[api]\ntrusted_proxies = [\"proxy.local\"]",
            "api.trusted_proxies[0]",
        ),
        (
            "[api]\nallowed_hosts = [\"ok.example\", \"https://x.example\"]",
            "api.allowed_hosts[1]",
        ),
        (
            "[api]\nallowed_hosts = [\"x.example:80\"]",
            "api.allowed_hosts[0]",
        ),
        ("[chat]\nanon_key_secs = 0", "chat.anon_key_secs"),
    ];
    for (text, expect) in cases {
        let err = NodeConfig::parse(text, "node.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(expect), "{text:?} gave {err}");
    }
}

#[test]
fn trusted_proxies_are_networks() {
    use starling_config::config::IpNet;
    use std::net::IpAddr;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
    assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
    assert!(net("10.1.2.3").contains(ip("10.1.2.3")));
    assert!(!net("10.1.2.3").contains(ip("10.1.2.4")));
    // An IPv4 client reaching a dual-stack listener is the same client.
    assert!(net("192.0.2.0/24").contains(ip("::ffff:192.0.2.7")));
    assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
    assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
    assert!(!net("2001:db8::/32").contains(ip("10.0.0.1")));
    assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
    assert!(net("::/0").contains(ip("2001:db8::1")));
    for bad in [
        "",
        "10.0.0.0/",
        "10.0.0.0/x",
        "::1/129",
        "example.org",
        "10.0.0.0/8/8",
    ] {
        assert!(bad.parse::<IpNet>().is_err(), "{bad:?}");
    }
    let cfg = NodeConfig::parse(
        "[api]\ntrusted_proxies = [\"127.0.0.1\", \"fd00::/8\"]\nallowed_hosts = [\"starling.example.org\", \"*\"]",
        "c",
    )
    .unwrap();
    assert_eq!(cfg.api.proxies().unwrap().len(), 2);
}

#[test]
fn init_creates_the_stores_a_node_keeps() {
    let d = tempfile::tempdir().unwrap();
    let gpath = d.path().join("genesis.toml");
    let mut g = genesis_file();
    g.validators[3].shards = Some(vec![0, 2]);
    std::fs::write(&gpath, g.to_toml().unwrap()).unwrap();

    // A validator keeps every shard: committees are redrawn over all of them each epoch (its
    // `shards` list only shapes the epoch-0 committees).
    let cfg = NodeConfig {
        roles: vec![Role::Validator],
        data_dir: d.path().join("v3"),
        ..NodeConfig::default()
    };
    let report = init::init(&cfg, &gpath, &key(3).public_key()).unwrap();
    assert_eq!(report.shards, vec![ShardId(0), ShardId(1), ShardId(2)]);
    let (genesis, stores) = init::open(&cfg.data_dir).unwrap();
    assert_eq!(genesis.id(), report.genesis_id);
    assert_eq!(
        genesis.committees[&ShardId(1)].len(),
        3,
        "not in shard 1's first committee"
    );
    assert_eq!(stores.len(), 3);
    assert!(stores.iter().all(|s| s.head().height == 0));
    drop(stores); // one open handle per store per process
    assert!(matches!(
        init::init(&cfg, &gpath, &key(3).public_key()),
        Err(SetupError::Exists(_))
    ));

    // A relay keeps every shard; so does a validator outside the genesis, which joins later
    // through the registry and may be drawn into any shard's committee.
    let relay = NodeConfig {
        data_dir: d.path().join("relay"),
        ..NodeConfig::default()
    };
    assert_eq!(
        init::init(&relay, &gpath, &key(200).public_key())
            .unwrap()
            .shards
            .len(),
        3
    );
    let stranger = NodeConfig {
        roles: vec![Role::Validator],
        data_dir: d.path().join("x"),
        ..NodeConfig::default()
    };
    assert_eq!(
        init::init(&stranger, &gpath, &key(201).public_key())
            .unwrap()
            .shards
            .len(),
        3
    );

    // Every node that keeps a shard starts from the same genesis root.
    let (_, relay_stores) = init::open(&relay.data_dir).unwrap();
    let (_, v_stores) = init::open(&cfg.data_dir).unwrap();
    assert_eq!(relay_stores[0].head(), v_stores[0].head());
    assert_eq!(relay_stores[2].head(), v_stores[2].head());

    // A swapped genesis is detected.
    let mut other = genesis_file();
    other.chain_id = "starling-other".into();
    std::fs::write(
        relay.data_dir.join("genesis.toml"),
        other.to_toml().unwrap(),
    )
    .unwrap();
    assert!(init::open(&relay.data_dir)
        .unwrap_err()
        .to_string()
        .contains("does not match"));
}

/// A genesis names each foundation's first office holders; their terms start at genesis and
/// end after each office's term (configurable), and the file round-trips through TOML.
#[test]
fn a_genesis_names_the_first_office_holders() {
    let mut g = genesis_file();
    let president = starling_testkit::key(80).public_key();
    let board: Vec<_> = (81..83)
        .map(|i| starling_testkit::key(i).public_key())
        .collect();
    g.foundations[0].president = Some(president.to_text());
    g.foundations[0].board = board.iter().map(|k| k.to_text()).collect();
    g.governance.terms.board = 7;
    let text = g.to_toml().unwrap();
    let genesis = Genesis::parse(&text, "g.toml").unwrap();
    let offices = &genesis.params.genesis_offices[0];
    assert_eq!(offices.seats.len(), 3);
    let p = offices.held_by(&president, 0).unwrap();
    assert_eq!(
        (p.office, p.until),
        (starling_types::Office::President, 157_680)
    );
    let b = offices.held_by(&board[1], 6).unwrap();
    assert_eq!((b.office, b.until), (starling_types::Office::Board, 7));
    assert!(offices.held_by(&board[1], 7).is_none());
    assert!(genesis.params.genesis_offices[1].seats.is_empty());
    assert_eq!(genesis.params.office_terms[2], 7);
    // How proposals run comes from `[governance.proposals]`, defaults where it is silent.
    let mut g = genesis_file();
    g.governance.proposals.voting_epochs = 3;
    g.governance.proposals.tokens = [("senate".to_string(), 400)].into();
    let text = g.to_toml().unwrap();
    let params = Genesis::parse(&text, "g.toml").unwrap().params.governance;
    assert_eq!(params.voting_epochs, 3);
    assert_eq!(params.foundation.tokens[2], 400);
    assert_eq!(params.foundation.tokens[3], 10_000);
}
