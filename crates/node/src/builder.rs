//! Starting a node, the one way `starling node` and `starling devnet` both do it: a validator
//! (its engines, then the open network), or a relay (the open network with chat mailboxes, and
//! chat for its accounts); then, for a node that serves an API, the app view and the
//! accounts. What comes back is a whole [`Node`] and the [`Services`] its API serves. A
//! devnet's validators serve no API ([`validator_only`]); its relay does.

use crate::genesis::Genesis;
use crate::SetupError;
use starling_accounts::Faucet;
use starling_api::{view, Services};
use starling_chat_client::{Chat, ChatPlace};
use starling_chat_relay::ChatServices;
use starling_crypto::SecretKey;
use starling_net as net;
use starling_node_api::Node;
use starling_store::ChainStore;
use starling_types::Endpoint;
use starling_validator::{Runtime, ValidatorSpec};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where a node is on the open network, and what it keeps on disk.
#[derive(Debug)]
pub struct OpenNetwork {
    /// The node key (its libp2p identity).
    pub key: SecretKey,
    pub listen: SocketAddr,
    pub bootstrap: Vec<SocketAddr>,
    pub data_dir: PathBuf,
    /// Who funds sign ups on this node, if anyone.
    pub faucet: Option<Faucet>,
}

/// A relay's chat: the mailbox relays its devices name, and how often they refresh keys.
#[derive(Debug)]
pub struct RelayChat {
    pub relays: Vec<Endpoint>,
    pub key_update: Duration,
    /// How often the anonymous sending key is replaced.
    pub anon_key: Duration,
}

/// Starts a validator of `stores` and its open network, with the services its API offers
/// users; returns once every engine runs.
pub async fn validator<E>(
    context: &E,
    genesis: Genesis,
    stores: Vec<ChainStore>,
    spec: ValidatorSpec,
    open: OpenNetwork,
) -> Result<(Node, Services), SetupError>
where
    E: Runtime,
{
    let engines = context.child("validator");
    let rng = context.child("net");
    let node = validator_only(engines, rng, genesis, stores, spec, &open).await?;
    let services = user_services(&node, &open.data_dir, open.faucet)?;
    Ok((node, services))
}

/// Starts a validator of `stores` and its open network, without services for users (the
/// devnet's validators, whose users reach the network through its relay). `context` runs the
/// engines; `rng` seeds the open network's certificate checks.
pub async fn validator_only<E, R>(
    context: E,
    rng: R,
    genesis: Genesis,
    stores: Vec<ChainStore>,
    spec: ValidatorSpec,
    open: &OpenNetwork,
) -> Result<Node, SetupError>
where
    E: Runtime,
    R: rand_core_010::CryptoRng + Send + 'static,
{
    let node = starling_validator::start_validator(context, genesis, stores, spec).await?;
    net::start(
        node.clone(),
        &open.key,
        open.listen,
        open.bootstrap.clone(),
        rng,
        None,
    )?;
    Ok(node)
}

/// Starts a relay of `stores`: the open network (with chat mailboxes for anyone who names
/// it), and chat for its accounts, at home on this node.
pub fn relay<R: rand_core_010::CryptoRng + Send + 'static>(
    genesis: Genesis,
    stores: Vec<ChainStore>,
    open: OpenNetwork,
    chat: RelayChat,
    rng: R,
) -> Result<(Node, Services), SetupError> {
    let node = Node::follower(genesis, stores);
    let mail = ChatServices::open(
        &open.data_dir.join("mail"),
        open.key.public_key(),
        Some(node.clone()),
    )
    .map_err(|e| {
        SetupError::invalid(&open.data_dir.display().to_string(), "mail", e.to_string())
    })?;
    let mail = Arc::new(mail);
    let chat_net = net::start(
        node.clone(),
        &open.key,
        open.listen,
        open.bootstrap.clone(),
        rng,
        Some(mail.clone()),
    )?;
    let services = user_services(&node, &open.data_dir, open.faucet)?;
    let place = ChatPlace {
        home: Endpoint {
            node: open.key.public_key(),
            address: open.listen.to_string(),
        },
        relays: chat.relays,
        key_update: chat.key_update,
        anon_key: chat.anon_key,
    };
    let chat = Chat::new(
        node.clone(),
        &open.data_dir,
        chat_net,
        mail,
        services.accounts.clone(),
        place,
    )?;
    Ok((
        node,
        Services {
            chat: Some(chat),
            ..services
        },
    ))
}

/// The app view (indexing `node`'s shards) and the accounts kept under `data_dir`.
fn user_services(
    node: &Node,
    data_dir: &Path,
    faucet: Option<Faucet>,
) -> Result<Services, SetupError> {
    let dir = data_dir.display().to_string();
    let bad = |what: &str, e: String| SetupError::invalid(&dir, what, e);
    let view = view::attach(node, data_dir).map_err(|e| bad("app view", e.to_string()))?;
    let accounts =
        starling_accounts::open(data_dir, faucet).map_err(|e| bad("keystore", e.to_string()))?;
    Ok(Services {
        view: Some(view),
        accounts: Some(accounts),
        chat: None,
    })
}
