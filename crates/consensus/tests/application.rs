//! The shard application as consensus calls it, in the deterministic runtime: proposals carry
//! mempool transactions and correct roots, other nodes verify them (catching up on unseen
//! parents), bad blocks get a "no" vote, and finalization commits and prunes the mempool.
#![allow(clippy::unwrap_used, clippy::panic)]

use commonware_consensus::marshal::{ancestry, Update};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_consensus::{Application, Reporter};
use commonware_cryptography::{ed25519, Digested, Digestible, Signer as _};
use commonware_runtime::{deterministic, Runner as _, Supervisor as _};
use commonware_utils::acknowledgement::{Acknowledgement, Exact};
use starling_consensus::{ShardApp, ShardBlock, ShardContext};
use starling_crypto::SecretKey;
use starling_ledger::LedgerParams;
use starling_mempool::{Mempool, MempoolConfig};
use starling_store::ChainStore;
use starling_types::{Action, Asset, KeyType, ShardId, ShardMap, Tx, TxBody};

struct Node {
    app: ShardApp,
    _dir: tempfile::TempDir,
}

fn params() -> LedgerParams {
    starling_testkit::devnet_params("app-test", 1, 70)
}

fn users() -> Vec<SecretKey> {
    (1..=4u8)
        .map(|i| SecretKey::from_seed(KeyType::Ed25519, &[i; 32]).unwrap())
        .collect()
}

fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let alloc: Vec<_> = users()
        .iter()
        .map(|k| (k.public_key(), Asset::Spend, 1u128 << 80))
        .collect();
    let store = ChainStore::create(dir.path(), params(), ShardId(1), &alloc, 1 << 60, 8).unwrap();
    let mempool = Mempool::new(
        MempoolConfig::default(),
        ShardId(1),
        ShardMap::even(1).unwrap(),
    );
    Node {
        app: ShardApp::new(store, mempool, 1_000),
        _dir: dir,
    }
}

fn post(k: &SecretKey, nonce: u64, text: &str) -> Tx {
    let p = params();
    let body = TxBody {
        account: k.public_key(),
        nonce,
        max_fee: 1_000_000_000_000,
        tip: 5,
        expires_at_height: 100,
        action: Action::Post {
            text: text.into(),
            reply_to: None,
            quote_of: None,
            langs: vec![],
        },
    };
    Tx::parse(&p.chain_id, k.sign_tx(&p.chain_id, &body)).unwrap()
}

fn digested(b: &ShardBlock) -> Digested<ShardBlock> {
    Digested::precomputed(b.clone(), b.digest())
}

fn context(view: u64, leader: &ed25519::PrivateKey, parent: &ShardBlock) -> ShardContext {
    ShardContext {
        round: Round::new(Epoch::zero(), View::new(view)),
        leader: leader.public_key(),
        parent: (View::new(view - 1), parent.digest()),
    }
}

fn finalize(app: &mut ShardApp, b: &ShardBlock) {
    let (ack, _waiter) = Exact::handle();
    let _ = Reporter::report(app, Update::Block(digested(b), ack));
}

#[test]
fn propose_verify_finalize_across_two_nodes() {
    deterministic::Runner::default().start(|rt| async move {
        let (mut a, mut b) = (node(), node());
        let leader = ed25519::PrivateKey::from_seed(1);
        let genesis = a.app.genesis_block().unwrap();
        assert_eq!(genesis, b.app.genesis_block().unwrap());
        let u = users();
        // A forged transaction (signed by someone else) never enters the pool.
        let mut forged = post(&u[0], 0, "not mine");
        forged.envelope.signature = post(&u[1], 0, "not mine").envelope.signature;
        assert_eq!(
            a.app.submit(forged),
            Err(starling_mempool::MempoolError::BadSignature)
        );
        for (i, k) in u.iter().enumerate() {
            a.app.submit(post(k, 0, &format!("hello {i}"))).unwrap();
        }

        // Node A leads view 1 and proposes on genesis.
        let b1 = Application::propose(
            &mut a.app,
            (rt.child("app"), context(1, &leader, &genesis)),
            ancestry::from_iter([digested(&genesis)]),
            (),
        )
        .await
        .expect("a proposal")
        .inner()
        .clone();
        assert_eq!(b1.block().txs.len(), 4);
        assert_eq!(b1.block().header.parent, genesis.id());

        // Node B verifies it; a wrong leader or a tampered block gets a "no".
        let ok = Application::verify(
            &mut b.app,
            (rt.child("app"), context(1, &leader, &genesis)),
            ancestry::from_iter([digested(&b1), digested(&genesis)]),
        )
        .await;
        assert!(ok);
        let other = ed25519::PrivateKey::from_seed(2);
        let wrong_leader = Application::verify(
            &mut b.app,
            (rt.child("app"), context(1, &other, &genesis)),
            ancestry::from_iter([digested(&b1), digested(&genesis)]),
        )
        .await;
        assert!(!wrong_leader);
        let mut forged = b1.block().clone();
        forged.header.state_root.0[0] ^= 1;
        let forged = ShardBlock::new(forged);
        let bad = Application::verify(
            &mut b.app,
            (rt.child("app"), context(1, &leader, &genesis)),
            ancestry::from_iter([digested(&forged), digested(&genesis)]),
        )
        .await;
        assert!(!bad);

        // A proposes view 2 on its unfinalized block 1; B verifies it before either is final.
        // Nonce 1 is next once block 1 applies: proposals read nonces as of their parent.
        a.app.submit(post(&u[0], 1, "second")).unwrap();
        let b2 = Application::propose(
            &mut a.app,
            (rt.child("app"), context(2, &leader, &b1)),
            ancestry::from_iter([digested(&b1), digested(&genesis)]),
            (),
        )
        .await
        .expect("a proposal on an unfinalized parent")
        .inner()
        .clone();
        assert_eq!(b2.block().header.parent, b1.id());
        assert_eq!(
            b2.block().txs.len(),
            1,
            "only the nonce-1 post is executable on block 1"
        );
        let mut c = node();
        // Node C has seen neither block: it catches up on block 1 from the ancestry.
        let ok = Application::verify(
            &mut c.app,
            (rt.child("app"), context(2, &leader, &b1)),
            ancestry::from_iter([digested(&b2), digested(&b1), digested(&genesis)]),
        )
        .await;
        assert!(ok);

        // Finalization commits on every node, and the included transactions leave A's pool.
        for n in [&mut a, &mut b, &mut c] {
            finalize(&mut n.app, &b1);
            finalize(&mut n.app, &b2);
        }
        assert_eq!(a.app.head(), b.app.head());
        assert_eq!(a.app.head(), c.app.head());
        assert_eq!(a.app.head().height, 2);
        // Delivered again (as after a restart): no effect.
        finalize(&mut a.app, &b2);
        assert_eq!(a.app.head().height, 2);
        // The next proposal has nothing left to include from before.
        let b3 = Application::propose(
            &mut a.app,
            (rt.child("app"), context(3, &leader, &b2)),
            ancestry::from_iter([digested(&b2), digested(&b1)]),
            (),
        )
        .await
        .unwrap()
        .inner()
        .clone();
        assert!(b3.block().txs.is_empty());
    });
}

#[test]
fn block_codec_is_canonical_and_bounded() {
    use commonware_codec::{DecodeExt as _, Encode as _};
    let n = node();
    let genesis = n.app.genesis_block().unwrap();
    let bytes = genesis.encode();
    let back = ShardBlock::decode(bytes.clone()).unwrap();
    assert_eq!(back, genesis);
    assert_eq!(back.digest(), genesis.digest());
    // Truncated, oversized, trailing and garbage inputs are errors.
    assert!(ShardBlock::decode(bytes.slice(..bytes.len() - 1)).is_err());
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(ShardBlock::decode(bytes::Bytes::from(longer)).is_err());
    assert!(ShardBlock::decode(bytes::Bytes::from_static(&[0xff, 0xff, 0xff, 0xff])).is_err());
    let mut inner_extra = bytes.to_vec();
    inner_extra[3] += 1;
    inner_extra.push(0);
    assert!(ShardBlock::decode(bytes::Bytes::from(inner_extra)).is_err());
}
