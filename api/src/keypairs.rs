//! Key-pair actions: CreateKeyPair (ed25519, RSA), ImportKeyPair, DescribeKeyPairs,
//! DeleteKeyPair. Private keys are returned once and never stored.

use shapes::ec2::{
    CreateKeyPairRequest, DeleteKeyPairRequest, DeleteKeyPairResult, DescribeKeyPairsRequest,
    DescribeKeyPairsResult, ImportKeyPairRequest, ImportKeyPairResult, KeyFormat, KeyPair,
    KeyPairInfo, KeyType,
};
use ssh_key::private::RsaKeypair;
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey};

use super::Call;
use super::errors::ApiError;
use super::filters::filters_match;
use super::typed::{self, tag_set};
use state::keypairs::{self, KeyPairRow};
use state::{new_id, now_iso, tags};

fn key_name(name: &str) -> Result<String, ApiError> {
    if name.is_empty() {
        return Err(ApiError::missing("KeyName"));
    }
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
fn store(
    c: &Call<'_>,
    row: &KeyPairRow,
    specs: Option<&[shapes::ec2::TagSpecification]>,
) -> Result<Vec<(String, String)>, ApiError> {
    let tag_list = typed::tag_specifications(specs, "key-pair")?;
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
pub async fn create(c: &Call<'_>, input: CreateKeyPairRequest) -> Result<KeyPair, ApiError> {
    let name = key_name(&input.key_name)?;
    let (key_type, algorithm) = match input.key_type.unwrap_or(KeyType::Rsa) {
        KeyType::Rsa => ("rsa", Algorithm::Rsa { hash: None }),
        KeyType::Ed25519 => ("ed25519", Algorithm::Ed25519),
    };
    if let Some(f) = input.key_format
        && f != KeyFormat::Pem
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
    let tag_list = store(c, &row, input.tag_specifications.as_deref())?;
    Ok(KeyPair {
        key_pair_id: Some(row.id),
        tags: tag_set(&tag_list),
        key_name: Some(row.name),
        key_fingerprint: Some(row.fingerprint),
        key_material: Some(material.to_string()),
    })
}

/// ImportKeyPair: `PublicKeyMaterial` is an OpenSSH public key line (base64 on the wire).
pub fn import(c: &Call<'_>, input: ImportKeyPairRequest) -> Result<ImportKeyPairResult, ApiError> {
    let name = key_name(&input.key_name)?;
    let invalid = || {
        ApiError::new(
            "InvalidKey.Format",
            "Key is not in valid OpenSSH public key format (ssh-ed25519 or ssh-rsa, base64-encoded)",
        )
    };
    let line = String::from_utf8(input.public_key_material.0).map_err(|_| invalid())?;
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
    let tag_list = store(c, &row, input.tag_specifications.as_deref())?;
    Ok(ImportKeyPairResult {
        key_fingerprint: Some(row.fingerprint),
        key_name: Some(row.name),
        key_pair_id: Some(row.id),
        tags: tag_set(&tag_list),
    })
}

/// DescribeKeyPairs: `KeyName.N`, `KeyPairId.N`, filters `key-name`, `key-pair-id`,
/// `fingerprint`, `key-type`, `tag:KEY`, `tag-key`.
pub fn describe(
    c: &Call<'_>,
    input: DescribeKeyPairsRequest,
) -> Result<DescribeKeyPairsResult, ApiError> {
    let names = input.key_names.unwrap_or_default();
    let ids = input.key_pair_ids.unwrap_or_default();
    let filters = typed::filters(input.filters.as_deref())?;
    let with_public = input.include_public_key.unwrap_or(false);
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
    let mut key_pairs = Vec::new();
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
        key_pairs.push(KeyPairInfo {
            key_pair_id: Some(r.id.clone()),
            key_type: KeyType::from_wire(&r.key_type),
            tags: tag_set(t),
            public_key: with_public.then(|| r.public_key.clone()),
            create_time: typed::time(&r.created),
            key_name: Some(r.name.clone()),
            key_fingerprint: Some(r.fingerprint.clone()),
        });
    }
    Ok(DescribeKeyPairsResult {
        key_pairs: Some(key_pairs),
    })
}

/// DeleteKeyPair by `KeyName` or `KeyPairId` (an unknown name succeeds, as on EC2).
pub fn delete(c: &Call<'_>, input: DeleteKeyPairRequest) -> Result<DeleteKeyPairResult, ApiError> {
    let conn = c.st.db.lock();
    let row = match (input.key_name.as_deref(), input.key_pair_id.as_deref()) {
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
    Ok(DeleteKeyPairResult {
        return_: Some(true),
        key_pair_id: row.map(|r| r.id),
    })
}
