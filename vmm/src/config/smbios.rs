//! The machine's identity in SMBIOS, from `--smbios KEY=VALUE,...` or the JSON config's
//! `smbios` object: manufacturer, product, version, serial, uuid, asset-tag (`asset_tag` in
//! JSON, whose keys are snake_case throughout).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The manufacturer when none is given.
pub const DEFAULT_MANUFACTURER: &str = "kec2";
/// The product name when none is given.
pub const DEFAULT_PRODUCT: &str = "microvm";
/// The longest string SMBIOS (and this flag) accepts, in bytes.
pub const MAX_STRING_LEN: usize = 255;

const ALLOWED: &str = "manufacturer=S,product=S,version=S,serial=S,uuid=UUID,asset-tag=S \
                       (all optional; values without commas or NUL, at most 255 bytes)";

/// The identity SMBIOS reports; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmbiosConfig {
    /// System (and BIOS vendor, chassis) manufacturer; default `kec2`.
    #[serde(default)]
    pub manufacturer: Option<String>,
    /// System product name; default `microvm`.
    #[serde(default)]
    pub product: Option<String>,
    /// System version.
    #[serde(default)]
    pub version: Option<String>,
    /// System serial number.
    #[serde(default)]
    pub serial: Option<String>,
    /// System UUID, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`; default the nil UUID (none).
    #[serde(default)]
    pub uuid: Option<String>,
    /// Chassis asset tag.
    #[serde(default)]
    pub asset_tag: Option<String>,
}

/// Why an `--smbios` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmbiosSpecError {
    /// An item is not `key=value` with a known key.
    #[error("smbios: `{0}` is not valid; allowed: {ALLOWED}")]
    BadItem(String),
    /// The uuid does not parse.
    #[error("smbios: uuid `{0}` is not a UUID like 01234567-89ab-cdef-0123-456789abcdef")]
    BadUuid(String),
    /// A value holds a NUL byte.
    #[error("smbios: {0} must not contain NUL bytes")]
    Nul(&'static str),
    /// A value is too long.
    #[error("smbios: {key} is {len} bytes; at most {MAX_STRING_LEN} are allowed")]
    TooLong {
        /// The key.
        key: &'static str,
        /// Its length.
        len: usize,
    },
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` into its 16 bytes, in the order written.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = text.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = groups.concat();
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    hex.bytes().all(|b| b.is_ascii_hexdigit()).then_some(bytes)
}

impl SmbiosConfig {
    fn fields(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("manufacturer", &self.manufacturer),
            ("product", &self.product),
            ("version", &self.version),
            ("serial", &self.serial),
            ("uuid", &self.uuid),
            ("asset-tag", &self.asset_tag),
        ]
    }

    /// Checks every value: no NUL, at most 255 bytes, a uuid that parses.
    pub fn validate(&self) -> Result<(), SmbiosSpecError> {
        for (key, value) in self.fields() {
            let Some(value) = value else { continue };
            if value.contains('\0') {
                return Err(SmbiosSpecError::Nul(key));
            }
            if value.len() > MAX_STRING_LEN {
                return Err(SmbiosSpecError::TooLong {
                    key,
                    len: value.len(),
                });
            }
        }
        if let Some(uuid) = &self.uuid {
            parse_uuid(uuid).ok_or_else(|| SmbiosSpecError::BadUuid(uuid.clone()))?;
        }
        Ok(())
    }

    /// The manufacturer, or the default.
    pub fn manufacturer(&self) -> &str {
        self.manufacturer.as_deref().unwrap_or(DEFAULT_MANUFACTURER)
    }

    /// The product name, or the default.
    pub fn product(&self) -> &str {
        self.product.as_deref().unwrap_or(DEFAULT_PRODUCT)
    }

    /// The UUID's bytes in the order written (nil when none was given); call after
    /// `validate`.
    pub fn uuid_bytes(&self) -> [u8; 16] {
        self.uuid
            .as_deref()
            .and_then(parse_uuid)
            .unwrap_or_default()
    }
}

impl FromStr for SmbiosConfig {
    type Err = SmbiosSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut config = SmbiosConfig::default();
        for item in spec.split(',') {
            let Some((key, value)) = item.split_once('=') else {
                return Err(SmbiosSpecError::BadItem(item.to_owned()));
            };
            let slot = match key {
                "manufacturer" => &mut config.manufacturer,
                "product" => &mut config.product,
                "version" => &mut config.version,
                "serial" => &mut config.serial,
                "uuid" => &mut config.uuid,
                "asset-tag" => &mut config.asset_tag,
                _ => return Err(SmbiosSpecError::BadItem(item.to_owned())),
            };
            *slot = Some(value.to_owned());
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ec2_identity_with_its_space() {
        let c: SmbiosConfig = "manufacturer=Amazon EC2,product=t3.micro,\
                               serial=ec2e1916-9099-7caf-fd21-012345abcdef,\
                               uuid=EC2E1916-9099-7caf-fd21-012345abcdef,asset-tag=i-0123"
            .parse()
            .unwrap();
        assert_eq!(c.manufacturer(), "Amazon EC2");
        assert_eq!(c.product(), "t3.micro");
        assert_eq!(c.asset_tag.as_deref(), Some("i-0123"));
        assert_eq!(
            c.uuid_bytes(),
            [
                0xec, 0x2e, 0x19, 0x16, 0x90, 0x99, 0x7c, 0xaf, 0xfd, 0x21, 0x01, 0x23, 0x45, 0xab,
                0xcd, 0xef
            ]
        );
    }

    #[test]
    fn the_json_config_takes_the_same_fields() {
        let c: SmbiosConfig =
            serde_json::from_str(r#"{"manufacturer": "Amazon EC2", "asset_tag": "i-1"}"#).unwrap();
        assert_eq!(
            (c.manufacturer(), c.asset_tag.as_deref()),
            ("Amazon EC2", Some("i-1"))
        );
        assert!(serde_json::from_str::<SmbiosConfig>(r#"{"vendor": "x"}"#).is_err());
        let bad: SmbiosConfig = serde_json::from_str(r#"{"uuid": "nope"}"#).unwrap();
        assert_eq!(bad.validate(), Err(SmbiosSpecError::BadUuid("nope".into())));
    }

    #[test]
    fn defaults_when_nothing_is_given() {
        let c = SmbiosConfig::default();
        assert_eq!((c.manufacturer(), c.product()), ("kec2", "microvm"));
        assert_eq!(c.uuid_bytes(), [0; 16]);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let err = |s: &str| s.parse::<SmbiosConfig>().unwrap_err().to_string();
        assert!(err("colour=red").contains("`colour=red` is not valid; allowed: manufacturer="));
        assert!(err("product").contains("`product` is not valid"));
        assert!(err("uuid=ec2-not-a-uuid").contains("uuid `ec2-not-a-uuid` is not a UUID"));
        assert!(err("uuid=ec2e1916-9099-7caf-fd21-012345abcdeg").contains("is not a UUID"));
        assert!(err("uuid=ec2e19169-099-7caf-fd21-012345abcdef").contains("is not a UUID"));
        assert!(err("serial=a\0b").contains("serial must not contain NUL bytes"));
        let long = format!("version={}", "v".repeat(256));
        assert!(err(&long).contains("version is 256 bytes; at most 255"));
        assert!(
            format!("version={}", "v".repeat(255))
                .parse::<SmbiosConfig>()
                .is_ok()
        );
    }
}
