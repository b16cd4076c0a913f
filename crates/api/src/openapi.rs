//! `GET /api/v1/openapi.json`: the API described in OpenAPI 3.1, built from [`ENDPOINTS`].
//!
//! A test checks that every route the router serves is described here and that every
//! described path is served, so the document cannot drift from the code.

use crate::Api;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

/// How an endpoint is authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    None,
    /// A session, by cookie or bearer token.
    Session,
    /// A session; by cookie, also the `X-CSRF-Token` header.
    SessionCsrf,
}

/// One operation of the API.
#[derive(Debug)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub auth: Auth,
    /// Query parameters, by name (described by `query_param`).
    pub query: &'static [&'static str],
    /// The request body's schema (a component name), if any.
    pub body: Option<&'static str>,
    /// The 200 answer's schema (a component name).
    pub answer: &'static str,
}

const PAGE_Q: &[&str] = &["cursor", "limit"];
const VIEW_Q: &[&str] = &["cursor", "limit", "viewer"];

macro_rules! ep {
    ($m:literal $p:literal, $tag:literal, $auth:ident, $q:expr, $body:expr, $ans:literal, $s:literal) => {
        Endpoint {
            method: $m,
            path: $p,
            summary: $s,
            tag: $tag,
            auth: Auth::$auth,
            query: $q,
            body: $body,
            answer: $ans,
        }
    };
}

/// Every operation the node serves under `/api/v1` (and `/metrics`).
pub const ENDPOINTS: &[Endpoint] = &[
    ep!("get" "/api/v1/status", "chain", None, &[], None, "Status", "Chain, genesis and per shard height, root, base fee and mempool"),
    ep!("post" "/api/v1/txs", "chain", None, &[], Some("SubmitRequest"), "SubmitResult", "Submit signed transactions (hex envelopes), one result each"),
    ep!("get" "/api/v1/accounts/{key}", "chain", None, &[], None, "Account", "Balances, nonce, allowance, handle and profile from the ledger"),
    ep!("get" "/api/v1/posts/{author}/{seq}", "chain", None, &[], None, "LedgerPost", "A post as the ledger holds it"),
    ep!("get" "/api/v1/shards/{shard}/blocks/{height}", "chain", None, &[], None, "Block", "A finalized block's header and its transactions' status"),
    ep!("get" "/api/v1/proofs/{kind}/{a}", "chain", None, &[], None, "RecordProof", "A record with its light-client proof (accounts, profiles, chat-keys, handles, bonds, charges, members: one key or name; proposals: a number)"),
    ep!("get" "/api/v1/proofs/{kind}/{a}/{b}", "chain", None, &[], None, "RecordProof", "A record with its light-client proof (posts: author, seq; follows and blocks: two keys)"),
    ep!("get" "/api/v1/proofs/{kind}/{a}/{b}/{c}", "chain", None, &[], None, "RecordProof", "A record with its light-client proof (likes and reposts: account, author, seq)"),
    ep!("get" "/api/v1/foundations", "governance", None, &[], None, "Foundations", "The federation of foundations (global shard): each one's status and whether it takes charges, its treasury summed over the shards this node keeps, and the charge period"),
    ep!("get" "/api/v1/foundations/of/{key}", "governance", None, &[], None, "FoundationOf", "The foundation an account is charged to (rule FD1), with the light-client proof of the federation record it is read from (the top-level fields are the server's reading: check the proof and run FD1 on the proven record to trust none)"),
    ep!("get" "/api/v1/proposals", "governance", None, &["foundation", "before", "limit"], None, "Proposals", "Proposals (global shard), newest first, a page at a time: each with its track, roll call, tally, status and challenge"),
    ep!("get" "/api/v1/proposals/{id}", "governance", None, &[], None, "Proposal", "One proposal (rules GV1–GV8): its motion and track, timeline in global epochs, public roll call and tally, decision, and challenge (with its support and the board's roll call)"),
    ep!("get" "/api/v1/foundations/{f}/ballots/{round}", "governance", None, &["member"], None, "BallotRound", "A round's ballot credentials (rules BL1, BL2, BL4): the registrar's RSA key (hex DER), the members' token allotment it binds, credentials issued, ballot keys that voted, whether a credential beyond the log was seen (forged); with member, that member's blinded request and the registrar's blind signature"),
    ep!("get" "/api/v1/vote-tokens/{key}", "governance", None, &[], None, "VoteTokens", "An account's vote tokens this round (rule GV4): per seat it holds and as a member, the allotment, what it spent and what is left"),
    ep!("get" "/api/v1/foundations/members/{key}", "governance", None, &[], None, "MemberOf", "The account's entry in the registry of verified members (global shard, rule FM1): the foundation whose registrar admitted it, or null, with the light-client proof of that entry or of its absence"),
    ep!("get" "/api/v1/accounts/{key}/profile", "social", None, &["viewer"], None, "Profile", "Profile, counts, fees paid, unread notifications; with a viewer, how the two stand"),
    ep!("get" "/api/v1/accounts/{key}/feed", "social", None, VIEW_Q, None, "FeedPage", "The account's posts and reposts, newest first"),
    ep!("get" "/api/v1/accounts/{key}/home", "social", None, PAGE_Q, None, "FeedPage", "Home timeline: followed accounts and the account's own, newest first"),
    ep!("get" "/api/v1/accounts/{key}/followers", "social", None, PAGE_Q, None, "PeoplePage", "Followers"),
    ep!("get" "/api/v1/accounts/{key}/following", "social", None, PAGE_Q, None, "PeoplePage", "Accounts followed"),
    ep!("get" "/api/v1/accounts/{key}/notifications", "social", None, PAGE_Q, None, "NotificationPage", "Notifications, newest first, with the unread count"),
    ep!("get" "/api/v1/posts/{author}/{seq}/thread", "social", None, &["limit", "viewer"], None, "Thread", "A post with its ancestors and first replies"),
    ep!("get" "/api/v1/posts/{author}/{seq}/replies", "social", None, VIEW_Q, None, "PostPage", "Replies, oldest first"),
    ep!("get" "/api/v1/posts/{author}/{seq}/quotes", "social", None, VIEW_Q, None, "PostPage", "Quotes, newest first"),
    ep!("get" "/api/v1/hashtags/{tag}", "social", None, VIEW_Q, None, "PostPage", "Posts with a hashtag, newest first"),
    ep!("get" "/api/v1/trending", "social", None, &["limit"], None, "Trending", "Hashtags of the last 24 hours, most used first"),
    ep!("get" "/api/v1/handles/{handle}", "social", None, &[], None, "Person", "The account holding a handle"),
    ep!("get" "/api/v1/search/posts", "social", None, &["q", "cursor", "limit", "viewer"], None, "PostPage", "Full-text search of posts, best first"),
    ep!("get" "/api/v1/search/people", "social", None, &["q", "cursor", "limit"], None, "PeoplePage", "Search people by handle, name and bio"),
    ep!("get" "/api/v1/stream", "social", None, &["account"], None, "StreamMessage", "WebSocket: new home-timeline items and notifications, live (session or ?account=); a session's stream also says when its chats change"),
    ep!("get" "/api/v1/keystore", "accounts", None, &[], None, "KeystoreList", "Accounts this node holds (public keys and labels): to its own machine or a session, else 403 not_local"),
    ep!("post" "/api/v1/keystore", "accounts", None, &[], Some("SignupRequest"), "SessionStarted", "Sign up: a new key pair in an encrypted keystore on this node; starts a session"),
    ep!("post" "/api/v1/keystore/import", "accounts", None, &[], Some("ImportRequest"), "SessionStarted", "Import a secret key or an exported keystore; starts a session"),
    ep!("get" "/api/v1/session", "accounts", Session, &[], None, "Session", "Who is logged in, and the CSRF token"),
    ep!("post" "/api/v1/session", "accounts", None, &[], Some("LoginRequest"), "SessionStarted", "Log in by account key or label and password"),
    ep!("delete" "/api/v1/session", "accounts", SessionCsrf, &[], None, "Ok", "Log out"),
    ep!("post" "/api/v1/session/export", "accounts", SessionCsrf, &[], Some("ExportRequest"), "Backup", "The session's keystore as an encrypted backup"),
    ep!("post" "/api/v1/me/fee", "accounts", SessionCsrf, &[], Some("ActionRequest"), "Fee", "What an action costs now (and a post's length in graphemes)"),
    ep!("post" "/api/v1/me/actions", "accounts", SessionCsrf, &[], Some("ActionRequest"), "Sent", "Sign and submit an action as the session's account"),
    ep!("post" "/api/v1/me/notifications/read", "accounts", SessionCsrf, &[], Some("ReadRequest"), "Unread", "Mark notifications read (up to seq, or all)"),
    ep!("get" "/api/v1/accounts/{key}/chat-keys", "chat", None, &[], None, "ChatKeys", "The account's chat devices from the key directory, with the state proof and root"),
    ep!("get" "/api/v1/me/chat", "chat", Session, &[], None, "ChatStatus", "Whether chat is on for the account on this node"),
    ep!("post" "/api/v1/me/chat", "chat", SessionCsrf, &[], None, "ChatStatus", "Turn chat on: a device on this node, published in the key directory"),
    ep!("get" "/api/v1/me/chat/export", "chat", Session, &[], None, "ChatExport", "Every chat's history, sealed under a key derived from the account key"),
    ep!("post" "/api/v1/me/chat/import", "chat", SessionCsrf, &[], Some("ChatExport"), "ChatImported", "Fill in the chats this device has no history of from an export"),
    ep!("get" "/api/v1/me/chats", "chat", Session, &[], None, "ChatList", "Conversations, most recent first, with unread counts"),
    ep!("post" "/api/v1/me/chats", "chat", SessionCsrf, &[], Some("ChatCreate"), "ChatCreated", "Start an encrypted chat with accounts (keys or @handles)"),
    ep!("get" "/api/v1/me/chats/{id}/messages", "chat", Session, &["after", "limit"], None, "ChatMessages", "A conversation's messages after a position"),
    ep!("post" "/api/v1/me/chats/{id}/messages", "chat", SessionCsrf, &[], Some("ChatSend"), "ChatMessages", "Send texts (encrypted here, delivered to every member device)"),
    ep!("post" "/api/v1/me/chats/{id}/members", "chat", SessionCsrf, &[], Some("ChatMembers"), "ChatEpoch", "Add or remove member accounts (a commit ordered by the delivery relay)"),
    ep!("post" "/api/v1/me/chats/{id}/leave", "chat", SessionCsrf, &[], None, "Ok", "Leave a chat"),
    ep!("post" "/api/v1/me/chats/{id}/read", "chat", SessionCsrf, &[], Some("ChatRead"), "Ok", "Mark a conversation read"),
    ep!("post" "/api/v1/me/chats/{id}/update", "chat", SessionCsrf, &[], None, "ChatEpoch", "Refresh this device's keys in a chat"),
    ep!("get" "/api/v1/me/chats/{id}/safety", "chat", Session, &[], None, "ChatSafety", "Safety numbers with each other member, from proven directory entries"),
    ep!("post" "/api/v1/chat/protocol", "chat", None, &[], Some("ChatProtocol"), "ChatProtocol", "A /starling/chat/2 request over HTTP (encoded bytes in and out): deposits, fetches, key packages, commit order"),
    ep!("get" "/api/v1/openapi.json", "meta", None, &[], None, "OpenApi", "This document"),
    ep!("get" "/metrics", "meta", None, &[], None, "Metrics", "Prometheus metrics (text format)"),
];

pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/api/v1/openapi.json", get(|| async { Json(document()) }))
}

fn query_param(name: &str) -> Value {
    let (desc, schema) = match name {
        "cursor" => ("The `next` of the previous page (opaque)", json!({"type": "string"})),
        "limit" => (
            "Items per page",
            json!({"type": "integer", "minimum": 1, "maximum": starling_appview::MAX_PAGE, "default": crate::social::DEFAULT_PAGE}),
        ),
        "viewer" => (
            "The account looking: blocks and mutes apply, posts say whether it liked or reposted them",
            json!({"$ref": "#/components/schemas/Key"}),
        ),
        "q" => ("Search text", json!({"type": "string", "minLength": 1, "maxLength": starling_appview::search::MAX_QUERY_BYTES})),
        "account" => ("The account to stream for, without a session", json!({"$ref": "#/components/schemas/Key"})),
        "after" => ("Messages after this position", json!({"type": "integer", "minimum": 0})),
        _ => ("", json!({"type": "string"})),
    };
    json!({"name": name, "in": "query", "required": name == "q", "description": desc, "schema": schema})
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = match name {
                "key" | "author" => json!({"$ref": "#/components/schemas/Key"}),
                "seq" | "height" => json!({"type": "integer", "minimum": 0}),
                "shard" => json!({"type": "integer", "minimum": 0, "maximum": 65535}),
                _ => json!({"type": "string"}),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

fn error_response(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn operation(e: &Endpoint) -> Value {
    let mut params = path_params(e.path);
    params.extend(e.query.iter().map(|q| query_param(q)));
    let answer = if e.answer == "Metrics" {
        json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}})
    } else {
        let mime = if e.answer == "ChatProtocol" {
            "application/octet-stream"
        } else {
            "application/json"
        };
        json!({"description": "OK", "content": {mime: {"schema": {"$ref": format!("#/components/schemas/{}", e.answer)}}}})
    };
    let mut responses = Map::new();
    responses.insert(
        if e.path == "/api/v1/stream" {
            "101"
        } else {
            "200"
        }
        .into(),
        answer,
    );
    responses.insert(
        "400".into(),
        error_response("Bad input (bad_json, bad_cursor, bad_limit, bad_key, …)"),
    );
    if e.auth != Auth::None {
        responses.insert("401".into(), error_response("no_session"));
    }
    if e.auth == Auth::SessionCsrf {
        responses.insert(
            "403".into(),
            error_response("bad_csrf (cookie without X-CSRF-Token), not_yours"),
        );
    }
    if e.body.is_some() {
        responses.insert("413".into(), error_response("too_large"));
    }
    if e.tag == "accounts" {
        responses.insert("429".into(), error_response("rate_limited"));
    }
    responses.insert("404".into(), error_response("not_found"));
    responses.insert(
        "503".into(),
        error_response("no_appview, no_accounts, busy"),
    );
    let mut op = json!({
        "summary": e.summary,
        "tags": [e.tag],
        "operationId": format!("{}{}", e.method, e.path.replace(['/', '{', '}', '.'], "_")),
        "parameters": params,
        "responses": responses,
    });
    if let Some(body) = e.body {
        let mime = if body == "ChatProtocol" {
            "application/octet-stream"
        } else {
            "application/json"
        };
        op["requestBody"] = json!({"required": true, "content": {mime: {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
    }
    match e.auth {
        Auth::None => {}
        Auth::Session => op["security"] = json!([{"cookie": []}, {"bearer": []}]),
        Auth::SessionCsrf => op["security"] = json!([{"cookie": [], "csrf": []}, {"bearer": []}]),
    }
    op
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

/// A record with its light-client proof (see `starling_node_api::proof`).
fn record_proof() -> Value {
    obj(
        json!({
            "shard": {"type": "integer"}, "height": {"type": "integer"}, "epoch": {"type": "integer"},
            "key": {"type": "string", "description": "The encoded state key (hex)"},
            "value": {"type": ["string", "null"], "description": "The encoded record (hex), or null: the proof shows there is none"},
            "record": {"description": "The record decoded, for reading only"},
            "proof": {"type": "string", "description": "The state proof of value under the header's state root (hex)"},
            "header": {"type": "string", "description": "The encoded block header (hex)"},
            "certificate": {"type": "string", "description": "The block's finalization certificate (hex)"},
            "committee": {"type": "array", "items": {"type": "string"}, "description": "The epoch's committee as this node sees it; a checker uses the one it trusts"}
        }),
        &[
            "shard",
            "height",
            "epoch",
            "key",
            "value",
            "proof",
            "header",
            "certificate",
            "committee",
        ],
    )
}

fn page(item: &str) -> Value {
    obj(
        json!({
            "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "next": {"type": ["string", "null"], "description": "Cursor of the next page; null at the end"},
        }),
        &["items", "next"],
    )
}

/// The actions a node signs for a session, from the one table of actions
/// ([`starling_types::ACTIONS`]).
fn action_schema() -> Value {
    use starling_types::actions::FieldKind;
    let field = |kind: FieldKind| match kind {
        FieldKind::Text(max) => {
            json!({"type": "string", "description": format!("At most {max} bytes of UTF-8")})
        }
        FieldKind::PostText => {
            json!({"type": "string", "description": format!("At most {} graphemes", starling_ledger::validate::MAX_POST_GRAPHEMES)})
        }
        FieldKind::Post => json!({"$ref": "#/components/schemas/PostRef"}),
        FieldKind::Account => json!({"$ref": "#/components/schemas/Key"}),
        FieldKind::Langs => {
            json!({"type": "array", "items": {"type": "string"}, "maxItems": starling_types::tx::MAX_LANGS})
        }
        FieldKind::Asset => json!({"enum": ["spend", "urc", "core"]}),
        FieldKind::Amount => json!({"type": "string", "pattern": "^[0-9]+$"}),
        FieldKind::Handle => json!({"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{2,29}$"}),
        FieldKind::Index => json!({"type": "integer", "minimum": 0, "maximum": 65535}),
        FieldKind::Id => json!({"type": "integer", "minimum": 0}),
        FieldKind::Bool => json!({"type": "boolean"}),
        FieldKind::Count => json!({"type": "integer", "minimum": 1, "maximum": u32::MAX}),
        FieldKind::Motion => json!({"$ref": "#/components/schemas/Motion"}),
    };
    let variants: Vec<Value> = starling_types::ACTIONS
        .iter()
        .filter_map(|k| {
            let fields = k.json?;
            let mut props = Map::new();
            props.insert("type".into(), json!({"const": k.name}));
            let mut required = vec!["type"];
            for f in fields {
                props.insert(f.name.into(), field(f.kind));
                if f.required {
                    required.push(f.name);
                }
            }
            Some(json!({"type": "object", "description": k.about, "properties": props, "required": required, "additionalProperties": false}))
        })
        .collect();
    json!({"oneOf": variants, "discriminator": {"propertyName": "type"}})
}

fn schemas() -> Value {
    let s = |t: &str| json!({"type": t});
    let any = json!({"type": "object"});
    let key = json!({"$ref": "#/components/schemas/Key"});
    let mut m = Map::new();
    m.insert("Key".into(), json!({"type": "string", "pattern": "^(ed25519|secp256k1):[0-9a-f]{64}$", "description": "An account (its public key)"}));
    m.insert(
        "PostRef".into(),
        json!(obj(
            json!({"author": key, "seq": {"type": "integer", "minimum": 0}}),
            &["author", "seq"]
        )),
    );
    m.insert("Motion".into(), motion_schema(&key));
    m.insert("Error".into(), json!(obj(json!({"error": obj(json!({"code": s("string"), "message": s("string")}), &["code", "message"])}), &["error"])));
    m.insert(
        "Ok".into(),
        json!(obj(json!({"ok": s("boolean")}), &["ok"])),
    );
    for free_form in ["Status", "LedgerPost", "Block", "OpenApi"] {
        m.insert(free_form.into(), json!(any));
    }
    m.insert("SubmitRequest".into(), json!(obj(json!({"txs": {"type": "array", "items": s("string"), "minItems": 1, "maxItems": crate::MAX_SUBMIT_TXS}}), &["txs"])));
    m.insert(
        "SubmitResult".into(),
        json!(obj(
            json!({"accepted": s("integer"), "results": {"type": "array", "items": any}}),
            &["accepted", "results"]
        )),
    );
    m.insert("Account".into(), json!(obj(json!({"account": key, "shard": s("integer"), "nonce": s("integer"), "balances": any, "allowance": s("string"), "member": {"type": ["object", "null"], "properties": {"foundation": s("integer"), "since": s("integer")}}, "sponsor": {"type": ["object", "null"], "properties": {"by": key, "left": s("string")}}, "handle": {"type": ["string", "null"]}}), &["account", "nonce", "balances"])));
    m.insert("RecordProof".into(), record_proof());
    let foundation = json!(obj(
        json!({"index": s("integer"), "treasury": key, "registrar": key, "status": {"enum": ["active", "under_review", "receivership", "reconstituting"]}}),
        &["index", "treasury", "registrar", "status"]
    ));
    m.insert("Foundations".into(), json!(obj(json!({"period": s("integer"), "version": s("integer"), "seed": s("string"), "charge_period_epochs": s("integer"), "epoch": s("integer"), "treasury_shards": s("integer"), "foundations": {"type": "array", "items": obj(json!({"index": s("integer"), "name": {"type": ["string", "null"]}, "treasury": key, "registrar": key, "members": s("integer"), "offices": {"type": "array", "items": obj(json!({"office": {"enum": ["president", "officer", "board", "senate", "staff"]}, "holder": key, "since": s("integer"), "until": s("integer"), "acting": s("boolean"), "in_term": s("boolean")}), &["office", "holder", "since", "until", "acting", "in_term"])}, "status": {"enum": ["active", "under_review", "receivership", "reconstituting"]}, "takes_charges": s("boolean"), "treasury_spend": s("string")}), &["index", "treasury", "registrar", "members", "offices", "status", "takes_charges", "treasury_spend"])}}), &["period", "version", "seed", "charge_period_epochs", "treasury_shards", "foundations"])));
    governance_schemas(&mut m, &key);
    m.insert("FoundationOf".into(), json!(obj(json!({"account": key, "foundation": foundation, "period": s("integer"), "foundations": {"type": "array", "items": foundation}, "proof": {"$ref": "#/components/schemas/RecordProof"}}), &["account", "foundation", "period", "foundations", "proof"])));
    m.insert("MemberOf".into(), json!(obj(json!({"account": key, "member": {"type": ["object", "null"], "properties": {"foundation": s("integer"), "registrar": key, "since": s("integer")}}, "proof": {"$ref": "#/components/schemas/RecordProof"}}), &["account", "member", "proof"])));
    m.insert("Person".into(), json!(obj(json!({"account": key, "handle": {"type": ["string", "null"]}, "display_name": s("string"), "bio": s("string"), "posts": s("integer"), "followers": s("integer"), "following": s("integer")}), &["account"])));
    m.insert("Profile".into(), json!({"allOf": [{"$ref": "#/components/schemas/Person"}, obj(json!({"fees_paid": s("string"), "unread_notifications": s("integer"), "relation": any}), &[])]}));
    m.insert("Post".into(), json!(obj(json!({"author": {"$ref": "#/components/schemas/Person"}, "seq": s("integer"), "text": s("string"), "reply_to": {"oneOf": [{"$ref": "#/components/schemas/PostRef"}, {"type": "null"}]}, "quote_of": {"oneOf": [{"$ref": "#/components/schemas/PostRef"}, {"type": "null"}]}, "created_ms": s("integer"), "edited": s("boolean"), "deleted": s("boolean"), "revisions": {"type": "array", "items": any}, "tags": {"type": "array", "items": s("string")}, "counts": any, "liked": s("boolean"), "reposted": s("boolean")}), &["author", "seq", "text"])));
    m.insert("FeedItem".into(), json!(obj(json!({"kind": {"enum": ["post", "repost"]}, "by": {"$ref": "#/components/schemas/Person"}, "at_ms": s("integer"), "post": {"$ref": "#/components/schemas/Post"}}), &["kind", "by", "post"])));
    m.insert("Notification".into(), json!(obj(json!({"seq": s("integer"), "kind": {"enum": ["reply", "mention", "quote", "like", "repost", "follow"]}, "actor": {"$ref": "#/components/schemas/Person"}, "post": {"oneOf": [{"$ref": "#/components/schemas/PostRef"}, {"type": "null"}]}, "at_ms": s("integer")}), &["seq", "kind", "actor"])));
    m.insert("FeedPage".into(), json!(page("FeedItem")));
    m.insert("PostPage".into(), json!(page("Post")));
    m.insert("PeoplePage".into(), json!(page("Person")));
    m.insert(
        "NotificationPage".into(),
        json!({"allOf": [page("Notification"), obj(json!({"unread": s("integer")}), &["unread"])]}),
    );
    m.insert("Thread".into(), json!(obj(json!({"ancestors": {"type": "array", "items": {"$ref": "#/components/schemas/Post"}}, "post": {"$ref": "#/components/schemas/Post"}, "replies": page("Post")}), &["ancestors", "post", "replies"])));
    m.insert("Trending".into(), json!(obj(json!({"items": {"type": "array", "items": obj(json!({"tag": s("string"), "posts": s("integer")}), &["tag", "posts"])}}), &["items"])));
    m.insert("StreamMessage".into(), json!(obj(json!({"type": {"enum": ["hello", "post", "notification", "chat"]}, "item": any, "unread": s("integer")}), &["type"])));
    m.insert("KeystoreList".into(), json!(obj(json!({"items": {"type": "array", "items": obj(json!({"account": key, "label": s("string")}), &["account", "label"])}}), &["items"])));
    m.insert("SignupRequest".into(), json!(obj(json!({"label": s("string"), "password": {"type": "string", "minLength": starling_accounts::keystore::MIN_PASSWORD_CHARS}, "bearer": s("boolean")}), &["label", "password"])));
    m.insert("ImportRequest".into(), json!(obj(json!({"password": s("string"), "label": s("string"), "secret": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}, "key_type": {"enum": ["ed25519", "secp256k1"]}, "backup": s("string"), "bearer": s("boolean")}), &["password"])));
    m.insert("LoginRequest".into(), json!(obj(json!({"account": {"type": "string", "description": "Key or label"}, "password": s("string"), "bearer": s("boolean")}), &["account", "password"])));
    m.insert(
        "ExportRequest".into(),
        json!(obj(json!({"password": s("string")}), &["password"])),
    );
    m.insert(
        "Session".into(),
        json!(obj(
            json!({"account": key, "label": s("string"), "csrf": s("string")}),
            &["account", "label", "csrf"]
        )),
    );
    m.insert("SessionStarted".into(), json!(obj(json!({"account": key, "label": s("string"), "csrf": s("string"), "token": {"type": "string", "description": "Only when asked for with bearer: true"}, "funding": {"type": ["string", "null"]}}), &["account", "label", "csrf"])));
    m.insert("Backup".into(), json!(obj(json!({"backup": {"type": "string", "description": "The keystore file (JSON, still encrypted)"}}), &["backup"])));
    m.insert("Action".into(), json!(action_schema()));
    m.insert(
        "ActionRequest".into(),
        json!(obj(
            json!({"action": {"$ref": "#/components/schemas/Action"}}),
            &["action"]
        )),
    );
    m.insert("Fee".into(), json!(obj(json!({"shard": s("integer"), "gas": s("integer"), "base_fee": s("integer"), "fee": s("string"), "max_fee": s("string"), "graphemes": s("integer"), "max_graphemes": s("integer"), "valid": s("boolean")}), &["gas", "base_fee", "fee", "max_fee"])));
    m.insert("Sent".into(), json!(obj(json!({"hash": s("string"), "shard": s("integer"), "nonce": s("integer"), "fee": {"$ref": "#/components/schemas/Fee"}, "post": {"oneOf": [{"$ref": "#/components/schemas/PostRef"}, {"type": "null"}]}}), &["hash", "shard", "nonce"])));
    m.insert(
        "ReadRequest".into(),
        json!(obj(json!({"seq": s("integer")}), &[])),
    );
    m.insert(
        "Unread".into(),
        json!(obj(json!({"unread": s("integer")}), &["unread"])),
    );
    chat_schemas(&mut m);
    m.insert("Metrics".into(), json!(s("string")));
    Value::Object(m)
}

/// The chat API's schemas.
fn chat_schemas(m: &mut Map<String, Value>) {
    let s = |t: &str| json!({"type": t});
    let any = json!({"type": "object"});
    let key = json!({"$ref": "#/components/schemas/Key"});
    m.insert("ChatKeys".into(), json!(obj(json!({"account": key, "shard": s("integer"), "height": s("integer"), "state_root": s("string"), "version": s("integer"), "devices": {"type": "array", "items": obj(json!({"id": s("integer"), "signature_key": s("string"), "mailbox": s("string"), "seal_key": {"type": ["string", "null"], "description": "X25519 key (hex) each deposit for the device is sealed to"}, "home": {"type": ["string", "null"]}, "relays": {"type": "array", "items": s("string")}}), &["id", "signature_key", "mailbox"])}, "proof": {"type": "string", "description": "The state proof (hex) of the entry under state_root"}}), &["account", "devices", "proof", "state_root"])));
    m.insert(
        "ChatExport".into(),
        json!(obj(
            json!({"parts": {"type": "array", "items": s("string")}, "encryption": s("string")}),
            &["parts"]
        )),
    );
    m.insert(
        "ChatImported".into(),
        json!(obj(json!({"chats": s("integer")}), &["chats"])),
    );
    m.insert("ChatStatus".into(), json!(obj(json!({"enabled": s("boolean"), "published": s("boolean"), "device": s("integer"), "identity": s("string"), "mailbox": s("string"), "encryption": s("string")}), &["enabled"])));
    let message = obj(
        json!({"seq": s("integer"), "kind": {"enum": ["text", "event"]}, "from": s("string"), "text": s("string"), "at_ms": s("integer"), "mine": s("boolean"), "epoch": s("integer")}),
        &["seq", "kind", "text"],
    );
    m.insert("ChatList".into(), json!(obj(json!({"items": {"type": "array", "items": obj(json!({"id": s("string"), "members": {"type": "array", "items": s("string")}, "epoch": s("integer"), "unread": s("integer"), "left": s("boolean"), "last": any, "encryption": s("string"), "not_heard": {"type": "array", "items": s("string")}}), &["id", "members", "unread", "not_heard"])}}), &["items"])));
    m.insert("ChatCreate".into(), json!(obj(json!({"members": {"type": "array", "items": s("string"), "minItems": 1, "maxItems": starling_chat_client::MAX_NEW_MEMBERS}}), &["members"])));
    m.insert(
        "ChatCreated".into(),
        json!(obj(json!({"id": s("string")}), &["id"])),
    );
    m.insert(
        "ChatMessages".into(),
        json!(obj(
            json!({"items": {"type": "array", "items": message}}),
            &["items"]
        )),
    );
    m.insert("ChatSend".into(), json!(obj(json!({"text": s("string"), "texts": {"type": "array", "items": s("string"), "maxItems": starling_chat_client::MAX_BATCH}}), &[])));
    m.insert("ChatMembers".into(), json!(obj(json!({"add": {"type": "array", "items": s("string")}, "remove": {"type": "array", "items": s("string")}}), &[])));
    m.insert(
        "ChatRead".into(),
        json!(obj(json!({"upto": s("integer")}), &[])),
    );
    m.insert(
        "ChatEpoch".into(),
        json!(obj(json!({"epoch": s("integer")}), &["epoch"])),
    );
    m.insert("ChatSafety".into(), json!(obj(json!({"chat": s("string"), "encryption": s("string"), "members": {"type": "array", "items": obj(json!({"account": key, "safety_number": s("string"), "devices": s("integer")}), &["account", "safety_number"])}}), &["members"])));
    m.insert("ChatProtocol".into(), json!({"type": "string", "format": "binary", "description": "An encoded chat protocol request or response (see `starling_net::chat`)"}));
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for e in ENDPOINTS {
        let entry = paths.entry(e.path.to_string()).or_insert_with(|| json!({}));
        entry[e.method] = operation(e);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Starling node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP JSON API of a Starling node: the chain, the social app view, the accounts the node holds, and a live stream. Every error is {\"error\": {\"code\", \"message\"}} with a 4xx status for a bad request. Lists page with an opaque cursor.",
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "chain", "description": "The ledger: status, transactions, accounts, blocks"},
            {"name": "social", "description": "The app view: feeds, threads, notifications, search"},
            {"name": "accounts", "description": "Accounts held by this node, sessions, signed actions"},
            {"name": "governance", "description": "The federation of foundations: charges, verified members, offices, proposals, roll calls, vote tokens and challenges"},
            {"name": "meta", "description": "This document and metrics"},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "cookie": {"type": "apiKey", "in": "cookie", "name": starling_accounts::SESSION_COOKIE},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    })
}

/// Proposals, roll calls and vote tokens (rules GV1–GV8).
fn governance_schemas(m: &mut Map<String, Value>, key: &Value) {
    let s = |t: &str| json!({ "type": t });
    let roll = obj(
        json!({"yes": s("integer"), "no": s("integer"), "voters": s("integer"), "votes": {"type": "array", "items": obj(json!({"voter": key, "yes": s("boolean"), "votes": s("integer")}), &["voter", "yes", "votes"])}}),
        &["yes", "no", "voters", "votes"],
    );
    let challenge = obj(
        json!({"by": key, "deposit": s("string"), "opened": s("integer"), "stage": {"enum": ["gathering", "board_vote", "overturned", "undone", "upheld", "lapsed"]}, "until": {"type": ["integer", "null"]}, "senate": s("integer"), "members": s("integer"), "senators": s("integer"), "supporters": s("integer"), "electorate": s("integer"), "roll": roll}),
        &["by", "stage", "roll"],
    );
    let track = obj(
        json!({"name": s("string"), "proposers": {"type": "array", "items": s("string")}, "decides": {"enum": ["members", "staff", "senate", "board", "executive"]}, "quorum_pct": s("integer"), "threshold_pct": s("integer")}),
        &[
            "name",
            "proposers",
            "decides",
            "quorum_pct",
            "threshold_pct",
        ],
    );
    let proposal = obj(
        json!({"id": s("integer"), "foundation": s("integer"), "proposer": key, "title": s("string"), "text": s("string"), "motion": {"$ref": "#/components/schemas/Motion"}, "track": track, "finality": {"enum": ["reversible", "final", "after_window"]}, "deposit": s("string"), "opened": s("integer"), "closes": s("integer"), "electorate": s("integer"), "status": {"enum": ["voting", "passed", "rejected", "no_quorum", "enacted", "failed", "reversed", "cancelled", "expired"]}, "roll": roll, "decided": {"type": ["object", "null"]}, "enacted": {"type": ["integer", "null"]}, "challenge_until": {"type": ["integer", "null"]}, "challenge": {"oneOf": [challenge, {"type": "null"}]}, "challenges": s("integer"), "referendum": {"type": ["object", "null"], "description": "a members' referendum's anonymous count (rule BL4): members, voters, yes, no"}, "epoch": s("integer")}),
        &[
            "id",
            "foundation",
            "proposer",
            "title",
            "motion",
            "track",
            "finality",
            "status",
            "roll",
            "opened",
            "closes",
        ],
    );
    m.insert("Proposal".into(), proposal.clone());
    m.insert("Proposals".into(), json!(obj(json!({"epoch": s("integer"), "count": s("integer"), "proposals": {"type": "array", "items": proposal}, "next": {"type": ["integer", "null"]}}), &["epoch", "count", "proposals"])));
    m.insert("BallotRound".into(), json!(obj(json!({"foundation": s("integer"), "round": s("integer"), "epoch": s("integer"), "key": {"type": ["string", "null"]}, "tokens": {"type": ["string", "null"]}, "issued": s("integer"), "voters": s("integer"), "forged": s("boolean"), "request": {"type": ["object", "null"]}}), &["foundation", "round", "issued", "voters", "forged"])));
    m.insert("VoteTokens".into(), json!(obj(json!({"account": key, "epoch": s("integer"), "round": s("integer"), "round_ends": s("integer"), "tokens": {"type": "array", "items": obj(json!({"foundation": s("integer"), "office": {"type": ["string", "null"]}, "branch": s("string"), "allotment": s("string"), "spent": s("string"), "left": s("string")}), &["foundation", "branch", "allotment", "spent", "left"])}}), &["account", "epoch", "round", "tokens"])));
}

/// A proposal's motion (see [`starling_types::actions::FieldKind::Motion`]).
fn motion_schema(key: &Value) -> Value {
    let amount = json!({"type": "string", "pattern": "^[0-9]+$"});
    json!({"description": "What a proposal asks for (its track follows from it)", "oneOf": [
        obj(json!({"kind": {"const": "spend"}, "to": key, "amount": amount}), &["kind", "to", "amount"]),
        obj(json!({"kind": {"const": "appoint"}, "office": {"enum": ["president", "officer", "board", "senate", "staff"]}, "holder": key}), &["kind", "office", "holder"]),
        obj(json!({"kind": {"const": "set_param"}, "param": {"enum": ["spend_limit", "tokens.members", "tokens.staff", "tokens.senate", "tokens.board", "tokens.executive"]}, "value": amount}), &["kind", "param", "value"]),
        obj(json!({"kind": {"const": "registrar"}, "registrar": key}), &["kind", "registrar"]),
    ]})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.route("...", method(...))` in the sources, as (method, path).
    fn served() -> Vec<(String, String)> {
        let sources = [
            include_str!("lib.rs"),
            include_str!("social.rs"),
            include_str!("me.rs"),
            include_str!("chat_api.rs"),
            include_str!("stream.rs"),
            include_str!("openapi.rs"),
            include_str!("proofs.rs"),
            include_str!("governance.rs"),
        ];
        let mut out = Vec::new();
        for src in sources {
            for chunk in src.split(".route(").skip(1) {
                let chunk = chunk.trim_start();
                let Some(rest) = chunk.strip_prefix('"') else {
                    continue;
                };
                let Some((path, tail)) = rest.split_once('"') else {
                    continue;
                };
                if !path.starts_with("/api/") && path != "/metrics" {
                    continue;
                }
                // The handlers chained on this route, up to its closing parenthesis.
                let mut depth = 1;
                let mut end = tail.len();
                for (i, c) in tail.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                for m in ["get", "post", "delete", "put", "patch"] {
                    let call = format!("{m}(");
                    let t = &tail[..end];
                    if t.contains(&format!(" {call}"))
                        || t.contains(&format!(".{call}"))
                        || t.contains(&format!("\n{call}"))
                        || t.trim_start_matches([',', ' ', '\n']).starts_with(&call)
                    {
                        out.push((m.to_string(), path.to_string()));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_document_matches_the_router() {
        let served = served();
        assert!(served.len() >= 30, "{served:?}");
        let documented: Vec<(String, String)> = ENDPOINTS
            .iter()
            .map(|e| (e.method.to_string(), e.path.to_string()))
            .collect();
        for s in &served {
            assert!(documented.contains(s), "{s:?} is served but not documented");
        }
        for d in &documented {
            assert!(served.contains(d), "{d:?} is documented but not served");
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "dangling $ref {name}");
        }
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/api/v1/session"]["delete"]["security"].is_array());
    }
}
