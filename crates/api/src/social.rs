//! The social API: what the app view ([`starling_appview`]) shows, as JSON.
//!
//! Lists take `?cursor=` (the `next` of the previous page, opaque) and `?limit=` (1 to
//! [`MAX_PAGE`], default 30) and answer `{"items": [...], "next": "<cursor>" | null}`. Reads
//! that depend on who is looking take `?viewer=<account>`: blocks and mutes apply, and posts
//! say whether the viewer liked or reposted them.
//!
//! - `GET /api/v1/accounts/{key}/profile`: handle, profile, counts, fees paid, unread
//!   notifications, and with a viewer how the two stand.
//! - `GET /api/v1/accounts/{key}/feed`: the account's posts and reposts, newest first.
//! - `GET /api/v1/accounts/{key}/home`: its home timeline (followed accounts and its own).
//! - `GET /api/v1/accounts/{key}/followers`, `.../following`.
//! - `GET /api/v1/accounts/{key}/notifications`.
//! - `GET /api/v1/posts/{author}/{seq}/thread`: ancestors, the post, first replies.
//! - `GET /api/v1/posts/{author}/{seq}/replies`, `.../quotes`.
//! - `GET /api/v1/hashtags/{tag}`: posts with the hashtag, newest first.
//! - `GET /api/v1/trending`: hashtags of the last 24 hours, most used first.
//! - `GET /api/v1/handles/{handle}`: the account holding a handle.
//! - `GET /api/v1/search/posts?q=`, `GET /api/v1/search/people?q=`: full-text search, best
//!   first (the cursor counts results, up to 1,000 deep).

use crate::{parse_key, Api, ApiError, ApiResult};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use starling_appview::{
    AccountView, AppView, AppViewError, FeedEntry, FeedItem, Notification, Page, PostEntry,
    MAX_PAGE,
};
use starling_types::{AccountId, PostId};
use std::sync::Arc;

/// Items in a page when the client does not say.
pub const DEFAULT_PAGE: usize = 30;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/accounts/{key}/profile", get(profile))
        .route("/api/v1/accounts/{key}/feed", get(feed))
        .route("/api/v1/accounts/{key}/home", get(home))
        .route("/api/v1/accounts/{key}/followers", get(followers))
        .route("/api/v1/accounts/{key}/following", get(following))
        .route("/api/v1/accounts/{key}/notifications", get(notifications))
        .route("/api/v1/posts/{author}/{seq}/thread", get(thread))
        .route("/api/v1/posts/{author}/{seq}/replies", get(replies))
        .route("/api/v1/posts/{author}/{seq}/quotes", get(quotes))
        .route("/api/v1/hashtags/{tag}", get(hashtag))
        .route("/api/v1/trending", get(trending))
        .route("/api/v1/handles/{handle}", get(handle))
        .route("/api/v1/search/posts", get(search_posts))
        .route("/api/v1/search/people", get(search_people))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
    viewer: Option<String>,
}

type QueryResult = Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>;

struct Paging {
    q: Option<String>,
    cursor: Option<String>,
    limit: usize,
    viewer: Option<AccountId>,
}

fn paging(q: QueryResult) -> Result<Paging, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = match q.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "bad_limit",
                    format!("limit must be a number from 1 to {MAX_PAGE}"),
                ))
            }
        },
    };
    let viewer = q.viewer.as_deref().map(parse_key).transpose()?;
    Ok(Paging {
        q: q.q,
        cursor: q.cursor,
        limit,
        viewer,
    })
}

pub(crate) fn view(api: &Api) -> Result<&Arc<AppView>, ApiError> {
    served_view(api).map(|v| &v.store)
}

/// The app view with its watch of committed batches.
pub(crate) fn served_view(api: &Api) -> Result<&crate::view::View, ApiError> {
    api.services.view.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "no_appview",
            "this node keeps no app view",
        )
    })
}

pub(crate) fn view_err(e: AppViewError) -> ApiError {
    match e {
        AppViewError::BadCursor => ApiError::bad_request("bad_cursor", e.to_string()),
        e => ApiError::internal(e),
    }
}

fn parse_post(author: &str, seq: &str) -> Result<PostId, ApiError> {
    let author = parse_key(author)?;
    let seq = seq
        .parse()
        .map_err(|_| ApiError::bad_request("bad_seq", "post sequence must be a number"))?;
    Ok(PostId { author, seq })
}

fn post_ref(p: &PostId) -> Value {
    json!({"author": p.author.to_text(), "seq": p.seq})
}

/// Renders view records as JSON for one answer, reading each account named in it once.
pub(crate) struct Render<'a> {
    view: &'a AppView,
    people: std::cell::RefCell<std::collections::HashMap<AccountId, PersonOut>>,
}

impl<'a> Render<'a> {
    pub(crate) fn new(view: &'a AppView) -> Self {
        Self {
            view,
            people: Default::default(),
        }
    }
}

/// Who an account is, in a line: what a post or a list shows beside it.
#[derive(Serialize, Clone)]
pub(crate) struct PersonOut {
    account: String,
    handle: Option<String>,
    display_name: String,
    avatar_url: String,
}

#[derive(Serialize)]
struct RefOut {
    author: String,
    seq: u64,
}

fn ref_out(p: &PostId) -> RefOut {
    RefOut {
        author: p.author.to_text(),
        seq: p.seq,
    }
}

#[derive(Serialize)]
struct RevOut<'a> {
    text: &'a str,
    at_ms: u64,
}

#[derive(Serialize)]
struct CountsOut {
    likes: u64,
    reposts: u64,
    replies: u64,
    quotes: u64,
}

/// A post as the API shows it.
#[derive(Serialize)]
pub(crate) struct PostOut<'a> {
    author: PersonOut,
    seq: u64,
    text: &'a str,
    reply_to: Option<RefOut>,
    quote_of: Option<RefOut>,
    langs: &'a [String],
    created_ms: u64,
    shard: u16,
    height: u64,
    edited_ms: u64,
    edited: bool,
    deleted: bool,
    revisions: Vec<RevOut<'a>>,
    tags: &'a [String],
    counts: CountsOut,
    liked: bool,
    reposted: bool,
}

/// One item of a feed: a post or a repost, by whom, when.
#[derive(Serialize)]
pub(crate) struct FeedItemOut<'a> {
    kind: &'static str,
    by: PersonOut,
    at_ms: u64,
    post: PostOut<'a>,
}

#[derive(Serialize)]
struct PageOut<T> {
    items: Vec<T>,
    next: Option<String>,
}

fn who(rd: &Render, account: &AccountId) -> Result<PersonOut, ApiError> {
    if let Some(v) = rd.people.borrow().get(account) {
        return Ok(v.clone());
    }
    let a = rd.view.account(account).map_err(view_err)?;
    let v = PersonOut {
        account: account.to_text(),
        handle: a.handle,
        display_name: a.display_name,
        avatar_url: a.avatar_url,
    };
    rd.people.borrow_mut().insert(*account, v.clone());
    Ok(v)
}

fn to_value<T: Serialize>(t: &T) -> Result<Value, ApiError> {
    serde_json::to_value(t).map_err(ApiError::internal)
}

/// An answer serialized straight from the records (no intermediate JSON tree).
fn json_response<T: Serialize>(t: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(t).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn account_json(account: &AccountId, a: &AccountView) -> Value {
    json!({
        "account": account.to_text(),
        "handle": a.handle,
        "display_name": a.display_name,
        "bio": a.bio,
        "avatar_url": a.avatar_url,
        "posts": a.posts,
        "followers": a.followers,
        "following": a.following,
    })
}

fn post_out<'e>(rd: &Render, e: &'e PostEntry) -> Result<PostOut<'e>, ApiError> {
    let p = &e.post;
    Ok(PostOut {
        author: who(rd, &p.id.author)?,
        seq: p.id.seq,
        text: &p.text,
        reply_to: p.reply_to.as_ref().map(ref_out),
        quote_of: p.quote_of.as_ref().map(ref_out),
        langs: &p.langs,
        created_ms: p.created.at_ms,
        shard: p.created.shard,
        height: p.created.height,
        edited_ms: p.edited_ms,
        edited: !p.revisions.is_empty(),
        deleted: p.deleted,
        revisions: p
            .revisions
            .iter()
            .map(|(text, at_ms)| RevOut {
                text,
                at_ms: *at_ms,
            })
            .collect(),
        tags: &p.tags,
        counts: CountsOut {
            likes: e.counts.likes,
            reposts: e.counts.reposts,
            replies: e.counts.replies,
            quotes: e.counts.quotes,
        },
        liked: e.liked,
        reposted: e.reposted,
    })
}

fn post_json(rd: &Render, e: &PostEntry) -> Result<Value, ApiError> {
    to_value(&post_out(rd, e)?)
}

fn feed_item_out<'e>(rd: &Render, f: &'e FeedEntry) -> Result<FeedItemOut<'e>, ApiError> {
    Ok(FeedItemOut {
        kind: match f.item {
            FeedItem::Post(_) => "post",
            FeedItem::Repost(_) => "repost",
        },
        by: who(rd, &f.by)?,
        at_ms: f.at.at_ms,
        post: post_out(rd, &f.entry)?,
    })
}

/// One item of a feed, as JSON.
pub(crate) fn feed_item_json(rd: &Render, f: &FeedEntry) -> Result<Value, ApiError> {
    to_value(&feed_item_out(rd, f)?)
}

fn feed_json(view: &AppView, page: Page<FeedEntry>) -> Result<Response, ApiError> {
    let rd = &Render::new(view);
    let items = page
        .items
        .iter()
        .map(|f| feed_item_out(rd, f))
        .collect::<Result<Vec<_>, ApiError>>()?;
    json_response(&PageOut {
        items,
        next: page.next,
    })
}

fn posts_json(view: &AppView, page: Page<PostEntry>) -> Result<Response, ApiError> {
    let rd = &Render::new(view);
    let items = page
        .items
        .iter()
        .map(|e| post_out(rd, e))
        .collect::<Result<Vec<_>, ApiError>>()?;
    json_response(&PageOut {
        items,
        next: page.next,
    })
}

async fn profile(State(api): State<Api>, Path(key): Path<String>, q: QueryResult) -> ApiResult {
    let id = parse_key(&key)?;
    let p = paging(q)?;
    let view = view(&api)?;
    let a = view.account(&id).map_err(view_err)?;
    let mut out = account_json(&id, &a);
    out["fees_paid"] = json!(a.fees_paid.to_string());
    out["unread_notifications"] = json!(a.unread);
    if let Some(v) = p.viewer {
        let r = view.relation(&v, &id).map_err(view_err)?;
        out["relation"] = json!({
            "following": r.following,
            "followed_by": r.followed_by,
            "blocking": r.blocking,
            "blocked_by": r.blocked_by,
            "muting": r.muting,
        });
    }
    Ok(Json(out))
}

async fn feed(
    State(api): State<Api>,
    Path(key): Path<String>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let id = parse_key(&key)?;
    let p = paging(q)?;
    let view = view(&api)?;
    let page = view
        .author_feed(&id, p.viewer.as_ref(), p.cursor.as_deref(), p.limit)
        .map_err(view_err)?;
    feed_json(view, page)
}

async fn home(
    State(api): State<Api>,
    Path(key): Path<String>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let id = parse_key(&key)?;
    let p = paging(q)?;
    let view = view(&api)?;
    let page = view
        .home(&id, p.cursor.as_deref(), p.limit)
        .map_err(view_err)?;
    feed_json(view, page)
}

async fn follow_list(api: &Api, key: &str, q: QueryResult, followers: bool) -> ApiResult {
    let id = parse_key(key)?;
    let p = paging(q)?;
    let view = view(api)?;
    let page = view
        .follows(&id, followers, p.cursor.as_deref(), p.limit)
        .map_err(view_err)?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|e| account_json(&e.account, &e.view))
        .collect();
    Ok(Json(json!({"items": items, "next": page.next})))
}

async fn followers(State(api): State<Api>, Path(key): Path<String>, q: QueryResult) -> ApiResult {
    follow_list(&api, &key, q, true).await
}

async fn following(State(api): State<Api>, Path(key): Path<String>, q: QueryResult) -> ApiResult {
    follow_list(&api, &key, q, false).await
}

pub(crate) fn notification_json(view: &Render, n: &Notification) -> Result<Value, ApiError> {
    Ok(json!({
        "seq": n.seq,
        "kind": n.kind.name(),
        "actor": to_value(&who(view, &n.actor)?)?,
        "post": n.post.as_ref().map(post_ref),
        "at_ms": n.at_ms,
    }))
}

async fn notifications(
    State(api): State<Api>,
    Path(key): Path<String>,
    q: QueryResult,
) -> ApiResult {
    let id = parse_key(&key)?;
    let p = paging(q)?;
    let view = view(&api)?;
    let page = view
        .notifications(&id, p.cursor.as_deref(), p.limit)
        .map_err(view_err)?;
    let items = page
        .items
        .iter()
        .map(|n| notification_json(&Render::new(view), n))
        .collect::<Result<Vec<Value>, ApiError>>()?;
    let unread = view.account(&id).map_err(view_err)?.unread;
    Ok(Json(
        json!({"items": items, "next": page.next, "unread": unread}),
    ))
}

async fn thread(
    State(api): State<Api>,
    Path((author, seq)): Path<(String, String)>,
    q: QueryResult,
) -> ApiResult {
    let id = parse_post(&author, &seq)?;
    let p = paging(q)?;
    let view = view(&api)?;
    let t = view
        .thread(&id, p.viewer.as_ref(), p.limit)
        .map_err(view_err)?
        .ok_or_else(|| ApiError::not_found("no such post (or not yet indexed)"))?;
    let rd = &Render::new(view);
    let ancestors = t
        .ancestors
        .iter()
        .map(|e| post_json(rd, e))
        .collect::<Result<Vec<Value>, ApiError>>()?;
    let replies = t
        .replies
        .items
        .iter()
        .map(|e| post_json(rd, e))
        .collect::<Result<Vec<Value>, ApiError>>()?;
    Ok(Json(json!({
        "ancestors": ancestors,
        "post": post_json(rd, &t.post)?,
        "replies": {"items": replies, "next": t.replies.next},
    })))
}

async fn replies(
    State(api): State<Api>,
    Path((author, seq)): Path<(String, String)>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let id = parse_post(&author, &seq)?;
    let p = paging(q)?;
    let view = view(&api)?;
    let page = view
        .replies(&id, p.viewer.as_ref(), p.cursor.as_deref(), p.limit)
        .map_err(view_err)?;
    posts_json(view, page)
}

async fn quotes(
    State(api): State<Api>,
    Path((author, seq)): Path<(String, String)>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let id = parse_post(&author, &seq)?;
    let p = paging(q)?;
    let view = view(&api)?;
    let page = view
        .quotes(&id, p.viewer.as_ref(), p.cursor.as_deref(), p.limit)
        .map_err(view_err)?;
    posts_json(view, page)
}

async fn hashtag(
    State(api): State<Api>,
    Path(tag): Path<String>,
    q: QueryResult,
) -> Result<Response, ApiError> {
    if starling_appview::text::normalize_tag(&tag).is_none() {
        return Err(ApiError::bad_request(
            "bad_tag",
            "a hashtag is letters, digits and _, not only digits",
        ));
    }
    let p = paging(q)?;
    let view = view(&api)?;
    let page = view
        .hashtag(&tag, p.viewer.as_ref(), p.cursor.as_deref(), p.limit)
        .map_err(view_err)?;
    posts_json(view, page)
}

async fn trending(State(api): State<Api>, q: QueryResult) -> ApiResult {
    let p = paging(q)?;
    let view = view(&api)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let items: Vec<Value> = view
        .trending(now_ms, p.limit)
        .map_err(view_err)?
        .into_iter()
        .map(|(tag, posts)| json!({"tag": tag, "posts": posts}))
        .collect();
    Ok(Json(json!({"items": items})))
}

async fn handle(State(api): State<Api>, Path(handle): Path<String>) -> ApiResult {
    let view = view(&api)?;
    let account = view
        .by_handle(&handle)
        .map_err(view_err)?
        .ok_or_else(|| ApiError::not_found(format!("no account holds @{handle}")))?;
    let a = view.account(&account).map_err(view_err)?;
    Ok(Json(account_json(&account, &a)))
}

/// The search query of a request: present, not blank, at most
/// [`starling_appview::search::MAX_QUERY_BYTES`].
fn search_query(p: &Paging) -> Result<&str, ApiError> {
    let q = p.q.as_deref().map(str::trim).unwrap_or("");
    if q.is_empty() || q.len() > starling_appview::search::MAX_QUERY_BYTES {
        return Err(ApiError::bad_request(
            "bad_query",
            format!(
                "q must be 1 to {} bytes of search text",
                starling_appview::search::MAX_QUERY_BYTES
            ),
        ));
    }
    Ok(q)
}

async fn search_posts(State(api): State<Api>, q: QueryResult) -> Result<Response, ApiError> {
    let p = paging(q)?;
    let query = search_query(&p)?;
    let view = view(&api)?;
    let page = view
        .search_posts(query, p.viewer.as_ref(), p.cursor.as_deref(), p.limit)
        .map_err(view_err)?;
    posts_json(view, page)
}

async fn search_people(State(api): State<Api>, q: QueryResult) -> ApiResult {
    let p = paging(q)?;
    let query = search_query(&p)?;
    let view = view(&api)?;
    let page = view
        .search_people(query, p.cursor.as_deref(), p.limit)
        .map_err(view_err)?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|e| account_json(&e.account, &e.view))
        .collect();
    Ok(Json(json!({"items": items, "next": page.next})))
}
