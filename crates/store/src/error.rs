use starling_ledger::{BlockError, StateError};
use starling_types::DecodeError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("a chain store already exists at {0}")]
    AlreadyExists(String),
    #[error("no chain store at {0} (initialize the node first)")]
    NotInitialized(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("I/O error: {0}")]
    Io(String),
    #[error("database error: {0}")]
    Db(String),
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("parent block {0} is neither final nor a known unfinalized block")]
    UnknownParent(starling_types::Hash),
    #[error("{0} blocks are waiting for finality; refusing to execute more until it resumes")]
    TooManyUnfinalized(usize),
    #[error("block rejected: {0}")]
    Block(#[from] BlockError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("stored data does not decode: {0}")]
    Decode(#[from] DecodeError),
}

impl From<heed::Error> for StoreError {
    fn from(e: heed::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}
