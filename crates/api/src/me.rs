//! The account API: sign up, log in and out, import and export keystores, and the signed-in
//! account's actions, which the node signs (see [`starling_accounts`]).
//!
//! - `GET    /api/v1/keystore`: the accounts this node holds (public keys and labels), to
//!   clients on the node's own machine or with a session.
//! - `POST   /api/v1/keystore`: sign up, `{"label", "password"}`: a new key pair, sealed in a
//!   keystore on this node, funded by the node's faucet if it has one; starts a session.
//! - `POST   /api/v1/keystore/import`: `{"label", "password", "secret"}` (a 64-hex seed, and
//!   `"key_type"`, default `ed25519`) or `{"backup", "password"}` (an exported keystore and
//!   the password that opens it); starts a session.
//! - `GET    /api/v1/session`: who is logged in, and the CSRF token.
//! - `POST   /api/v1/session`: log in, `{"account": "<key or label>", "password"}`.
//! - `DELETE /api/v1/session`: log out.
//! - `POST   /api/v1/session/export`: `{"password"}`: the keystore as a backup (encrypted).
//! - `POST   /api/v1/me/fee`: `{"action": {...}}`: what the action costs now.
//! - `POST   /api/v1/me/actions`: `{"action": {...}}`: signs and submits it.
//! - `POST   /api/v1/me/notifications/read`: `{"seq"}` (default: all): marks read.
//!
//! Sign up, import and log in answer `{"account", "label", "csrf"}` and set the session
//! cookie; with `"bearer": true` they also answer `"token"`, for programs that send
//! `Authorization: Bearer <token>` instead of the cookie. Actions are JSON objects tagged by
//! `"type"`, with the fields the one table of actions names ([`starling_types::ACTIONS`], also
//! in the OpenAPI document). A post is `{"author", "seq"}`; amounts are decimal strings.

use crate::action_json::ActionJson;
use crate::client::Client;
use crate::{json_body, Api, ApiError, ApiResult};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use starling_accounts::keystore::KeystoreError;
use starling_accounts::{Accounts, Estimate, Sent, Session, CSRF_HEADER, SESSION_COOKIE};
use starling_crypto::SecretKey;
use starling_types::{Action, KeyType, PublicKey};
use std::net::IpAddr;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/keystore", get(list_keystore).post(signup))
        .route("/api/v1/keystore/import", post(import))
        .route("/api/v1/session", get(current).post(login).delete(logout))
        .route("/api/v1/session/export", post(export))
        .route("/api/v1/me/fee", post(fee))
        .route("/api/v1/me/actions", post(act))
        .route("/api/v1/me/notifications/read", post(mark_read))
}

pub(crate) fn accounts(api: &Api) -> Result<&Arc<Accounts>, ApiError> {
    api.services.accounts.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_accounts",
            "this node holds no accounts",
        )
    })
}

fn keystore_err(e: KeystoreError) -> ApiError {
    match e {
        KeystoreError::BadPassword => {
            ApiError::new(StatusCode::UNAUTHORIZED, "bad_password", e.to_string())
        }
        KeystoreError::WeakPassword => ApiError::bad_request("weak_password", e.to_string()),
        KeystoreError::BadLabel => ApiError::bad_request("bad_label", e.to_string()),
        KeystoreError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "exists", e.to_string()),
        KeystoreError::NotFound(_) => ApiError::not_found(e.to_string()),
        KeystoreError::Full => ApiError::new(StatusCode::CONFLICT, "full", e.to_string()),
        KeystoreError::Malformed(_) => ApiError::bad_request("bad_keystore", e.to_string()),
        KeystoreError::Io(_) => ApiError::internal(e),
    }
}

fn limited(retry_after: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; try again in {retry_after} s"),
    )
}

/// The key rate limits count the client under (its address, IPv6 by /64).
pub(crate) struct ClientIp(pub IpAddr);

impl FromRequestParts<Api> for ClientIp {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        Ok(ClientIp(Client::of(api, parts).key()))
    }
}

/// The session token a request carries: bearer first, then the cookie.
pub(crate) fn token_of(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some((t.trim().to_owned(), false));
        }
    }
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=') {
                if k == SESSION_COOKIE {
                    return Some((val.to_owned(), true));
                }
            }
        }
    }
    None
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A request from a logged-in account. Requests that authenticate by cookie and are not
/// `GET` or `HEAD` must carry the session's CSRF token.
pub(crate) struct Authed {
    pub session: Session,
    pub token: String,
}

impl FromRequestParts<Api> for Authed {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let accounts = accounts(api)?;
        let Some((token, by_cookie)) = token_of(&parts.headers) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "no_session",
                "log in first",
            ));
        };
        let session = accounts.sessions.get(&token).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "no_session",
                "the session ended; log in again",
            )
        })?;
        if by_cookie && parts.method != Method::GET && parts.method != Method::HEAD {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !same(sent, &session.csrf) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "bad_csrf",
                    "missing or wrong X-CSRF-Token",
                ));
            }
        }
        Ok(Authed { session, token })
    }
}

fn session_cookie(token: &str, max_age: u64) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age={max_age}"
    )
}

/// The answer to a request that started a session.
fn started(session: &Session, token: String, bearer: bool, extra: Value) -> Response {
    let mut body = json!({
        "account": session.account.to_text(),
        "label": session.label,
        "csrf": session.csrf,
    });
    if bearer {
        body["token"] = json!(token);
    }
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    (
        StatusCode::OK,
        [(
            header::SET_COOKIE,
            session_cookie(&token, starling_accounts::SESSION_IDLE.as_secs()),
        )],
        Json(body),
    )
        .into_response()
}

/// [`started`] for an existing account: its chat opens with the session, so mail that waited
/// is taken now.
async fn started_with_chat(api: &Api, session: &Session, token: String, bearer: bool) -> Response {
    if let Some(chat) = &api.services.chat {
        if let Err(e) = chat.activate(&session.key).await {
            tracing::warn!(error = %e, "opening the account's chat");
        }
    }
    started(session, token, bearer, json!({}))
}

/// Runs blocking work (Argon2, signing, store reads) off the request threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// Who holds an account on this node is for its own machine (the person at it) and for
/// sessions only: a stranger on the network learns no labels to guess passwords against.
async fn list_keystore(State(api): State<Api>, client: Client, headers: HeaderMap) -> ApiResult {
    let accounts = accounts(&api)?.clone();
    let session = token_of(&headers).and_then(|(t, _)| accounts.sessions.get(&t));
    if session.is_none() && !client.addr.is_loopback() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_local",
            "this node lists its accounts only to its own machine or a session; log in by name or key",
        ));
    }
    let list = blocking(move || accounts.keystore.list().map_err(keystore_err)).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|a| json!({"account": a.account.to_text(), "label": a.label}))
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupRequest {
    label: String,
    password: String,
    #[serde(default)]
    bearer: bool,
}

async fn signup(
    State(api): State<Api>,
    ClientIp(ip): ClientIp,
    body: Result<Json<SignupRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = json_body(body)?;
    let accounts = accounts(&api)?.clone();
    accounts.signup_limit.check(&ip).map_err(limited)?;
    let node = api.node.clone();
    blocking(move || {
        let key = SecretKey::generate(KeyType::Ed25519, &mut rand_core::OsRng);
        accounts
            .keystore
            .add(&key, &req.password, &req.label, &mut rand_core::OsRng)
            .map_err(keystore_err)?;
        let account = key.public_key();
        tracing::info!(%account, label = %req.label, "account created");
        let funding = accounts.fund(&node, &account);
        let (token, session) = accounts.sessions.create(key, req.label);
        let extra = json!({
            "funding": funding.as_ref().map(|s| s.hash.to_hex()),
            "funded_by": funding.and(accounts.grant()).map(|g| g.name()),
        });
        Ok(started(&session, token, req.bearer, extra))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    password: String,
    label: Option<String>,
    secret: Option<String>,
    key_type: Option<String>,
    backup: Option<String>,
    #[serde(default)]
    bearer: bool,
}

async fn import(
    State(api): State<Api>,
    ClientIp(ip): ClientIp,
    body: Result<Json<ImportRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = json_body(body)?;
    let accounts = accounts(&api)?.clone();
    accounts.signup_limit.check(&ip).map_err(limited)?;
    let login = blocking(move || {
        let (key, label) = match (&req.secret, &req.backup) {
            (Some(secret), None) => {
                let key_type = match req.key_type.as_deref().unwrap_or("ed25519") {
                    "ed25519" => KeyType::Ed25519,
                    "secp256k1" => KeyType::Secp256k1,
                    other => {
                        return Err(ApiError::bad_request(
                            "bad_key",
                            format!("unknown key type `{other}` (ed25519 or secp256k1)"),
                        ))
                    }
                };
                let seed = zeroize::Zeroizing::new(
                    hex::decode(secret.trim())
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| {
                            ApiError::bad_request("bad_secret", "secret must be 64 hex digits")
                        })?,
                );
                let key = SecretKey::from_seed(key_type, &seed)
                    .map_err(|_| ApiError::bad_request("bad_secret", "not a valid secret key"))?;
                let label = req.label.clone().ok_or_else(|| {
                    ApiError::bad_request("bad_label", "an imported key needs a label")
                })?;
                accounts
                    .keystore
                    .add(&key, &req.password, &label, &mut rand_core::OsRng)
                    .map_err(keystore_err)?;
                (key, label)
            }
            (None, Some(backup)) => {
                let key = accounts
                    .keystore
                    .import_backup(backup, &req.password)
                    .map_err(keystore_err)?;
                let label = starling_accounts::keystore::KeystoreFile::parse(backup)
                    .map(|f| f.label().to_owned())
                    .map_err(keystore_err)?;
                (key, label)
            }
            _ => {
                return Err(ApiError::bad_request(
                    "bad_import",
                    "send either `secret` (with `label`) or `backup`",
                ))
            }
        };
        tracing::info!(account = %key.public_key(), %label, "account imported");
        let (token, session) = accounts.sessions.create(key, label);
        Ok((token, session, req.bearer))
    })
    .await?;
    let (token, session, bearer) = login;
    Ok(started_with_chat(&api, &session, token, bearer).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    account: String,
    password: String,
    #[serde(default)]
    bearer: bool,
}

async fn login(
    State(api): State<Api>,
    ClientIp(ip): ClientIp,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = json_body(body)?;
    let accounts = accounts(&api)?.clone();
    accounts.login_limit.check(&ip).map_err(limited)?;
    let login = blocking(move || {
        let account = match PublicKey::from_text(&req.account) {
            Ok(k) => k,
            Err(_) => accounts
                .keystore
                .find_label(&req.account)
                .map_err(keystore_err)?
                .ok_or_else(|| {
                    ApiError::not_found(format!("this node holds no account `{}`", req.account))
                })?,
        };
        accounts
            .login_account_limit
            .check(&(account, ip))
            .map_err(limited)?;
        let key = accounts
            .keystore
            .unlock(&account, &req.password)
            .map_err(keystore_err)?;
        let label = accounts
            .keystore
            .list()
            .map_err(keystore_err)?
            .into_iter()
            .find(|a| a.account == account)
            .map(|a| a.label)
            .unwrap_or_default();
        let (token, session) = accounts.sessions.create(key, label);
        Ok((token, session, req.bearer))
    })
    .await?;
    let (token, session, bearer) = login;
    Ok(started_with_chat(&api, &session, token, bearer).await)
}

async fn current(auth: Authed) -> ApiResult {
    Ok(Json(json!({
        "account": auth.session.account.to_text(),
        "label": auth.session.label,
        "csrf": auth.session.csrf,
    })))
}

async fn logout(State(api): State<Api>, auth: Authed) -> Result<Response, ApiError> {
    accounts(&api)?.sessions.remove(&auth.token);
    if let Some(chat) = &api.services.chat {
        chat.deactivate(&auth.session.account).await;
    }
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, session_cookie("", 0))],
        Json(json!({"ok": true})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportRequest {
    password: String,
}

async fn export(
    State(api): State<Api>,
    ClientIp(ip): ClientIp,
    auth: Authed,
    body: Result<Json<ExportRequest>, JsonRejection>,
) -> ApiResult {
    let req = json_body(body)?;
    let accounts = accounts(&api)?.clone();
    accounts
        .login_account_limit
        .check(&(auth.session.account, ip))
        .map_err(limited)?;
    let account = auth.session.account;
    let backup = blocking(move || {
        accounts
            .keystore
            .export(&account, &req.password)
            .map_err(keystore_err)
    })
    .await?;
    Ok(Json(json!({ "backup": backup })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    action: ActionJson,
}

fn estimate_json(e: &Estimate) -> Value {
    json!({
        "shard": e.shard.0,
        "gas": e.gas,
        "base_fee": e.base_fee,
        "fee": e.fee.to_string(),
        "max_fee": e.max_fee.to_string(),
    })
}

fn text_of(action: &Action) -> Option<&str> {
    match action {
        Action::Post { text, .. } | Action::EditPost { text, .. } => Some(text),
        _ => None,
    }
}

async fn fee(
    State(api): State<Api>,
    auth: Authed,
    body: Result<Json<ActionRequest>, JsonRejection>,
) -> ApiResult {
    let action = json_body(body)?.action.into_action()?;
    let accounts = accounts(&api)?;
    let e = accounts.estimate(&api.node, &auth.session.account, &action)?;
    let mut out = estimate_json(&e);
    if let Some(text) = text_of(&action) {
        out["graphemes"] = json!(starling_ledger::validate::graphemes(text));
        out["max_graphemes"] = json!(starling_ledger::validate::MAX_POST_GRAPHEMES);
    }
    out["valid"] = json!(starling_accounts::precheck(&action).is_ok());
    Ok(Json(out))
}

fn sent_json(s: &Sent) -> Value {
    json!({
        "hash": s.hash.to_hex(),
        "shard": s.shard.0,
        "nonce": s.nonce,
        "fee": estimate_json(&s.estimate),
        "post": s.post.map(|p| json!({"author": p.author.to_text(), "seq": p.seq})),
    })
}

async fn act(
    State(api): State<Api>,
    auth: Authed,
    body: Result<Json<ActionRequest>, JsonRejection>,
) -> ApiResult {
    let action = json_body(body)?.action.into_action()?;
    if let Action::EditPost { post, .. } | Action::DeletePost { post } = &action {
        if post.author != auth.session.account {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_yours",
                "only a post's author may edit or delete it",
            ));
        }
    }
    let accounts = accounts(&api)?.clone();
    accounts
        .action_limit
        .check(&auth.session.account)
        .map_err(limited)?;
    let node = api.node.clone();
    let key = auth.session.key.clone();
    let sent = blocking(move || Ok(accounts.sign_and_submit(&node, &key, action)?)).await?;
    Ok(Json(sent_json(&sent)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadRequest {
    seq: Option<u64>,
}

async fn mark_read(
    State(api): State<Api>,
    auth: Authed,
    body: Result<Json<ReadRequest>, JsonRejection>,
) -> ApiResult {
    let req = json_body(body)?;
    let view = crate::social::view(&api)?.clone();
    let account = auth.session.account;
    let unread = blocking(move || {
        view.mark_read(&account, req.seq.unwrap_or(u64::MAX))
            .map_err(ApiError::internal)
    })
    .await?;
    Ok(Json(json!({ "unread": unread })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_come_from_bearer_or_cookie() {
        let mut h = HeaderMap::new();
        assert!(token_of(&h).is_none());
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; starling_session=abc; c=d"),
        );
        assert_eq!(token_of(&h), Some(("abc".into(), true)));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(token_of(&h), Some(("xyz".into(), false)));
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    /// A JSON value of `kind`, as a client would send it.
    fn sample(kind: starling_types::actions::FieldKind, key: &str) -> Value {
        use starling_types::actions::FieldKind;
        match kind {
            FieldKind::Text(_) | FieldKind::PostText => json!("hello"),
            FieldKind::Post => json!({"author": key, "seq": 1}),
            FieldKind::Account => json!(key),
            FieldKind::Langs => json!(["en"]),
            FieldKind::Asset => json!("spend"),
            FieldKind::Amount => json!("5"),
            FieldKind::Handle => json!("alice_1"),
            FieldKind::Index => json!(1),
            FieldKind::Id => json!(3),
            FieldKind::Bool => json!(true),
            FieldKind::Count => json!(2),
            FieldKind::Motion => json!({"kind": "spend", "to": key, "amount": "5"}),
        }
    }

    /// The names a serde "unknown ..., expected `a` or `b`" error lists.
    fn expected(error: &str) -> Vec<String> {
        let list = error.split(", expected ").nth(1).unwrap_or("");
        let mut names: Vec<String> = list
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    /// The API takes exactly the JSON the table of actions describes: the same action names,
    /// each with the same fields (the same ones required), parsed as that action; and no
    /// action the table keeps off the API.
    #[test]
    fn the_api_takes_the_actions_the_table_describes() {
        let key = SecretKey::from_seed(KeyType::Ed25519, &[7; 32])
            .unwrap()
            .public_key()
            .to_text();
        let parse = |v: Value| {
            serde_json::from_value::<crate::action_json::ActionJson>(v)
                .map_err(|e| e.to_string())
                .and_then(|a| a.into_action().map_err(|e| e.message))
        };
        let mut listed: Vec<String> = starling_types::ACTIONS
            .iter()
            .filter(|k| k.json.is_some())
            .map(|k| k.name.to_string())
            .collect();
        listed.sort();
        let unknown = parse(json!({"type": "no_such_action"})).unwrap_err();
        assert_eq!(expected(&unknown), listed, "{unknown}");
        for k in starling_types::ACTIONS {
            let Some(fields) = k.json else {
                continue;
            };
            let mut v = json!({ "type": k.name });
            for f in fields.iter().filter(|f| f.required) {
                v[f.name] = sample(f.kind, &key);
            }
            let action = parse(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(action.name(), k.name);
            for f in fields.iter().filter(|f| f.required) {
                let mut without = v.clone();
                without.as_object_mut().unwrap().remove(f.name);
                assert!(parse(without).is_err(), "{} took no {}", k.name, f.name);
            }
            for f in fields {
                v[f.name] = sample(f.kind, &key);
            }
            assert_eq!(parse(v.clone()).map(|a| a.name()), Ok(k.name));
            v["unlisted"] = json!(1);
            let error = parse(v).unwrap_err();
            let mut names: Vec<String> = fields.iter().map(|f| f.name.to_string()).collect();
            names.sort();
            assert_eq!(expected(&error), names, "{}: {error}", k.name);
        }
    }
}
