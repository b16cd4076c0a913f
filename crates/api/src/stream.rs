//! `GET /api/v1/stream`: a WebSocket that pushes an account's new home-timeline items and
//! notifications as the app view indexes them.
//!
//! The account is the session's (cookie or bearer), or `?account=<key>` without a session
//! (timelines and notifications are public). Messages are JSON text frames:
//! - `{"type": "hello", "account", "unread"}` once, first;
//! - `{"type": "post", "item": <feed item as in /home>}` for each new home-timeline item,
//!   oldest first;
//! - `{"type": "notification", "item": <as in /notifications>, "unread"}` for each new one.
//!
//! The server wakes on each batch the indexer commits and compares the first page of the
//! home timeline and of notifications with what it already sent, so blocks and mutes apply
//! as they do for reads. Browsers must connect from the node's own origin (the `Origin`
//! header, when sent, must name the `Host`); incoming messages other than close are ignored
//! and bounded to [`MAX_INCOMING_BYTES`]; at most [`MAX_STREAMS`] streams are open at once,
//! [`MAX_STREAMS_PER_CLIENT`] from one client address (IPv6: one /64). A slot is held by
//! the upgrade itself, so a client that asks and hangs up before the upgrade completes gives
//! it back.

use crate::client::Client;
use crate::social::{feed_item_json, notification_json, view_err, Render};
use crate::{parse_key, Api, ApiError};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use starling_accounts::Session;
use starling_appview::{AppView, FeedEntry, FeedItem};
use starling_types::{AccountId, PostId};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Most streams open at once on one node.
pub const MAX_STREAMS: usize = 1_000;
/// Most streams open at once from one client (its address; IPv6: its /64).
pub const MAX_STREAMS_PER_CLIENT: usize = 32;
/// Largest message a client may send.
pub const MAX_INCOMING_BYTES: usize = 4_096;
/// How many of the newest items each wake-up compares.
const WINDOW: usize = 30;

/// The streams open on one API, in all and per client.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Slots {
    /// A slot for a stream from `client`, or why not.
    fn take(self: &Arc<Self>, client: IpAddr) -> Result<Slot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let busy = |msg: String| Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", msg));
        if open.0 >= MAX_STREAMS {
            return busy(format!("{MAX_STREAMS} streams are open; try again later"));
        }
        let mine = open.1.entry(client).or_insert(0);
        if *mine >= MAX_STREAMS_PER_CLIENT {
            return busy(format!(
                "{MAX_STREAMS_PER_CLIENT} streams are open from your address; close one"
            ));
        }
        *mine += 1;
        open.0 += 1;
        Ok(Slot {
            slots: self.clone(),
            client,
        })
    }

    /// Streams open now.
    pub(crate) fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

/// One open stream's place, given back when dropped (after the stream, or when its upgrade
/// fails).
struct Slot {
    slots: Arc<Slots>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.client);
            }
        }
    }
}

pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/api/v1/stream", get(stream))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    account: Option<String>,
}

/// The session a request's headers name, if any (no CSRF: this is a `GET`).
fn session_of(api: &Api, headers: &HeaderMap) -> Option<Session> {
    let (token, _) = crate::me::token_of(headers)?;
    api.services.accounts.as_ref()?.sessions.get(&token)
}

/// A browser's `Origin` must be this node's (`Host`); programs send none.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host == host
}

async fn stream(
    State(api): State<Api>,
    client: Client,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let ws = ws.map_err(|e| ApiError::bad_request("not_websocket", e.body_text()))?;
    if !same_origin(&headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "streams open only from this node's own pages",
        ));
    }
    // Chat news (private) go only to a session's own stream.
    let mut chat = None;
    let account = match (q.account.as_deref(), session_of(&api, &headers)) {
        (Some(a), _) => parse_key(a)?,
        (None, Some(s)) => {
            chat = api.services.chat.clone();
            s.account
        }
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "no_session",
                "log in, or name an account with ?account=",
            ))
        }
    };
    let served = crate::social::served_view(&api)?;
    let (view, updates) = (served.store.clone(), served.watch());
    // The closure owns the slot: dropped unrun if the upgrade fails.
    let slot = api.streams.take(client.key())?;
    Ok(ws
        .max_message_size(MAX_INCOMING_BYTES)
        .on_upgrade(move |socket| async move {
            run(socket, view, account, updates, chat).await;
            drop(slot);
        }))
}

/// What identifies a feed item: who put it in the feed, how, and the post.
type ItemKey = (AccountId, bool, PostId);

fn item_key(f: &FeedEntry) -> ItemKey {
    (f.by, matches!(f.item, FeedItem::Repost(_)), *f.item.post())
}

/// What the stream has already sent.
struct Sent {
    items: HashSet<ItemKey>,
    notification: u64,
}

/// The messages for whatever is new since `sent`, oldest first.
fn news(view: &AppView, account: &AccountId, sent: &mut Sent) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    let rd = &Render::new(view);
    let home = view.home(account, None, WINDOW).map_err(view_err)?;
    for f in home.items.iter().rev() {
        if sent.items.insert(item_key(f)) {
            out.push(json!({"type": "post", "item": feed_item_json(rd, f)?}));
        }
    }
    // Forget what has scrolled far out of the window.
    if sent.items.len() > 10 * WINDOW {
        sent.items = home.items.iter().map(item_key).collect();
    }
    let notes = view
        .notifications(account, None, WINDOW)
        .map_err(view_err)?;
    let unread = view.account(account).map_err(view_err)?.unread;
    for n in notes.items.iter().rev() {
        if n.seq > sent.notification {
            sent.notification = n.seq;
            out.push(json!({
                "type": "notification",
                "item": notification_json(rd, n)?,
                "unread": unread,
            }));
        }
    }
    Ok(out)
}

async fn run(
    mut socket: WebSocket,
    view: Arc<AppView>,
    account: AccountId,
    mut updates: tokio::sync::watch::Receiver<u64>,
    chat: Option<Arc<starling_chat_client::Chat>>,
) {
    let mut chat_updates = chat.as_ref().map(|c| c.watch());
    // What is there when the stream opens counts as sent: the client read it already.
    let first = {
        let view = view.clone();
        tokio::task::spawn_blocking(move || -> Result<(Sent, u64), ApiError> {
            let home = view.home(&account, None, WINDOW).map_err(view_err)?;
            let notes = view.notifications(&account, None, 1).map_err(view_err)?;
            let unread = view.account(&account).map_err(view_err)?.unread;
            Ok((
                Sent {
                    items: home.items.iter().map(item_key).collect(),
                    notification: notes.items.first().map_or(0, |n| n.seq),
                },
                unread,
            ))
        })
        .await
    };
    let Ok(Ok((mut sent, unread))) = first else {
        return;
    };
    updates.mark_unchanged();
    let hello = json!({"type": "hello", "account": account.to_text(), "unread": unread});
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    return;
                }
                let v = view.clone();
                let s = std::mem::replace(&mut sent, Sent { items: HashSet::new(), notification: 0 });
                let Ok((s, msgs)) = tokio::task::spawn_blocking(move || {
                    let mut s = s;
                    let msgs = news(&v, &account, &mut s);
                    (s, msgs)
                })
                .await else {
                    return;
                };
                sent = s;
                match msgs {
                    Ok(msgs) => {
                        for m in msgs {
                            if socket.send(Message::Text(m.to_string().into())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = ?e, "stream could not read the app view"),
                }
            }
            changed = async {
                match chat_updates.as_mut() {
                    Some(r) => r.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                if changed.is_err() {
                    chat_updates = None;
                    continue;
                }
                let Some(c) = &chat else { continue };
                // Only an open chat has news; a closed one (logged out) says nothing.
                let Ok(chats) = c.chats(&account).await else { continue };
                let unread: u64 = chats.iter().map(|x| x.unread).sum();
                let m = json!({"type": "chat", "unread": unread});
                if socket.send(Message::Text(m.to_string().into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => {
                match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                }
            }
        }
    }
}
