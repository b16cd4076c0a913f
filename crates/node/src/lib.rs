//! Starling node setup: node keys, the genesis file, the node's TOML configuration, and the
//! data directory that `starling init` prepares for the roles a node runs.

pub mod config;
pub mod genesis;
pub mod init;
pub mod keyfile;

mod error;
pub use error::SetupError;
