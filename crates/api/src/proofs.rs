//! `GET /api/v1/proofs/{kind}/...`: light-client proofs of any record (built and checked by
//! [`starling_node_api::proof`]).

use crate::{parse_key, ApiError, ApiResult};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use starling_node_api::proof::{prove, ProveError, RecordRef, KINDS};

pub(crate) fn routes() -> Router<crate::Api> {
    Router::new()
        .route("/api/v1/proofs/{kind}/{a}", get(proof))
        .route("/api/v1/proofs/{kind}/{a}/{b}", get(proof))
        .route("/api/v1/proofs/{kind}/{a}/{b}/{c}", get(proof))
        .route("/api/v1/foundations/of/{key}", get(foundation_of))
        .route("/api/v1/foundations/members/{key}", get(member_of))
}

/// Proofs built at once by this process; more are refused (503 `busy`): each reads the
/// store under the shard's lock and may ask marshal, and anyone may ask.
pub const MAX_PROVING: usize = 16;

static PROVING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_PROVING);

fn proving() -> Result<tokio::sync::SemaphorePermit<'static>, ApiError> {
    PROVING.try_acquire().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many proofs are being built; try again",
        )
    })
}

/// `GET /api/v1/foundations/of/{key}`: the foundation the account is charged to (rule FD1),
/// read from the federation its shard holds, with that record's light-client proof.
async fn foundation_of(State(api): State<crate::Api>, Path(key): Path<String>) -> ApiResult {
    let account = parse_key(&key)?;
    let _permit = proving()?;
    let proof = prove(&api.node, &RecordRef::Charges(account))
        .await
        .map_err(from_prove)?;
    let record = proof.record.clone().unwrap_or_default();
    Ok(Json(serde_json::json!({
        "account": account.to_text(),
        "foundation": record["foundation"],
        "period": record["period"],
        "foundations": record["foundations"],
        "proof": proof,
    })))
}

/// `GET /api/v1/foundations/members/{key}`: the account's entry in the global shard's
/// registry of verified members (rule FM1), or its absence, with a light-client proof.
async fn member_of(State(api): State<crate::Api>, Path(key): Path<String>) -> ApiResult {
    let account = parse_key(&key)?;
    let _permit = proving()?;
    let proof = prove(&api.node, &RecordRef::Member(account))
        .await
        .map_err(from_prove)?;
    Ok(Json(serde_json::json!({
        "account": account.to_text(),
        "member": proof.record.clone(),
        "proof": proof,
    })))
}

async fn proof(State(api): State<crate::Api>, Path(segments): Path<Vec<String>>) -> ApiResult {
    let _permit = proving()?;
    let Some((kind, args)) = segments.split_first() else {
        return Err(ApiError::bad_request("bad_record", "no record kind"));
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let known = KINDS
        .iter()
        .any(|k| k.split('/').next() == Some(kind.as_str()));
    if let [k, ..] = args.as_slice() {
        // A known kind's first argument is a key (but for handles and committees): its clear
        // error first.
        if known && kind != "handles" && kind != "committees" {
            parse_key(k)?;
        }
    }
    let record =
        RecordRef::parse(kind, &args).map_err(|e| ApiError::bad_request("bad_record", e))?;
    Ok(Json(
        serde_json::to_value(prove(&api.node, &record).await.map_err(from_prove)?)
            .map_err(ApiError::internal)?,
    ))
}

fn from_prove(e: ProveError) -> ApiError {
    match e {
        ProveError::BadRecord(why) => ApiError::bad_request("bad_record", why),
        ProveError::NotFound(why) => ApiError::not_found(why),
        ProveError::NoCertificate(why) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_certificate", why)
        }
        ProveError::Store(why) => ApiError::internal(why),
    }
}
