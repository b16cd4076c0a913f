//! The session file: where it is, and reading and writing it (readable by its owner only).

use super::ClientOpts;
use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub(super) fn session_path(opts: &ClientOpts) -> anyhow::Result<PathBuf> {
    if let Some(p) = &opts.session {
        return Ok(p.clone());
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| anyhow!("no HOME: pass --session"))?;
    Ok(config.join("starling").join("session.json"))
}

pub(super) fn read_session(path: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read(path) {
        Ok(b) if b.len() <= 64 * 1024 => {
            Ok(Some(serde_json::from_slice(&b).with_context(|| {
                format!("{} is not a session file", path.display())
            })?))
        }
        Ok(_) => bail!("{} is too large for a session file", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub(super) fn write_session(path: &Path, v: &Value) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = serde_json::to_vec_pretty(v)?;
    starling_config::fs::write_private(path, &bytes, starling_config::fs::Existing::Replace)
        .with_context(|| format!("writing {}", path.display()))
}
