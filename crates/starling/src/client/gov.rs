//! `starling gov`: the federation of foundations, memberships and sponsorships.

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
}

pub fn run(cmd: GovCmd, opts: ClientOpts) -> anyhow::Result<()> {
    let j = opts.json;
    match cmd {
        GovCmd::Foundations => foundations(&Client::new(&opts, None)?.get("/foundations")?, j),
        GovCmd::Membership { who } => {
            let (c, key) = match who {
                Some(w) => {
                    let c = Client::new(&opts, None)?;
                    let key = resolve(&c, &w)?;
                    (c, key)
                }
                None => session_of(&opts)?,
            };
            membership(
                &c.get(&format!("/foundations/members/{}", enc(&key)))?,
                &key,
                j,
            );
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
        GovCmd::Foundations | GovCmd::Membership { .. } => {
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
