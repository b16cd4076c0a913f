use thiserror::Error;

/// A setup step failed; every variant names the file or field to fix.
#[derive(Debug, Error)]
pub enum SetupError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: invalid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] starling_store::StoreError),
}

impl SetupError {
    pub fn invalid(path: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        SetupError::Invalid {
            path: path.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        SetupError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
