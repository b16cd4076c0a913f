//! The Starling node: running a validator or relay ([`run`], [`net`]), the HTTP API ([`api`]),
//! light-client proofs ([`proofs`]), the app view and its indexer ([`view`]), the social API on
//! it ([`social`]), accounts, chat and the devnet. Its setup files come from `starling-config`.

pub mod accounts;
pub mod ahead;
pub mod api;
pub mod builder;
pub mod chat;
mod chat_api;
pub mod chatnet;
pub mod devnet;
pub mod iplimit;
pub mod keystore;
pub mod mailbox;
mod me;
pub mod net;
pub mod openapi;
pub mod proofs;
pub mod run;
pub mod social;
pub mod stream;
pub mod view;
mod web;

// The setup files live in their own crate; these paths stay for the node's users.
pub use starling_config::{config, genesis, init, keyfile, SetupError};
