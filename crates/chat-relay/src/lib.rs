//! A relay's chat services: the mailboxes it keeps for others ([`mailbox`]), devices' one-use
//! key packages, and the order of group commits it delivers. The open network hands each
//! chat request's bytes to [`ChatServices::serve`] (through
//! [`starling_protocol::chat::ChatService`]); nothing here speaks to the network.

use mailbox::{CommitOrder, KeyPackages, MailboxError, Mailboxes};
use starling_ledger::records::{ChatKeysRecord, StateKey};
use starling_node_api::Node;
use starling_protocol::chat::*;
use starling_types::{AccountId, Decode, PublicKey};
use std::sync::Arc;

pub mod mailbox;

impl From<MailboxError> for ChatResponse {
    fn from(e: MailboxError) -> Self {
        ChatResponse::refused(e.code(), e.to_string())
    }
}

/// What a node keeps for others, and answers chat requests from.
#[derive(Debug)]
pub struct ChatServices {
    pub mailboxes: Arc<Mailboxes>,
    pub key_packages: KeyPackages,
    pub order: CommitOrder,
    /// The ledger, for checking key packages against the key directory.
    pub node: Option<Node>,
    /// This node's key (fetches are bound to it).
    pub me: PublicKey,
    /// Requests answered, and those refused (for the metrics).
    pub served: std::sync::atomic::AtomicU64,
    /// Refusals by code.
    pub refused: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl ChatService for ChatServices {
    fn serve(&self, request: &[u8]) -> ChatResponse {
        ChatServices::serve(self, request)
    }
}

impl ChatServices {
    /// Opens the services' storage under `dir`.
    pub fn open(
        dir: &std::path::Path,
        me: PublicKey,
        node: Option<Node>,
    ) -> Result<ChatServices, MailboxError> {
        Ok(ChatServices {
            mailboxes: Arc::new(Mailboxes::open(&dir.join("mailboxes"))?),
            key_packages: KeyPackages::open(&dir.join("keypackages"))?,
            order: CommitOrder::open(&dir.join("commit-order.log"))?,
            node,
            me,
            served: std::sync::atomic::AtomicU64::new(0),
            refused: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    /// Answers one request's bytes. Never panics; anything wrong is a `Refused`.
    pub fn serve(&self, bytes: &[u8]) -> ChatResponse {
        let answer = self.answer(bytes);
        match &answer {
            ChatResponse::Refused { code, .. } => {
                let mut r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
                // Codes are this module's own (bounded set), never the peer's text.
                *r.entry(code.clone()).or_default() += 1;
            }
            _ => {
                self.served
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        answer
    }

    /// Prometheus text for the services.
    pub fn metrics(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let mut out = format!(
            "# HELP starling_chat_requests_total Chat protocol requests answered, by outcome (refusals by code).\n# TYPE starling_chat_requests_total counter\nstarling_chat_requests_total{{outcome=\"served\"}} {}\n",
            self.served.load(Relaxed),
        );
        for (code, n) in self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            out.push_str(&format!(
                "starling_chat_requests_total{{outcome=\"refused\",code=\"{code}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "# HELP starling_chat_mail_bytes Bytes of chat mail (ciphertext) this node keeps.\n# TYPE starling_chat_mail_bytes gauge\nstarling_chat_mail_bytes {}\n",
            self.mailboxes.total_bytes()
        ));
        out
    }

    fn answer(&self, bytes: &[u8]) -> ChatResponse {
        let req = match ChatRequest::from_bytes(bytes) {
            Ok(r) => r,
            Err(e) => return ChatResponse::refused("malformed", e.to_string()),
        };
        match req {
            ChatRequest::Deposit { mailbox, envelopes } => {
                match self.mailboxes.deposit(&mailbox, &envelopes) {
                    Ok(first) => ChatResponse::Stored { first },
                    Err(e) => e.into(),
                }
            }
            ChatRequest::Fetch {
                key,
                after,
                at_ms,
                signature,
            } => {
                let now = now_ms();
                if at_ms.abs_diff(now) > FETCH_WINDOW.as_millis() as u64 {
                    return ChatResponse::refused(
                        "stale",
                        "the fetch's time is off by over 10 minutes",
                    );
                }
                let msg = fetch_message(&self.me, &key, after, at_ms);
                if starling_crypto::verify(&key, &msg, &signature).is_err() {
                    return ChatResponse::refused(
                        "bad_signature",
                        "the fetch is not signed by the mailbox key",
                    );
                }
                let id = mailbox_id(&key);
                if let Err(e) = self.mailboxes.ack(&id, after) {
                    return e.into();
                }
                let (mail, more) = self.mailboxes.fetch(&id, after, MAX_FETCH_BYTES);
                ChatResponse::Mail {
                    mail: mail.into_iter().map(|m| (m.seq, m.bytes)).collect(),
                    more,
                }
            }
            ChatRequest::PutKeyPackages {
                account,
                device,
                packages,
            } => {
                let Some(signature_key) = self.device_key(&account, device) else {
                    return ChatResponse::refused(
                        "unknown_device",
                        "the key directory on the ledger lists no such device",
                    );
                };
                let identity = format!("{}#{device}", account.to_text());
                for p in &packages {
                    match starling_chat::inspect_key_package(p) {
                        Ok((id, key)) if id == identity && key == signature_key => {}
                        Ok(_) => {
                            return ChatResponse::refused(
                                "wrong_key",
                                "a key package is not the device's (identity or key differs from the ledger)",
                            )
                        }
                        Err(e) => return ChatResponse::refused("bad_key_package", e.to_string()),
                    }
                }
                match self.key_packages.put(account, device, packages) {
                    Ok(n) => ChatResponse::KeyPackagesKept { count: n as u32 },
                    Err(e) => e.into(),
                }
            }
            ChatRequest::TakeKeyPackage { account, device } => {
                match self.key_packages.take(account, device) {
                    Ok(kp) => ChatResponse::KeyPackage(kp),
                    Err(e) => e.into(),
                }
            }
            ChatRequest::OrderCommit { epoch, commit } => match self.order.offer(epoch, commit) {
                Ok(()) => ChatResponse::Ordered,
                Err(e) => e.into(),
            },
        }
    }

    /// The signature key the ledger lists for `account`'s device `device`.
    fn device_key(&self, account: &AccountId, device: u32) -> Option<Vec<u8>> {
        let rec = chat_keys(self.node.as_ref()?, account)?;
        rec.devices
            .iter()
            .find(|d| d.id == device)
            .map(|d| d.signature_key.to_vec())
    }
}

/// An account's key directory entry, from this node's copy of the ledger.
pub fn chat_keys(node: &Node, account: &AccountId) -> Option<ChatKeysRecord> {
    let app = node.shard(node.shard_map().shard_of(account))?;
    app.read(|v| starling_ledger::actions::get_record(v, StateKey::ChatKeys(account)))
        .ok()?
        .ok()?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use starling_crypto::SecretKey;
    use starling_types::Encode as _;
    use starling_types::Hash;

    #[test]
    fn the_services_answer_bad_requests_with_clear_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let me = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[1; 32]).unwrap();
        let s = ChatServices::open(dir.path(), me.public_key(), None).unwrap();
        let code = |r: ChatResponse| match r {
            ChatResponse::Refused { code, .. } => code,
            other => format!("not refused: {other:?}"),
        };
        assert_eq!(code(s.serve(b"")), "malformed");
        assert_eq!(code(s.serve(&[9, 1, 2])), "malformed");
        let mbox = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[2; 32]).unwrap();
        let id = mailbox_id(&mbox.public_key());
        let deposit = ChatRequest::Deposit {
            mailbox: id,
            envelopes: vec![b"sealed".to_vec()],
        };
        assert_eq!(
            s.serve(&deposit.to_bytes()),
            ChatResponse::Stored { first: 1 }
        );
        // A fetch signed by another key, or for another relay, or stale, is refused.
        let other = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[4; 32]).unwrap();
        let mut forged = ChatRequest::fetch(&me.public_key(), &other, 0);
        if let ChatRequest::Fetch { key, .. } = &mut forged {
            *key = mbox.public_key();
        }
        assert_eq!(code(s.serve(&forged.to_bytes())), "bad_signature");
        let elsewhere = ChatRequest::fetch(&other.public_key(), &mbox, 0);
        assert_eq!(code(s.serve(&elsewhere.to_bytes())), "bad_signature");
        let key = mbox.public_key();
        let at_ms = now_ms() - 3_600_000;
        let stale = ChatRequest::Fetch {
            key,
            after: 0,
            at_ms,
            signature: mbox.sign(&fetch_message(&me.public_key(), &key, 0, at_ms)),
        };
        assert_eq!(code(s.serve(&stale.to_bytes())), "stale");
        // The right key takes the mail, and acknowledging removes it.
        let ok = ChatRequest::fetch(&me.public_key(), &mbox, 0);
        assert_eq!(
            s.serve(&ok.to_bytes()),
            ChatResponse::Mail {
                mail: vec![(1, b"sealed".to_vec())],
                more: false
            }
        );
        let ack = ChatRequest::fetch(&me.public_key(), &mbox, 1);
        assert_eq!(
            s.serve(&ack.to_bytes()),
            ChatResponse::Mail {
                mail: vec![],
                more: false
            }
        );
        assert_eq!(s.mailboxes.waiting(&id), 0);
        // No ledger here: key packages cannot be checked, so none are taken.
        let put = ChatRequest::PutKeyPackages {
            account: key,
            device: 0,
            packages: vec![b"kp".to_vec()],
        };
        assert_eq!(code(s.serve(&put.to_bytes())), "unknown_device");
        let take = ChatRequest::TakeKeyPackage {
            account: key,
            device: 0,
        };
        assert_eq!(code(s.serve(&take.to_bytes())), "no_key_package");
        let order = |c: u8| ChatRequest::OrderCommit {
            epoch: Hash([7; 32]),
            commit: Hash([c; 32]),
        };
        assert_eq!(s.serve(&order(1).to_bytes()), ChatResponse::Ordered);
        assert_eq!(code(s.serve(&order(2).to_bytes())), "epoch_taken");
    }
}
