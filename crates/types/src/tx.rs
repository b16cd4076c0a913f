//! Transactions: the signed envelope, the body, and the actions.
//!
//! Wire form (version 1):
//! - envelope: `version:u8 (=1) || body_len:u32 || body_bytes || signature:[u8;64]`;
//! - body: `version:u8 (=1) || account:PublicKey || nonce:u64 || max_fee:u128 || tip:u128 ||
//!   expires_at_height:u64 || action:Action`;
//! - the signature covers `blake3("starling/tx/v1" || chain_id(encoded) || body_bytes)`.
//!
//! `body_bytes` travel verbatim: the hash and the signature are always computed over the bytes
//! that were received, never over a re-encoding.

use crate::ballots::Ballot;
use crate::codec::{put, Decode, DecodeError, Encode, Reader};
use crate::hash::Hash;
use crate::keys::{AccountId, KeyType, PublicKey, Signature};
use crate::proposals::GovAct;
use std::fmt;

/// Largest encoded envelope accepted anywhere.
pub const MAX_TX_BYTES: usize = 8 * 1024;
/// Largest post text in bytes (the grapheme limit is a ledger rule).
pub const MAX_TEXT_BYTES: usize = 4096;
pub const MAX_LANGS: usize = 3;
pub const MAX_LANG_BYTES: usize = 16;
pub const MAX_DISPLAY_NAME_BYTES: usize = 256;
pub const MAX_BIO_BYTES: usize = 1024;
pub const MAX_URL_BYTES: usize = 256;
pub const MAX_HANDLE_BYTES: usize = 64;
/// Longest validator transport address (`host:port`).
pub const MAX_ADDRESS_BYTES: usize = 128;
pub const MAX_CHAIN_ID_BYTES: usize = 32;
/// Chat devices an account may publish (rule D1).
pub const MAX_CHAT_DEVICES: usize = 8;
/// Mailbox relays one chat device may name.
pub const MAX_CHAT_RELAYS: usize = 4;

const TX_VERSION: u8 = 1;
const SIGNING_DOMAIN: &[u8] = b"starling/tx/v1";

/// Names one network; part of every signature so a transaction cannot be replayed elsewhere.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ChainId(String);

impl ChainId {
    pub fn new(s: &str) -> Result<Self, DecodeError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_CHAIN_ID_BYTES
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if ok {
            Ok(ChainId(s.to_owned()))
        } else {
            Err(DecodeError::InvalidValue(
                "chain id (1-32 of [A-Za-z0-9._-])",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Encode for ChainId {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u8(out, self.0.len() as u8);
        out.extend_from_slice(self.0.as_bytes());
    }
}

impl Decode for ChainId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.u8()? as usize;
        if len > MAX_CHAIN_ID_BYTES {
            return Err(DecodeError::TooLong {
                what: "chain id",
                len,
                max: MAX_CHAIN_ID_BYTES,
            });
        }
        let s =
            std::str::from_utf8(r.take(len)?).map_err(|_| DecodeError::InvalidUtf8("chain id"))?;
        ChainId::new(s)
    }
}

/// Assets on the ledger. VOTE credits are not an asset: they cannot be transferred.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Asset {
    /// The spending coin; pays fees.
    Spend = 0,
    /// The universal reward coin.
    Urc = 1,
    /// Fixed-cap, burn-only.
    Core = 2,
}

impl Asset {
    pub const ALL: [Asset; 3] = [Asset::Spend, Asset::Urc, Asset::Core];
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Encode for Asset {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u8(out, *self as u8);
    }
}

impl Decode for Asset {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Asset::Spend),
            1 => Ok(Asset::Urc),
            2 => Ok(Asset::Core),
            tag => Err(DecodeError::InvalidTag { what: "asset", tag }),
        }
    }
}

/// A post is named by its author and the nonce of the transaction that created it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PostId {
    pub author: AccountId,
    pub seq: u64,
}

impl Encode for PostId {
    fn encode(&self, out: &mut Vec<u8>) {
        self.author.encode(out);
        put::u64(out, self.seq);
    }
}

impl Decode for PostId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PostId {
            author: PublicKey::decode(r)?,
            seq: r.u64()?,
        })
    }
}

/// What a transaction does. Tags are part of the wire format and never reused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Action {
    /// tag 1
    Post {
        text: String,
        reply_to: Option<PostId>,
        quote_of: Option<PostId>,
        langs: Vec<String>,
    },
    /// tag 2
    EditPost { post: PostId, text: String },
    /// tag 3
    DeletePost { post: PostId },
    /// tag 4
    Repost { post: PostId },
    /// tag 5
    Unrepost { post: PostId },
    /// tag 6
    Like { post: PostId },
    /// tag 7
    Unlike { post: PostId },
    /// tag 8
    Follow { target: AccountId },
    /// tag 9
    Unfollow { target: AccountId },
    /// tag 10
    Block { target: AccountId },
    /// tag 11
    Unblock { target: AccountId },
    /// tag 12
    Mute { target: AccountId },
    /// tag 13
    Unmute { target: AccountId },
    /// tag 14
    SetProfile {
        display_name: String,
        bio: String,
        avatar_url: String,
    },
    /// tag 15
    RegisterHandle { handle: String },
    /// tag 16
    Transfer {
        asset: Asset,
        to: AccountId,
        amount: u128,
    },
    /// tag 17: bond the network's validator bond and join the validator registry on the
    /// global shard with an Ed25519 consensus key and the address its transport listens on.
    /// `proof` is the consensus key's signature over [`validator_pop_message`]: only the
    /// holder of a key can register it, and only for this account on this chain.
    RegisterValidator {
        consensus_key: PublicKey,
        address: String,
        proof: Signature,
    },
    /// tag 18: leave the registry; the bond is returned.
    RetireValidator,
    /// tag 19: publish (or replace) one chat device in the account's key directory entry.
    SetChatDevice { device: ChatDevice },
    /// tag 20: withdraw a chat device from the key directory.
    RemoveChatDevice { id: u32 },
    /// tag 21: a foundation's registrar admits `member` as a verified member (rule FM1).
    AdmitMember { member: AccountId },
    /// tag 22: a foundation's registrar revokes one of its members (rule FM1).
    RevokeMember { member: AccountId },
    /// tag 23: the sender gives up its membership (rule FM2).
    LeaveFoundation,
    /// tag 24: set aside `amount` SPEND that pays `account`'s base fees (rule SP1).
    Sponsor { account: AccountId, amount: u128 },
    /// tag 25: stop sponsoring `account`; what is left comes back (rule SP2).
    EndSponsorship { account: AccountId },
    /// tag 26: clear `holder`'s seat in foundation `foundation`'s offices, whose term has
    /// ended (rule OF2; anyone may).
    ExpireSeat { foundation: u16, holder: AccountId },
    /// tags 27 to 34: a governance act, sent to the global shard (rules GV2–GV8, BL1, BL2; tag
    /// `FIRST_GOV_TAG + act.index()`).
    Govern(GovAct),
    /// tag 35: a member's anonymous ballot, sent from its fresh ballot key with no fee; runs
    /// on the global shard (rules BL3, BL4).
    Ballot(Ballot),
}

/// The tag of the first governance act ([`Action::Govern`]).
pub const FIRST_GOV_TAG: u8 = 27;
/// The tag of [`Action::Ballot`].
pub const BALLOT_TAG: u8 = FIRST_GOV_TAG + GovAct::COUNT;

/// Where a node is reached on the open network: its node key (the libp2p identity) and a
/// `host:port` address.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Endpoint {
    pub node: PublicKey,
    pub address: String,
}

impl Endpoint {
    /// Parses `<node key>@<host:port>`; node keys are Ed25519.
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let (node, address) = s
            .split_once('@')
            .ok_or_else(|| format!("`{s}` is not <node key>@<host:port>"))?;
        let node = PublicKey::from_text(node).map_err(|e| format!("`{s}`: {e}"))?;
        if node.key_type != KeyType::Ed25519 {
            return Err(format!("`{s}`: node keys are Ed25519"));
        }
        if address
            .rsplit_once(':')
            .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        {
            return Err(format!("`{s}`: the address is not host:port"));
        }
        Ok(Endpoint {
            node,
            address: address.to_string(),
        })
    }
}

/// `<node key>@<host:port>`, as [`Endpoint::parse`] reads it.
impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.node.to_text(), self.address)
    }
}

impl Encode for Endpoint {
    fn encode(&self, out: &mut Vec<u8>) {
        self.node.encode(out);
        put::string(out, &self.address);
    }
}

impl Decode for Endpoint {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Endpoint {
            node: PublicKey::decode(r)?,
            address: r.string("endpoint address", MAX_ADDRESS_BYTES)?,
        })
    }
}

/// A chat device as the key directory lists it: an MLS member of its account's chats.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChatDevice {
    /// Numbered by the account; the MLS identity is `<account>#<id>`.
    pub id: u32,
    /// The device's MLS signature key (Ed25519, 32 bytes).
    pub signature_key: [u8; 32],
    /// The opaque id of the device's mailbox (a hash of the mailbox key, unrelated to the
    /// account key).
    pub mailbox: Hash,
    /// The X25519 key senders seal each deposit to, so that no two mailboxes receive the
    /// same bytes for one group message (`None`: deposits go unsealed, as devices published
    /// before there were seal keys).
    pub seal_key: Option<[u8; 32]>,
    /// The node that holds the device, reached directly while it is online.
    pub home: Option<Endpoint>,
    /// Relays that keep the device's mail while its node is offline.
    pub relays: Vec<Endpoint>,
}

/// Device ids are below 2^31 (rule D1); in the encoding, this bit of the id says a seal key
/// follows the mailbox id, so records made before seal keys existed read as they were.
const SEAL_KEY_FLAG: u32 = 1 << 31;

impl Encode for ChatDevice {
    fn encode(&self, out: &mut Vec<u8>) {
        let flag = if self.seal_key.is_some() {
            SEAL_KEY_FLAG
        } else {
            0
        };
        put::u32(out, self.id | flag);
        out.extend_from_slice(&self.signature_key);
        self.mailbox.encode(out);
        if let Some(k) = &self.seal_key {
            out.extend_from_slice(k);
        }
        put::option(out, &self.home, |o, e| e.encode(o));
        put::seq(out, &self.relays, |o, e| e.encode(o));
    }
}

impl Decode for ChatDevice {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = r.u32()?;
        let signature_key = r.array::<32>()?;
        let mailbox = Hash::decode(r)?;
        let seal_key = if id & SEAL_KEY_FLAG != 0 {
            Some(r.array::<32>()?)
        } else {
            None
        };
        Ok(ChatDevice {
            id: id & !SEAL_KEY_FLAG,
            signature_key,
            mailbox,
            seal_key,
            home: r.option("home node", Endpoint::decode)?,
            relays: r.seq("mailbox relays", MAX_CHAT_RELAYS, Endpoint::decode)?,
        })
    }
}

impl Encode for Action {
    fn encode(&self, out: &mut Vec<u8>) {
        // The tag first (from the table of actions), then the variant's fields.
        put::u8(out, self.kind().tag);
        match self {
            Action::Post {
                text,
                reply_to,
                quote_of,
                langs,
            } => {
                put::string(out, text);
                put::option(out, reply_to, |o, p| p.encode(o));
                put::option(out, quote_of, |o, p| p.encode(o));
                put::seq(out, langs, |o, l| put::string(o, l));
            }
            Action::EditPost { post, text } => {
                post.encode(out);
                put::string(out, text);
            }
            Action::DeletePost { post }
            | Action::Repost { post }
            | Action::Unrepost { post }
            | Action::Like { post }
            | Action::Unlike { post } => post.encode(out),
            Action::Follow { target }
            | Action::Unfollow { target }
            | Action::Block { target }
            | Action::Unblock { target }
            | Action::Mute { target }
            | Action::Unmute { target } => target.encode(out),
            Action::SetProfile {
                display_name,
                bio,
                avatar_url,
            } => {
                put::string(out, display_name);
                put::string(out, bio);
                put::string(out, avatar_url);
            }
            Action::RegisterHandle { handle } => {
                put::string(out, handle);
            }
            Action::Transfer { asset, to, amount } => {
                asset.encode(out);
                to.encode(out);
                put::u128(out, *amount);
            }
            Action::RegisterValidator {
                consensus_key,
                address,
                proof,
            } => {
                consensus_key.encode(out);
                put::string(out, address);
                proof.encode(out);
            }
            Action::RetireValidator => {}
            Action::SetChatDevice { device } => {
                device.encode(out);
            }
            Action::RemoveChatDevice { id } => {
                put::u32(out, *id);
            }
            Action::AdmitMember { member } | Action::RevokeMember { member } => {
                member.encode(out);
            }
            Action::LeaveFoundation => {}
            Action::Sponsor { account, amount } => {
                account.encode(out);
                put::u128(out, *amount);
            }
            Action::EndSponsorship { account } => {
                account.encode(out);
            }
            Action::ExpireSeat { foundation, holder } => {
                put::u16(out, *foundation);
                holder.encode(out);
            }
            Action::Govern(act) => act.encode_body(out),
            Action::Ballot(b) => b.encode(out),
        }
    }
}

/// Tags as in [`crate::actions::ACTIONS`].
impl Decode for Action {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8()?;
        Ok(match tag {
            1 => Action::Post {
                text: r.string("post text", MAX_TEXT_BYTES)?,
                reply_to: r.option("reply_to", PostId::decode)?,
                quote_of: r.option("quote_of", PostId::decode)?,
                langs: r.seq("langs", MAX_LANGS, |r| r.string("lang", MAX_LANG_BYTES))?,
            },
            2 => Action::EditPost {
                post: PostId::decode(r)?,
                text: r.string("post text", MAX_TEXT_BYTES)?,
            },
            3 => Action::DeletePost {
                post: PostId::decode(r)?,
            },
            4 => Action::Repost {
                post: PostId::decode(r)?,
            },
            5 => Action::Unrepost {
                post: PostId::decode(r)?,
            },
            6 => Action::Like {
                post: PostId::decode(r)?,
            },
            7 => Action::Unlike {
                post: PostId::decode(r)?,
            },
            8 => Action::Follow {
                target: PublicKey::decode(r)?,
            },
            9 => Action::Unfollow {
                target: PublicKey::decode(r)?,
            },
            10 => Action::Block {
                target: PublicKey::decode(r)?,
            },
            11 => Action::Unblock {
                target: PublicKey::decode(r)?,
            },
            12 => Action::Mute {
                target: PublicKey::decode(r)?,
            },
            13 => Action::Unmute {
                target: PublicKey::decode(r)?,
            },
            14 => Action::SetProfile {
                display_name: r.string("display name", MAX_DISPLAY_NAME_BYTES)?,
                bio: r.string("bio", MAX_BIO_BYTES)?,
                avatar_url: r.string("avatar url", MAX_URL_BYTES)?,
            },
            15 => Action::RegisterHandle {
                handle: r.string("handle", MAX_HANDLE_BYTES)?,
            },
            16 => Action::Transfer {
                asset: Asset::decode(r)?,
                to: PublicKey::decode(r)?,
                amount: r.u128()?,
            },
            17 => Action::RegisterValidator {
                consensus_key: PublicKey::decode(r)?,
                address: r.string("validator address", MAX_ADDRESS_BYTES)?,
                proof: Signature::decode(r)?,
            },
            18 => Action::RetireValidator,
            19 => Action::SetChatDevice {
                device: ChatDevice::decode(r)?,
            },
            20 => Action::RemoveChatDevice { id: r.u32()? },
            21 => Action::AdmitMember {
                member: PublicKey::decode(r)?,
            },
            22 => Action::RevokeMember {
                member: PublicKey::decode(r)?,
            },
            23 => Action::LeaveFoundation,
            24 => Action::Sponsor {
                account: PublicKey::decode(r)?,
                amount: r.u128()?,
            },
            25 => Action::EndSponsorship {
                account: PublicKey::decode(r)?,
            },
            26 => Action::ExpireSeat {
                foundation: r.u16()?,
                holder: PublicKey::decode(r)?,
            },
            tag if (FIRST_GOV_TAG..FIRST_GOV_TAG + GovAct::COUNT).contains(&tag) => {
                Action::Govern(GovAct::decode_body(tag - FIRST_GOV_TAG, r)?)
            }
            BALLOT_TAG => Action::Ballot(Ballot::decode(r)?),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "action",
                    tag,
                })
            }
        })
    }
}

/// The signed content of a transaction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TxBody {
    pub account: AccountId,
    pub nonce: u64,
    /// The most the sender pays in total (base fee for the gas used, plus tip), in SPEND units.
    pub max_fee: u128,
    /// Paid to the block proposer on top of the base fee.
    pub tip: u128,
    /// The last height at which the transaction may be included.
    pub expires_at_height: u64,
    pub action: Action,
}

impl TxBody {
    /// The shard that runs it (rule T1): its account's home shard, or the global shard for
    /// a ballot, whose sender is no account.
    pub fn home(&self, map: &crate::ShardMap) -> crate::ShardId {
        match self.action {
            Action::Ballot(_) => crate::ShardId::GLOBAL,
            _ => map.shard_of(&self.account),
        }
    }
}

impl Encode for TxBody {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u8(out, TX_VERSION);
        self.account.encode(out);
        put::u64(out, self.nonce);
        put::u128(out, self.max_fee);
        put::u128(out, self.tip);
        put::u64(out, self.expires_at_height);
        self.action.encode(out);
    }
}

impl Decode for TxBody {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8()?;
        if version != TX_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "tx body",
                version,
            });
        }
        Ok(TxBody {
            account: PublicKey::decode(r)?,
            nonce: r.u64()?,
            max_fee: r.u128()?,
            tip: r.u128()?,
            expires_at_height: r.u64()?,
            action: Action::decode(r)?,
        })
    }
}

/// The digest a transaction signature covers.
pub fn signing_hash(chain_id: &ChainId, body_bytes: &[u8]) -> Hash {
    Hash::of(&[SIGNING_DOMAIN, &chain_id.to_bytes(), body_bytes])
}

/// What a validator's consensus key signs to prove it holds the key it registers (rule V1):
/// `blake3("starling/validator-pop/v1" || chain_id || account || consensus_key)`.
pub fn validator_pop_message(
    chain_id: &ChainId,
    account: &AccountId,
    consensus_key: &PublicKey,
) -> Hash {
    Hash::of(&[
        b"starling/validator-pop/v1",
        &chain_id.to_bytes(),
        &account.to_bytes(),
        &consensus_key.to_bytes(),
    ])
}

/// A transaction as it travels: the body bytes verbatim and the signature over them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TxEnvelope {
    pub body_bytes: Vec<u8>,
    pub signature: Signature,
}

impl TxEnvelope {
    /// The transaction's identity: the hash of its whole encoded envelope.
    pub fn hash(&self) -> Hash {
        // The encoding, hashed in pieces instead of copied.
        let mut header = [TX_VERSION, 0, 0, 0, 0];
        header[1..].copy_from_slice(&(self.body_bytes.len() as u32).to_be_bytes());
        Hash::of(&[&header, &self.body_bytes, &self.signature.0])
    }

    pub fn body(&self) -> Result<TxBody, DecodeError> {
        TxBody::from_bytes(&self.body_bytes)
    }

    pub fn encoded_len(&self) -> usize {
        1 + 4 + self.body_bytes.len() + 64
    }
}

impl Encode for TxEnvelope {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u8(out, TX_VERSION);
        put::bytes32(out, &self.body_bytes);
        self.signature.encode(out);
    }
}

impl Decode for TxEnvelope {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8()?;
        if version != TX_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "tx envelope",
                version,
            });
        }
        let body_bytes = r.bytes32("tx body", MAX_TX_BYTES - 69)?.to_vec();
        Ok(TxEnvelope {
            body_bytes,
            signature: Signature::decode(r)?,
        })
    }
}

/// A decoded transaction: envelope, parsed body and the digest its signature covers.
#[derive(Clone, Debug)]
pub struct Tx {
    pub envelope: TxEnvelope,
    pub body: TxBody,
    pub hash: Hash,
    pub signing_hash: Hash,
}

impl Tx {
    /// Decodes and parses an envelope (no signature check; that is batched per block).
    pub fn parse(chain_id: &ChainId, envelope: TxEnvelope) -> Result<Tx, DecodeError> {
        let body = envelope.body()?;
        let signing_hash = signing_hash(chain_id, &envelope.body_bytes);
        let hash = envelope.hash();
        Ok(Tx {
            envelope,
            body,
            hash,
            signing_hash,
        })
    }
}
