//! Accounts a node holds for its users: keystores, sessions, rate limits and signing.
//!
//! The web app and the CLI never see a secret key. Sign up creates a key pair and seals it in
//! the node's [`Keystore`]; logging in opens the keystore with the password and keeps the key
//! in memory for the session only. The node then signs the session's actions itself
//! ([`Accounts::sign_and_submit`]): it picks the nonce (tracking transactions it sent that
//! are not final yet), prices the fee from the shard's current base fee, and submits.
//!
//! Sessions are named by a random 256-bit token, sent as an `HttpOnly; SameSite=Strict;
//! Secure` cookie to browsers or as `Authorization: Bearer` to programs. A request that
//! authenticates by cookie and changes anything must also carry the session's CSRF token in
//! `X-CSRF-Token`. Only BLAKE3 of a token is kept. Sessions end on log out, after
//! [`SESSION_IDLE`] unused, or when the node stops.
//!
//! Rate limits are token buckets: sign ups and log ins per client IP (and log ins per
//! account, against password guessing) and signed actions per account.

pub mod keystore;

use keystore::Keystore;
use rand_core::{OsRng, RngCore};
use starling_crypto::SecretKey;
use starling_ledger::{actions, gas, validate};
use starling_node_api::Node;
pub use starling_protocol::limit::RateLimiter;
use starling_types::{AccountId, Action, Asset, Encode as _, Hash, PostId, ShardId, TxBody};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "starling_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// Most sessions at once; the least recently used goes first.
pub const MAX_SESSIONS: usize = 10_000;
/// Most live sessions of one account: a new one ends that account's least recently used.
pub const MAX_SESSIONS_PER_ACCOUNT: usize = 32;
/// How far ahead of the head a signed transaction may be included.
pub const EXPIRY_BLOCKS: u64 = 600;
/// A sent transaction not yet final for this long is presumed lost: its nonce is reused.
const PENDING_PATIENCE: Duration = Duration::from_secs(30);

/// Sponsored funding for new accounts (a devnet's faucet, or an operator's onboarding key):
/// each sign up receives `amount` of SPEND from the key that lives on its shard (or the
/// first), as `grant` says, for at most `per_hour` sign ups an hour on this node.
#[derive(Debug)]
pub struct Faucet {
    pub keys: Vec<SecretKey>,
    pub amount: u128,
    pub grant: Grant,
    pub per_hour: u32,
}

/// How a faucet funds a new account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// SPEND of its own (a devnet's faucet).
    Transfer,
    /// SPEND set aside for its base fees only (ledger rule SP1): the operator's money pays
    /// for what the account does, never leaves as the account's, and the operator can end
    /// it (what is left comes back).
    Sponsor,
}

impl Grant {
    pub fn name(self) -> &'static str {
        match self {
            Grant::Transfer => "transfer",
            Grant::Sponsor => "sponsorship",
        }
    }
}

/// Sign ups funded in the current hour: a node's onboarding money is spent at a bounded pace,
/// whoever signs up.
#[derive(Debug)]
struct FundedWindow {
    started: Instant,
    count: u32,
}

/// A logged-in account.
#[derive(Clone, Debug)]
pub struct Session {
    pub account: AccountId,
    pub label: String,
    pub key: Arc<SecretKey>,
    pub csrf: String,
}

#[derive(Debug)]
struct SessionEntry {
    session: Session,
    last_used: Instant,
}

/// Live sessions, by BLAKE3 of their token.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<Hash, SessionEntry>>,
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn token_id(token: &str) -> Hash {
    Hash::of(&[b"starling/session", token.as_bytes()])
}

impl Sessions {
    /// Starts a session for `key`: returns its token and the session.
    pub fn create(&self, key: SecretKey, label: String) -> (String, Session) {
        let token = random_hex();
        let session = Session {
            account: key.public_key(),
            label,
            key: Arc::new(key),
            csrf: random_hex(),
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, e| now.duration_since(e.last_used) < SESSION_IDLE);
        // An account makes room among its own sessions; when the node is full, the account
        // holding the most gives one up. So nobody's logging in again and again ends anyone
        // else's session.
        let mine = map
            .values()
            .filter(|e| e.session.account == session.account)
            .count();
        let evict = if mine >= MAX_SESSIONS_PER_ACCOUNT {
            Some(session.account)
        } else if map.len() >= MAX_SESSIONS {
            let mut counts: HashMap<AccountId, usize> = HashMap::new();
            for e in map.values() {
                *counts.entry(e.session.account).or_default() += 1;
            }
            counts.into_iter().max_by_key(|(_, n)| *n).map(|(a, _)| a)
        } else {
            None
        };
        if let Some(account) = evict {
            let oldest = map
                .iter()
                .filter(|(_, e)| e.session.account == account)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(
            token_id(&token),
            SessionEntry {
                session: session.clone(),
                last_used: now,
            },
        );
        (token, session)
    }

    /// The session `token` names, if it is live (and marks it used).
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let id = token_id(token);
        let now = Instant::now();
        match map.get_mut(&id) {
            Some(e) if now.duration_since(e.last_used) < SESSION_IDLE => {
                e.last_used = now;
                Some(e.session.clone())
            }
            Some(_) => {
                map.remove(&id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token_id(token));
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the node does with an action before it signs it: the fee it will charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Estimate {
    pub shard: ShardId,
    pub gas: u64,
    pub base_fee: u64,
    /// `gas * base_fee`: what the action costs at the current base fee.
    pub fee: u128,
    /// The most the transaction may pay (the base fee may rise before it is included).
    pub max_fee: u128,
}

/// A transaction the node signed and submitted.
#[derive(Clone, Debug)]
pub struct Sent {
    pub hash: Hash,
    pub shard: ShardId,
    pub nonce: u64,
    pub estimate: Estimate,
    /// The post the action creates (a post's id is its author and transaction nonce).
    pub post: Option<PostId>,
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    next: u64,
    at: Instant,
}

/// Everything the node keeps for the accounts it holds.
#[derive(Debug)]
pub struct Accounts {
    pub keystore: Keystore,
    pub sessions: Sessions,
    pub signup_limit: RateLimiter<IpAddr>,
    pub login_limit: RateLimiter<IpAddr>,
    /// Log ins per account *and client*: a stranger guessing an account's password runs into
    /// it without locking the owner, elsewhere, out.
    pub login_account_limit: RateLimiter<(AccountId, IpAddr)>,
    pub action_limit: RateLimiter<AccountId>,
    faucet: Option<Faucet>,
    funded: Mutex<FundedWindow>,
    /// Per account: the nonce after the last transaction this node sent, and when.
    nonces: Mutex<HashMap<AccountId, Tracked>>,
}

/// Opens the accounts whose keystore is under `<data_dir>/keystore`.
pub fn open(
    data_dir: &Path,
    faucet: Option<Faucet>,
) -> Result<Arc<Accounts>, keystore::KeystoreError> {
    let keystore = Keystore::open(&data_dir.join("keystore"))?;
    Ok(Arc::new(Accounts::new(keystore, faucet)))
}

/// Why an action was not signed or not submitted.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The ledger would refuse the action on its own.
    #[error("{0}")]
    InvalidAction(String),
    #[error("this node does not keep shard {0}")]
    ShardNotServed(ShardId),
    #[error("the account has no funds yet: an account exists once it has received some")]
    NoAccount,
    #[error("the fee is {fee} and the account can pay {spendable}")]
    InsufficientFunds { fee: u128, spendable: u128 },
    /// Signed, but the node did not take it (its pool, or no route to the shard).
    #[error("{0}")]
    NotSubmitted(String),
    /// The node could not read its store.
    #[error("{0}")]
    Store(String),
}

fn rejected(e: starling_ledger::TxError) -> AccountsError {
    AccountsError::InvalidAction(e.to_string())
}

fn store(e: impl std::fmt::Display) -> AccountsError {
    AccountsError::Store(e.to_string())
}

/// The checks the ledger makes of an action on its own, made before signing so a bad action
/// is a clear 400 rather than a transaction that fails on chain.
pub fn precheck(action: &Action) -> Result<(), AccountsError> {
    match action {
        Action::Post {
            text,
            quote_of,
            langs,
            ..
        } => {
            validate::post_text(text, quote_of.is_some()).map_err(rejected)?;
            validate::langs(langs).map_err(rejected)
        }
        Action::EditPost { text, .. } => validate::post_text(text, true).map_err(rejected),
        Action::SetProfile {
            display_name,
            bio,
            avatar_url,
        } => validate::profile(display_name, bio, avatar_url).map_err(rejected),
        Action::RegisterHandle { handle } => validate::handle(handle).map(|_| ()).map_err(rejected),
        Action::Transfer { amount, .. } if *amount == 0 => Err(AccountsError::InvalidAction(
            "a transfer moves a positive amount".into(),
        )),
        Action::RegisterValidator { .. } | Action::RetireValidator => {
            Err(AccountsError::InvalidAction(
                "validator registration is signed with the validator's own key, not in a session"
                    .into(),
            ))
        }
        _ => Ok(()),
    }
}

impl Accounts {
    pub fn new(keystore: Keystore, faucet: Option<Faucet>) -> Self {
        Self {
            keystore,
            sessions: Sessions::default(),
            signup_limit: RateLimiter::new(20, 1.0 / 30.0),
            login_limit: RateLimiter::new(20, 1.0 / 6.0),
            login_account_limit: RateLimiter::new(10, 1.0 / 6.0),
            action_limit: RateLimiter::new(60, 10.0),
            faucet,
            funded: Mutex::new(FundedWindow {
                started: Instant::now(),
                count: 0,
            }),
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// How this node funds sign ups, if it does.
    pub fn grant(&self) -> Option<Grant> {
        self.faucet.as_ref().map(|f| f.grant)
    }

    /// Counts one funded sign up against the hour's budget; false when it is spent.
    fn take_funding_slot(&self, per_hour: u32) -> bool {
        let mut w = self.funded.lock().unwrap_or_else(|p| p.into_inner());
        if w.started.elapsed() >= Duration::from_secs(3_600) {
            *w = FundedWindow {
                started: Instant::now(),
                count: 0,
            };
        }
        if w.count >= per_hour {
            return false;
        }
        w.count += 1;
        true
    }

    /// The fee `action` by `account` would pay now.
    pub fn estimate(
        &self,
        node: &Node,
        account: &AccountId,
        action: &Action,
    ) -> Result<Estimate, AccountsError> {
        let shard = node.shard_map().shard_of(account);
        let app = node
            .shard(shard)
            .ok_or(AccountsError::ShardNotServed(shard))?;
        let base_fee = app
            .read(|v| starling_ledger::ShardLedger::meta(v).map_or(0, |m| m.base_fee))
            .map_err(store)?;
        let body = TxBody {
            account: *account,
            nonce: 0,
            max_fee: 0,
            tip: 0,
            expires_at_height: 0,
            action: action.clone(),
        };
        // The envelope: version, length, body and a 64-byte signature (integers are fixed
        // width, so the nonce and fee chosen later do not change the size).
        let envelope_len = 1 + 4 + body.to_bytes().len() + 64;
        let gas = gas::tx_gas(envelope_len, action);
        let fee = u128::from(gas) * u128::from(base_fee);
        Ok(Estimate {
            shard,
            gas,
            base_fee,
            fee,
            // Room for the base fee to double (it moves by at most 1/8 a block).
            max_fee: fee.saturating_mul(2).max(1),
        })
    }

    /// Signs `action` with `key` and submits it.
    pub fn sign_and_submit(
        &self,
        node: &Node,
        key: &SecretKey,
        action: Action,
    ) -> Result<Sent, AccountsError> {
        precheck(&action)?;
        let account = key.public_key();
        let estimate = self.estimate(node, &account, &action)?;
        let app = node
            .shard(estimate.shard)
            .ok_or(AccountsError::ShardNotServed(estimate.shard))?;
        let (record, head) = app
            .read(|v| actions::account(v, &account))
            .map_err(store)?
            .map_err(store)
            .map(|r| (r, app.head().height))?;
        let Some(record) = record else {
            return Err(AccountsError::NoAccount);
        };
        let spendable = record
            .balance(Asset::Spend)
            .saturating_add(record.allowance);
        if spendable < estimate.fee {
            return Err(AccountsError::InsufficientFunds {
                fee: estimate.fee,
                spendable,
            });
        }
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        let nonce = match nonces.get(&account) {
            Some(t) if t.next > record.nonce && t.at.elapsed() < PENDING_PATIENCE => t.next,
            _ => record.nonce,
        };
        let body = TxBody {
            account,
            nonce,
            max_fee: estimate.max_fee,
            tip: 0,
            expires_at_height: head + EXPIRY_BLOCKS,
            action,
        };
        let post = matches!(body.action, Action::Post { .. }).then_some(PostId {
            author: account,
            seq: nonce,
        });
        let envelope = key.sign_tx(node.chain_id(), &body);
        let result = node
            .submit(vec![envelope])
            .pop()
            .unwrap_or(Err(starling_node_api::SubmitError::Busy));
        match result {
            Ok((hash, shard)) => {
                nonces.insert(
                    account,
                    Tracked {
                        next: nonce + 1,
                        at: Instant::now(),
                    },
                );
                Ok(Sent {
                    hash,
                    shard,
                    nonce,
                    estimate,
                    post,
                })
            }
            Err(e) => {
                // Start again from the ledger's nonce next time.
                nonces.remove(&account);
                Err(AccountsError::NotSubmitted(e.to_string()))
            }
        }
    }

    /// Funds a new account from the faucet key on its shard, if there is one and this hour's
    /// budget is not spent.
    pub fn fund(&self, node: &Node, account: &AccountId) -> Option<Sent> {
        let faucet = self.faucet.as_ref()?;
        if !self.take_funding_slot(faucet.per_hour) {
            tracing::warn!(%account, per_hour = faucet.per_hour, "sign ups funded this hour reached the limit; this one is not funded");
            return None;
        }
        let shard = node.shard_map().shard_of(account);
        let key = faucet
            .keys
            .iter()
            .find(|k| node.shard_map().shard_of(&k.public_key()) == shard)
            .or_else(|| faucet.keys.first())?;
        let action = match faucet.grant {
            Grant::Transfer => Action::Transfer {
                asset: Asset::Spend,
                to: *account,
                amount: faucet.amount,
            },
            Grant::Sponsor => Action::Sponsor {
                account: *account,
                amount: faucet.amount,
            },
        };
        match self.sign_and_submit(node, key, action) {
            Ok(sent) => Some(sent),
            Err(e) => {
                tracing::warn!(%account, error = ?e, "faucet could not fund a new account");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_account_logging_in_again_and_again_ends_no_one_elses_session() {
        let s = Sessions::default();
        let key = |b| SecretKey::from_seed(starling_types::KeyType::Ed25519, &[b; 32]).unwrap();
        let alice = key(1);
        let (alice_token, _) = s.create(alice, "alice".into());
        let (first, _) = s.create(key(2), "mallory".into());
        for _ in 0..MAX_SESSIONS + 10 {
            s.create(key(2), "mallory".into());
        }
        assert!(s.get(&alice_token).is_some(), "alice is still logged in");
        assert!(s.get(&first).is_none(), "mallory's oldest session ended");
        assert_eq!(s.len(), 1 + MAX_SESSIONS_PER_ACCOUNT);
    }

    #[test]
    fn sessions_are_found_by_token_only() {
        let s = Sessions::default();
        let key = SecretKey::from_seed(starling_types::KeyType::Ed25519, &[3; 32]).unwrap();
        let (token, session) = s.create(key, "a".into());
        assert_eq!(token.len(), 64);
        assert_ne!(token, session.csrf);
        assert_eq!(s.get(&token).unwrap().account, session.account);
        assert!(s.get(&session.csrf).is_none());
        assert!(s.get("").is_none());
        s.remove(&token);
        assert!(s.get(&token).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn prechecks_refuse_what_the_ledger_would() {
        let long = "x".repeat(301);
        let bad = [
            Action::Post {
                text: long.clone(),
                reply_to: None,
                quote_of: None,
                langs: vec![],
            },
            Action::Post {
                text: String::new(),
                reply_to: None,
                quote_of: None,
                langs: vec![],
            },
            Action::RegisterHandle {
                handle: "NO SPACES".into(),
            },
            Action::RetireValidator,
        ];
        for a in bad {
            assert!(precheck(&a).is_err(), "{a:?}");
        }
        assert!(precheck(&Action::Post {
            text: "x".repeat(300),
            reply_to: None,
            quote_of: None,
            langs: vec![],
        })
        .is_ok());
    }
}
