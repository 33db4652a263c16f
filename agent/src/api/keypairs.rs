//! Key-pair actions: CreateKeyPair (ed25519, RSA), ImportKeyPair, DescribeKeyPairs,
//! DeleteKeyPair. Private keys are returned once and never stored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ssh_key::private::RsaKeypair;
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey};

use super::Call;
use super::errors::ApiError;
use super::filters::filters_match;
use super::xml::Xml;
use crate::state::keypairs::{self, KeyPairRow};
use crate::state::{new_id, now_iso, tags};

fn key_name(c: &Call<'_>) -> Result<String, ApiError> {
    let name = c.p.required("KeyName")?;
    if name.len() > 255 || !name.is_ascii() {
        return Err(ApiError::invalid(
            "KeyName",
            "key names are 1 to 255 ASCII characters",
        ));
    }
    Ok(name.to_string())
}

fn fingerprint(public: &PublicKey) -> String {
    public.fingerprint(HashAlg::Sha256).to_string()
}

/// Stores a new key pair (refusing a taken name) with its tags.
fn store(c: &Call<'_>, row: &KeyPairRow) -> Result<Vec<(String, String)>, ApiError> {
    let tag_list = c.p.tag_specifications("key-pair")?;
    let mut conn = c.st.db.lock();
    let tx = conn.transaction()?;
    if keypairs::by_name(&tx, &row.name)?.is_some() {
        return Err(ApiError::new(
            "InvalidKeyPair.Duplicate",
            format!("The keypair '{}' already exists.", row.name),
        ));
    }
    keypairs::insert(&tx, row)?;
    tags::put(&tx, &row.id, &tag_list)?;
    tx.commit()?;
    Ok(tag_list)
}

/// CreateKeyPair: `KeyType` `rsa` (default) or `ed25519`; `KeyFormat` `pem`. Key generation
/// (slow for RSA) runs on the blocking pool, not on the API's workers.
pub async fn create(c: &Call<'_>) -> Result<String, ApiError> {
    let name = key_name(c)?;
    let (key_type, algorithm) = match c.p.get("KeyType").unwrap_or("rsa") {
        "rsa" => ("rsa", Algorithm::Rsa { hash: None }),
        "ed25519" => ("ed25519", Algorithm::Ed25519),
        other => {
            return Err(ApiError::invalid(
                "KeyType",
                format!("'{other}' is not one of: rsa, ed25519"),
            ));
        }
    };
    if let Some(f) = c.p.get("KeyFormat")
        && f != "pem"
    {
        return Err(ApiError::invalid(
            "KeyFormat",
            format!("'{f}' is not supported; the allowed value is pem"),
        ));
    }
    if c.st
        .db
        .lock()
        .prepare("SELECT 1 FROM key_pairs WHERE name = ?1")?
        .exists([&name])?
    {
        return Err(ApiError::new(
            "InvalidKeyPair.Duplicate",
            format!("The keypair '{name}' already exists."),
        ));
    }
    let private = tokio::task::spawn_blocking(move || match algorithm {
        // 2048 bits, as EC2 makes them (ssh-key's default of 4096 takes seconds here).
        Algorithm::Rsa { .. } => RsaKeypair::random(&mut OsRng, 2048).map(PrivateKey::from),
        other => PrivateKey::random(&mut OsRng, other),
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| ApiError::internal(&e))?;
    let material = private
        .to_openssh(LineEnding::LF)
        .map_err(|e| ApiError::internal(&e))?;
    let public = private.public_key();
    let row = KeyPairRow {
        id: new_id("key"),
        name,
        key_type: key_type.into(),
        fingerprint: fingerprint(public),
        public_key: public.to_openssh().map_err(|e| ApiError::internal(&e))?,
        created: now_iso(),
    };
    let tag_list = store(c, &row)?;
    let mut x = Xml::response("CreateKeyPair", c.request_id);
    x.leaf("keyName", &row.name)
        .leaf("keyFingerprint", &row.fingerprint)
        .leaf("keyMaterial", material.as_str())
        .leaf("keyPairId", &row.id);
    if !tag_list.is_empty() {
        x.tag_set(&tag_list);
    }
    Ok(x.finish())
}

/// ImportKeyPair: `PublicKeyMaterial` is a base64-encoded OpenSSH public key line.
pub fn import(c: &Call<'_>) -> Result<String, ApiError> {
    let name = key_name(c)?;
    let material = c.p.required("PublicKeyMaterial")?;
    let invalid = || {
        ApiError::new(
            "InvalidKey.Format",
            "Key is not in valid OpenSSH public key format (ssh-ed25519 or ssh-rsa, base64-encoded)",
        )
    };
    let decoded = B64.decode(material.trim()).map_err(|_| invalid())?;
    let line = String::from_utf8(decoded).map_err(|_| invalid())?;
    let public = PublicKey::from_openssh(line.trim()).map_err(|_| invalid())?;
    let key_type = match public.algorithm() {
        Algorithm::Ed25519 => "ed25519",
        Algorithm::Rsa { .. } => "rsa",
        _ => return Err(invalid()),
    };
    let row = KeyPairRow {
        id: new_id("key"),
        name,
        key_type: key_type.into(),
        fingerprint: fingerprint(&public),
        public_key: public.to_openssh().map_err(|_| invalid())?,
        created: now_iso(),
    };
    let tag_list = store(c, &row)?;
    let mut x = Xml::response("ImportKeyPair", c.request_id);
    x.leaf("keyFingerprint", &row.fingerprint)
        .leaf("keyName", &row.name)
        .leaf("keyPairId", &row.id);
    if !tag_list.is_empty() {
        x.tag_set(&tag_list);
    }
    Ok(x.finish())
}

/// DescribeKeyPairs: `KeyName.N`, `KeyPairId.N`, filters `key-name`, `key-pair-id`,
/// `fingerprint`, `key-type`, `tag:KEY`, `tag-key`.
pub fn describe(c: &Call<'_>) -> Result<String, ApiError> {
    let names = c.p.list("KeyName");
    let ids = c.p.list("KeyPairId");
    let filters = c.p.filters()?;
    let with_public = c.p.bool("IncludePublicKey")?;
    let (rows, tag_map) = {
        let conn = c.st.db.lock();
        let rows = keypairs::all(&conn)?;
        let refs: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let tag_map = tags::for_resources(&conn, &refs)?;
        (rows, tag_map)
    };
    for n in &names {
        if !rows.iter().any(|r| &r.name == n) {
            return Err(ApiError::new(
                "InvalidKeyPair.NotFound",
                format!("The key pair '{n}' does not exist"),
            ));
        }
    }
    for i in &ids {
        if !rows.iter().any(|r| &r.id == i) {
            return Err(ApiError::new(
                "InvalidKeyPair.NotFound",
                format!("The key pair ID '{i}' does not exist"),
            ));
        }
    }
    let mut x = Xml::response("DescribeKeyPairs", c.request_id);
    x.open("keySet");
    for r in &rows {
        if (!names.is_empty() && !names.contains(&r.name))
            || (!ids.is_empty() && !ids.contains(&r.id))
        {
            continue;
        }
        let t = tag_map.get(&r.id).map_or(&[][..], Vec::as_slice);
        let keep = filters_match(
            &filters,
            t,
            "key-name, key-pair-id, fingerprint, key-type",
            |name| {
                let v = match name {
                    "key-name" => &r.name,
                    "key-pair-id" => &r.id,
                    "fingerprint" => &r.fingerprint,
                    "key-type" => &r.key_type,
                    _ => return None,
                };
                Some(vec![v.clone()])
            },
        )?;
        if !keep {
            continue;
        }
        x.open("item")
            .leaf("keyPairId", &r.id)
            .leaf("keyType", &r.key_type)
            .leaf("keyName", &r.name)
            .leaf("keyFingerprint", &r.fingerprint)
            .leaf("createTime", &r.created);
        if with_public {
            x.leaf("publicKey", &r.public_key);
        }
        if !t.is_empty() {
            x.tag_set(t);
        }
        x.close("item");
    }
    x.close("keySet");
    Ok(x.finish())
}

/// DeleteKeyPair by `KeyName` or `KeyPairId` (an unknown name succeeds, as on EC2).
pub fn delete(c: &Call<'_>) -> Result<String, ApiError> {
    let conn = c.st.db.lock();
    let row = match (c.p.get("KeyName"), c.p.get("KeyPairId")) {
        (Some(n), _) => keypairs::by_name(&conn, n)?,
        (None, Some(id)) => Some(keypairs::by_id(&conn, id)?.ok_or_else(|| {
            ApiError::new(
                "InvalidKeyPair.NotFound",
                format!("The key pair ID '{id}' does not exist"),
            )
        })?),
        (None, None) => return Err(ApiError::missing("KeyName")),
    };
    if let Some(r) = &row {
        keypairs::delete(&conn, &r.id)?;
    }
    let mut x = Xml::response("DeleteKeyPair", c.request_id);
    x.leaf("return", "true");
    x.leaf_opt("keyPairId", row.map(|r| r.id));
    Ok(x.finish())
}
