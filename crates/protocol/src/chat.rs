//! The chat protocol between nodes, `/starling/chat/2`: requests and responses with their
//! bounded codecs (what each request means: `starling_chat_relay`, which answers them, and `starling_net::chat`, which carries them).

use starling_crypto::SecretKey;
use starling_types::codec::put;
use starling_types::{AccountId, Decode, DecodeError, Encode, Hash, PublicKey, Reader, Signature};
use std::time::Duration;

/// Largest envelope (one sealed chat message) a mailbox takes.
pub const MAX_ENVELOPE_BYTES: usize = 300 * 1024;
/// Most messages a mailbox holds.
pub const MAX_MAILBOX_MESSAGES: usize = 10_000;
/// Largest key package.
pub const MAX_KEY_PACKAGE_BYTES: usize = 16 * 1024;

/// Milliseconds since the Unix epoch by this machine's clock (0 before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub const PROTOCOL: &str = "/starling/chat/2";
/// Largest request and response on the wire.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Most envelopes in one deposit.
pub const MAX_DEPOSIT: usize = 256;
/// Most key packages in one upload.
pub const MAX_PUT_KEY_PACKAGES: usize = 100;
/// Most bytes of mail in one fetch answer.
pub const MAX_FETCH_BYTES: usize = 4 * 1024 * 1024;
/// How far a fetch's signed time may be from the relay's clock.
pub const FETCH_WINDOW: Duration = Duration::from_secs(600);
/// How long a request may take before it fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The opaque id of the mailbox whose key is `key`.
pub fn mailbox_id(key: &PublicKey) -> Hash {
    Hash(blake3::derive_key("starling mailbox id v1", &key.bytes))
}

/// What a fetch signature covers.
pub fn fetch_message(relay: &PublicKey, key: &PublicKey, after: u64, at_ms: u64) -> Vec<u8> {
    let mut m = b"starling mailbox fetch v1".to_vec();
    relay.encode(&mut m);
    key.encode(&mut m);
    put::u64(&mut m, after);
    put::u64(&mut m, at_ms);
    m
}

/// What a device signs to put `packages` (its key packages) at `relay` at `at_ms`.
pub fn put_message(
    relay: &PublicKey,
    account: &AccountId,
    device: u32,
    packages: &[Vec<u8>],
    at_ms: u64,
) -> Vec<u8> {
    let mut m = b"starling key packages put v1".to_vec();
    relay.encode(&mut m);
    account.encode(&mut m);
    put::u32(&mut m, device);
    let mut h = blake3::Hasher::new();
    for p in packages {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p);
    }
    m.extend_from_slice(h.finalize().as_bytes());
    put::u64(&mut m, at_ms);
    m
}

/// Largest commit a relay orders (and keeps for members who missed it): any envelope.
pub const MAX_COMMIT_BYTES: usize = MAX_ENVELOPE_BYTES;

/// What a member signs to offer `commit` (its bytes) for the group epoch named `epoch` at
/// `relay`.
pub fn order_message(relay: &PublicKey, epoch: &Hash, commit: &[u8]) -> Vec<u8> {
    let mut m = b"starling commit order v3".to_vec();
    relay.encode(&mut m);
    epoch.encode(&mut m);
    m.extend_from_slice(blake3::hash(commit).as_bytes());
    m
}

/// Leading zero bits of the proof of work `nonce` makes for a new group epoch named `epoch`
/// at `relay`: a relay asks for some before it remembers a name it has not seen, so that
/// filling its commit order with made-up epochs costs work (see [`ChatResponse::WorkNeeded`]).
pub fn order_work_bits(relay: &PublicKey, epoch: &Hash, nonce: u64) -> u32 {
    work_bits(&order_work_prefix(relay, epoch), nonce)
}

/// Proof of work a relay asks of a new epoch while its commit order is nearly empty (about
/// 65,000 hashes, a few milliseconds); members offer this much to begin with.
pub const ORDER_WORK_BITS: u8 = 16;

/// Most proof of work a member does for one offer: a relay asking for more is refused.
pub const MAX_ORDER_WORK_BITS: u8 = 26;

/// The first nonce from `start` on whose [`order_work_bits`] reach `bits` (about 2^bits
/// hashes; `bits` is capped at [`MAX_ORDER_WORK_BITS`]).
pub fn find_order_work(relay: &PublicKey, epoch: &Hash, bits: u8, start: u64) -> u64 {
    let bits = u32::from(bits.min(MAX_ORDER_WORK_BITS));
    let prefix = order_work_prefix(relay, epoch);
    let mut nonce = start;
    while work_bits(&prefix, nonce) < bits {
        nonce = nonce.wrapping_add(1);
    }
    nonce
}

fn order_work_prefix(relay: &PublicKey, epoch: &Hash) -> blake3::Hasher {
    let mut h = blake3::Hasher::new_derive_key("starling commit order work v1");
    let mut m = Vec::with_capacity(80);
    relay.encode(&mut m);
    epoch.encode(&mut m);
    h.update(&m);
    h
}

fn work_bits(prefix: &blake3::Hasher, nonce: u64) -> u32 {
    let mut h = prefix.clone();
    h.update(&nonce.to_le_bytes());
    let out = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&out.as_bytes()[..16]);
    u128::from_be_bytes(first).leading_zeros()
}

/// What a member signs to ask `relay` for the winning commit of the epoch named `epoch`.
pub fn winner_message(relay: &PublicKey, epoch: &Hash) -> Vec<u8> {
    let mut m = b"starling commit winner v1".to_vec();
    relay.encode(&mut m);
    epoch.encode(&mut m);
    m
}

/// The key of a group epoch at its delivery relay, derived from the epoch token that only
/// the epoch's members hold: its public half names the epoch (so the relay learns neither
/// the group nor its members), and it signs the members' offers (so nobody else can take
/// the epoch).
pub fn epoch_key(token: &[u8; 32]) -> Result<SecretKey, starling_crypto::SigError> {
    SecretKey::from_seed(
        starling_types::KeyType::Ed25519,
        &blake3::derive_key("starling commit order key v2", token),
    )
}

/// The name relays know the epoch whose token is `token` by (the public half of its
/// [`epoch_key`]), which proof of work is bound to.
pub fn order_epoch(token: &[u8; 32]) -> Result<Hash, starling_crypto::SigError> {
    Ok(Hash(epoch_key(token)?.public_key().bytes))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatRequest {
    Deposit {
        mailbox: Hash,
        envelopes: Vec<Vec<u8>>,
    },
    /// Mail after `after`; everything up to `after` is acknowledged (taken) by this request.
    Fetch {
        key: PublicKey,
        after: u64,
        at_ms: u64,
        signature: Signature,
    },
    /// A device's key packages (none: just say how many are kept), signed by the device's
    /// signature key (the one the key directory lists) over [`put_message`], fresh within
    /// [`FETCH_WINDOW`].
    PutKeyPackages {
        account: AccountId,
        device: u32,
        packages: Vec<Vec<u8>>,
        at_ms: u64,
        signature: Signature,
    },
    TakeKeyPackage {
        account: AccountId,
        device: u32,
    },
    /// A commit offered for a group epoch: `epoch` is the epoch key's public half
    /// ([`epoch_key`]), which signs [`order_message`]. Answered `Ordered` if it won the
    /// epoch, else `Taken` with the commit that did; `WorkNeeded` if the epoch is new to the
    /// relay and `work` (a nonce, [`order_work_bits`]) is not enough for it. Offers of
    /// earlier versions carry no work (decoded as 0).
    OrderCommit {
        epoch: Hash,
        commit: Vec<u8>,
        signature: Signature,
        work: u64,
    },
    /// The commit that won the epoch named `epoch` (asked by a member who never received it),
    /// signed by the epoch's key over [`winner_message`]. Answered `Taken`.
    WinnerOf {
        epoch: Hash,
        signature: Signature,
    },
}

impl ChatRequest {
    /// A fetch of `mailbox_key`'s mail from `relay`, signed now.
    pub fn fetch(relay: &PublicKey, mailbox_key: &SecretKey, after: u64) -> ChatRequest {
        let key = mailbox_key.public_key();
        let at_ms = now_ms();
        let signature = mailbox_key.sign(&fetch_message(relay, &key, after, at_ms));
        ChatRequest::Fetch {
            key,
            after,
            at_ms,
            signature,
        }
    }

    /// An offer of `commit` at `relay` for the epoch whose token (only its members hold it)
    /// is `token`, with `work_bits` of proof of work (see [`find_order_work`]).
    pub fn order(
        relay: &PublicKey,
        token: &[u8; 32],
        commit: Vec<u8>,
        work_bits: u8,
    ) -> Result<ChatRequest, starling_crypto::SigError> {
        let work = if work_bits == 0 {
            0
        } else {
            find_order_work(relay, &order_epoch(token)?, work_bits, 0)
        };
        Self::order_worked(relay, token, commit, work)
    }

    /// As [`Self::order`], with work already found for this relay and epoch (see
    /// [`find_order_work`] and [`order_epoch`]).
    pub fn order_worked(
        relay: &PublicKey,
        token: &[u8; 32],
        commit: Vec<u8>,
        work: u64,
    ) -> Result<ChatRequest, starling_crypto::SigError> {
        let key = epoch_key(token)?;
        let epoch = Hash(key.public_key().bytes);
        let signature = key.sign(&order_message(relay, &epoch, &commit));
        Ok(ChatRequest::OrderCommit {
            epoch,
            commit,
            signature,
            work,
        })
    }

    /// A question to `relay` for the winning commit of the epoch whose token is `token`.
    pub fn winner_of(
        relay: &PublicKey,
        token: &[u8; 32],
    ) -> Result<ChatRequest, starling_crypto::SigError> {
        let key = epoch_key(token)?;
        let epoch = Hash(key.public_key().bytes);
        let signature = key.sign(&winner_message(relay, &epoch));
        Ok(ChatRequest::WinnerOf { epoch, signature })
    }
}

impl Encode for ChatRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ChatRequest::Deposit { mailbox, envelopes } => {
                put::u8(out, 1);
                mailbox.encode(out);
                put::seq(out, envelopes, |o, e| put::bytes32(o, e));
            }
            ChatRequest::Fetch {
                key,
                after,
                at_ms,
                signature,
            } => {
                put::u8(out, 2);
                key.encode(out);
                put::u64(out, *after);
                put::u64(out, *at_ms);
                signature.encode(out);
            }
            ChatRequest::PutKeyPackages {
                account,
                device,
                packages,
                at_ms,
                signature,
            } => {
                put::u8(out, 3);
                account.encode(out);
                put::u32(out, *device);
                put::seq(out, packages, |o, p| put::bytes32(o, p));
                put::u64(out, *at_ms);
                signature.encode(out);
            }
            ChatRequest::TakeKeyPackage { account, device } => {
                put::u8(out, 4);
                account.encode(out);
                put::u32(out, *device);
            }
            ChatRequest::OrderCommit {
                epoch,
                commit,
                signature,
                work,
            } => {
                put::u8(out, 7);
                epoch.encode(out);
                put::bytes32(out, commit);
                signature.encode(out);
                put::u64(out, *work);
            }
            ChatRequest::WinnerOf { epoch, signature } => {
                put::u8(out, 6);
                epoch.encode(out);
                signature.encode(out);
            }
        }
    }
}

impl Decode for ChatRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => ChatRequest::Deposit {
                mailbox: Hash::decode(r)?,
                envelopes: r.seq("envelopes", MAX_DEPOSIT, |r| {
                    r.bytes32("envelope", MAX_ENVELOPE_BYTES)
                        .map(<[u8]>::to_vec)
                })?,
            },
            2 => ChatRequest::Fetch {
                key: PublicKey::decode(r)?,
                after: r.u64()?,
                at_ms: r.u64()?,
                signature: Signature::decode(r)?,
            },
            3 => ChatRequest::PutKeyPackages {
                account: PublicKey::decode(r)?,
                device: r.u32()?,
                packages: r.seq("key packages", MAX_PUT_KEY_PACKAGES, |r| {
                    r.bytes32("key package", MAX_KEY_PACKAGE_BYTES)
                        .map(<[u8]>::to_vec)
                })?,
                at_ms: r.u64()?,
                signature: Signature::decode(r)?,
            },
            4 => ChatRequest::TakeKeyPackage {
                account: PublicKey::decode(r)?,
                device: r.u32()?,
            },
            tag @ (5 | 7) => ChatRequest::OrderCommit {
                epoch: Hash::decode(r)?,
                commit: r.bytes32("commit", MAX_COMMIT_BYTES)?.to_vec(),
                signature: Signature::decode(r)?,
                work: if tag == 7 { r.u64()? } else { 0 },
            },
            6 => ChatRequest::WinnerOf {
                epoch: Hash::decode(r)?,
                signature: Signature::decode(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "chat request",
                    tag,
                })
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatResponse {
    Stored {
        first: u64,
    },
    Mail {
        mail: Vec<(u64, Vec<u8>)>,
        more: bool,
    },
    KeyPackagesKept {
        count: u32,
    },
    KeyPackage(Vec<u8>),
    Ordered,
    Refused {
        code: String,
        message: String,
    },
    /// Another commit won the epoch: this one (empty if the relay no longer keeps it).
    Taken {
        commit: Vec<u8>,
    },
    /// The offered epoch is new here and needs a proof of work of `bits` leading zero bits
    /// ([`order_work_bits`]): offer it again with one.
    WorkNeeded {
        bits: u8,
    },
}

impl ChatResponse {
    pub fn refused(code: &str, message: impl Into<String>) -> ChatResponse {
        ChatResponse::Refused {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl Encode for ChatResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ChatResponse::Stored { first } => {
                put::u8(out, 1);
                put::u64(out, *first);
            }
            ChatResponse::Mail { mail, more } => {
                put::u8(out, 2);
                put::seq(out, mail, |o, (seq, bytes)| {
                    put::u64(o, *seq);
                    put::bytes32(o, bytes);
                });
                put::bool(out, *more);
            }
            ChatResponse::KeyPackagesKept { count } => {
                put::u8(out, 3);
                put::u32(out, *count);
            }
            ChatResponse::KeyPackage(kp) => {
                put::u8(out, 4);
                put::bytes32(out, kp);
            }
            ChatResponse::Ordered => put::u8(out, 5),
            ChatResponse::Refused { code, message } => {
                put::u8(out, 6);
                put::string(out, code);
                put::string(out, message);
            }
            ChatResponse::Taken { commit } => {
                put::u8(out, 7);
                put::bytes32(out, commit);
            }
            ChatResponse::WorkNeeded { bits } => {
                put::u8(out, 8);
                put::u8(out, *bits);
            }
        }
    }
}

impl Decode for ChatResponse {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => ChatResponse::Stored { first: r.u64()? },
            2 => ChatResponse::Mail {
                mail: r.seq("mail", MAX_MAILBOX_MESSAGES, |r| {
                    Ok((
                        r.u64()?,
                        r.bytes32("envelope", MAX_ENVELOPE_BYTES)?.to_vec(),
                    ))
                })?,
                more: r.bool()?,
            },
            3 => ChatResponse::KeyPackagesKept { count: r.u32()? },
            4 => {
                ChatResponse::KeyPackage(r.bytes32("key package", MAX_KEY_PACKAGE_BYTES)?.to_vec())
            }
            5 => ChatResponse::Ordered,
            6 => ChatResponse::Refused {
                code: r.string("code", 64)?,
                message: r.string("message", 1024)?,
            },
            7 => ChatResponse::Taken {
                commit: r.bytes32("commit", MAX_COMMIT_BYTES)?.to_vec(),
            },
            8 => ChatResponse::WorkNeeded { bits: r.u8()? },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "chat response",
                    tag,
                })
            }
        })
    }
}

/// Who sent a chat request, as far as the node can tell: what per-requester limits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Requester {
    /// The node itself (its own devices): not limited.
    Local,
    /// Someone else, by a digest of what identifies them: a peer's network identity, or an
    /// HTTP client's address.
    Peer(Hash),
}

impl Requester {
    /// The requester `what` names (a peer id's bytes, an address's text).
    pub fn peer(kind: &str, what: &[u8]) -> Requester {
        Requester::Peer(Hash::of(&[
            b"starling/chat/requester",
            kind.as_bytes(),
            what,
        ]))
    }
}

/// Whatever answers chat requests on a node (its mailboxes, key packages and commit order):
/// the open network hands it each request's bytes, off its event loop, and sends the answer
/// back.
pub trait ChatService: Send + Sync + std::fmt::Debug {
    /// Answers one request's bytes from `from`. Never panics; anything wrong is a `Refused`.
    fn serve(&self, from: Requester, request: &[u8]) -> ChatResponse;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn requests_and_responses_round_trip_and_refuse_garbage() {
        let key = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[3; 32]).unwrap();
        let reqs = vec![
            ChatRequest::Deposit {
                mailbox: Hash([1; 32]),
                envelopes: vec![b"a".to_vec(), vec![]],
            },
            ChatRequest::fetch(&key.public_key(), &key, 7),
            ChatRequest::PutKeyPackages {
                account: key.public_key(),
                device: 2,
                packages: vec![b"kp".to_vec()],
                at_ms: 7,
                signature: Signature([1; 64]),
            },
            ChatRequest::TakeKeyPackage {
                account: key.public_key(),
                device: 2,
            },
            ChatRequest::order(&key.public_key(), &[5; 32], b"a commit".to_vec(), 8).unwrap(),
            ChatRequest::winner_of(&key.public_key(), &[5; 32]).unwrap(),
        ];
        for r in &reqs {
            let b = r.to_bytes();
            assert_eq!(&ChatRequest::from_bytes(&b).unwrap(), r);
            for cut in 0..b.len() {
                assert!(ChatRequest::from_bytes(&b[..cut]).is_err());
            }
        }
        let resps = vec![
            ChatResponse::Stored { first: 4 },
            ChatResponse::Mail {
                mail: vec![(1, b"x".to_vec())],
                more: true,
            },
            ChatResponse::KeyPackagesKept { count: 3 },
            ChatResponse::KeyPackage(b"kp".to_vec()),
            ChatResponse::Ordered,
            ChatResponse::refused("x", "y"),
            ChatResponse::Taken {
                commit: b"c".to_vec(),
            },
            ChatResponse::WorkNeeded { bits: 20 },
        ];
        for r in &resps {
            let b = r.to_bytes();
            assert_eq!(&ChatResponse::from_bytes(&b).unwrap(), r);
        }
        // An offer made with work carries it.
        let ChatRequest::OrderCommit { epoch, work, .. } = &reqs[4] else {
            panic!("not an offer")
        };
        assert!(order_work_bits(&key.public_key(), epoch, *work) >= 8);
        // Over the deposit bound.
        let mut b = vec![1u8];
        Hash([0; 32]).encode(&mut b);
        put::u32(&mut b, MAX_DEPOSIT as u32 + 1);
        assert!(ChatRequest::from_bytes(&b).is_err());
    }
}
