//! The Starling node: node keys, the genesis file, the node's TOML configuration, the data
//! directory that `starling init` prepares, running a validator ([`run`]) and the HTTP API
//! ([`api`]).

pub mod api;
pub mod config;
pub mod devnet;
pub mod genesis;
pub mod init;
pub mod keyfile;
pub mod net;
pub mod run;

mod error;
pub use error::SetupError;
