//! Governance as the ledger holds it: `GET /api/v1/foundations` (the federation of
//! foundations, from the global shard, with each one's treasury on the shards this node
//! keeps, and its count of verified members). The foundation one account is charged to, with
//! a proof, is `GET /api/v1/foundations/of/{key}`, and its membership
//! `GET /api/v1/foundations/members/{key}` (both in `proofs`).

use crate::{ApiError, ApiResult};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use starling_ledger::actions::get_record;
use starling_ledger::ballots::{CredentialKeyRecord, CredentialRequest};
use starling_ledger::proposals::{FoundationParams, ProposalRecord, TokenRecord};
use starling_ledger::records::{decode_u128, decode_u64, MemberRecord, Pool, StateKey};
use starling_ledger::StateError;
use starling_node_api::proof::{proposal_json, Periods};
use starling_types::{Branch, Federation, Offices, ShardId};

pub(crate) fn routes() -> Router<crate::Api> {
    Router::new()
        .route("/api/v1/foundations", get(foundations))
        .route("/api/v1/proposals", get(proposals))
        .route("/api/v1/proposals/{id}", get(proposal))
        .route("/api/v1/vote-tokens/{key}", get(vote_tokens))
        .route("/api/v1/foundations/{f}/ballots/{round}", get(ballot_round))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BallotQuery {
    /// A member whose credential request (and its answer) to show.
    member: Option<String>,
}

/// `GET /api/v1/foundations/{f}/ballots/{round}`: a round's credential key and issuance
/// log's counts (rules BL1, BL2, BL4), and with `?member=` that member's request and the
/// registrar's answer: what a member's node blinds against and unblinds, and what a
/// registrar answers.
async fn ballot_round(
    State(api): State<crate::Api>,
    axum::extract::Path((f, round)): axum::extract::Path<(u16, u64)>,
    axum::extract::Query(q): axum::extract::Query<BallotQuery>,
) -> ApiResult {
    let member = q.member.as_deref().map(crate::parse_key).transpose()?;
    let node = api.node.clone();
    gov_read(move || {
        let (epoch, (key, request)) = read_global(&node, |v, _| {
            let key: Option<CredentialKeyRecord> =
                get_record(v, StateKey::CredentialKey(f, round))?;
            let request: Option<CredentialRequest> = match &member {
                Some(m) => get_record(v, StateKey::CredentialRequest(f, round, m))?,
                None => None,
            };
            Ok((key, request))
        })?;
        Ok(Json(json!({
            "foundation": f,
            "round": round,
            "epoch": epoch,
            "key": key.as_ref().map(|k| hex::encode(&k.key)),
            "tokens": key.as_ref().map(|k| k.tokens.to_string()),
            "issued": key.as_ref().map_or(0, |k| k.issued),
            "voters": key.as_ref().map_or(0, |k| k.voters),
            "forged": key.as_ref().is_some_and(|k| k.forged),
            "request": request.map(|r| json!({
                "blinded": hex::encode(&r.blinded),
                "blind_sig": r.blind_sig.map(hex::encode),
            })),
        })))
    })
    .await
}

/// Most proposals in one page of `GET /api/v1/proposals`.
const MAX_PAGE: u64 = 50;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposalsQuery {
    /// Only this foundation's.
    foundation: Option<u16>,
    /// Only those numbered below this (the page before).
    before: Option<u64>,
    limit: Option<u64>,
}

fn global(node: &starling_node_api::Node) -> Result<&starling_consensus::ShardApp, ApiError> {
    node.shard(ShardId::GLOBAL)
        .ok_or_else(|| ApiError::not_found("this node does not keep the global shard"))
}

/// The global epoch the next block is in, and `f` of the global shard's state.
fn read_global<T>(
    node: &starling_node_api::Node,
    f: impl FnOnce(&dyn starling_ledger::StateView, u64) -> Result<T, StateError>,
) -> Result<(u64, T), ApiError> {
    let schedule = starling_ledger::committee::EpochSchedule {
        length: node.genesis().params.epoch_blocks,
    };
    global(node)?
        .read(|v| {
            let height = starling_ledger::ShardLedger::meta(v).map_or(0, |m| m.height);
            let epoch = schedule.epoch_of(height + 1);
            f(v, epoch).map(|t| (epoch, t))
        })
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// Reads of the global shard's governance records at once by this process, beyond the
/// federation's (`READING`); more are refused (503 `busy`).
static GOV_READING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_READING);

fn busy() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "too many governance reads at once; try again",
    )
}

/// Runs `f` on a blocking thread, one of at most `MAX_READING` at once.
async fn gov_read(f: impl FnOnce() -> ApiResult + Send + 'static) -> ApiResult {
    let Ok(_permit) = GOV_READING.try_acquire() else {
        return Err(busy());
    };
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// `GET /api/v1/proposals`: newest first, a page at a time.
async fn proposals(
    State(api): State<crate::Api>,
    query: Result<axum::extract::Query<ProposalsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let q = query
        .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?
        .0;
    let limit = q.limit.unwrap_or(20).clamp(1, MAX_PAGE);
    let node = api.node.clone();
    gov_read(move || {
        let periods = Periods::of(&node.genesis().params);
        // The records are read under the store's lock; their JSON is built after.
        let (epoch, (count, records, next)) = read_global(&node, |v, _| {
            let count = v
                .get(&StateKey::ProposalCount.hash())?
                .map_or(Ok(0), |b| decode_u64(&b))
                .map_err(|e| StateError(format!("corrupt count: {e}")))?;
            let mut records = Vec::new();
            let mut id = q.before.unwrap_or(count).min(count);
            // (Filtering by foundation reads at most a few pages' worth.)
            let mut budget = limit * 4;
            while id > 0 && (records.len() as u64) < limit && budget > 0 {
                id -= 1;
                budget -= 1;
                let p: Option<ProposalRecord> = get_record(v, StateKey::Proposal(id))?;
                records.extend(p.filter(|p| q.foundation.is_none_or(|f| p.foundation == f)));
            }
            Ok((count, records, (id > 0).then_some(id)))
        })?;
        let items: Vec<_> = records
            .iter()
            .map(|p| proposal_json(p, Some(periods)))
            .collect();
        Ok(Json(json!({
            "epoch": epoch,
            "count": count,
            "proposals": items,
            "next": next,
        })))
    })
    .await
}

/// `GET /api/v1/proposals/{id}`.
async fn proposal(
    State(api): State<crate::Api>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("bad_id", "a proposal is named by its number"))?;
    let node = api.node.clone();
    gov_read(move || {
        let periods = Periods::of(&node.genesis().params);
        let (epoch, p) = read_global(&node, |v, _| {
            get_record::<_, ProposalRecord>(v, StateKey::Proposal(id))
        })?;
        let p = p.ok_or_else(|| ApiError::not_found("no such proposal"))?;
        let mut out = proposal_json(&p, Some(periods));
        out["epoch"] = json!(epoch);
        Ok(Json(out))
    })
    .await
}

/// `GET /api/v1/vote-tokens/{key}`: the account's vote tokens this round, per seat it holds
/// (rule GV4), and as a member.
async fn vote_tokens(
    State(api): State<crate::Api>,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> ApiResult {
    let account = crate::parse_key(&key)?;
    let node = api.node.clone();
    gov_read(move || tokens_of(&node, &account)).await
}

fn tokens_of(node: &starling_node_api::Node, account: &starling_types::AccountId) -> ApiResult {
    let account = *account;
    let g = node.genesis().params.governance;
    let n = node.genesis().params.foundations.len() as u16;
    let round_epochs = g.round_epochs.max(1);
    let (epoch, rows) = read_global(node, |v, epoch| {
        let member: Option<MemberRecord> = get_record(v, StateKey::Member(&account))?;
        let mut rows = Vec::new();
        for f in 0..n {
            let offices: Offices = get_record(v, StateKey::Offices(f))?.unwrap_or_default();
            let seat = offices
                .held_by(&account, epoch)
                .map(|s| (Some(s.office), Branch::of(s.office)));
            let as_member = member
                .filter(|m| m.foundation == f)
                .map(|_| (None, Branch::Members));
            let params = get_record::<_, FoundationParams>(v, StateKey::FoundationParams(f))?
                .unwrap_or(g.foundation);
            for (office, branch) in seat.into_iter().chain(as_member) {
                let allotment = params.tokens[usize::from(branch.code())];
                let spent = get_record::<_, TokenRecord>(
                    v,
                    StateKey::VoteTokens(f, branch.code(), &account),
                )?
                .filter(|t| t.round == epoch / round_epochs)
                .map_or(0, |t| t.spent);
                rows.push(json!({
                    "foundation": f,
                    "office": office.map(|o| o.name()),
                    "branch": branch.name(),
                    "allotment": allotment.to_string(),
                    "spent": spent.to_string(),
                    "left": allotment.saturating_sub(spent).to_string(),
                }));
            }
        }
        Ok(rows)
    })?;
    let round = epoch / round_epochs;
    Ok(Json(json!({
        "account": account.to_text(),
        "epoch": epoch,
        "round": round,
        "round_ends": (round + 1) * round_epochs,
        "tokens": rows,
    })))
}

/// Lists read at once by this process; more are refused (503 `busy`): each reads every
/// kept shard's state, and anyone may ask.
const MAX_READING: usize = 4;

static READING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_READING);

async fn foundations(State(api): State<crate::Api>) -> ApiResult {
    let Ok(_permit) = READING.try_acquire() else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many reads of the federation at once; try again",
        ));
    };
    let node = api.node.clone();
    tokio::task::spawn_blocking(move || read(&node))
        .await
        .map_err(ApiError::internal)?
}

/// Each foundation's offices (rule OF1: a seat whose term has ended holds no power, listed
/// or not), and the global epoch the next block is in, which would judge a seat.
fn offices(
    global: &starling_consensus::ShardApp,
    genesis: &starling_config::genesis::Genesis,
    n: usize,
) -> Result<(u64, Vec<Offices>), ApiError> {
    let schedule = starling_ledger::committee::EpochSchedule {
        length: genesis.params.epoch_blocks,
    };
    global
        .read(|v| {
            let height = starling_ledger::ShardLedger::meta(v).map_or(0, |m| m.height);
            (0..n as u16)
                .map(|i| {
                    starling_ledger::actions::get_record::<_, Offices>(v, StateKey::Offices(i))
                        .map(Option::unwrap_or_default)
                })
                .collect::<Result<Vec<Offices>, StateError>>()
                .map(|o| (schedule.epoch_of(height + 1), o))
        })
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

fn read(node: &starling_node_api::Node) -> ApiResult {
    let genesis = node.genesis();
    let global = node
        .shard(ShardId::GLOBAL)
        .ok_or_else(|| ApiError::not_found("this node does not keep the global shard"))?;
    let federation = global
        .read(|v| starling_ledger::actions::get_record::<_, Federation>(v, StateKey::Federation))
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .unwrap_or_else(|| genesis.params.genesis_federation());
    let (epoch, offices) = offices(global, genesis, federation.foundations.len())?;
    let g = &genesis.params.governance;
    // Each one's verified members, as the registry counts them (rule FM1).
    let members = global
        .read(|v| {
            (0..federation.foundations.len() as u16)
                .map(|i| {
                    let raw = v.get(&StateKey::MemberCount(i).hash())?;
                    raw.map_or(Ok(0), |b| {
                        decode_u64(&b).map_err(|e| StateError(format!("corrupt count: {e}")))
                    })
                })
                .collect::<Result<Vec<u64>, StateError>>()
        })
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    // Each foundation's treasury (its pool) on every shard this node keeps.
    let mut treasuries = vec![0u128; federation.foundations.len()];
    let mut shards = 0;
    for handle in node.shards().values() {
        let pools = handle
            .app
            .read(|v| {
                (0..treasuries.len() as u16)
                    .map(|i| {
                        let raw = v.get(&StateKey::Pool(Pool::Foundation(i)).hash())?;
                        raw.map_or(Ok(0), |b| {
                            decode_u128(&b).map_err(|e| StateError(format!("corrupt pool: {e}")))
                        })
                    })
                    .collect::<Result<Vec<u128>, StateError>>()
            })
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        for (t, p) in treasuries.iter_mut().zip(pools) {
            *t = t.saturating_add(p);
        }
        shards += 1;
    }
    let items: Vec<_> = federation
        .foundations
        .iter()
        .enumerate()
        .map(|(i, f)| {
            // (An index never changes: the genesis names the first ones.)
            let name = genesis.foundations.get(i).map(|g| g.name.clone());
            json!({
                "index": i,
                "name": name,
                "treasury": f.treasury.to_text(),
                "registrar": f.registrar.to_text(),
                "members": members[i],
                "offices": offices[i].seats.iter().map(|s| json!({
                    "office": s.office.name(),
                    "holder": s.holder.to_text(),
                    "since": s.since,
                    "until": s.until,
                    "acting": s.acting,
                    "in_term": s.in_term(epoch),
                })).collect::<Vec<_>>(),
                "status": f.status.name(),
                "takes_charges": f.status.takes_charges(),
                "treasury_spend": treasuries[i].to_string(),
            })
        })
        .collect();
    Ok(Json(json!({
        "period": federation.period,
        "version": federation.version,
        "seed": federation.seed.to_hex(),
        "charge_period_epochs": genesis.params.charge_period_epochs,
        "epoch": epoch,
        "treasury_shards": shards,
        "foundations": items,
        "governance": {
            "voting_epochs": g.voting_epochs,
            "challenge_epochs": g.challenge_epochs,
            "support_epochs": g.support_epochs,
            "board_vote_epochs": g.board_vote_epochs,
            "round_epochs": g.round_epochs,
            "proposal_deposit": g.proposal_deposit.to_string(),
            "challenge_deposit": g.challenge_deposit.to_string(),
        },
    })))
}
