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
use starling_ledger::records::{decode_u128, decode_u64, Pool, StateKey};
use starling_ledger::StateError;
use starling_types::{Federation, Offices, ShardId};

pub(crate) fn routes() -> Router<crate::Api> {
    Router::new().route("/api/v1/foundations", get(foundations))
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
    })))
}
