//! The node's HTTP JSON API (`/api/v1`) and Prometheus metrics (`/metrics`): ledger reads and
//! submits here; the social API on the app view ([`social`], [`view`]), accounts and sessions
//! (`me`), chat ([`chat_api`]), the WebSocket stream ([`stream`]), light-client proofs
//! (`proofs`), the OpenAPI document ([`openapi`]) and the web app (`web`) in modules.
//!
//! - `GET  /api/v1/status`: chain, genesis id, and per shard the finalized height, block id,
//!   state root, base fee and mempool size.
//! - `POST /api/v1/txs`: `{"txs": ["<hex envelope>", ...]}` (at most [`MAX_SUBMIT_TXS`]); one
//!   result per transaction, `{"hash", "shard"}` or `{"error": {"code", "message"}}`.
//! - `GET  /api/v1/accounts/{key}`: balances, nonce, allowance, handle and profile.
//! - `GET  /api/v1/posts/{author}/{seq}`: a post.
//! - `GET  /api/v1/shards/{shard}/blocks/{height}`: a finalized block's header and the hash
//!   and status of each of its transactions.
//!
//! Every error is `{"error": {"code": "<snake_case>", "message": "..."}}` with a 4xx status
//! for a bad request; bodies are bounded before they are parsed.

mod action_json;
pub mod chat_api;
pub mod client;
mod governance;
mod me;
pub mod openapi;
mod proofs;
pub mod social;
pub mod stream;
pub mod view;
mod web;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use starling_ledger::actions;
use starling_ledger::records::{PostRecord, ProfileRecord, StateKey};
use starling_node_api::{Node, SubmitError};
use starling_types::{Asset, Decode as _, PostId, PublicKey, Receipt, ShardId, TxEnvelope};
use std::sync::Arc;

pub use crate::client::ApiOptions;

/// Most transactions in one `POST /api/v1/txs`.
pub const MAX_SUBMIT_TXS: usize = 4_096;
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 2 * (MAX_SUBMIT_TXS * 1_024) + 4_096;

/// Renders the node's metrics in the Prometheus text format.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) node: Node,
    pub(crate) services: Services,
    metrics: MetricsFn,
    pub(crate) options: Arc<ApiOptions>,
    pub(crate) streams: Arc<crate::stream::Slots>,
}

/// What a node offers its users besides its shards, each opened before the API starts: the
/// app view (the social API), the accounts it holds (sessions, signing) and their chat. An
/// API without one answers its endpoints with a clear 503.
#[derive(Clone, Debug, Default)]
pub struct Services {
    pub view: Option<crate::view::View>,
    pub accounts: Option<Arc<starling_accounts::Accounts>>,
    pub chat: Option<Arc<starling_chat_client::Chat>>,
}

/// An API error: an HTTP status, a stable code and a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// What went wrong, in words.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the node could not read its store",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

pub(crate) type ApiResult = Result<Json<Value>, ApiError>;

impl From<starling_accounts::AccountsError> for ApiError {
    fn from(e: starling_accounts::AccountsError) -> Self {
        use starling_accounts::AccountsError as E;
        let (status, code) = match &e {
            E::InvalidAction(_) => (StatusCode::BAD_REQUEST, "invalid_action"),
            E::ShardNotServed(_) => (StatusCode::SERVICE_UNAVAILABLE, "shard_not_served"),
            E::NoAccount => (StatusCode::CONFLICT, "no_account"),
            E::InsufficientFunds { .. } => (StatusCode::CONFLICT, "insufficient_funds"),
            E::NotSubmitted(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_submitted"),
            E::Store(_) => return ApiError::internal(e),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// The API router for `node` and its `services`.
pub fn router(node: Node, services: Services, metrics: MetricsFn, options: ApiOptions) -> Router {
    let api = Api {
        node,
        services,
        metrics,
        options: Arc::new(options),
        streams: Arc::default(),
    };
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/txs", post(submit))
        .route("/api/v1/accounts/{key}", get(account))
        .route("/api/v1/posts/{author}/{seq}", get(post_by_id))
        .route("/api/v1/shards/{shard}/blocks/{height}", get(block))
        .merge(crate::social::routes())
        .merge(crate::me::routes())
        .merge(crate::chat_api::routes())
        .merge(crate::stream::routes())
        .merge(crate::openapi::routes())
        .merge(crate::proofs::routes())
        .merge(crate::governance::routes())
        .merge(crate::web::routes())
        .route("/metrics", get(render_metrics))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            crate::client::check_host,
        ))
        .with_state(api)
}

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Node,
    services: Services,
    metrics: MetricsFn,
    options: ApiOptions,
) {
    let app = router(node, services, metrics, options)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "HTTP API stopped");
    }
}

async fn render_metrics(State(api): State<Api>) -> Response {
    let mut text = (api.metrics)();
    // Before the OpenMetrics end marker, if the registry wrote one.
    let eof = text.ends_with("# EOF\n");
    if eof {
        text.truncate(text.len() - "# EOF\n".len());
    }
    text.push_str(&format!(
        "# HELP starling_keystore_kdf_total Argon2 runs (log ins, sign ups, imports, exports).\n# TYPE starling_keystore_kdf_total counter\nstarling_keystore_kdf_total {}\n",
        starling_accounts::keystore::kdf_runs()
    ));
    text.push_str(&format!(
        "# HELP starling_api_streams_open WebSocket streams open (and upgrades under way).\n# TYPE starling_api_streams_open gauge\nstarling_api_streams_open {}\n",
        api.streams.open()
    ));
    if let Some(chat) = &api.services.chat {
        text.push_str(&chat.metrics());
    }
    if eof {
        text.push_str("# EOF\n");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn status(State(api): State<Api>) -> ApiResult {
    let mut shards = Vec::new();
    for (id, handle) in api.node.shards() {
        let head = handle.app.head();
        let (base_fee, timestamp_ms) = handle
            .app
            .read(|v| {
                starling_ledger::ShardLedger::meta(v)
                    .map(|m| (m.base_fee, m.timestamp_ms))
                    .unwrap_or((0, 0))
            })
            .map_err(ApiError::internal)?;
        // The epoch the next block belongs to, and its committee if fixed (rule E2).
        let epoch = handle.app.epochs().epoch_of(head.height + 1);
        let committee: Vec<String> = api
            .node
            .epoch_committee(*id, epoch)
            .iter()
            .map(|k| k.to_text())
            .collect();
        let drops = handle.app.mempool_drops();
        shards.push(json!({
            "shard": id.0,
            "height": head.height,
            "epoch": epoch,
            "committee": committee,
            "block_id": head.id.to_hex(),
            "state_root": head.state_root.to_hex(),
            "timestamp_ms": timestamp_ms,
            "base_fee": base_fee,
            "mempool": handle.app.mempool_len(),
            "mempool_drops": {
                "evicted": drops.evicted,
                "rejected": drops.rejected,
                "kept_losing": drops.kept_losing,
                "expired": drops.expired,
                "replaced": drops.replaced,
            },
        }));
    }
    Ok(Json(json!({
        "chain_id": api.node.chain_id().as_str(),
        "genesis_id": api.node.genesis().id().to_hex(),
        "account_shards": api.node.genesis().params.shard_map.ranges().len(),
        "shards": shards,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitRequest {
    txs: Vec<String>,
}

#[derive(Serialize)]
struct Submitted {
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

fn submit_error_code(e: &SubmitError) -> &'static str {
    match e {
        SubmitError::Malformed(_) => "malformed",
        SubmitError::ShardNotServed(_) => "shard_not_served",
        SubmitError::Busy => "busy",
        SubmitError::Rejected(m) => m.code(),
    }
}

async fn submit(
    State(api): State<Api>,
    body: Result<Json<SubmitRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let req = json_body(body)?;
    if req.txs.is_empty() || req.txs.len() > MAX_SUBMIT_TXS {
        return Err(ApiError::bad_request(
            "bad_batch",
            format!("send between 1 and {MAX_SUBMIT_TXS} transactions"),
        ));
    }
    // Hex and envelope decoding errors are answered per transaction, like admission errors.
    let mut decoded = Vec::with_capacity(req.txs.len());
    for t in &req.txs {
        decoded.push(
            hex::decode(t)
                .map_err(|e| format!("not hex: {e}"))
                .and_then(|b| TxEnvelope::from_bytes(&b).map_err(|e| e.to_string())),
        );
    }
    let good: Vec<TxEnvelope> = decoded.iter().filter_map(|d| d.clone().ok()).collect();
    let node = api.node.clone();
    // Signature checks take a while: keep them off the threads that serve requests.
    let mut results = tokio::task::spawn_blocking(move || node.submit(good))
        .await
        .map_err(ApiError::internal)?
        .into_iter();
    let out: Vec<Submitted> = decoded
        .into_iter()
        .map(|d| match d {
            Err(message) => Submitted {
                hash: None,
                shard: None,
                error: Some(json!({"code": "malformed", "message": message})),
            },
            Ok(_) => match results.next() {
                Some(Ok((hash, shard))) => Submitted {
                    hash: Some(hash.to_hex()),
                    shard: Some(shard.0),
                    error: None,
                },
                Some(Err(e)) => Submitted {
                    hash: None,
                    shard: None,
                    error: Some(json!({"code": submit_error_code(&e), "message": e.to_string()})),
                },
                None => Submitted {
                    hash: None,
                    shard: None,
                    error: Some(json!({"code": "internal", "message": "no result"})),
                },
            },
        })
        .collect();
    let accepted = out.iter().filter(|s| s.error.is_none()).count();
    Ok(Json(json!({"accepted": accepted, "results": out})))
}

/// A JSON request body, or the client's error: `too_large` (413) or `bad_json` (400).
pub(crate) fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    body.map(|Json(t)| t).map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "too_large",
                format!("request body is over {MAX_BODY_BYTES} bytes"),
            )
        } else {
            // Syntax, shape and content-type errors are all the client's.
            ApiError::bad_request("bad_json", e.body_text())
        }
    })
}

pub(crate) fn parse_key(text: &str) -> Result<PublicKey, ApiError> {
    PublicKey::parse(text).map_err(|e| ApiError::bad_request("bad_key", e))
}

async fn account(State(api): State<Api>, Path(key): Path<String>) -> ApiResult {
    let id = parse_key(&key)?;
    let shard = api.node.shard_map().shard_of(&id);
    let app = api
        .node
        .shard(shard)
        .ok_or_else(|| ApiError::not_found(format!("shard {shard} is not kept by this node")))?;
    let (record, profile) = app
        .read(|v| {
            let record = actions::account(v, &id)?;
            let profile: Option<ProfileRecord> = actions::get_record(v, StateKey::Profile(&id))?;
            Ok::<_, starling_ledger::StateError>((record, profile))
        })
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let Some(record) = record else {
        return Err(ApiError::not_found(format!(
            "{id} has no account on shard {shard}"
        )));
    };
    Ok(Json(json!({
        "account": id.to_text(),
        "shard": shard.0,
        "nonce": record.nonce,
        "balances": {
            "spend": record.balance(Asset::Spend).to_string(),
            "urc": record.balance(Asset::Urc).to_string(),
            "core": record.balance(Asset::Core).to_string(),
        },
        "allowance": record.allowance.to_string(),
        "member": starling_node_api::proof::member_json(&record),
        "sponsor": starling_node_api::proof::sponsor_json(&record),
        "handle": record.handle,
        "created_height": record.created_height,
        "profile": profile.map(|p| json!({
            "display_name": p.display_name,
            "bio": p.bio,
            "avatar_url": p.avatar_url,
        })),
    })))
}

async fn post_by_id(
    State(api): State<Api>,
    Path((author, seq)): Path<(String, String)>,
) -> ApiResult {
    let author = parse_key(&author)?;
    let seq: u64 = seq
        .parse()
        .map_err(|_| ApiError::bad_request("bad_seq", "post sequence must be a number"))?;
    let id = PostId { author, seq };
    let shard = api.node.shard_map().shard_of(&author);
    let app = api
        .node
        .shard(shard)
        .ok_or_else(|| ApiError::not_found(format!("shard {shard} is not kept by this node")))?;
    let post: Option<PostRecord> = app
        .read(|v| actions::get_record(v, StateKey::Post(&id)))
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let post = post.ok_or_else(|| ApiError::not_found("no such post"))?;
    let post_ref = |p: &PostId| json!({"author": p.author.to_text(), "seq": p.seq});
    Ok(Json(json!({
        "author": author.to_text(),
        "seq": seq,
        "text": post.text,
        "reply_to": post.reply_to.as_ref().map(post_ref),
        "quote_of": post.quote_of.as_ref().map(post_ref),
        "langs": post.langs,
        "created_height": post.created_height,
        "edited_height": post.edited_height,
        "revisions": post.revisions,
        "deleted": post.deleted,
    })))
}

async fn block(State(api): State<Api>, Path((shard, height)): Path<(String, String)>) -> ApiResult {
    let shard: u16 = shard
        .parse()
        .map_err(|_| ApiError::bad_request("bad_shard", "shard must be a number"))?;
    let height: u64 = height
        .parse()
        .map_err(|_| ApiError::bad_request("bad_height", "height must be a number"))?;
    let app = api
        .node
        .shard(ShardId(shard))
        .ok_or_else(|| ApiError::not_found(format!("shard {shard} is not kept by this node")))?;
    let block = app
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::not_found(format!("no finalized block {height} on shard {shard}"))
        })?;
    let receipts = app
        .receipts(height)
        .map_err(ApiError::internal)?
        .unwrap_or_default();
    let txs: Vec<Value> = receipts
        .iter()
        .filter_map(|r| match r {
            Receipt::Tx(t) => Some(json!({
                "hash": t.tx_hash.to_hex(),
                "status": t.status,
                "gas_used": t.gas_used,
                "fee_paid": t.fee_paid.to_string(),
            })),
            Receipt::Message(_) => None,
        })
        .collect();
    let h = &block.header;
    Ok(Json(json!({
        "shard": shard,
        "height": h.height,
        "id": h.id().to_hex(),
        "parent": h.parent.to_hex(),
        "timestamp_ms": h.timestamp_ms,
        "proposer": h.proposer.to_text(),
        "state_root": h.state_root.to_hex(),
        "base_fee": h.base_fee,
        "txs": txs,
    })))
}
