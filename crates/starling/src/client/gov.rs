//! `starling gov`: the federation of foundations, memberships and sponsorships, proposals,
//! roll-call votes with quadratic vote tokens, and challenges.

use super::{enc, print_sent, resolve, session_of, Client, ClientOpts};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand, Debug)]
pub enum GovCmd {
    /// The foundations: status, registrar, verified members and treasury.
    Foundations,
    /// An account's membership (`@handle` or key; the logged-in account if none), from the
    /// registry on the global shard.
    Membership { who: Option<String> },
    /// As a foundation's registrar: admit an account as a verified member.
    Admit { who: String },
    /// As a foundation's registrar: revoke one of its members.
    Revoke { who: String },
    /// Give up the logged-in account's membership.
    Leave,
    /// Set SPEND aside to pay another account's base fees (`--end` to stop; what is left
    /// comes back).
    Sponsor {
        who: String,
        /// Base units of SPEND (not needed with `--end`).
        #[arg(required_unless_present = "end")]
        amount: Option<String>,
        #[arg(long)]
        end: bool,
    },
    /// Proposals, newest first (`--foundation` for one foundation's).
    Proposals {
        #[arg(long)]
        foundation: Option<u16>,
    },
    /// One proposal: its motion and track, timeline, roll call and challenge.
    Proposal { id: u64 },
    /// An account's vote tokens this round (the logged-in account if none).
    Tokens { who: Option<String> },
    /// Open a proposal in a foundation, as a seat its track names (a deposit is held):
    /// `spend <who> <amount>`, `appoint <office> <who>`, `set <param> <value>` (params:
    /// spend_limit, tokens.<members|staff|senate|board|executive>) or `registrar <who>`.
    Propose {
        foundation: u16,
        title: String,
        #[arg(value_parser = ["spend", "appoint", "set", "registrar"])]
        motion: String,
        #[arg(num_args = 1..=2)]
        args: Vec<String>,
        #[arg(long, default_value = "")]
        text: String,
    },
    /// Cast votes as a seat holder: n votes cost n² tokens (`--challenge` to vote on the
    /// proposal's challenge, where yes overturns the decision).
    Vote {
        proposal: u64,
        #[arg(value_parser = ["yes", "no"])]
        side: String,
        votes: u32,
        #[arg(long)]
        challenge: bool,
    },
    /// Move a proposal on once its time has come (tally, effect, or its challenge's step).
    Advance { proposal: u64 },
    /// Challenge a decision within its window (a deposit is held).
    Challenge { proposal: u64 },
    /// Support a challenge, as a senator or a member of the foundation.
    Support { proposal: u64 },
}

/// A client and the key of `who` (`@handle` or key), or of the logged-in account.
fn who_or_me(opts: &ClientOpts, who: Option<String>) -> anyhow::Result<(Client, String)> {
    match who {
        Some(w) => {
            let c = Client::new(opts, None)?;
            let key = resolve(&c, &w)?;
            Ok((c, key))
        }
        None => session_of(opts),
    }
}

pub fn run(cmd: GovCmd, opts: ClientOpts) -> anyhow::Result<()> {
    let j = opts.json;
    match cmd {
        GovCmd::Foundations => foundations(&Client::new(&opts, None)?.get("/foundations")?, j),
        GovCmd::Membership { who } => {
            let (c, key) = who_or_me(&opts, who)?;
            membership(
                &c.get(&format!("/foundations/members/{}", enc(&key)))?,
                &key,
                j,
            );
            Ok(())
        }
        GovCmd::Proposals { foundation } => {
            let q = foundation.map_or(String::new(), |f| format!("?foundation={f}"));
            let v = Client::new(&opts, None)?.get(&format!("/proposals{q}"))?;
            proposals(&v, j);
            Ok(())
        }
        GovCmd::Proposal { id } => {
            let v = Client::new(&opts, None)?.get(&format!("/proposals/{id}"))?;
            if j {
                println!("{v:#}");
            } else {
                proposal(&v, true);
            }
            Ok(())
        }
        GovCmd::Tokens { who } => {
            let (c, key) = who_or_me(&opts, who)?;
            tokens(&c.get(&format!("/vote-tokens/{}", enc(&key)))?, j);
            Ok(())
        }
        other => {
            let (c, _) = session_of(&opts)?;
            let (action, what) = action_of(&c, other)?;
            print_sent(&c.act(action)?, j, what);
            Ok(())
        }
    }
}

/// The action a command signs, and what to say once it is sent.
fn action_of(c: &Client, cmd: GovCmd) -> anyhow::Result<(Value, &'static str)> {
    Ok(match cmd {
        GovCmd::Admit { who } => (
            json!({"type": "admit_member", "member": resolve(c, &who)?}),
            "admission sent to the registry",
        ),
        GovCmd::Revoke { who } => (
            json!({"type": "revoke_member", "member": resolve(c, &who)?}),
            "revocation sent to the registry",
        ),
        GovCmd::Leave => (
            json!({"type": "leave_foundation"}),
            "leaving sent to the registry",
        ),
        GovCmd::Sponsor { who, end: true, .. } => (
            json!({"type": "end_sponsorship", "account": resolve(c, &who)?}),
            "sponsorship ended",
        ),
        GovCmd::Sponsor { who, amount, .. } => (
            json!({"type": "sponsor", "account": resolve(c, &who)?, "amount": amount.unwrap_or_default()}),
            "sponsorship sent",
        ),
        GovCmd::Propose {
            foundation,
            title,
            motion,
            args,
            text,
        } => (
            json!({"type": "propose", "foundation": foundation, "title": title, "text": text,
                   "motion": motion_of(c, &motion, &args)?}),
            "proposal sent to the global shard",
        ),
        GovCmd::Vote {
            proposal,
            side,
            votes,
            challenge,
        } => {
            let cost = u128::from(votes) * u128::from(votes);
            let noun = if votes == 1 {
                "vote costs"
            } else {
                "votes cost"
            };
            eprintln!("{votes} {noun} {cost} vote tokens (see `starling gov tokens`)");
            (
                json!({"type": "vote", "proposal": proposal, "challenge": challenge,
                       "yes": side == "yes", "votes": votes}),
                "vote sent",
            )
        }
        GovCmd::Advance { proposal } => (
            json!({"type": "advance_proposal", "proposal": proposal}),
            "advance sent",
        ),
        GovCmd::Challenge { proposal } => (
            json!({"type": "challenge", "proposal": proposal}),
            "challenge sent",
        ),
        GovCmd::Support { proposal } => (
            json!({"type": "support_challenge", "proposal": proposal}),
            "support sent",
        ),
        GovCmd::Foundations
        | GovCmd::Membership { .. }
        | GovCmd::Proposals { .. }
        | GovCmd::Proposal { .. }
        | GovCmd::Tokens { .. } => {
            anyhow::bail!("not an action")
        }
    })
}

fn membership(v: &Value, key: &str, j: bool) {
    if j {
        println!("{v:#}");
    } else if v["member"].is_null() {
        println!("{key} is not a verified member of any foundation");
    } else {
        let m = &v["member"];
        println!(
            "{key} is a verified member of foundation {} (admitted by {} at global height {})",
            m["foundation"],
            text(&m["registrar"]),
            m["since"]
        );
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn foundations(v: &Value, j: bool) -> anyhow::Result<()> {
    if j {
        println!("{v:#}");
        return Ok(());
    }
    println!(
        "charge period {} (every {} epochs)",
        v["period"], v["charge_period_epochs"]
    );
    for f in v["foundations"].as_array().into_iter().flatten() {
        println!(
            "{} {}: {}, {} verified members, treasury {} SPEND\n  treasury {}\n  registrar {}",
            f["index"],
            f["name"].as_str().unwrap_or("(unnamed)"),
            text(&f["status"]),
            f["members"],
            text(&f["treasury_spend"]),
            text(&f["treasury"]),
            text(&f["registrar"]),
        );
        for o in f["offices"].as_array().into_iter().flatten() {
            let ended = if o["in_term"] == true {
                ""
            } else {
                " (term ended)"
            };
            println!(
                "  {} {} until epoch {}{ended}",
                text(&o["office"]),
                text(&o["holder"]),
                o["until"]
            );
        }
    }
    Ok(())
}

/// A motion's JSON from its kind and arguments on the command line.
fn motion_of(c: &Client, kind: &str, args: &[String]) -> anyhow::Result<Value> {
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| anyhow::anyhow!("`{kind}` needs {} argument(s)", i + 1))
    };
    let wanted = if kind == "registrar" { 1 } else { 2 };
    if args.len() != wanted {
        anyhow::bail!("`{kind}` takes {wanted} argument(s), got {}", args.len());
    }
    Ok(match kind {
        "spend" => json!({"kind": "spend", "to": resolve(c, arg(0)?)?, "amount": arg(1)?}),
        "appoint" => json!({"kind": "appoint", "office": arg(0)?, "holder": resolve(c, arg(1)?)?}),
        "set" => json!({"kind": "set_param", "param": arg(0)?, "value": arg(1)?}),
        _ => json!({"kind": "registrar", "registrar": resolve(c, arg(0)?)?}),
    })
}

fn motion_text(m: &Value) -> String {
    match text(&m["kind"]) {
        "spend" => format!("spend {} SPEND to {}", text(&m["amount"]), text(&m["to"])),
        "appoint" => format!("appoint {} as {}", text(&m["holder"]), text(&m["office"])),
        "set_param" => format!("set {} to {}", text(&m["param"]), text(&m["value"])),
        _ => format!("make {} the registrar", text(&m["registrar"])),
    }
}

fn roll_text(label: &str, r: &Value) {
    println!(
        "  {label}: {} yes, {} no ({} voters)",
        r["yes"], r["no"], r["voters"]
    );
    for v in r["votes"].as_array().into_iter().flatten() {
        let side = if v["yes"] == true { "yes" } else { "no" };
        println!("    {} {side} {}", text(&v["voter"]), v["votes"]);
    }
}

fn proposal(p: &Value, full: bool) {
    println!(
        "#{} [{}] foundation {}: {}\n  {} (track {}, decided by the {}; {})",
        p["id"],
        text(&p["status"]),
        p["foundation"],
        text(&p["title"]),
        motion_text(&p["motion"]),
        text(&p["track"]["name"]),
        text(&p["track"]["decides"]),
        text(&p["finality"]),
    );
    if !full {
        return;
    }
    if !text(&p["text"]).is_empty() {
        println!("  {}", text(&p["text"]));
    }
    println!(
        "  opened in epoch {}, voting until epoch {}, electorate {}; now epoch {}",
        p["opened"], p["closes"], p["electorate"], p["epoch"]
    );
    roll_text("roll call", &p["roll"]);
    if let Some(until) = p["challenge_until"].as_u64() {
        println!("  open to challenge until epoch {until}");
    }
    if let Some(epoch) = p["expires"].as_u64() {
        println!("  expires unless advanced before epoch {epoch}");
    }
    let c = &p["challenge"];
    if !c.is_null() {
        println!(
            "  challenge by {}: {} (support: {} senators, {} members)",
            text(&c["by"]),
            text(&c["stage"]),
            c["senators"],
            c["supporters"]
        );
        roll_text("board", &c["roll"]);
    }
}

fn proposals(v: &Value, j: bool) {
    if j {
        println!("{v:#}");
        return;
    }
    println!("{} proposals; epoch {}", v["count"], v["epoch"]);
    for p in v["proposals"].as_array().into_iter().flatten() {
        proposal(p, false);
    }
}

fn tokens(v: &Value, j: bool) {
    if j {
        println!("{v:#}");
        return;
    }
    println!(
        "round {} (until epoch {}); epoch {}",
        v["round"], v["round_ends"], v["epoch"]
    );
    let rows = v["tokens"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("no seat and no membership: no vote tokens");
    }
    for t in rows {
        println!(
            "foundation {} {}: {} of {} left",
            t["foundation"],
            text(&t["branch"]),
            text(&t["left"]),
            text(&t["allotment"]),
        );
    }
}
