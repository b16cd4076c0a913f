use thiserror::Error;

#[derive(Debug, Error)]
pub enum AppViewError {
    #[error("I/O error: {0}")]
    Io(String),
    #[error("app view database error: {0}")]
    Db(String),
    #[error("app view is corrupt: {0}")]
    Corrupt(String),
    #[error("search index error: {0}")]
    Search(String),
    #[error("invalid cursor (pass back the `next` of the previous page)")]
    BadCursor,
    #[error("block {got} of shard {shard} does not follow the indexed height {indexed}")]
    OutOfOrder { shard: u16, indexed: u64, got: u64 },
}

impl From<heed::Error> for AppViewError {
    fn from(e: heed::Error) -> Self {
        AppViewError::Db(e.to_string())
    }
}

impl From<starling_types::DecodeError> for AppViewError {
    fn from(e: starling_types::DecodeError) -> Self {
        AppViewError::Corrupt(e.to_string())
    }
}
