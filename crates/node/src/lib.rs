//! The Starling node: the HTTP API ([`api`]), the app view and its indexer ([`view`]), the social API on
//! it ([`social`]), accounts, chat and the devnet. Its setup files come from `starling-config`.

pub mod api;
pub mod builder;
mod chat_api;
pub mod devnet;
mod me;
pub mod openapi;
mod proofs;
pub mod social;
pub mod stream;
pub mod view;
mod web;

// The setup files live in their own crate; these paths stay for the node's users.
pub use starling_config::{config, genesis, init, keyfile, SetupError};
