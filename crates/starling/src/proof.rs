//! `starling proof`: fetches a record with its light-client proof from a node and checks it
//! against the committee a genesis file names, trusting nothing the node says.

use crate::client::{Client, ClientOpts};
use anyhow::{anyhow, Context as _};
use serde_json::json;
use starling_node::genesis::Genesis;
use starling_node::proofs::{ProofCheckError, RecordProof, RecordRef, Trusted};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct ProofArgs {
    /// The kind of record: accounts, profiles, posts, follows, likes, reposts, blocks,
    /// chat-keys, handles or bonds.
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
    let path = format!("/proofs/{}/{}", a.kind, a.args.join("/"));
    let started = Instant::now();
    let answer = loop {
        match client.get(&path) {
            Err(e)
                if e.to_string().starts_with("no_certificate") && started.elapsed() < RETRY_FOR =>
            {
                std::thread::sleep(Duration::from_millis(250));
            }
            other => break other?,
        }
    };
    let proof: RecordProof =
        serde_json::from_value(answer).context("the node's answer is not a proof")?;
    let checked = proof.check(&record, shard, &trusted).map_err(|e| match e {
        ProofCheckError::Certificate(c) if proof.epoch > 0 => anyhow!(
            "{c}: the block is in epoch {}, and only the genesis committee of shard {shard} is \
             trusted here; if the committee changed since, this check cannot follow it yet",
            proof.epoch
        ),
        e => anyhow!(e),
    })?;
    let h = &checked.header;
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
                "epoch": h.height / trusted.epoch_blocks.max(1),
                "record": record_json,
            })
        );
    } else {
        println!(
            "verified: shard {} block {} ({}), certified by the genesis committee ({} members)",
            shard.0,
            h.height,
            h.id().to_hex(),
            trusted.committee.len()
        );
        match record_json {
            Some(r) => println!("{}", serde_json::to_string_pretty(&r)?),
            None => println!("no such record (its absence is proven)"),
        }
    }
    Ok(())
}
