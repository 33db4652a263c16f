//! SNS's signing key: an RSA key made once and kept in the state directory
//! (`sns_signing_key.pem`, PKCS #8, mode 0600) with a self-signed certificate for it
//! (`sns_signing_cert.pem`), which the agent serves so that a subscriber can check each
//! message's `Signature` (SignatureVersion 2: SHA256withRSA, PKCS #1 v1.5).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer as _};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::{DecodePem, EncodePem};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

/// The key's size in bits.
const BITS: usize = 2048;
/// How long the certificate is valid from its making.
const VALID_FOR: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The certificate's subject and issuer.
const SUBJECT: &str = "CN=sns.local-1.kec2,O=kec2";

/// Why the signing key cannot be read or made.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// A file could not be read or written.
    #[error("cannot read or write {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not a PKCS #8 RSA key.
    #[error("{path} is not a PKCS #8 RSA private key")]
    Key {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: rsa::pkcs8::Error,
    },
    /// A key could not be generated.
    #[error("cannot generate an RSA key")]
    Generate(#[source] rsa::Error),
    /// The certificate could not be made.
    #[error("cannot make the signing certificate")]
    Certificate(#[source] x509_cert::builder::Error),
    /// The certificate could not be encoded.
    #[error("cannot encode the signing certificate")]
    Encode(#[source] x509_cert::der::Error),
}

/// The key messages are signed with, and its certificate.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey<Sha256>,
    cert_pem: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    /// The key in `dir`, made (with its certificate) on first use; a missing or unreadable
    /// certificate is made again from the key.
    pub fn load_or_create(dir: &Path) -> Result<Self, SignerError> {
        let key_path = dir.join("sns_signing_key.pem");
        let cert_path = dir.join("sns_signing_cert.pem");
        let io = |path: &Path| {
            let shown = path.display().to_string();
            move |source| SignerError::Io {
                path: shown.clone(),
                source,
            }
        };
        let key = if key_path.exists() {
            let text = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            RsaPrivateKey::from_pkcs8_pem(&text).map_err(|source| SignerError::Key {
                path: key_path.display().to_string(),
                source,
            })?
        } else {
            let key =
                RsaPrivateKey::new(&mut rand::rngs::OsRng, BITS).map_err(SignerError::Generate)?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|source| SignerError::Key {
                    path: key_path.display().to_string(),
                    source,
                })?;
            write_private(dir, &key_path, pem.as_bytes()).map_err(io(&key_path))?;
            key
        };
        let signing = SigningKey::<Sha256>::new(key);
        let existing = std::fs::read_to_string(&cert_path)
            .ok()
            .filter(|pem| x509_cert::Certificate::from_pem(pem.as_bytes()).is_ok());
        let cert_pem = match existing {
            Some(pem) => pem,
            None => {
                let pem = certificate(&signing)?;
                let tmp = dir.join("sns_signing_cert.pem.tmp");
                std::fs::write(&tmp, &pem)
                    .and_then(|()| std::fs::rename(&tmp, &cert_path))
                    .map_err(io(&cert_path))?;
                pem
            }
        };
        Ok(Self {
            key: signing,
            cert_pem,
        })
    }

    /// The signature of `text` in standard base64, as SNS's `Signature` carries it.
    pub fn sign_base64(&self, text: &str) -> String {
        let signature: Signature = self.key.sign(text.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
}

/// A self-signed certificate for `key`, PEM.
fn certificate(key: &SigningKey<Sha256>) -> Result<String, SignerError> {
    use rand::Rng;
    let public = rsa::RsaPublicKey::from(key.as_ref());
    let spki = SubjectPublicKeyInfoOwned::from_key(public)
        .map_err(|e| SignerError::Certificate(e.into()))?;
    // A positive serial of at most 20 bytes, as RFC 5280 asks.
    let serial: [u8; 16] = rand::thread_rng().r#gen::<[u8; 16]>().map(|b| b & 0x7f);
    let serial = SerialNumber::new(&serial).map_err(SignerError::Encode)?;
    let validity = Validity::from_now(VALID_FOR).map_err(SignerError::Encode)?;
    let subject = Name::from_str(SUBJECT).map_err(SignerError::Encode)?;
    let builder = CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, key)
        .map_err(SignerError::Certificate)?;
    let cert = builder
        .build::<Signature>()
        .map_err(SignerError::Certificate)?;
    cert.to_pem(LineEnding::LF).map_err(SignerError::Encode)
}

/// Writes `bytes` to `path` through a temporary file of mode 0600, synced, then renamed.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join("sns_signing_key.pem.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use rsa::pkcs1v15::VerifyingKey;
    use rsa::signature::Verifier;
    use x509_cert::der::{Decode, Encode};

    use super::*;

    #[test]
    fn the_key_is_made_once_and_its_certificate_verifies_its_signatures() {
        let dir = tempfile::tempdir().unwrap();
        let first = Signer::load_or_create(dir.path()).unwrap();
        let again = Signer::load_or_create(dir.path()).unwrap();
        assert_eq!(first.cert_pem(), again.cert_pem(), "kept, not made again");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("sns_signing_key.pem"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        let cert = x509_cert::Certificate::from_pem(first.cert_pem().as_bytes()).unwrap();
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        let public = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
        let verifier = VerifyingKey::<Sha256>::new(public);
        let text = "Message\nhello\nType\nNotification\n";
        let sig = base64::engine::general_purpose::STANDARD
            .decode(again.sign_base64(text))
            .unwrap();
        let sig = Signature::try_from(sig.as_slice()).unwrap();
        verifier.verify(text.as_bytes(), &sig).unwrap();
        assert!(verifier.verify(b"something else", &sig).is_err());
        // The certificate signs itself.
        let tbs = cert.tbs_certificate.to_der().unwrap();
        let self_sig = Signature::try_from(cert.signature.raw_bytes()).unwrap();
        verifier.verify(&tbs, &self_sig).unwrap();
        let _ = x509_cert::Certificate::from_der(&cert.to_der().unwrap()).unwrap();
    }

    use rsa::pkcs8::DecodePublicKey;
}
