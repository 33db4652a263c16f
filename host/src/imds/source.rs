//! An instance's metadata, read from the database at request time, and the host's identity
//! key that signs instance identity documents.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use rusqlite::Connection;
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

use super::handler::MetadataOptions;
use super::metadata::{InstanceMetadata, InterfaceMetadata};
use crate::placement::{AVAILABILITY_ZONE, REGION};
use state::{enis, images, instances, keypairs, security_groups, vpcs};

/// The SSHSIG namespace identity documents are signed in; verify with
/// `ssh-keygen -Y check-novalidate -n kec2-instance-identity -f identity_key.pub -s sig`.
pub const SIGNATURE_NAMESPACE: &str = "kec2-instance-identity";

/// Why the identity key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityKeyError {
    /// Reading or writing the key files failed.
    #[error("cannot read or write {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key could not be made or parsed.
    #[error("the identity key {path} is not usable")]
    Key {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: ssh_key::Error,
    },
}

/// The host key signing identity documents (`<state-dir>/identity_key`, ed25519, OpenSSH
/// format; the public half beside it as `identity_key.pub`). Signatures are remembered by
/// document: ed25519 is deterministic, and a signature costs about 90 µs that every metadata
/// request would otherwise pay.
#[derive(Debug, Clone)]
pub struct IdentityKey(PrivateKey, Arc<Mutex<HashMap<String, String>>>);

/// Signatures remembered at most (about one per instance); beyond, the memory starts afresh.
const REMEMBERED_SIGNATURES: usize = 4096;

impl IdentityKey {
    /// Loads the key from `dir`, making it on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityKeyError> {
        let path = dir.join("identity_key");
        let shown = path.display().to_string();
        let io = |source| IdentityKeyError::Io {
            path: shown.clone(),
            source,
        };
        let bad = |source| IdentityKeyError::Key {
            path: shown.clone(),
            source,
        };
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            return PrivateKey::from_openssh(text)
                .map(IdentityKey::new)
                .map_err(bad);
        }
        let key = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(bad)?;
        let private = key.to_openssh(LineEnding::LF).map_err(bad)?;
        let public = key.public_key().to_openssh().map_err(bad)?;
        let tmp = dir.join("identity_key.tmp");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(private.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(io)?;
        }
        std::fs::write(dir.join("identity_key.pub"), format!("{public}\n")).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(IdentityKey::new(key))
    }

    fn new(key: PrivateKey) -> Self {
        IdentityKey(key, Arc::default())
    }

    /// An armored SSH signature of `document`.
    pub fn sign(&self, document: &str) -> Option<String> {
        let mut signed = self.1.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sig) = signed.get(document) {
            return Some(sig.clone());
        }
        let sig = self
            .0
            .sign(SIGNATURE_NAMESPACE, HashAlg::Sha512, document.as_bytes())
            .ok()?
            .to_pem(LineEnding::LF)
            .ok()?;
        if signed.len() >= REMEMBERED_SIGNATURES {
            signed.clear();
        }
        signed.insert(document.to_string(), sig.clone());
        Some(sig)
    }
}

fn hostname(ip: &str) -> String {
    format!("ip-{}.{REGION}.compute.internal", ip.replace('.', "-"))
}

fn public_hostname(ip: &str) -> String {
    format!(
        "ec2-{}.{REGION}.compute.amazonaws.com",
        ip.replace('.', "-")
    )
}

/// The metadata and metadata options of instance `id`, or `None` if it does not exist.
pub fn load(
    conn: &Connection,
    id: &str,
    account_id: &str,
    key: &IdentityKey,
) -> rusqlite::Result<Option<(InstanceMetadata, MetadataOptions)>> {
    let Some(row) = instances::get(conn, id)? else {
        return Ok(None);
    };
    let mut interfaces = Vec::new();
    let mut primary_groups = Vec::new();
    let mut public_ipv4 = None;
    let mut enis_of = enis::of_instance(conn, id)?;
    enis_of.sort_by_key(|e| e.device_index);
    for eni in &enis_of {
        let subnet = vpcs::get_subnet(conn, &eni.subnet_id)?;
        let vpc = vpcs::get_vpc(conn, &eni.vpc_id)?;
        let groups = security_groups::groups_of_eni(conn, &eni.id)?;
        let public = enis::address_of_eni(conn, &eni.id)?
            .map(|a| a.public_ip)
            .or_else(|| eni.public_ip.clone());
        if eni.device_index == Some(0) {
            primary_groups = groups.iter().map(|g| g.name.clone()).collect();
            public_ipv4 = public.clone();
        }
        interfaces.push(InterfaceMetadata {
            owner_id: account_id.to_owned(),
            local_hostname: hostname(&eni.private_ip),
            public_hostname: public.as_deref().map(public_hostname),
            mac: eni.mac.clone(),
            device_number: eni.device_index.unwrap_or(0),
            interface_id: eni.id.clone(),
            local_ipv4s: vec![eni.private_ip.clone()],
            public_ipv4s: public.into_iter().collect(),
            subnet_id: eni.subnet_id.clone(),
            subnet_cidr: subnet.map(|s| s.cidr).unwrap_or_default(),
            vpc_id: eni.vpc_id.clone(),
            vpc_cidr: vpc.map(|v| v.cidr).unwrap_or_default(),
            security_group_ids: groups.iter().map(|g| g.id.clone()).collect(),
            security_groups: groups.iter().map(|g| g.name.clone()).collect(),
        });
    }
    let primary = enis_of.iter().find(|e| e.device_index == Some(0));
    let local_ipv4 = primary.map(|e| e.private_ip.clone()).unwrap_or_default();
    let public_key = match &row.key_name {
        Some(name) => keypairs::by_name(conn, name)?.map(|k| (name.clone(), k.public_key)),
        None => None,
    };
    let user_data = row.user_data.as_deref().map(|b64| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap_or_else(|_| b64.as_bytes().to_vec())
    });
    let root = images::get(conn, &row.image_id)?
        .and_then(|i| i.root_volume)
        .map(|_| "/dev/vda".to_owned());
    let mut block_devices = vec![("ami".to_owned(), "/dev/vda".to_owned())];
    if let Some(root) = root {
        block_devices.push(("root".to_owned(), root));
    }
    let document = serde_json::json!({
        "accountId": account_id,
        "architecture": row.architecture,
        "availabilityZone": AVAILABILITY_ZONE,
        "billingProducts": null,
        "devpayProductCodes": null,
        "marketplaceProductCodes": null,
        "imageId": row.image_id,
        "instanceId": row.id,
        "instanceType": row.instance_type,
        "kernelId": null,
        "pendingTime": row.launch_time,
        "privateIp": local_ipv4,
        "ramdiskId": null,
        "region": REGION,
        "version": "2017-09-30",
    });
    let identity_document = serde_json::to_string_pretty(&document).unwrap_or_default();
    let identity_signature = key.sign(&identity_document);
    let options = enis::metadata_options(conn, id)?;
    let metadata = InstanceMetadata {
        ami_id: row.image_id.clone(),
        ami_launch_index: row.launch_index,
        instance_id: row.id.clone(),
        instance_type: row.instance_type.clone(),
        local_hostname: hostname(&local_ipv4),
        local_ipv4,
        public_hostname: public_ipv4.as_deref().map(public_hostname),
        public_ipv4,
        mac: primary.map(|e| e.mac.clone()).unwrap_or_default(),
        security_groups: primary_groups,
        availability_zone: AVAILABILITY_ZONE.to_owned(),
        region: REGION.to_owned(),
        reservation_id: row.reservation_id.clone(),
        block_devices,
        interfaces,
        public_key,
        user_data,
        identity_document,
        identity_signature,
    };
    let options = MetadataOptions {
        tokens_required: options.http_tokens == "required",
        endpoint_enabled: options.http_endpoint == "enabled",
        put_hop_limit: options.hop_limit,
    };
    Ok(Some((metadata, options)))
}

/// The host name EC2 gives a private address (`ip-172-31-0-5.local-1.compute.internal`).
pub fn private_dns_name(ip: &str) -> String {
    hostname(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_documents_verify_with_the_hosts_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = IdentityKey::load_or_create(dir.path()).unwrap();
        let again = IdentityKey::load_or_create(dir.path()).unwrap();
        let document = r#"{"instanceId": "i-0123456789abcdef0"}"#;
        let armored = again.sign(document).unwrap();
        assert_eq!(again.sign(document), Some(armored.clone()), "remembered");
        assert!(armored.starts_with("-----BEGIN SSH SIGNATURE-----"));
        let public = std::fs::read_to_string(dir.path().join("identity_key.pub")).unwrap();
        let public = ssh_key::PublicKey::from_openssh(public.trim()).unwrap();
        let sig = ssh_key::SshSig::from_pem(&armored).unwrap();
        public
            .verify(SIGNATURE_NAMESPACE, document.as_bytes(), &sig)
            .expect("the host's public key verifies the document");
        let forged = br#"{"instanceId": "i-0fffffffffffffff0"}"#;
        assert!(public.verify(SIGNATURE_NAMESPACE, forged, &sig).is_err());
        assert_eq!(
            key.sign(document),
            Some(armored),
            "the same key after a reload signs alike (ed25519 is deterministic)"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("identity_key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the private key is private");
    }
}
