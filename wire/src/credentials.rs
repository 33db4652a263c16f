//! The API credentials: made on the agent's first start, kept in `<state>/credentials`
//! (mode 0600, the AWS shared-credentials format) and read by the `ec2` CLI.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::Rng;

/// An access key and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AKIA...`.
    pub access_key: String,
    /// The secret (40 characters).
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Errors reading or making the credentials file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file could not be read or written.
    #[error("cannot access the credentials file {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file lacks a key.
    #[error("the credentials file {path} has no aws_access_key_id and aws_secret_access_key")]
    Incomplete {
        /// The file.
        path: String,
    },
}

/// The credentials file under a state directory.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("credentials")
}

/// Reads a credentials file.
pub fn load(file: &Path) -> Result<Credentials, CredentialsError> {
    let text = std::fs::read_to_string(file).map_err(|source| CredentialsError::Io {
        path: file.display().to_string(),
        source,
    })?;
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    match (value("aws_access_key_id"), value("aws_secret_access_key")) {
        (Some(access_key), Some(secret_key))
            if !access_key.is_empty() && !secret_key.is_empty() =>
        {
            Ok(Credentials {
                access_key,
                secret_key,
            })
        }
        _ => Err(CredentialsError::Incomplete {
            path: file.display().to_string(),
        }),
    }
}

/// Reads the state dir's credentials, making new ones (mode 0600) if there are none.
pub fn load_or_create(state_dir: &Path) -> Result<Credentials, CredentialsError> {
    let file = path(state_dir);
    if file.exists() {
        return load(&file);
    }
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::thread_rng();
    let mut pick = |set: &[u8], n: usize| -> String {
        (0..n)
            .map(|_| set[rng.gen_range(0..set.len())] as char)
            .collect()
    };
    let creds = Credentials {
        access_key: format!("AKIA{}", pick(UPPER, 16)),
        secret_key: pick(SECRET, 40),
    };
    let io = |source| CredentialsError::Io {
        path: file.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .map_err(io)?;
    write!(
        f,
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        creds.access_key, creds.secret_key
    )
    .map_err(io)?;
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a, b);
        assert!(a.access_key.starts_with("AKIA") && a.access_key.len() == 20);
        assert_eq!(a.secret_key.len(), 40);
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
