//! Key-pair actions: CreateKeyPair (ed25519, RSA), ImportKeyPair, DescribeKeyPairs,
//! DeleteKeyPair: requests as the control plane's commands (`control::ec2::key_pairs`).

use shapes::ec2::{
    CreateKeyPairRequest, DeleteKeyPairRequest, DeleteKeyPairResult, DescribeKeyPairsRequest,
    DescribeKeyPairsResult, ImportKeyPairRequest, ImportKeyPairResult, KeyFormat, KeyPair,
    KeyPairInfo, KeyType,
};

use super::Call;
use super::errors::ApiError;
use super::filters::filters_match;
use super::typed::{self, tag_set};
use control::ec2::key_pairs::{KeyKind, KeyRef};
use state::{keypairs, tags};

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

/// CreateKeyPair: `KeyType` `rsa` (default) or `ed25519`; `KeyFormat` `pem`.
pub async fn create(c: &Call<'_>, input: CreateKeyPairRequest) -> Result<KeyPair, ApiError> {
    let name = key_name(&input.key_name)?;
    let kind = match input.key_type.unwrap_or(KeyType::Rsa) {
        KeyType::Rsa => KeyKind::Rsa,
        KeyType::Ed25519 => KeyKind::Ed25519,
    };
    if let Some(f) = input.key_format
        && f != KeyFormat::Pem
    {
        return Err(ApiError::invalid(
            "KeyFormat",
            format!("'{f}' is not supported; the allowed value is pem"),
        ));
    }
    let tag_list = typed::tag_specifications(input.tag_specifications.as_deref(), "key-pair")?;
    let made =
        c.st.plane
            .create_key_pair(&name, kind, &tag_list)
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(KeyPair {
        key_pair_id: Some(made.row.id),
        tags: tag_set(&tag_list),
        key_name: Some(made.row.name),
        key_fingerprint: Some(made.row.fingerprint),
        key_material: Some(made.private_key),
    })
}

/// ImportKeyPair: `PublicKeyMaterial` is an OpenSSH public key line (base64 on the wire).
pub fn import(c: &Call<'_>, input: ImportKeyPairRequest) -> Result<ImportKeyPairResult, ApiError> {
    let name = key_name(&input.key_name)?;
    let tag_list = typed::tag_specifications(input.tag_specifications.as_deref(), "key-pair")?;
    let row =
        c.st.plane
            .import_key_pair(&name, &input.public_key_material.0, &tag_list)
            .map_err(|e| ApiError::refused(&e))?;
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
    let key = match (input.key_name, input.key_pair_id) {
        (Some(n), _) => KeyRef::Name(n),
        (None, Some(id)) => KeyRef::Id(id),
        (None, None) => return Err(ApiError::missing("KeyName")),
    };
    let row =
        c.st.plane
            .delete_key_pair(&key)
            .map_err(|e| ApiError::refused(&e))?;
    Ok(DeleteKeyPairResult {
        return_: Some(true),
        key_pair_id: row.map(|r| r.id),
    })
}
