//! `starling proof`: fetches a record with its light-client proof from a node and checks it
//! from the genesis file alone, trusting nothing the node says: the genesis committee, then
//! each epoch's committee from its hand-off, up to the epoch of the record's block.

use crate::client::{Client, ClientOpts};
use anyhow::{anyhow, Context as _};
use serde_json::json;
use starling_node::genesis::Genesis;
use starling_node_api::proof::{RecordProof, RecordRef, Trusted};
use starling_types::ShardId;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct ProofArgs {
    /// The kind of record: accounts, profiles, posts, follows, likes, reposts, blocks,
    /// chat-keys, handles, bonds, committees (`<shard> <epoch>`) or charges (a key: the
    /// federation its shard holds, read for it: its foundation).
    pub kind: String,
    /// What names the record: a key; `<author> <seq>` for a post; two keys for a follow or a
    /// block; `<account> <author> <seq>` for a like or a repost; a name for a handle.
    #[arg(required = true)]
    pub args: Vec<String>,
    /// The genesis file whose committees are trusted.
    #[arg(long, env = "STARLING_GENESIS")]
    pub genesis: PathBuf,
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// How long to retry while the node has no certificate for its newest block yet.
const RETRY_FOR: Duration = Duration::from_secs(10);

pub fn run(a: ProofArgs) -> anyhow::Result<()> {
    let genesis = Genesis::load(&a.genesis)
        .with_context(|| format!("reading the genesis {}", a.genesis.display()))?;
    let args: Vec<&str> = a.args.iter().map(String::as_str).collect();
    let record = RecordRef::parse(&a.kind, &args).map_err(|e| anyhow!(e))?;
    let shard = record.shard(&genesis.params.shard_map);
    let trusted = Trusted::from_genesis(&genesis, shard)?;
    let client = Client::new(&a.opts, None)?;
    let proof = fetch(&client, &format!("/proofs/{}/{}", a.kind, a.args.join("/")))?;
    // How far to follow the committees: the epoch of the block the node proved against (the
    // check below refuses a header of any other epoch).
    let target = trusted.epoch_of(proof.height);
    let trusted = follow(&client, shard, trusted, target)?;
    let checked = proof.check(&record, shard, &trusted)?;
    let h = &checked.header;
    let epoch = trusted.epoch;
    let record_json = checked.value.as_deref().map(|v| record.describe(v));
    if a.opts.json {
        println!(
            "{}",
            json!({
                "verified": true,
                "shard": shard.0,
                "height": h.height,
                "block": h.id().to_hex(),
                "state_root": h.state_root.to_hex(),
                "epoch": epoch,
                "block_time_ms": h.timestamp_ms,
                "record": record_json,
            })
        );
    } else {
        println!(
            "verified: shard {} block {} ({}, time {} ms), certified by the committee of epoch {epoch} ({} members, {})",
            shard.0,
            h.height,
            h.id().to_hex(),
            h.timestamp_ms,
            trusted.committee.len(),
            if epoch == 0 { "the genesis's" } else { "followed from the genesis's" },
        );
        match record_json {
            Some(r) => println!("{}", serde_json::to_string_pretty(&r)?),
            None => println!("no such record (its absence is proven)"),
        }
    }
    Ok(())
}

/// Fetches a proof, retrying while the node has no certificate for its newest block yet.
fn fetch(client: &Client, path: &str) -> anyhow::Result<RecordProof> {
    let started = Instant::now();
    let answer = loop {
        match client.get(path) {
            Err(e)
                if e.to_string().starts_with("no_certificate") && started.elapsed() < RETRY_FOR =>
            {
                std::thread::sleep(Duration::from_millis(250));
            }
            other => break other?,
        }
    };
    serde_json::from_value(answer).context("the node's answer is not a proof")
}

/// Trust in `target`'s committee, from `trusted`'s, one checked hand-off per epoch.
fn follow(
    client: &Client,
    shard: ShardId,
    mut trusted: Trusted,
    target: u64,
) -> anyhow::Result<Trusted> {
    if target <= trusted.epoch {
        return Ok(trusted);
    }
    let bar =
        indicatif::ProgressBar::new(target - trusted.epoch).with_message("committee hand-offs");
    while trusted.epoch < target {
        let next = trusted.epoch + 1;
        let handoff = fetch(client, &format!("/proofs/committees/{}/{next}", shard.0))
            .with_context(|| format!("fetching the hand-off of epoch {next}"))?;
        trusted = trusted
            .advance(shard, &handoff)
            .map_err(|e| anyhow!("the hand-off of epoch {next} does not check out: {e}"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(trusted)
}
