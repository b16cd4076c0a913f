//! `starling bench chat`: the cost of MLS chat on this machine.
//!
//! Today it measures the cryptographic core only, in one process with no network: a 1:1
//! group where one device encrypts and the other decrypts (`msgs_per_s`, `p50_crypto_us`),
//! and the commit that adds a member to a group of `--group-size` (`add_member_ms`: building
//! the commit and welcome, and the new member joining from the welcome). Delivery between
//! nodes is not built yet, so `p50_delivery_ms` is not reported.

use anyhow::bail;
use clap::Args;
use serde_json::json;
use starling_chat::{Device, Received};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// Print one JSON object instead of a summary.
    #[arg(long, default_value_t = false)]
    json: bool,
    /// Messages sent one way in the 1:1 chat.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Members of the group a member is added to.
    #[arg(long, default_value_t = 50)]
    group_size: usize,
    /// Bytes of text per message.
    #[arg(long, default_value_t = 140)]
    text_bytes: usize,
}

fn device(name: &str) -> anyhow::Result<Device> {
    Ok(Device::new(&format!("bench:{name}"), 0)?)
}

pub fn chat(args: ChatArgs) -> anyhow::Result<()> {
    if args.messages == 0 || args.group_size < 2 || args.group_size > starling_chat::MAX_MEMBERS - 1
    {
        bail!(
            "need some messages and a group of 2 to {}",
            starling_chat::MAX_MEMBERS - 1
        );
    }
    // 1:1.
    let (mut alice, mut bob) = (device("alice")?, device("bob")?);
    let id = alice.create_group()?;
    let kp = bob.key_package()?;
    let out = alice.add(&id, &[kp])?;
    alice.confirm(&id)?;
    bob.receive(&out.welcome.unwrap_or_default())?;
    let text = vec![b'x'; args.text_bytes];
    let mut lat = Vec::with_capacity(args.messages);
    let start = Instant::now();
    for _ in 0..args.messages {
        let t = Instant::now();
        let m = alice.send(&id, &text)?;
        match bob.receive(&m)? {
            Received::Text { text: got, .. } if got.len() == text.len() => {}
            other => bail!("unexpected {other:?}"),
        }
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let p50 = lat[lat.len() / 2];
    let p99 = lat[(lat.len() - 1) * 99 / 100];

    // A member added to a group of `group_size`.
    let mut owner = device("owner")?;
    let gid = owner.create_group()?;
    let mut members: Vec<Device> = (1..args.group_size)
        .map(|i| device(&format!("m{i}")))
        .collect::<anyhow::Result<_>>()?;
    let kps: Vec<Vec<u8>> = members
        .iter_mut()
        .map(|d| d.key_package())
        .collect::<Result<_, _>>()?;
    owner.add(&gid, &kps)?;
    owner.confirm(&gid)?;
    let mut newcomer = device("newcomer")?;
    let kp = newcomer.key_package()?;
    let t = Instant::now();
    let out = owner.add(&gid, &[kp])?;
    owner.confirm(&gid)?;
    let commit_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    newcomer.receive(&out.welcome.unwrap_or_default())?;
    let join_ms = t.elapsed().as_secs_f64() * 1e3;
    if owner.members(&gid)?.len() != args.group_size + 1 {
        bail!("the group did not grow");
    }

    let report = json!({
        "messages": args.messages,
        "text_bytes": args.text_bytes,
        "msgs_per_s": (args.messages as f64 / secs).round(),
        "p50_crypto_us": (p50 * 10.0).round() / 10.0,
        "p99_crypto_us": (p99 * 10.0).round() / 10.0,
        "delivery": "not measured: in-process encrypt and decrypt only (delivery between nodes is not built yet)",
        "group_size": args.group_size,
        "add_member_commit_ms": (commit_ms * 100.0).round() / 100.0,
        "add_member_join_ms": (join_ms * 100.0).round() / 100.0,
        "commit_bytes": out.commit.len(),
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "1:1: {} msgs/s encrypt+decrypt (p50 {:.1} µs, p99 {:.1} µs); adding a member to {}: commit {:.2} ms, join {:.2} ms",
            report["msgs_per_s"], p50, p99, args.group_size, commit_ms, join_ms
        );
    }
    Ok(())
}
