//! Light-client proofs: any record of a shard's state, with what it takes to check it from the
//! committee's keys alone (`GET /api/v1/proofs/{kind}/...`, checked by `starling proof`).
//!
//! A proof carries the record's encoded value (or its absence), the state proof of that value
//! under a block's state root, the block's header, the finalization certificate of that block
//! and the epoch's committee. Whoever checks it recomputes the state key from what it asked
//! for, decodes the header, checks the certificate against the committee it trusts for the
//! header's epoch (not the one the answer names) and the state proof against the header's
//! root. A node that lies about any part fails one of those checks: it would need a quorum of
//! the epoch's committee to sign its header.
//!
//! Committees change every epoch. A checker starts from the genesis committee (epoch 0) and
//! follows the hand-offs (`committees/{shard}/{epoch}`): epoch `e`'s committee record, proven
//! under the last block of epoch `e - 1`, which epoch `e - 1`'s committee certified
//! ([`Trusted::advance`]). A certificate is accepted only from the committee of its own epoch.

use crate::Node;
use commonware_utils::ordered::Set;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use starling_consensus::engine::{self, CertificateError};
use starling_ledger::committee::EpochSchedule;
use starling_ledger::proposals::{ProposalRecord, RollCall, Stage, Status};
use starling_ledger::records::{
    AccountRecord, ChatKeysRecord, CommitteeRecord, MemberRecord, PostRecord, ProfileRecord,
    StateKey,
};
use starling_types::{
    AccountId, BlockHeader, ChainId, Decode, Encode, Federation, Finality, Motion, PostId, ShardId,
    ShardMap,
};

/// Which record a proof is about: what the client asked for, from which it recomputes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordRef {
    Account(AccountId),
    Profile(AccountId),
    Post(PostId),
    /// follower, followee (on the follower's shard).
    Follow(AccountId, AccountId),
    Like(AccountId, PostId),
    Repost(AccountId, PostId),
    Block(AccountId, AccountId),
    ChatKeys(AccountId),
    /// A registered handle (global shard): its value is the account holding it.
    Handle(String),
    Bond(AccountId),
    /// The committee of a shard's consensus epoch (epoch 1 on: a hand-off).
    Committee(ShardId, u64),
    /// The federation the account's shard holds, read for the account: the foundation it is
    /// charged to (rule FD1).
    Charges(AccountId),
    /// An account's entry in the registry of verified members (global shard; rule FM1).
    Member(AccountId),
    /// A proposal, with its roll calls and its challenge (global shard; rules GV2–GV8).
    Proposal(u64),
}

/// The kinds of record a proof can be asked for, as they appear in the path.
pub const KINDS: &[&str] = &[
    "accounts/{key}",
    "profiles/{key}",
    "posts/{author}/{seq}",
    "follows/{follower}/{followee}",
    "likes/{account}/{author}/{seq}",
    "reposts/{account}/{author}/{seq}",
    "blocks/{account}/{blocked}",
    "chat-keys/{key}",
    "handles/{name}",
    "bonds/{key}",
    "committees/{shard}/{epoch}",
    "charges/{key}",
    "members/{key}",
    "proposals/{id}",
];

impl RecordRef {
    /// Parses `kind` and its path segments (`args`).
    pub fn parse(kind: &str, args: &[&str]) -> Result<RecordRef, String> {
        let key = |s: &str| {
            AccountId::from_text(s).map_err(|e| format!("`{s}` is not an account key: {e}"))
        };
        let post = |author: &str, seq: &str| -> Result<PostId, String> {
            Ok(PostId {
                author: key(author)?,
                seq: seq
                    .parse()
                    .map_err(|_| format!("`{seq}` is not a post number"))?,
            })
        };
        Ok(match (kind, args) {
            ("accounts", [k]) => RecordRef::Account(key(k)?),
            ("profiles", [k]) => RecordRef::Profile(key(k)?),
            ("posts", [a, n]) => RecordRef::Post(post(a, n)?),
            ("follows", [a, b]) => RecordRef::Follow(key(a)?, key(b)?),
            ("likes", [k, a, n]) => RecordRef::Like(key(k)?, post(a, n)?),
            ("reposts", [k, a, n]) => RecordRef::Repost(key(k)?, post(a, n)?),
            ("blocks", [a, b]) => RecordRef::Block(key(a)?, key(b)?),
            ("chat-keys", [k]) => RecordRef::ChatKeys(key(k)?),
            ("charges", [k]) => RecordRef::Charges(key(k)?),
            ("members", [k]) => RecordRef::Member(key(k)?),
            ("proposals", [n]) => RecordRef::Proposal(
                n.parse()
                    .map_err(|_| format!("`{n}` is not a proposal number"))?,
            ),
            ("handles", [h]) => RecordRef::Handle(
                starling_ledger::validate::handle(h.trim_start_matches('@'))
                    .map_err(|e| format!("`{h}`: {e}"))?,
            ),
            ("bonds", [k]) => RecordRef::Bond(key(k)?),
            ("committees", [s, e]) => RecordRef::Committee(
                ShardId(
                    s.parse()
                        .map_err(|_| format!("`{s}` is not a shard number"))?,
                ),
                e.parse()
                    .map_err(|_| format!("`{e}` is not an epoch number"))?,
            ),
            _ => {
                return Err(format!(
                    "no record kind `{kind}` with {} argument(s); kinds: {}",
                    args.len(),
                    KINDS.join(", ")
                ))
            }
        })
    }

    fn state_key(&self) -> StateKey<'_> {
        match self {
            RecordRef::Account(a) => StateKey::Account(a),
            RecordRef::Profile(a) => StateKey::Profile(a),
            RecordRef::Post(p) => StateKey::Post(p),
            RecordRef::Follow(a, b) => StateKey::Follow(a, b),
            RecordRef::Like(a, p) => StateKey::Like(a, p),
            RecordRef::Repost(a, p) => StateKey::Repost(a, p),
            RecordRef::Block(a, b) => StateKey::Block(a, b),
            RecordRef::ChatKeys(a) => StateKey::ChatKeys(a),
            RecordRef::Handle(h) => StateKey::Handle(h),
            RecordRef::Bond(a) => StateKey::Bond(a),
            RecordRef::Committee(_, e) => StateKey::EpochCommittee(*e),
            RecordRef::Charges(_) => StateKey::Federation,
            RecordRef::Member(a) => StateKey::Member(a),
            RecordRef::Proposal(id) => StateKey::Proposal(*id),
        }
    }

    /// The encoded state key.
    pub fn key(&self) -> Vec<u8> {
        self.state_key().encode()
    }

    /// The shard that holds the record.
    pub fn shard(&self, map: &ShardMap) -> ShardId {
        match self {
            RecordRef::Handle(_) | RecordRef::Member(_) | RecordRef::Proposal(_) => ShardId::GLOBAL,
            RecordRef::Committee(shard, _) => *shard,
            RecordRef::Account(a)
            | RecordRef::Profile(a)
            | RecordRef::Follow(a, _)
            | RecordRef::Like(a, _)
            | RecordRef::Repost(a, _)
            | RecordRef::Block(a, _)
            | RecordRef::ChatKeys(a)
            | RecordRef::Charges(a)
            | RecordRef::Bond(a) => map.shard_of(a),
            RecordRef::Post(p) => map.shard_of(&p.author),
        }
    }

    /// The record's value, decoded for reading.
    pub fn describe(&self, value: &[u8]) -> Value {
        let decoded = match self {
            RecordRef::Account(_) => AccountRecord::from_bytes(value).map(|r| {
                json!({
                    "nonce": r.nonce,
                    "balances": {
                        "spend": r.balances[0].to_string(),
                        "urc": r.balances[1].to_string(),
                        "core": r.balances[2].to_string(),
                    },
                    "allowance": r.allowance.to_string(),
                    "handle": r.handle,
                    "created_height": r.created_height,
                    "member": member_json(&r),
                    "sponsor": sponsor_json(&r),
                })
            }),
            RecordRef::Profile(_) => ProfileRecord::from_bytes(value).map(|p| {
                json!({"display_name": p.display_name, "bio": p.bio, "avatar_url": p.avatar_url})
            }),
            RecordRef::Post(_) => PostRecord::from_bytes(value).map(|p| {
                json!({
                    "text": p.text,
                    "created_height": p.created_height,
                    "edited_height": p.edited_height,
                    "revisions": p.revisions,
                    "deleted": p.deleted,
                })
            }),
            RecordRef::ChatKeys(_) => ChatKeysRecord::from_bytes(value)
                .map(|r| json!({"version": r.version, "devices": r.devices.len()})),
            RecordRef::Handle(_) => AccountId::from_bytes(value).map(|a| json!(a.to_text())),
            RecordRef::Committee(..) => CommitteeRecord::from_bytes(value).map(|c| {
                json!({
                    "drawn_for_global_epoch": c.epoch,
                    "members": c.members.iter().map(|m| hex::encode(m.bytes)).collect::<Vec<_>>(),
                })
            }),
            RecordRef::Charges(a) => Federation::from_bytes(value).map(|f| charges(&f, a)),
            RecordRef::Member(_) => MemberRecord::from_bytes(value).map(|m| {
                json!({
                    "foundation": m.foundation,
                    "registrar": m.registrar.to_text(),
                    "since": m.since,
                })
            }),
            RecordRef::Proposal(_) => {
                ProposalRecord::from_bytes(value).map(|p| proposal_json(&p, None))
            }
            _ => Ok(json!({"present": true, "bytes": hex::encode(value)})),
        };
        decoded.unwrap_or_else(|e| json!({"undecodable": e.to_string()}))
    }
}

/// An account's membership as its own shard holds it (rule M12).
pub fn member_json(r: &AccountRecord) -> Value {
    json!(r
        .member
        .map(|m| json!({"foundation": m.foundation, "since": m.since})))
}

fn roll_json(roll: &RollCall) -> Value {
    let (yes, no) = roll.tally();
    json!({
        "yes": yes,
        "no": no,
        "voters": roll.votes.len(),
        "votes": roll.votes.iter().map(|v| json!({"voter": v.voter.to_text(), "yes": v.yes, "votes": v.votes})).collect::<Vec<_>>(),
    })
}

fn motion_json(m: &Motion) -> Value {
    match m {
        Motion::Spend { to, amount } => {
            json!({"kind": "spend", "to": to.to_text(), "amount": amount.to_string()})
        }
        Motion::Appoint { office, holder } => {
            json!({"kind": "appoint", "office": office.name(), "holder": holder.to_text()})
        }
        Motion::SetParam { param, value } => {
            json!({"kind": "set_param", "param": param.name(), "value": value.to_string()})
        }
        Motion::Registrar { registrar } => {
            json!({"kind": "registrar", "registrar": registrar.to_text()})
        }
    }
}

/// The network's periods a proposal's timeline is read with.
#[derive(Clone, Copy, Debug)]
pub struct Periods {
    pub challenge_epochs: u64,
    pub voting_epochs: u64,
    pub epoch_blocks: u64,
}

impl Periods {
    pub fn of(params: &starling_ledger::LedgerParams) -> Periods {
        Periods {
            challenge_epochs: params.governance.challenge_epochs,
            voting_epochs: params.governance.voting_epochs,
            epoch_blocks: params.epoch_blocks.max(2),
        }
    }

    /// The epoch a decision's challenge window closes (rule GV7: from the tally, or for a
    /// reversible decision from when it took effect), if it can be challenged at all.
    fn challenge_until(&self, p: &ProposalRecord) -> Option<u64> {
        let open =
            p.finality != Finality::Final && matches!(p.status, Status::Passed | Status::Enacted);
        let start = match (p.finality, p.enacted) {
            (Finality::Reversible, Some(h)) => Some(h / self.epoch_blocks),
            _ => p.decided.map(|d| d.epoch),
        };
        start
            .filter(|_| open)
            .map(|s| s.saturating_add(self.challenge_epochs))
    }

    /// The epoch a passed decision no one enacted expires in (rule GV6).
    fn expires(&self, p: &ProposalRecord) -> Option<u64> {
        let d = p.decided.filter(|_| p.status == Status::Passed)?;
        let due = match p.finality {
            Finality::AfterWindow => d.epoch.saturating_add(self.challenge_epochs),
            _ => d.epoch,
        };
        let since = due.max(p.challenge.as_ref().map_or(0, |c| c.closed));
        Some(since.saturating_add(self.voting_epochs))
    }
}

/// A proposal as the API shows it (rules GV1–GV8); with the network's `periods`, the epochs
/// its challenge window closes and it expires.
pub fn proposal_json(p: &ProposalRecord, periods: Option<Periods>) -> Value {
    let track = p.motion.track();
    let challenge = p.challenge.as_ref().map(|c| {
        let until = match c.stage {
            Stage::Gathering { until } | Stage::BoardVote { until } => Some(until),
            _ => None,
        };
        json!({
            "by": c.by.to_text(),
            "deposit": c.deposit.to_string(),
            "opened": c.opened,
            "stage": c.stage.name(),
            "until": until,
            "senate": c.senate,
            "members": c.members,
            "senators": c.senators,
            "supporters": c.supporters,
            "electorate": c.electorate,
            "roll": roll_json(&c.roll),
        })
    });
    json!({
        "id": p.id,
        "foundation": p.foundation,
        "proposer": p.proposer.to_text(),
        "title": p.title,
        "text": p.text,
        "motion": motion_json(&p.motion),
        "track": {
            "name": track.name,
            "proposers": track.proposers.iter().map(|o| o.name()).collect::<Vec<_>>(),
            "decides": track.decides.name(),
            "quorum_pct": track.quorum_pct,
            "threshold_pct": track.threshold_pct,
        },
        "finality": match p.finality {
            Finality::Reversible => "reversible",
            Finality::Final => "final",
            Finality::AfterWindow => "after_window",
        },
        "deposit": p.deposit.to_string(),
        "opened": p.opened,
        "closes": p.closes,
        "electorate": p.electorate,
        "status": p.status.name(),
        "roll": roll_json(&p.roll),
        "decided": p.decided.map(|d| json!({"height": d.height, "epoch": d.epoch})),
        "enacted": p.enacted,
        "challenge_until": periods.and_then(|w| w.challenge_until(p)),
        "expires": periods.and_then(|w| w.expires(p)),
        "challenge": challenge,
        "challenges": p.challenges,
        // A members' referendum's count (rule BL4): ballots are anonymous, so there is no
        // roll call, only how many ballot keys stand and their weighted yes and no.
        "referendum": p.referendum.map(|r| json!({
            "members": r.members,
            "voters": r.voters,
            "yes": r.yes,
            "no": r.no,
        })),
    })
}

/// Who sponsors an account's base fees, and what is left (rule SP1).
pub fn sponsor_json(r: &AccountRecord) -> Value {
    json!(r
        .sponsor
        .map(|s| json!({"by": s.by.to_text(), "left": s.left.to_string()})))
}

/// The federation read for `account`: its foundation (rule FD1), and all of them.
fn charges(f: &Federation, account: &AccountId) -> Value {
    let i = f.charge_of(account);
    let foundation = |i: usize, x: &starling_types::Foundation| json!({"index": i, "treasury": x.treasury.to_text(), "registrar": x.registrar.to_text(), "status": x.status.name()});
    json!({
        "account": account.to_text(),
        "foundation": f.foundations.get(usize::from(i)).map(|x| foundation(usize::from(i), x)),
        "period": f.period,
        "seed": f.seed.to_hex(),
        "version": f.version,
        "foundations": f.foundations.iter().enumerate().map(|(i, x)| foundation(i, x)).collect::<Vec<_>>(),
    })
}

/// A record with everything needed to check it (see the module docs). Byte fields are hex.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordProof {
    pub shard: u16,
    /// The encoded state key.
    pub key: String,
    /// The encoded record, or null when the proof shows there is none.
    pub value: Option<String>,
    /// The record decoded, for reading only (the value is what the proof covers).
    #[serde(default)]
    pub record: Option<Value>,
    /// The state proof of `value` under the header's state root.
    pub proof: String,
    /// The encoded block header.
    pub header: String,
    /// The encoded finalization certificate of the header's block.
    pub certificate: String,
    pub height: u64,
    pub epoch: u64,
    /// The committee the node says signed (consensus keys): informative; a checker uses the
    /// committee it trusts.
    pub committee: Vec<String>,
}

/// Why a proof does not check out.
#[derive(Debug, thiserror::Error)]
pub enum ProofCheckError {
    #[error("the answer is malformed: {0}")]
    Malformed(String),
    #[error("the proof is about another record than the one asked for")]
    WrongKey,
    #[error("the header is of shard {got}, not {expected}")]
    WrongShard { expected: u16, got: u16 },
    #[error("the header is of chain `{0}`, not the trusted genesis's")]
    WrongChain(String),
    #[error("the block is in epoch {header}, and the committee trusted is epoch {trusted}'s")]
    UntrustedEpoch { header: u64, trusted: u64 },
    #[error("no committee is recorded for epoch {0}")]
    NoCommittee(u64),
    #[error("the certificate does not finalize this header: {0}")]
    Certificate(#[from] CertificateError),
    #[error("the state proof does not show this value under the header's state root: {0}")]
    State(#[from] starling_state::ProofError),
}

/// What a checker trusts: the chain, the epoch length, and one epoch with its committee.
#[derive(Clone, Debug)]
pub struct Trusted {
    pub chain_id: ChainId,
    pub epoch_blocks: u64,
    pub epoch: u64,
    pub committee: Set<commonware_cryptography::ed25519::PublicKey>,
}

impl Trusted {
    /// What a genesis says: its chain, its epoch length and `shard`'s first committee.
    pub fn from_genesis(
        genesis: &starling_config::genesis::Genesis,
        shard: ShardId,
    ) -> Result<Trusted, starling_config::SetupError> {
        let members = genesis.committees.get(&shard).ok_or_else(|| {
            starling_config::SetupError::invalid(
                "genesis",
                "committees",
                format!("no committee for shard {shard}"),
            )
        })?;
        let committee = members
            .iter()
            .map(crate::consensus_public)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Trusted {
            chain_id: genesis.params.chain_id.clone(),
            epoch_blocks: genesis.params.epoch_blocks,
            epoch: 0,
            committee: Set::from_iter_dedup(committee),
        })
    }

    /// The chain's epochs.
    fn schedule(&self) -> EpochSchedule {
        EpochSchedule {
            length: self.epoch_blocks,
        }
    }

    /// The epoch of a block at `height`.
    pub fn epoch_of(&self, height: u64) -> u64 {
        self.schedule().epoch_of(height)
    }

    /// Trust in the next epoch's committee, from its hand-off: the committee record proven
    /// under the last block of this epoch, which this epoch's committee certified.
    pub fn advance(
        &self,
        shard: ShardId,
        handoff: &RecordProof,
    ) -> Result<Trusted, ProofCheckError> {
        let next = self.epoch + 1;
        let checked = handoff.check(&RecordRef::Committee(shard, next), shard, self)?;
        let last = self.schedule().last_height(self.epoch);
        if checked.header.height != last {
            return Err(ProofCheckError::Malformed(format!(
                "a hand-off stands on the last block of its epoch ({last}), not {}",
                checked.header.height
            )));
        }
        let value = checked.value.ok_or(ProofCheckError::NoCommittee(next))?;
        let record = CommitteeRecord::from_bytes(&value)
            .map_err(|e| ProofCheckError::Malformed(format!("committee record: {e}")))?;
        let committee = record
            .members
            .iter()
            .map(crate::consensus_public)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProofCheckError::Malformed(e.to_string()))?;
        if committee.is_empty() {
            return Err(ProofCheckError::NoCommittee(next));
        }
        Ok(Trusted {
            epoch: next,
            committee: Set::from_iter_dedup(committee),
            ..self.clone()
        })
    }
}

/// A checked proof: the header it stands on and the value it shows.
#[derive(Debug)]
pub struct Checked {
    pub header: BlockHeader,
    pub value: Option<Vec<u8>>,
}

impl RecordProof {
    /// Checks the proof for `record` on `shard` against `trusted`.
    pub fn check(
        &self,
        record: &RecordRef,
        shard: ShardId,
        trusted: &Trusted,
    ) -> Result<Checked, ProofCheckError> {
        let bytes = |what: &str, text: &str| {
            hex::decode(text).map_err(|e| ProofCheckError::Malformed(format!("{what}: {e}")))
        };
        let key = record.key();
        if bytes("key", &self.key)? != key {
            return Err(ProofCheckError::WrongKey);
        }
        let header = BlockHeader::from_bytes(&bytes("header", &self.header)?)
            .map_err(|e| ProofCheckError::Malformed(format!("header: {e}")))?;
        if header.shard != shard {
            return Err(ProofCheckError::WrongShard {
                expected: shard.0,
                got: header.shard.0,
            });
        }
        if header.chain_id != trusted.chain_id {
            return Err(ProofCheckError::WrongChain(
                header.chain_id.as_str().to_string(),
            ));
        }
        // The epoch follows from the height: a certificate of another epoch does not verify,
        // and only the trusted epoch's committee is believed.
        let epoch = trusted.epoch_of(header.height);
        if epoch != trusted.epoch {
            return Err(ProofCheckError::UntrustedEpoch {
                header: epoch,
                trusted: trusted.epoch,
            });
        }
        let certificate = bytes("certificate", &self.certificate)?;
        engine::verify_finalized_id(
            &mut batch_rng(),
            &engine::certificate_namespace(trusted.chain_id.as_str(), shard),
            epoch,
            &trusted.committee,
            &header.id(),
            &certificate,
        )?;
        let proof = starling_state::Proof::from_bytes(&bytes("proof", &self.proof)?)
            .map_err(|e| ProofCheckError::Malformed(format!("state proof: {e}")))?;
        let value = self
            .value
            .as_deref()
            .map(|v| bytes("value", v))
            .transpose()?;
        let value_hash = value.as_deref().map(starling_state::value_hash);
        proof.verify(
            &header.state_root,
            &starling_state::key_hash(&key),
            value_hash.as_ref(),
        )?;
        Ok(Checked { header, value })
    }
}

/// Randomness for the batch signature check: seeded by the operating system, so the node
/// that built the proof cannot predict it.
fn batch_rng() -> rand_chacha_010::ChaCha20Rng {
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    <rand_chacha_010::ChaCha20Rng as rand_core_010::SeedableRng>::from_seed(seed)
}

/// Builds the proof of `record` at the newest block this node has a certificate for (a
/// committee's at the block that handed it over).
pub async fn prove(node: &Node, record: &RecordRef) -> Result<RecordProof, ProveError> {
    if let RecordRef::Committee(shard, epoch) = record {
        return handoff(node, *shard, *epoch).await;
    }
    let shard = record.shard(node.shard_map());
    let app = node
        .shard(shard)
        .ok_or_else(|| ProveError::NotFound(format!("shard {shard} is not kept by this node")))?;
    let key = record.key();
    let (head, value, proof) = app
        .prove(&starling_state::key_hash(&key))
        .map_err(store_error)?;
    let block = app
        .block(head.height)
        .map_err(store_error)?
        .ok_or_else(|| unavailable(format!("block {} is not stored yet", head.height)))?;
    let certificate = node
        .certificate(shard, head.height, &head.id)
        .await
        .ok_or_else(|| {
            unavailable(format!(
                "this node has no certificate of its own for block {} of shard {shard} yet (it \
                 was finalized through a later block); try again in a moment",
                head.height
            ))
        })?;
    let epoch = app.epochs().epoch_of(head.height);
    let committee = node.epoch_committee(shard, epoch);
    Ok(RecordProof {
        shard: shard.0,
        key: hex::encode(&key),
        record: value.as_deref().map(|v| record.describe(v)),
        value: value.as_deref().map(hex::encode),
        proof: hex::encode(proof.to_bytes()),
        header: hex::encode(block.header.to_bytes()),
        certificate: hex::encode(certificate),
        height: head.height,
        epoch,
        committee: committee.iter().map(|k| hex::encode(k.bytes)).collect(),
    })
}

/// Why a node cannot build a proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProveError {
    /// The request names no provable record (or epoch 0's committee, which the genesis fixes).
    #[error("{0}")]
    BadRecord(String),
    /// This node keeps no such shard, or no such hand-off yet.
    #[error("{0}")]
    NotFound(String),
    /// This node has no certificate for the block yet; asking again later may work.
    #[error("{0}")]
    NoCertificate(String),
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

fn unavailable(why: String) -> ProveError {
    ProveError::NoCertificate(why)
}

fn store_error(e: impl std::fmt::Display) -> ProveError {
    ProveError::Store(e.to_string())
}

/// The hand-off of `shard`'s epoch `epoch` committee (see the module docs).
async fn handoff(node: &Node, shard: ShardId, epoch: u64) -> Result<RecordProof, ProveError> {
    if epoch == 0 {
        return Err(ProveError::BadRecord(
            "epoch 0's committee is the genesis's: check it against the genesis file".into(),
        ));
    }
    let app = node
        .shard(shard)
        .ok_or_else(|| ProveError::NotFound(format!("shard {shard} is not kept by this node")))?;
    let height = app.epochs().last_height(epoch - 1);
    let starling_store::Handoff { value, proof } = app
        .handoff(epoch)
        .map_err(store_error)?
        .ok_or_else(|| {
            ProveError::NotFound(format!(
                "no hand-off of epoch {epoch} on shard {shard} here (block {height} is not applied yet)"
            ))
        })?;
    let block = app
        .block(height)
        .map_err(store_error)?
        .ok_or_else(|| ProveError::Store(format!("a hand-off without its block {height}")))?;
    let certificate = node
        .handoff_certificate(shard, epoch)
        .await
        .ok_or_else(|| {
            unavailable(format!(
                "this node holds no certificate of block {height} of shard {shard}"
            ))
        })?;
    let record = RecordRef::Committee(shard, epoch);
    Ok(RecordProof {
        shard: shard.0,
        key: hex::encode(record.key()),
        record: value.as_deref().map(|v| record.describe(v)),
        value: value.as_deref().map(hex::encode),
        proof: hex::encode(proof.to_bytes()),
        header: hex::encode(block.header.to_bytes()),
        certificate: hex::encode(certificate),
        height,
        epoch: epoch - 1,
        committee: node
            .epoch_committee(shard, epoch - 1)
            .iter()
            .map(|k| hex::encode(k.bytes))
            .collect(),
    })
}
