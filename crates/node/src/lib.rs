//! The Starling node: node keys, the genesis file, the node's TOML configuration, the data
//! directory that `starling init` prepares, running a validator ([`run`]), the HTTP API
//! ([`api`]), the app view and its indexer ([`view`]) and the social API on it ([`social`]).

pub mod accounts;
pub mod ahead;
pub mod api;
pub mod chat;
mod chat_api;
pub mod chatnet;
pub mod config;
pub mod devnet;
pub mod genesis;
pub mod init;
pub mod iplimit;
pub mod keyfile;
pub mod keystore;
pub mod mailbox;
mod me;
pub mod net;
pub mod openapi;
pub mod run;
pub mod social;
pub mod stream;
pub mod view;
mod web;

mod error;
pub use error::SetupError;
