//! Key pairs: made here (ed25519, or 2048-bit RSA as EC2 makes them) or imported from an
//! OpenSSH public key, and deleted. A private key is given back once and never stored.

use rusqlite::Connection;
use ssh_key::private::RsaKeypair;
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey};

use crate::{Plane, Refusal};
use state::keypairs::{self, KeyPairRow};
use state::{new_id, now_iso, tags};

/// The kind of key CreateKeyPair makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, 2048 bits.
    Rsa,
    /// Ed25519.
    Ed25519,
}

/// A key pair as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// By `KeyName`.
    Name(String),
    /// By `KeyPairId`.
    Id(String),
}

/// Why a key-pair command is refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyPairError {
    /// The name is taken.
    #[error("The keypair '{0}' already exists.")]
    Duplicate(String),
    /// No key pair has that id.
    #[error("The key pair ID '{0}' does not exist")]
    NoId(String),
    /// The public key is not one this agent can use.
    #[error(
        "Key is not in valid OpenSSH public key format (ssh-ed25519 or ssh-rsa, base64-encoded)"
    )]
    Format,
    /// The key could not be made or written out.
    #[error("cannot make the key")]
    Key(#[source] ssh_key::Error),
    /// Key generation's worker failed.
    #[error("the key generation task failed")]
    Task(#[source] tokio::task::JoinError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for KeyPairError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Duplicate(_) => "InvalidKeyPair.Duplicate",
            Self::NoId(_) => "InvalidKeyPair.NotFound",
            Self::Format => "InvalidKey.Format",
            Self::Key(_) | Self::Task(_) | Self::Db(_) => return None,
        })
    }
}

/// A key pair made by CreateKeyPair.
#[derive(Debug)]
pub struct CreatedKeyPair {
    /// The stored row.
    pub row: KeyPairRow,
    /// The private key, OpenSSH format; given back once.
    pub private_key: String,
}

fn fingerprint(public: &PublicKey) -> String {
    public.fingerprint(HashAlg::Sha256).to_string()
}

fn refuse_taken(conn: &Connection, name: &str) -> Result<(), KeyPairError> {
    if keypairs::by_name(conn, name)?.is_some() {
        return Err(KeyPairError::Duplicate(name.into()));
    }
    Ok(())
}

/// Stores a key pair whose name is free, with its tags.
fn store(
    conn: &Connection,
    row: &KeyPairRow,
    tag_list: &[(String, String)],
) -> Result<(), KeyPairError> {
    refuse_taken(conn, &row.name)?;
    keypairs::insert(conn, row)?;
    tags::put(conn, &row.id, tag_list)?;
    Ok(())
}

/// The row of a public key named `name`.
fn row(name: &str, key_type: &str, public: &PublicKey) -> Result<KeyPairRow, KeyPairError> {
    Ok(KeyPairRow {
        id: new_id("key"),
        name: name.into(),
        key_type: key_type.into(),
        fingerprint: fingerprint(public),
        public_key: public.to_openssh().map_err(KeyPairError::Key)?,
        created: now_iso(),
    })
}

/// The row of an imported OpenSSH public key line.
pub fn imported(name: &str, public_key: &[u8]) -> Result<KeyPairRow, KeyPairError> {
    let line = std::str::from_utf8(public_key).map_err(|_| KeyPairError::Format)?;
    let public = PublicKey::from_openssh(line.trim()).map_err(|_| KeyPairError::Format)?;
    let key_type = match public.algorithm() {
        Algorithm::Ed25519 => "ed25519",
        Algorithm::Rsa { .. } => "rsa",
        _ => return Err(KeyPairError::Format),
    };
    row(name, key_type, &public).map_err(|_| KeyPairError::Format)
}

/// Deletes the key pair `key` names; an unknown name is no error (as on EC2), an unknown id
/// is. Gives the deleted row.
pub fn delete(conn: &Connection, key: &KeyRef) -> Result<Option<KeyPairRow>, KeyPairError> {
    let row = match key {
        KeyRef::Name(n) => keypairs::by_name(conn, n)?,
        KeyRef::Id(id) => {
            Some(keypairs::by_id(conn, id)?.ok_or_else(|| KeyPairError::NoId(id.clone()))?)
        }
    };
    if let Some(r) = &row {
        keypairs::delete(conn, &r.id)?;
    }
    Ok(row)
}

impl Plane {
    /// CreateKeyPair: refuses a taken name before making the key (slow for RSA, so on the
    /// blocking pool), then stores it unless the name was taken meanwhile.
    pub async fn create_key_pair(
        &self,
        name: &str,
        kind: KeyKind,
        tag_list: &[(String, String)],
    ) -> Result<CreatedKeyPair, KeyPairError> {
        refuse_taken(&self.db.lock(), name)?;
        let private = tokio::task::spawn_blocking(move || match kind {
            // 2048 bits, as EC2 makes them (ssh-key's default of 4096 takes seconds here).
            KeyKind::Rsa => RsaKeypair::random(&mut OsRng, 2048).map(PrivateKey::from),
            KeyKind::Ed25519 => PrivateKey::random(&mut OsRng, Algorithm::Ed25519),
        })
        .await
        .map_err(KeyPairError::Task)?
        .map_err(KeyPairError::Key)?;
        let private_key = private
            .to_openssh(LineEnding::LF)
            .map_err(KeyPairError::Key)?
            .to_string();
        let key_type = match kind {
            KeyKind::Rsa => "rsa",
            KeyKind::Ed25519 => "ed25519",
        };
        let row = row(name, key_type, private.public_key())?;
        self.transact::<_, KeyPairError>(|tx| Ok((store(tx, &row, tag_list)?, Vec::new())))?;
        Ok(CreatedKeyPair { row, private_key })
    }

    /// ImportKeyPair.
    pub fn import_key_pair(
        &self,
        name: &str,
        public_key: &[u8],
        tag_list: &[(String, String)],
    ) -> Result<KeyPairRow, KeyPairError> {
        let row = imported(name, public_key)?;
        self.transact::<_, KeyPairError>(|tx| Ok((store(tx, &row, tag_list)?, Vec::new())))?;
        Ok(row)
    }

    /// DeleteKeyPair.
    pub fn delete_key_pair(&self, key: &KeyRef) -> Result<Option<KeyPairRow>, KeyPairError> {
        let committed =
            self.transact::<_, KeyPairError>(|tx| Ok((delete(tx, key)?, Vec::new())))?;
        Ok(committed.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKhPzPZJ0l8dRzLQ4XIRJbkx3JPW6TyKYgrDYj5Iw0Jb test";

    #[test]
    fn an_imported_key_keeps_its_type_and_fingerprint_and_garbage_is_refused() {
        let row = imported("k", ED25519.as_bytes()).unwrap();
        assert_eq!(row.key_type, "ed25519");
        assert!(
            row.fingerprint.starts_with("SHA256:"),
            "{}",
            row.fingerprint
        );
        for bad in [&b"ssh-ed25519 AAAA"[..], b"\xff\xfe", b""] {
            assert_eq!(
                imported("k", bad).unwrap_err().code(),
                Some("InvalidKey.Format")
            );
        }
    }

    #[test]
    fn names_are_unique_and_unknown_ids_are_refused_but_unknown_names_are_not() {
        let (_dir, db) = crate::ec2::test_db();
        let conn = db.lock();
        let row = imported("k", ED25519.as_bytes()).unwrap();
        store(&conn, &row, &[]).unwrap();
        let again = imported("k", ED25519.as_bytes()).unwrap();
        assert_eq!(
            store(&conn, &again, &[]).unwrap_err().code(),
            Some("InvalidKeyPair.Duplicate")
        );
        assert!(
            delete(&conn, &KeyRef::Name("nope".into()))
                .unwrap()
                .is_none()
        );
        let e = delete(&conn, &KeyRef::Id("key-00000000".into())).unwrap_err();
        assert_eq!(e.code(), Some("InvalidKeyPair.NotFound"));
        assert_eq!(
            delete(&conn, &KeyRef::Id(row.id.clone()))
                .unwrap()
                .unwrap()
                .name,
            "k"
        );
    }
}
