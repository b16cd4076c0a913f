//! The chat API (see [`starling_chat_client`]): the key directory with proofs, and the signed-in
//! account's conversations.
//!
//! - `GET  /api/v1/accounts/{key}/chat-keys`: the account's chat devices from the ledger, with
//!   the state proof and the root it leads to.
//! - `GET  /api/v1/me/chat`: whether chat is on for the account on this node.
//! - `POST /api/v1/me/chat`: turn it on (a device, published in the key directory).
//! - `GET  /api/v1/me/chats`: conversations, most recent first, with unread counts.
//! - `POST /api/v1/me/chats`: `{"members": [key or @handle, ...]}`: start one.
//! - `GET  /api/v1/me/chats/{id}/messages?after=&limit=`: a conversation.
//! - `POST /api/v1/me/chats/{id}/messages`: `{"text"}` or `{"texts": [...]}`: send.
//! - `POST /api/v1/me/chats/{id}/members`: `{"add": [...]}` or `{"remove": [...]}`.
//! - `POST /api/v1/me/chats/{id}/leave`, `/read` (`{"upto"?}`), `/update` (new keys).
//! - `GET  /api/v1/me/chats/{id}/safety`: safety numbers with each other member.
//! - `GET  /api/v1/me/chat/export`: every chat's history, sealed under a key derived from
//!   the account key (`{"parts": [hex, ...]}`); `POST /api/v1/me/chat/import` with the same
//!   fills in the chats this device has no history of (`{"chats": n}`).
//! - `POST /api/v1/chat/protocol`: a `/starling/chat/2` request over HTTP (binary in, binary
//!   out), for clients without libp2p.

use crate::me::Authed;
use crate::{json_body, parse_key, Api, ApiError, ApiResult};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use starling_chat_client::{Chat, ChatError};
use starling_types::AccountId;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/accounts/{key}/chat-keys", get(chat_keys))
        .route("/api/v1/me/chat", get(status).post(setup))
        .route("/api/v1/me/chat/export", get(export))
        .route(
            "/api/v1/me/chat/import",
            post(import).layer(axum::extract::DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .route("/api/v1/me/chats", get(list).post(create))
        .route("/api/v1/me/chats/{id}/messages", get(messages).post(send))
        .route("/api/v1/me/chats/{id}/members", post(members))
        .route("/api/v1/me/chats/{id}/leave", post(leave))
        .route("/api/v1/me/chats/{id}/read", post(read))
        .route("/api/v1/me/chats/{id}/update", post(update))
        .route("/api/v1/me/chats/{id}/safety", get(safety))
        .route("/api/v1/chat/protocol", post(protocol))
}

/// The chat protocol's requests (deposits, fetches, key packages, commit order) over HTTP,
/// for clients that do not speak libp2p: the body is an encoded request, the answer an
/// encoded response (a malformed request is answered with a `Refused` saying why).
async fn protocol(
    State(api): State<Api>,
    client: crate::client::Client,
    body: axum::body::Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let chat = chat(&api)?;
    // Limits count an HTTP client by its address (IPv6: its /64).
    let from =
        starling_protocol::chat::Requester::peer("http", client.key().to_string().as_bytes());
    let answer = tokio::task::spawn_blocking(move || chat.serve(from, &body))
        .await
        .map_err(ApiError::internal)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        answer,
    )
        .into_response())
}

fn chat(api: &Api) -> Result<Arc<Chat>, ApiError> {
    api.services.chat.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "chat_unavailable",
            "this node does not run chat",
        )
    })
}

fn err(e: ChatError) -> ApiError {
    let status = match &e {
        ChatError::NotSetUp | ChatError::Conflict(_) => StatusCode::CONFLICT,
        ChatError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ChatError::NotFound(_) => StatusCode::NOT_FOUND,
        ChatError::Unavailable(_) => StatusCode::BAD_GATEWAY,
        ChatError::Internal(_) => return ApiError::internal(e),
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// An account by key, or `@handle` through the app view.
fn resolve(api: &Api, who: &str) -> Result<AccountId, ApiError> {
    if let Some(handle) = who.strip_prefix('@') {
        let view = crate::social::view(api)?;
        return view
            .by_handle(handle)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("no account holds @{handle}")));
    }
    parse_key(who)
}

async fn chat_keys(State(api): State<Api>, Path(key): Path<String>) -> ApiResult {
    let account = parse_key(&key)?;
    let chat = chat(&api)?;
    let (_, entry) = tokio::task::spawn_blocking(move || chat.directory(&account))
        .await
        .map_err(ApiError::internal)?
        .map_err(err)?;
    Ok(Json(json!(entry)))
}

async fn status(State(api): State<Api>, auth: Authed) -> ApiResult {
    let chat = chat(&api)?;
    chat.activate(&auth.session.key).await.map_err(err)?;
    Ok(Json(chat.status(&auth.session.account).await.map_err(err)?))
}

async fn setup(State(api): State<Api>, auth: Authed) -> ApiResult {
    let chat = chat(&api)?;
    Ok(Json(
        chat.setup(auth.session.key.clone()).await.map_err(err)?,
    ))
}

/// Largest chat history import (hex, in JSON).
const MAX_IMPORT_BYTES: usize = 64 << 20;

async fn export(State(api): State<Api>, auth: Authed) -> ApiResult {
    let chat = opened(&api, &auth).await?;
    let parts = chat.export(&auth.session.account).await.map_err(err)?;
    let parts: Vec<String> = parts.iter().map(hex::encode).collect();
    Ok(Json(json!({
        "parts": parts,
        "encryption": "XChaCha20-Poly1305 under a key derived from the account key",
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    parts: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    encryption: Option<String>,
}

async fn import(
    State(api): State<Api>,
    auth: Authed,
    body: Result<Json<ImportRequest>, JsonRejection>,
) -> ApiResult {
    let req = json_body(body)?;
    if req.parts.len() > starling_chat_client::MAX_IMPORT_PARTS {
        return Err(ApiError::bad_request(
            "too_large",
            format!(
                "an export has at most {} parts",
                starling_chat_client::MAX_IMPORT_PARTS
            ),
        ));
    }
    let parts = req
        .parts
        .iter()
        .map(hex::decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::bad_request("bad_request", "a part is not hex"))?;
    let chat = opened(&api, &auth).await?;
    let chats = chat
        .import(&auth.session.account, &parts)
        .await
        .map_err(err)?;
    Ok(Json(json!({ "chats": chats })))
}

/// Opens the session's chat (after a restart, the first request does) or says it is off.
async fn opened(api: &Api, auth: &Authed) -> Result<Arc<Chat>, ApiError> {
    let chat = chat(api)?;
    if !chat.activate(&auth.session.key).await.map_err(err)? {
        return Err(err(ChatError::NotSetUp));
    }
    Ok(chat)
}

async fn list(State(api): State<Api>, auth: Authed) -> ApiResult {
    let chat = opened(&api, &auth).await?;
    let items = chat.chats(&auth.session.account).await.map_err(err)?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    members: Vec<String>,
}

fn accounts_of(api: &Api, names: &[String]) -> Result<Vec<AccountId>, ApiError> {
    if names.len() > starling_chat_client::MAX_NEW_MEMBERS {
        return Err(ApiError::bad_request(
            "too_many",
            format!(
                "at most {} accounts at once",
                starling_chat_client::MAX_NEW_MEMBERS
            ),
        ));
    }
    names.iter().map(|n| resolve(api, n)).collect()
}

async fn create(
    State(api): State<Api>,
    auth: Authed,
    body: Result<Json<CreateRequest>, JsonRejection>,
) -> ApiResult {
    let req = json_body(body)?;
    let chat = opened(&api, &auth).await?;
    let members = accounts_of(&api, &req.members)?;
    let id = chat
        .create(&auth.session.account, &members)
        .await
        .map_err(err)?;
    Ok(Json(json!({ "id": id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<u64>,
    limit: Option<usize>,
}

async fn messages(
    State(api): State<Api>,
    auth: Authed,
    Path(id): Path<String>,
    Query(p): Query<Page>,
) -> ApiResult {
    let chat = opened(&api, &auth).await?;
    let limit = p.limit.unwrap_or(100).clamp(1, 1_000);
    let items = chat
        .messages(&auth.session.account, &id, p.after.unwrap_or(0), limit)
        .await
        .map_err(err)?;
    Ok(Json(
        json!({ "items": items, "encryption": starling_chat_client::ENCRYPTION }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    text: Option<String>,
    texts: Option<Vec<String>>,
}

async fn send(
    State(api): State<Api>,
    auth: Authed,
    Path(id): Path<String>,
    body: Result<Json<SendRequest>, JsonRejection>,
) -> ApiResult {
    let req = json_body(body)?;
    let texts = match (req.text, req.texts) {
        (Some(t), None) => vec![t],
        (None, Some(ts)) => ts,
        _ => {
            return Err(ApiError::bad_request(
                "bad_request",
                "send either `text` or `texts`",
            ))
        }
    };
    if texts
        .iter()
        .any(|t| t.len() > starling_chat::MAX_TEXT_BYTES - 1)
    {
        return Err(ApiError::bad_request(
            "too_large",
            format!(
                "a text is at most {} bytes",
                starling_chat::MAX_TEXT_BYTES - 1
            ),
        ));
    }
    let chat = opened(&api, &auth).await?;
    let items = chat
        .send(&auth.session.account, &id, &texts)
        .await
        .map_err(err)?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersRequest {
    add: Option<Vec<String>>,
    remove: Option<Vec<String>>,
}

async fn members(
    State(api): State<Api>,
    auth: Authed,
    Path(id): Path<String>,
    body: Result<Json<MembersRequest>, JsonRejection>,
) -> ApiResult {
    let req = json_body(body)?;
    let chat = opened(&api, &auth).await?;
    let epoch = match (req.add, req.remove) {
        (Some(add), None) => {
            let accounts = accounts_of(&api, &add)?;
            chat.add(&auth.session.account, &id, &accounts).await
        }
        (None, Some(remove)) => {
            let accounts = accounts_of(&api, &remove)?;
            if accounts.contains(&auth.session.account) {
                return Err(ApiError::bad_request(
                    "bad_request",
                    "to leave a chat, use /leave",
                ));
            }
            chat.remove(&auth.session.account, &id, &accounts).await
        }
        _ => {
            return Err(ApiError::bad_request(
                "bad_request",
                "send either `add` or `remove`",
            ))
        }
    }
    .map_err(err)?;
    Ok(Json(json!({ "epoch": epoch })))
}

async fn leave(State(api): State<Api>, auth: Authed, Path(id): Path<String>) -> ApiResult {
    let chat = opened(&api, &auth).await?;
    chat.leave(&auth.session.account, &id).await.map_err(err)?;
    Ok(Json(json!({ "ok": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadRequest {
    upto: Option<u64>,
}

async fn read(
    State(api): State<Api>,
    auth: Authed,
    Path(id): Path<String>,
    body: Result<Json<ReadRequest>, JsonRejection>,
) -> ApiResult {
    let req = json_body(body)?;
    let chat = opened(&api, &auth).await?;
    chat.mark_read(&auth.session.account, &id, req.upto)
        .await
        .map_err(err)?;
    Ok(Json(json!({ "ok": true })))
}

async fn update(State(api): State<Api>, auth: Authed, Path(id): Path<String>) -> ApiResult {
    let chat = opened(&api, &auth).await?;
    let epoch = chat.update(&auth.session.account, &id).await.map_err(err)?;
    Ok(Json(json!({ "epoch": epoch })))
}

async fn safety(State(api): State<Api>, auth: Authed, Path(id): Path<String>) -> ApiResult {
    let chat = opened(&api, &auth).await?;
    Ok(Json(
        chat.safety(&auth.session.account, &id).await.map_err(err)?,
    ))
}
