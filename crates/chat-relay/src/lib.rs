//! A relay's chat services: the mailboxes it keeps for others ([`mailbox`]), devices' one-use
//! key packages, and the order of group commits it delivers. The open network hands each
//! chat request's bytes to [`ChatServices::serve`] (through
//! [`starling_protocol::chat::ChatService`]); nothing here speaks to the network.

use mailbox::{KeyPackages, MailboxError, Mailboxes};
use order::CommitOrder;
use starling_ledger::records::{ChatKeysRecord, StateKey};
use starling_node_api::Node;
use starling_protocol::chat::*;
use starling_protocol::limit::RateLimiter;
use starling_types::{AccountId, Decode, Hash, PublicKey, Signature};
use std::sync::Arc;

mod known;
pub mod mailbox;
pub mod order;

/// Deposit requests one requester may make: a burst, then so many a second.
pub const DEPOSITS_PER_REQUESTER: (u32, f64) = (4_096, 1_024.0);
/// Mailboxes one requester may open (deposits to a mailbox this node keeps nothing for):
/// a burst, then so many a second. So strangers cannot fill the node with mailboxes.
pub const NEW_MAILBOXES_PER_REQUESTER: (u32, f64) = (32, 0.2);
/// Deposit requests into one mailbox from others: a burst, then so many a second.
pub const DEPOSITS_PER_MAILBOX: (u32, f64) = (4_096, 1_024.0);

/// Key packages one requester may take: a burst (enough to start a group of 50 devices),
/// then so many a second.
pub const TAKES_PER_REQUESTER: (u32, f64) = (64, 1.0);
/// Key packages of one device that others may take: a burst, then so many a second. So
/// draining a device's packages is slow, and what it keeps for them stays bounded.
pub const TAKES_PER_DEVICE: (u32, f64) = (16, 0.1);
/// Commit offers one requester may make: a burst, then so many a second. Anyone can make
/// an epoch key of their own, so without this a stranger could fill the commit order with
/// made-up epochs (each a synced write) and push real ones out.
pub const OFFERS_PER_REQUESTER: (u32, f64) = (64, 1.0);

/// What limits the requests of others: deposits by whom and where, the taking of key
/// packages, and commit offers.
#[derive(Debug)]
pub struct Limits {
    per_requester: RateLimiter<Requester>,
    new_mailboxes: RateLimiter<Requester>,
    per_mailbox: RateLimiter<Hash>,
    takes_per_requester: RateLimiter<Requester>,
    takes_per_device: RateLimiter<(AccountId, u32)>,
    offers_per_requester: RateLimiter<Requester>,
}

fn limiter<K: Eq + std::hash::Hash + Clone>((burst, per_sec): (u32, f64)) -> RateLimiter<K> {
    RateLimiter::new(burst, per_sec)
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_requester: limiter(DEPOSITS_PER_REQUESTER),
            new_mailboxes: limiter(NEW_MAILBOXES_PER_REQUESTER),
            per_mailbox: limiter(DEPOSITS_PER_MAILBOX),
            takes_per_requester: limiter(TAKES_PER_REQUESTER),
            takes_per_device: limiter(TAKES_PER_DEVICE),
            offers_per_requester: limiter(OFFERS_PER_REQUESTER),
        }
    }
}

/// The refusal of a request over a limit.
fn rate_limited(what: &str, secs: u64) -> ChatResponse {
    ChatResponse::refused(
        "rate_limited",
        format!("too many {what}; try again in {secs} s"),
    )
}

/// Takes a token of `limiter` for `key`, or refuses with what was too many.
fn take_token<K: Eq + std::hash::Hash + Clone>(
    limiter: &RateLimiter<K>,
    key: &K,
    what: &str,
) -> Result<(), ChatResponse> {
    limiter.check(key).map_err(|secs| rate_limited(what, secs))
}

impl Limits {
    /// Whether `from` may take a key package of `device` now (the node's own devices always
    /// may).
    fn check_take(&self, from: Requester, device: (AccountId, u32)) -> Result<(), ChatResponse> {
        if from == Requester::Local {
            return Ok(());
        }
        take_token(
            &self.takes_per_requester,
            &from,
            "key packages taken by you",
        )?;
        take_token(
            &self.takes_per_device,
            &device,
            "key packages taken of this device",
        )
    }

    /// Whether `from` may deposit into `mailbox` now (the node's own devices always may).
    fn check(&self, from: Requester, mailbox: &Hash, new: bool) -> Result<(), ChatResponse> {
        if from == Requester::Local {
            return Ok(());
        }
        take_token(&self.per_requester, &from, "deposits from you")?;
        if new {
            take_token(&self.new_mailboxes, &from, "new mailboxes from you")?;
        }
        take_token(&self.per_mailbox, mailbox, "deposits into this mailbox")
    }

    /// Whether `from` may offer a commit now (the node's own devices always may).
    fn check_offer(&self, from: Requester) -> Result<(), ChatResponse> {
        if from == Requester::Local {
            return Ok(());
        }
        take_token(&self.offers_per_requester, &from, "commit offers from you")
    }
}

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
    /// What others may ask of this node, by requester, mailbox and device.
    pub limits: Limits,
}

impl ChatService for ChatServices {
    fn serve(&self, from: Requester, request: &[u8]) -> ChatResponse {
        ChatServices::serve(self, from, request)
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
            order: CommitOrder::open(dir)?,
            node,
            me,
            served: std::sync::atomic::AtomicU64::new(0),
            refused: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            limits: Limits::default(),
        })
    }

    /// Answers one request's bytes from `from`. Never panics; anything wrong is a `Refused`.
    pub fn serve(&self, from: Requester, bytes: &[u8]) -> ChatResponse {
        let answer = self.answer(from, bytes);
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
            "# HELP starling_chat_mail_bytes Bytes of chat mail (ciphertext) this node keeps.\n# TYPE starling_chat_mail_bytes gauge\nstarling_chat_mail_bytes {}\n# HELP starling_chat_mailboxes Mailboxes holding mail on this node.\n# TYPE starling_chat_mailboxes gauge\nstarling_chat_mailboxes {}\n",
            self.mailboxes.total_bytes(),
            self.mailboxes.count(),
        ));
        out
    }

    fn answer(&self, from: Requester, bytes: &[u8]) -> ChatResponse {
        let req = match ChatRequest::from_bytes(bytes) {
            Ok(r) => r,
            Err(e) => return ChatResponse::refused("malformed", e.to_string()),
        };
        match req {
            ChatRequest::Deposit { mailbox, envelopes } => {
                let new = !self.mailboxes.is_known(&mailbox);
                if let Err(refused) = self.limits.check(from, &mailbox, new) {
                    return refused;
                }
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
                at_ms,
                signature,
            } => self.put_key_packages(account, device, packages, at_ms, &signature),
            ChatRequest::TakeKeyPackage { account, device } => {
                if let Err(refused) = self.limits.check_take(from, (account, device)) {
                    return refused;
                }
                match self.key_packages.take(account, device) {
                    Ok(kp) => ChatResponse::KeyPackage(kp),
                    Err(e) => e.into(),
                }
            }
            ChatRequest::OrderCommit {
                epoch,
                commit,
                signature,
                work,
            } => match self.limits.check_offer(from) {
                Ok(()) => self.order_commit(epoch, &commit, &signature, work),
                Err(refused) => refused,
            },
            ChatRequest::WinnerOf { epoch, signature } => {
                let key = PublicKey::ed25519(epoch.0);
                if starling_crypto::verify(&key, &winner_message(&self.me, &epoch), &signature)
                    .is_err()
                {
                    return ChatResponse::refused(
                        "bad_signature",
                        "the question is not signed by the epoch's key (only its members hold it)",
                    );
                }
                match self.order.winner(&epoch) {
                    Some(commit) => ChatResponse::Taken { commit },
                    None => ChatResponse::refused("not_ordered", "no commit won that epoch here"),
                }
            }
        }
    }

    /// A device's key packages: only the device itself (a fresh signature by the key the
    /// ledger lists for it, bound to this relay) may put them, and each must name it.
    fn put_key_packages(
        &self,
        account: AccountId,
        device: u32,
        packages: Vec<Vec<u8>>,
        at_ms: u64,
        signature: &Signature,
    ) -> ChatResponse {
        let Some(signature_key) = self.device_key(&account, device) else {
            return ChatResponse::refused(
                "unknown_device",
                "the key directory on the ledger lists no such device",
            );
        };
        if at_ms.abs_diff(now_ms()) > FETCH_WINDOW.as_millis() as u64 {
            return ChatResponse::refused("stale", "the put's time is off by over 10 minutes");
        }
        let key = <[u8; 32]>::try_from(signature_key.as_slice()).map(PublicKey::ed25519);
        let msg = put_message(&self.me, &account, device, &packages, at_ms);
        if key.map_or(true, |k| {
            starling_crypto::verify(&k, &msg, signature).is_err()
        }) {
            return ChatResponse::refused(
                "bad_signature",
                "the put is not signed by the device's key for this relay",
            );
        }
        let identity = format!("{}#{device}", account.to_text());
        for p in &packages {
            match starling_chat::inspect_key_package(p) {
                Ok((id, key)) if id == identity && key == signature_key => {}
                Ok(_) => return ChatResponse::refused(
                    "wrong_key",
                    "a key package is not the device's (identity or key differs from the ledger)",
                ),
                Err(e) => return ChatResponse::refused("bad_key_package", e.to_string()),
            }
        }
        match self.key_packages.put(account, device, packages) {
            Ok(n) => ChatResponse::KeyPackagesKept { count: n as u32 },
            Err(e) => e.into(),
        }
    }

    /// An offer of `commit` for the group epoch named `epoch`, signed with the epoch's key.
    fn order_commit(
        &self,
        epoch: Hash,
        commit: &[u8],
        signature: &Signature,
        work: u64,
    ) -> ChatResponse {
        // Only the epoch's members hold the key its name is the public half of.
        let key = PublicKey::ed25519(epoch.0);
        let msg = order_message(&self.me, &epoch, commit);
        if starling_crypto::verify(&key, &msg, signature).is_err() {
            return ChatResponse::refused(
                "bad_signature",
                "the offer is not signed by the epoch's key (only its members hold it)",
            );
        }
        match self
            .order
            .offer(epoch, commit, order_work_bits(&self.me, &epoch, work))
        {
            Ok(order::Offered::Won) => ChatResponse::Ordered,
            Ok(order::Offered::Lost(commit)) => ChatResponse::Taken { commit },
            Ok(order::Offered::WorkNeeded(bits)) => ChatResponse::WorkNeeded { bits },
            Err(e) => e.into(),
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
        assert_eq!(code(s.serve(Requester::Local, b"")), "malformed");
        assert_eq!(code(s.serve(Requester::Local, &[9, 1, 2])), "malformed");
        let mbox = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[2; 32]).unwrap();
        let id = mailbox_id(&mbox.public_key());
        let deposit = ChatRequest::Deposit {
            mailbox: id,
            envelopes: vec![b"sealed".to_vec()],
        };
        assert_eq!(
            s.serve(Requester::Local, &deposit.to_bytes()),
            ChatResponse::Stored { first: 1 }
        );
        // A fetch signed by another key, or for another relay, or stale, is refused.
        let other = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[4; 32]).unwrap();
        let mut forged = ChatRequest::fetch(&me.public_key(), &other, 0);
        if let ChatRequest::Fetch { key, .. } = &mut forged {
            *key = mbox.public_key();
        }
        assert_eq!(
            code(s.serve(Requester::Local, &forged.to_bytes())),
            "bad_signature"
        );
        let elsewhere = ChatRequest::fetch(&other.public_key(), &mbox, 0);
        assert_eq!(
            code(s.serve(Requester::Local, &elsewhere.to_bytes())),
            "bad_signature"
        );
        let key = mbox.public_key();
        let at_ms = now_ms() - 3_600_000;
        let stale = ChatRequest::Fetch {
            key,
            after: 0,
            at_ms,
            signature: mbox.sign(&fetch_message(&me.public_key(), &key, 0, at_ms)),
        };
        assert_eq!(code(s.serve(Requester::Local, &stale.to_bytes())), "stale");
        // The right key takes the mail, and acknowledging removes it.
        let ok = ChatRequest::fetch(&me.public_key(), &mbox, 0);
        assert_eq!(
            s.serve(Requester::Local, &ok.to_bytes()),
            ChatResponse::Mail {
                mail: vec![(1, b"sealed".to_vec())],
                more: false
            }
        );
        let ack = ChatRequest::fetch(&me.public_key(), &mbox, 1);
        assert_eq!(
            s.serve(Requester::Local, &ack.to_bytes()),
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
            at_ms: now_ms(),
            signature: starling_types::Signature([0; 64]),
        };
        assert_eq!(
            code(s.serve(Requester::Local, &put.to_bytes())),
            "unknown_device"
        );
        let take = ChatRequest::TakeKeyPackage {
            account: key,
            device: 0,
        };
        assert_eq!(
            code(s.serve(Requester::Local, &take.to_bytes())),
            "no_key_package"
        );
        let order = |c: u8| {
            ChatRequest::order(
                &me.public_key(),
                &[7; 32],
                vec![c; 9],
                order::ORDER_WORK_BITS,
            )
            .unwrap()
        };
        assert_eq!(
            s.serve(Requester::Local, &order(1).to_bytes()),
            ChatResponse::Ordered
        );
        // A loser hears which commit won, and a member who missed it can ask.
        assert_eq!(
            s.serve(Requester::Local, &order(2).to_bytes()),
            ChatResponse::Taken { commit: vec![1; 9] }
        );
        let ask = ChatRequest::winner_of(&me.public_key(), &[7; 32]).unwrap();
        assert_eq!(
            s.serve(Requester::Local, &ask.to_bytes()),
            ChatResponse::Taken { commit: vec![1; 9] }
        );
        // Nobody else: the question must be signed by the epoch's key, for this relay.
        let ChatRequest::WinnerOf { epoch, .. } = ask else {
            unreachable!()
        };
        let ChatRequest::WinnerOf { signature, .. } =
            ChatRequest::winner_of(&me.public_key(), &[6; 32]).unwrap()
        else {
            unreachable!()
        };
        let forged = ChatRequest::WinnerOf { epoch, signature };
        assert_eq!(
            code(s.serve(Requester::Local, &forged.to_bytes())),
            "bad_signature"
        );
        let elsewhere = ChatRequest::winner_of(&mbox.public_key(), &[7; 32]).unwrap();
        assert_eq!(
            code(s.serve(Requester::Local, &elsewhere.to_bytes())),
            "bad_signature"
        );
        let unknown = ChatRequest::winner_of(&me.public_key(), &[6; 32]).unwrap();
        assert_eq!(
            code(s.serve(Requester::Local, &unknown.to_bytes())),
            "not_ordered"
        );
        // Someone who is not in the epoch cannot take it: an offer for its name signed with
        // another key (the stranger's own epoch key, say) is refused, and so is one signed
        // for another relay.
        let fresh = |c: u8| {
            ChatRequest::order(
                &me.public_key(),
                &[8; 32],
                vec![c; 9],
                order::ORDER_WORK_BITS,
            )
            .unwrap()
        };
        let ChatRequest::OrderCommit { epoch, .. } = fresh(1) else {
            unreachable!()
        };
        let ChatRequest::OrderCommit { signature, .. } =
            ChatRequest::order(&me.public_key(), &[9; 32], vec![1; 9], 0).unwrap()
        else {
            unreachable!()
        };
        let forged = ChatRequest::OrderCommit {
            epoch,
            commit: vec![1; 9],
            signature,
            work: 0,
        };
        assert_eq!(
            code(s.serve(Requester::Local, &forged.to_bytes())),
            "bad_signature"
        );
        let elsewhere = ChatRequest::order(
            &mbox.public_key(),
            &[8; 32],
            vec![1; 9],
            order::ORDER_WORK_BITS,
        )
        .unwrap();
        assert_eq!(
            code(s.serve(Requester::Local, &elsewhere.to_bytes())),
            "bad_signature"
        );
        // A new epoch needs proof of work (bound to this relay and the epoch).
        assert_eq!(
            s.serve(
                Requester::Local,
                &ChatRequest::order(&me.public_key(), &[8; 32], vec![2; 9], 0)
                    .unwrap()
                    .to_bytes()
            ),
            ChatResponse::WorkNeeded {
                bits: order::ORDER_WORK_BITS
            }
        );
        let ChatRequest::OrderCommit { work, .. } = ChatRequest::order(
            &mbox.public_key(),
            &[8; 32],
            vec![2; 9],
            order::ORDER_WORK_BITS,
        )
        .unwrap() else {
            unreachable!()
        };
        let ChatRequest::OrderCommit {
            epoch, signature, ..
        } = fresh(2)
        else {
            unreachable!()
        };
        let work_elsewhere = ChatRequest::OrderCommit {
            epoch,
            commit: vec![2; 9],
            signature,
            work,
        };
        assert!(
            order_work_bits(&me.public_key(), &epoch, work) < u32::from(order::ORDER_WORK_BITS)
        );
        assert_eq!(
            s.serve(Requester::Local, &work_elsewhere.to_bytes()),
            ChatResponse::WorkNeeded {
                bits: order::ORDER_WORK_BITS
            }
        );
        // The epoch is still free for its members.
        assert_eq!(
            s.serve(Requester::Local, &fresh(2).to_bytes()),
            ChatResponse::Ordered
        );
    }

    #[test]
    fn a_flood_of_tiny_deposits_from_one_peer_stops_neither_fresh_mailboxes_nor_mail() {
        let dir = tempfile::tempdir().unwrap();
        let me = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[1; 32]).unwrap();
        let s = ChatServices::open(dir.path(), me.public_key(), None).unwrap();
        let deposit = |from: Requester, to: Hash, what: &[u8]| {
            let req = ChatRequest::Deposit {
                mailbox: to,
                envelopes: vec![what.to_vec()],
            };
            s.serve(from, &req.to_bytes())
        };
        let (mallory, alice, bob) = (
            Requester::peer("test", b"mallory"),
            Requester::peer("test", b"alice"),
            Requester::peer("test", b"bob"),
        );
        let carol_box = Hash([0xCA; 32]);
        assert!(matches!(
            deposit(alice, carol_box, b"hello carol"),
            ChatResponse::Stored { .. }
        ));
        // 100,000 one-byte deposits, each to a mailbox nobody holds.
        let mut stored = 0;
        for n in 0u64..100_000 {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&n.to_be_bytes());
            match deposit(mallory, Hash(id), b"x") {
                ChatResponse::Stored { .. } => stored += 1,
                ChatResponse::Refused { code, .. } => assert_eq!(code, "rate_limited"),
                other => panic!("{other:?}"),
            }
        }
        assert!(
            stored <= NEW_MAILBOXES_PER_REQUESTER.0 as usize + 1,
            "{stored} mailboxes opened"
        );
        assert!(s.mailboxes.count() <= stored + 1);
        // Someone else opens a fresh mailbox, and mail reaches an existing one, at once.
        assert!(matches!(
            deposit(bob, Hash([0xB0; 32]), b"hi, new device"),
            ChatResponse::Stored { .. }
        ));
        assert!(matches!(
            deposit(alice, carol_box, b"still there?"),
            ChatResponse::Stored { .. }
        ));
        assert_eq!(s.mailboxes.waiting(&carol_box), 2);
        // Carol takes her mail, so her mailbox empties and is forgotten; mail keeps coming
        // (it does not count as a new mailbox each time).
        let carol = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[0xCA; 32]).unwrap();
        let carol_box = mailbox_id(&carol.public_key());
        for round in 0..2 * NEW_MAILBOXES_PER_REQUESTER.0 {
            let r = deposit(bob, carol_box, b"another one");
            assert!(matches!(r, ChatResponse::Stored { .. }), "{round}: {r:?}");
            let fetch = ChatRequest::fetch(&me.public_key(), &carol, 0);
            let ChatResponse::Mail { mail, .. } = s.serve(Requester::Local, &fetch.to_bytes())
            else {
                panic!("no mail");
            };
            let last = mail.last().unwrap().0;
            let ack = ChatRequest::fetch(&me.public_key(), &carol, last);
            s.serve(Requester::Local, &ack.to_bytes());
            assert!(!s.mailboxes.is_known(&Hash([0xEE; 32])));
            assert_eq!(s.mailboxes.waiting(&carol_box), 0);
        }
        // The node's own devices are never limited.
        assert!(matches!(
            deposit(Requester::Local, Hash([0x10; 32]), b"mine"),
            ChatResponse::Stored { .. }
        ));
    }

    #[test]
    fn draining_a_devices_key_packages_is_slow() {
        let dir = tempfile::tempdir().unwrap();
        let me = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[1; 32]).unwrap();
        let s = ChatServices::open(dir.path(), me.public_key(), None).unwrap();
        let (bob, carol) = (
            PublicKey::ed25519([0xB0; 32]),
            PublicKey::ed25519([0xCA; 32]),
        );
        for who in [bob, carol] {
            let kps = (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect();
            s.key_packages.put(who, 0, kps).unwrap();
        }
        let take = |from: Requester, account| {
            let req = ChatRequest::TakeKeyPackage { account, device: 0 };
            s.serve(from, &req.to_bytes())
        };
        // Strangers, each under a new name, drain Bob's packages: a burst, then refusals.
        let mut taken = 0;
        for n in 0u32..1_000 {
            match take(Requester::peer("test", &n.to_be_bytes()), bob) {
                ChatResponse::KeyPackage(_) => taken += 1,
                ChatResponse::Refused { code, .. } => assert_eq!(code, "rate_limited"),
                other => panic!("{other:?}"),
            }
        }
        assert!(taken <= TAKES_PER_DEVICE.0 as usize + 1, "{taken} taken");
        assert!(s.key_packages.count(bob, 0) >= 100 - taken);
        // One requester cannot sweep every device either.
        let mallory = Requester::peer("test", b"mallory");
        let mut from_one = 0;
        for _ in 0..200 {
            if matches!(take(mallory, carol), ChatResponse::KeyPackage(_)) {
                from_one += 1;
            }
        }
        assert!(from_one <= TAKES_PER_DEVICE.0 as usize + 1);
        // The node's own devices (adding members from this node) are not limited.
        assert!(matches!(
            take(Requester::Local, carol),
            ChatResponse::KeyPackage(_)
        ));
    }

    #[test]
    fn a_stranger_cannot_fill_the_commit_order_with_made_up_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let me = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[1; 32]).unwrap();
        let s = ChatServices::open(dir.path(), me.public_key(), None).unwrap();
        // Anyone can make an epoch key of their own and sign offers with it.
        let offer = |token: u32, work: u8| {
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&token.to_be_bytes());
            ChatRequest::order(&me.public_key(), &t, b"a commit".to_vec(), work).unwrap()
        };
        let mallory = Requester::peer("test", b"mallory");
        // Made before they are sent, so the burst arrives faster than the limit refills. With
        // work while it could still win; the rest, without, are refused either way.
        let offers: Vec<Vec<u8>> = (0..1_000)
            .map(|n| {
                let work = if n < 70 { order::ORDER_WORK_BITS } else { 0 };
                offer(n, work).to_bytes()
            })
            .collect();
        let mut ordered = 0;
        for (n, o) in offers.iter().enumerate() {
            match s.serve(mallory, o) {
                ChatResponse::Ordered => ordered += 1,
                ChatResponse::Refused { code, .. } => assert_eq!(code, "rate_limited"),
                ChatResponse::WorkNeeded { .. } if n >= 70 => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(
            ordered <= OFFERS_PER_REQUESTER.0 as usize + 1,
            "{ordered} ordered"
        );
        assert_eq!(s.order.len(), ordered);
        // The members of a real group, elsewhere, still order their commits.
        let member = Requester::peer("test", b"a member");
        assert_eq!(
            s.serve(member, &offer(5_000, order::ORDER_WORK_BITS).to_bytes()),
            ChatResponse::Ordered
        );
    }
}
