//! `starling bench governance`: members' anonymous ballots (ledger rules BL3, BL4) applied
//! through the global shard's ledger: each ballot's Ed25519 signature (in the block's batch),
//! its RSA credential, its nullifier and its count; then the referendum's tally and a public
//! recount from the ballots on record.
//!
//! The referendum and the issuance log (a registrar's key for the round, `--ballots`
//! credentials issued) are written into the genesis state: the acts that make them are
//! measured by the tests, and issuing 100,000 credentials costs the registrar 100,000 RSA
//! private-key operations that are no part of what a node does with ballots. Credentials are
//! made (untimed) by blinding, signing and unblinding, as members and registrars do.

use crate::bench::bar;
use anyhow::{bail, Context};
use clap::Args;
use rand::SeedableRng;
use starling_crypto::blind::{Credential, RegistrarKey};
use starling_crypto::SecretKey;
use starling_ledger::ballots::{BallotRecord, CredentialKeyRecord, Referendum};
use starling_ledger::proposals::{ProposalRecord, RollCall, Status};
use starling_ledger::records::StateKey;
use starling_ledger::{LedgerParams, MemLedger, ShardLedger};
use starling_state::MemState;
use starling_types::ballots::credential_message;
use starling_types::{
    Action, Ballot, Block, ChainId, Encode, Finality, KeyType, Motion, Office, ShardId, TxBody,
    TxEnvelope,
};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct GovernanceArgs {
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Ballots to apply, each from its own credential.
    #[arg(long, default_value_t = 100_000)]
    ballots: usize,
    /// Ballots per block.
    #[arg(long, default_value_t = 1_000)]
    per_block: usize,
    /// The registrar's RSA modulus, in bits.
    #[arg(long, default_value_t = 2048)]
    rsa_bits: usize,
}

const PROPOSAL: u64 = 0;

/// A registrar's key for round 0, the credentials it issued, and a referendum of foundation
/// 0 open for a long time, written into the global shard's genesis.
fn genesis(params: &LedgerParams, key: &RegistrarKey, issued: u64) -> anyhow::Result<MemLedger> {
    let ledger = ShardLedger::new(params.clone(), ShardId::GLOBAL);
    let mut writes = ledger.genesis_writes(&[], 0);
    let holder = SecretKey::from_seed(KeyType::Ed25519, &[7; 32])?.public_key();
    let referendum = ProposalRecord {
        id: PROPOSAL,
        foundation: 0,
        proposer: holder,
        title: "Seat a senator".into(),
        text: String::new(),
        motion: Motion::Appoint {
            office: Office::Senate,
            holder,
        },
        finality: Finality::Reversible,
        deposit: 0,
        opened: 0,
        closes: u64::MAX / 2,
        electorate: 0,
        status: Status::Voting,
        roll: RollCall::default(),
        decided: None,
        enacted: None,
        previous: None,
        challenge: None,
        challenges: 0,
        referendum: Some(Referendum {
            members: issued,
            ..Referendum::default()
        }),
    };
    let issuance = CredentialKeyRecord {
        key: key.public()?.to_der(),
        tokens: 1_000,
        issued,
        voters: 0,
        forged: false,
    };
    let mut put = |k: StateKey<'_>, v: Vec<u8>| writes.insert(k.hash(), Some(v));
    put(StateKey::Proposal(PROPOSAL), referendum.to_bytes());
    put(StateKey::ProposalCount, 1u64.to_be_bytes().to_vec());
    put(StateKey::MemberCount(0), issued.to_be_bytes().to_vec());
    put(StateKey::CredentialKey(0, 0), issuance.to_bytes());
    let mut state = MemState::new(starling_store::DEFAULT_TREE_BITS);
    let root = state.commit(&writes);
    let head = ledger.genesis_block(root).header.id();
    Ok(MemLedger {
        ledger,
        state,
        head,
        height: 0,
    })
}

/// Ballot keys and their credentials, made on every core.
fn credentials(
    chain: &ChainId,
    key: &RegistrarKey,
    n: usize,
) -> anyhow::Result<Vec<(SecretKey, Credential)>> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let keys: Vec<SecretKey> = (0..n)
        .map(|_| SecretKey::generate(KeyType::Ed25519, &mut rng))
        .collect();
    let pk = key.public()?;
    let pb = bar(n as u64, "credentials");
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = n.div_ceil(threads).max(1);
    let made: Vec<anyhow::Result<Vec<Credential>>> = std::thread::scope(|s| {
        let workers: Vec<_> = keys
            .chunks(chunk)
            .map(|part| {
                let (pk, pb) = (&pk, &pb);
                s.spawn(move || {
                    part.iter()
                        .map(|k| {
                            let msg = credential_message(chain, 0, 0, &k.public_key());
                            let blinding = pk.blind(&msg)?;
                            let sig = key.sign_blinded(&blinding.blinded)?;
                            pb.inc(1);
                            Ok(pk.finalize(&sig, &blinding, &msg)?)
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| bail!("a worker panicked")))
            .collect()
    });
    pb.finish_and_clear();
    let mut all = Vec::with_capacity(n);
    for part in made {
        all.extend(part?);
    }
    Ok(keys.into_iter().zip(all).collect())
}

fn ballot_tx(
    chain: &ChainId,
    k: &SecretKey,
    c: &Credential,
    yes: bool,
    expires: u64,
) -> TxEnvelope {
    let body = TxBody {
        account: k.public_key(),
        nonce: 0,
        max_fee: 0,
        tip: 0,
        expires_at_height: expires,
        action: Action::Ballot(Ballot {
            foundation: 0,
            round: 0,
            proposal: PROPOSAL,
            yes,
            votes: 1 + (k.public_key().bytes[0] % 31) as u32,
            randomizer: c.randomizer,
            credential: c.signature.clone(),
        }),
    };
    k.sign_tx(chain, &body)
}

/// The blocks of ballots, `per_block` each, built on `builder` (which then holds the state
/// after them); every ballot must count.
fn build(
    builder: &mut MemLedger,
    chain: &ChainId,
    made: &[(SecretKey, Credential)],
    per_block: usize,
) -> anyhow::Result<Vec<Block>> {
    let blocks_n = made.len().div_ceil(per_block) as u64;
    let proposer = made[0].0.public_key();
    let pb = bar(blocks_n, "building");
    let mut blocks: Vec<Block> = Vec::with_capacity(blocks_n as usize);
    for (b, part) in made.chunks(per_block).enumerate() {
        let txs = part
            .iter()
            .enumerate()
            .map(|(i, (k, c))| ballot_tx(chain, k, c, i % 3 != 0, blocks_n + 10))
            .collect();
        let (block, executed) = builder.propose(txs, vec![], (b as u64 + 1) * 1_000, proposer)?;
        if let Some(e) = executed.events.iter().find_map(|e| match e {
            starling_ledger::Event::TxRejected { error, .. } => Some(error.clone()),
            _ => None,
        }) {
            bail!("benchmark block {b} refused a ballot: {e}");
        }
        blocks.push(block);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(blocks)
}

pub fn governance(args: GovernanceArgs) -> anyhow::Result<()> {
    if args.ballots == 0 || args.per_block == 0 {
        bail!("--ballots and --per-block must be positive");
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let (chain, mut params) = crate::bench::bench_params(&mut rng)?;
    params.block_gas_limit = params.block_gas_limit.max(args.per_block as u64 * 30_000);
    params.max_expiry_blocks = params.max_expiry_blocks.max(1 << 20);
    let key = RegistrarKey::generate(args.rsa_bits).context("the registrar's key")?;
    let made = credentials(&chain, &key, args.ballots)?;

    // Build the blocks on one replica (untimed), then apply them on another (timed).
    let blocks_n = args.ballots.div_ceil(args.per_block) as u64;
    let mut builder = genesis(&params, &key, args.ballots as u64)?;
    let blocks = build(&mut builder, &chain, &made, args.per_block)?;

    // Each block applied, then the physical limit timed on the same ballots: their
    // credentials verified alone (message built, RSA signature checked, nothing else), so
    // that both figures see the machine in the same state (its speed drifts over a run).
    let mut replica = genesis(&params, &key, args.ballots as u64)?;
    let pk = key.public()?;
    let pb = bar(blocks_n, "applying");
    let (mut apply_s, mut rsa_s) = (0.0, 0.0);
    for (block, part) in blocks.iter().zip(made.chunks(args.per_block)) {
        let t = Instant::now();
        replica.apply(block)?;
        apply_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (k, c) in part {
            pk.verify(&credential_message(&chain, 0, 0, &k.public_key()), c)?;
        }
        rsa_s += t.elapsed().as_secs_f64();
        pb.inc(1);
    }
    pb.finish_and_clear();
    if replica.state.root() != builder.state.root() {
        bail!("the replica's state root differs from the builder's");
    }

    // The ledger's tally and verdict, then anyone's recount from the ballots on record: both
    // timed.
    let t = Instant::now();
    let count = tally(&replica)?;
    let recounted = recount(&replica, &made)?;
    let tally_s = t.elapsed().as_secs_f64();
    if recounted != (count.voters, count.yes, count.no) {
        bail!("the recount {recounted:?} differs from the ledger's tally {count:?}");
    }
    let out = serde_json::json!({
        "bench": "governance",
        "ballots": args.ballots,
        "per_block": args.per_block,
        "rsa_bits": args.rsa_bits,
        "ballots_per_s": (args.ballots as f64 / apply_s).round(),
        "credential_verify_limit_per_s": (args.ballots as f64 / rsa_s).round(),
        "ratio": (rsa_s / apply_s * 1000.0).round() / 1000.0,
        "apply_s": (apply_s * 1000.0).round() / 1000.0,
        "tally_s": (tally_s * 1000.0).round() / 1000.0,
        "total_s": ((apply_s + tally_s) * 1000.0).round() / 1000.0,
        "yes": count.yes,
        "no": count.no,
        // The ledger checks a block's credentials on every core (rule BL3); the limit is
        // one thread's.
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    if args.json {
        println!("{out}");
    } else {
        println!(
            "governance: {} ballots applied at {:.0}/s ({:.2} s), tallied and recounted in {:.3} s",
            args.ballots,
            args.ballots as f64 / apply_s,
            apply_s,
            tally_s
        );
    }
    Ok(())
}

/// The referendum's tally as the ledger keeps it (by difference, as ballots come) and its
/// verdict, which an advance records once voting closes: every credential voted, so it
/// must have quorum.
fn tally(replica: &MemLedger) -> anyhow::Result<Referendum> {
    let bytes = replica
        .state
        .get(&StateKey::Proposal(PROPOSAL).hash())
        .context("the referendum")?;
    let p: ProposalRecord = starling_types::Decode::from_bytes(bytes)?;
    let count = p.referendum.context("a referendum")?;
    let track = p.motion.track();
    if !count.carries(track.quorum_pct, track.threshold_pct).0 {
        bail!("every credential voted, yet no quorum");
    }
    Ok(count)
}

/// Anyone's recount: every ballot key's standing ballot, read from the state.
fn recount(m: &MemLedger, made: &[(SecretKey, Credential)]) -> anyhow::Result<(u64, u64, u64)> {
    let mut total = (0, 0, 0);
    for (k, _) in made {
        let Some(bytes) = m
            .state
            .get(&StateKey::BallotOn(PROPOSAL, &k.public_key()).hash())
        else {
            continue;
        };
        let b: BallotRecord = starling_types::Decode::from_bytes(bytes)?;
        total.0 += 1;
        if b.yes {
            total.1 += u64::from(b.votes);
        } else {
            total.2 += u64::from(b.votes);
        }
    }
    Ok(total)
}
