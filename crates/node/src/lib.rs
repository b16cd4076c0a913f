//! The Starling node put together: [`builder`] starts a validator or a relay with its open
//! network, app view, accounts, chat and API (the one way `starling node` and the devnet do);
//! [`devnet`] creates or finds a whole local network. Its setup files come from
//! `starling-config`.

pub mod builder;
pub mod devnet;

// The setup files live in their own crate; these paths stay for the node's users.
pub use starling_config::{config, genesis, init, keyfile, SetupError};
