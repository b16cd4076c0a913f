//! Node key files: a node's signing key, readable only by its owner.
//!
//! Format (TOML): `key_type = "ed25519" | "secp256k1"` and `secret = "<64 hex digits>"`.
//! Validators sign consensus messages with an Ed25519 key.

use crate::fs::{write_private, Existing};
use crate::SetupError;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use starling_crypto::SecretKey;
use starling_types::KeyType;
use std::path::Path;
use zeroize::Zeroizing;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    key_type: String,
    secret: String,
}

fn type_name(t: KeyType) -> &'static str {
    match t {
        KeyType::Ed25519 => "ed25519",
        KeyType::Secp256k1 => "secp256k1",
    }
}

/// Generates a key and writes it to `path` (mode 0600); refuses to overwrite.
pub fn generate<R: RngCore + CryptoRng>(
    path: &Path,
    key_type: KeyType,
    rng: &mut R,
) -> Result<SecretKey, SetupError> {
    let key = SecretKey::generate(key_type, rng);
    write(path, &key)?;
    Ok(key)
}

pub fn write(path: &Path, key: &SecretKey) -> Result<(), SetupError> {
    if path.exists() {
        return Err(SetupError::Exists(path.display().to_string()));
    }
    let file = KeyFile {
        key_type: type_name(key.public_key().key_type).into(),
        secret: hex::encode(key.to_seed().as_ref()),
    };
    let text = Zeroizing::new(
        toml::to_string(&file)
            .map_err(|e| SetupError::invalid(&path.display().to_string(), "key", e.to_string()))?,
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| SetupError::io(dir, e))?;
    }
    write_private(path, text.as_bytes(), Existing::Keep).map_err(|e| SetupError::io(path, e))
}

/// Reads a key file.
pub fn read(path: &Path) -> Result<SecretKey, SetupError> {
    let p = path.display().to_string();
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| SetupError::io(path, e))?);
    let file: KeyFile = toml::from_str(&text).map_err(|e| SetupError::Toml {
        path: p.clone(),
        message: e.message().to_owned(),
    })?;
    let key_type = match file.key_type.as_str() {
        "ed25519" => KeyType::Ed25519,
        "secp256k1" => KeyType::Secp256k1,
        other => {
            return Err(SetupError::invalid(
                &p,
                "key_type",
                format!("`{other}` is not ed25519 or secp256k1"),
            ))
        }
    };
    let raw = Zeroizing::new(
        hex::decode(&file.secret).map_err(|_| SetupError::invalid(&p, "secret", "not hex"))?,
    );
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
        raw.as_slice()
            .try_into()
            .map_err(|_| SetupError::invalid(&p, "secret", "must be 32 bytes (64 hex digits)"))?,
    );
    SecretKey::from_seed(key_type, &seed)
        .map_err(|e| SetupError::invalid(&p, "secret", e.to_string()))
}
