//! What a Starling node is set up from, before anything runs: the genesis file ([`genesis`]),
//! the node's TOML configuration ([`config`]), key files ([`keyfile`]) and the data directory
//! that `starling init` prepares ([`init`]). Every file is untrusted input: each error names
//! the file and the field ([`SetupError`]).

pub mod config;
pub mod fs;
pub mod genesis;
mod governance;
pub mod init;
pub mod keyfile;
pub mod net;

mod error;
pub use error::SetupError;
