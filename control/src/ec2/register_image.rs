//! RegisterImage and DeregisterImage. An image is a kernel (with an initrd and a root-volume
//! file, all files on this host) or a root snapshot, with its boot arguments and block
//! devices; it comes from the request's members or from a manifest (`ImageLocation`, as
//! `images/build.sh` writes them), the members winning.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::block_devices::{Mapping, MappingError, register_devices};
use crate::{Plane, Refusal};
use state::images::{self, ImageRow};
use state::{new_id, now_iso, tags};

/// The largest manifest `ImageLocation` may name, in bytes.
const MAX_MANIFEST: u64 = 1 << 20;
/// The longest `BootArgs`, in bytes (the vmm adds its own to the kernel command line).
const MAX_BOOT_ARGS: usize = 4096;
/// The longest image description, in characters (EC2's limit).
pub const MAX_DESCRIPTION: usize = 255;

/// An image manifest as `images/build.sh` writes it.
#[derive(Debug, serde::Deserialize)]
struct Manifest {
    /// `user` or `kernel`.
    #[serde(default = "kernel_entry")]
    entry: String,
    /// Kernel file, relative to the manifest.
    kernel: String,
    /// Initrd file, relative to the manifest.
    #[serde(default)]
    initrd: Option<String>,
    /// Root-volume file, relative to the manifest.
    #[serde(default)]
    root_volume: Option<String>,
    /// Kernel command line.
    #[serde(default)]
    boot_args: String,
    /// Architecture.
    #[serde(default)]
    architecture: Option<String>,
}

fn kernel_entry() -> String {
    "kernel".into()
}

/// RegisterImage, its members as given.
#[derive(Debug, Clone, Default)]
pub struct RegisterImage {
    /// The image's name (3 to 128 characters, unique).
    pub name: String,
    /// Its description.
    pub description: String,
    /// `ImageLocation`: a manifest file.
    pub location: Option<String>,
    /// `KernelPath`.
    pub kernel: Option<String>,
    /// `InitrdPath`.
    pub initrd: Option<String>,
    /// `RootVolumePath`.
    pub root_volume: Option<String>,
    /// `BootArgs`.
    pub boot_args: Option<String>,
    /// `EntryMode`: `user` or `kernel`.
    pub entry: Option<String>,
    /// `Architecture`.
    pub architecture: Option<String>,
    /// `RootDeviceName`.
    pub root_device_name: Option<String>,
    /// `BlockDeviceMapping.N`.
    pub mappings: Vec<Mapping>,
    /// Tags for the image.
    pub tags: Vec<(String, String)>,
}

/// Why RegisterImage or DeregisterImage is refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A member's value cannot be used.
    #[error("Value for parameter {field} is invalid: {why}")]
    Invalid {
        /// The member.
        field: &'static str,
        /// What is wrong and what is allowed.
        why: String,
    },
    /// A member is needed.
    #[error("The request must contain the parameter {0}")]
    Missing(&'static str),
    /// Another image has the name.
    #[error("AMI name {0} is already in use by another image")]
    Duplicate(String),
    /// No image has the id.
    #[error("The image id '[{0}]' does not exist")]
    NotFound(String),
    /// A block-device mapping cannot be had.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for ImageError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { .. } => Some("InvalidParameterValue"),
            Self::Missing(_) => Some("MissingParameter"),
            Self::Duplicate(_) => Some("InvalidAMIName.Duplicate"),
            Self::NotFound(_) => Some("InvalidAMIID.NotFound"),
            Self::Mapping(e) => e.code(),
            Self::Db(_) => None,
        }
    }
}

fn invalid(field: &'static str, why: impl Into<String>) -> ImageError {
    ImageError::Invalid {
        field,
        why: why.into(),
    }
}

/// An absolute path to an existing regular file, or an error naming `field`.
fn existing_file(field: &'static str, path: &str) -> Result<String, ImageError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(invalid(field, format!("'{path}' must be an absolute path")));
    }
    if !p.is_file() {
        return Err(invalid(field, format!("'{path}' is not an existing file")));
    }
    Ok(path.to_string())
}

fn relative_to(dir: &Path, file: &str) -> String {
    let p = PathBuf::from(file);
    if p.is_absolute() { p } else { dir.join(p) }
        .display()
        .to_string()
}

/// The manifest at `location`, with its directory.
fn manifest(location: &str) -> Result<(Manifest, PathBuf), ImageError> {
    let path = existing_file("ImageLocation", location)?;
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    if size > MAX_MANIFEST {
        return Err(invalid(
            "ImageLocation",
            format!("'{location}' is {size} bytes; manifests are at most {MAX_MANIFEST} bytes"),
        ));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| invalid("ImageLocation", format!("cannot read '{location}': {e}")))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| {
        invalid(
            "ImageLocation",
            format!("'{location}' is not an image manifest: {e}"),
        )
    })?;
    let dir = Path::new(&path)
        .parent()
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    Ok((m, dir))
}

/// Checks an image's description against [`MAX_DESCRIPTION`].
pub fn check_description(description: &str) -> Result<(), ImageError> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(invalid(
            "Description",
            format!("image descriptions are at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

/// The image `cmd` describes, its files and members checked (not stored).
fn image_row(cmd: &RegisterImage) -> Result<ImageRow, ImageError> {
    let manifest = cmd.location.as_deref().map(manifest).transpose()?;
    let from_manifest = |f: &dyn Fn(&Manifest, &Path) -> Option<String>| {
        manifest.as_ref().and_then(|(m, dir)| f(m, dir))
    };
    let kernel = cmd
        .kernel
        .clone()
        .or_else(|| from_manifest(&|m, d| Some(relative_to(d, &m.kernel))))
        .ok_or(ImageError::Missing("KernelPath (or ImageLocation)"))?;
    let kernel = existing_file("KernelPath", &kernel)?;
    let initrd = cmd
        .initrd
        .clone()
        .or_else(|| from_manifest(&|m, d| m.initrd.as_ref().map(|i| relative_to(d, i))))
        .map(|i| existing_file("InitrdPath", &i))
        .transpose()?;
    let root_volume = cmd
        .root_volume
        .clone()
        .or_else(|| from_manifest(&|m, d| m.root_volume.as_ref().map(|r| relative_to(d, r))))
        .map(|r| existing_file("RootVolumePath", &r))
        .transpose()?;
    let boot_args = cmd
        .boot_args
        .clone()
        .or_else(|| from_manifest(&|m, _| Some(m.boot_args.clone())))
        .unwrap_or_default();
    let entry = cmd
        .entry
        .clone()
        .or_else(|| from_manifest(&|m, _| Some(m.entry.clone())))
        .unwrap_or_else(kernel_entry);
    if boot_args.len() > MAX_BOOT_ARGS {
        return Err(invalid(
            "BootArgs",
            format!(
                "the boot arguments are {} bytes; the limit is {MAX_BOOT_ARGS}",
                boot_args.len()
            ),
        ));
    }
    if entry != "user" && entry != "kernel" {
        return Err(invalid(
            "EntryMode",
            format!("'{entry}' is not one of: user, kernel"),
        ));
    }
    let architecture = cmd
        .architecture
        .clone()
        .or_else(|| from_manifest(&|m, _| m.architecture.clone()))
        .unwrap_or_else(|| "x86_64".into());
    if architecture != "x86_64" {
        return Err(invalid(
            "Architecture",
            format!("'{architecture}' is not supported; the allowed value is x86_64"),
        ));
    }
    if cmd.name.len() < 3 || cmd.name.len() > 128 {
        return Err(invalid("Name", "image names are 3 to 128 characters"));
    }
    check_description(&cmd.description)?;
    Ok(ImageRow {
        id: new_id("ami"),
        name: cmd.name.clone(),
        description: cmd.description.clone(),
        kernel,
        initrd,
        root_volume,
        boot_args,
        entry,
        architecture,
        created: now_iso(),
        root_snapshot_id: None,
    })
}

/// Stores the image `row` with the devices `cmd` maps, unless its name is taken.
fn register(conn: &Connection, cmd: &RegisterImage, row: ImageRow) -> Result<ImageRow, ImageError> {
    let (root_snapshot_id, devices) =
        register_devices(conn, cmd.root_device_name.as_deref(), &cmd.mappings)?;
    if images::name_taken(conn, &row.name)? {
        return Err(ImageError::Duplicate(row.name));
    }
    let row = ImageRow {
        root_snapshot_id,
        ..row
    };
    images::insert(conn, &row)?;
    images::insert_devices(conn, &row.id, &devices)?;
    tags::put(conn, &row.id, &cmd.tags)?;
    Ok(row)
}

impl Plane {
    /// RegisterImage.
    pub fn register_image(&self, cmd: &RegisterImage) -> Result<ImageRow, ImageError> {
        let row = image_row(cmd)?;
        let committed =
            self.transact::<_, ImageError>(|tx| Ok((register(tx, cmd, row)?, Vec::new())))?;
        tracing::info!(id = %committed.value.id, name = %committed.value.name, "image registered");
        Ok(committed.value)
    }

    /// DeregisterImage: the image goes; its snapshots stay, as on EC2.
    pub fn deregister_image(&self, id: &str) -> Result<(), ImageError> {
        self.transact::<_, ImageError>(|tx| {
            if !images::delete(tx, id)? {
                return Err(ImageError::NotFound(id.to_owned()));
            }
            Ok(((), Vec::new()))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_gives_what_the_request_leaves_out_and_bad_members_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vmlinux"), b"k").unwrap();
        std::fs::write(
            dir.path().join("manifest.json"),
            r#"{"name": "m", "kernel": "vmlinux", "boot_args": "console=ttyS0", "entry": "user"}"#,
        )
        .unwrap();
        let cmd = RegisterImage {
            name: "probe".into(),
            location: Some(dir.path().join("manifest.json").display().to_string()),
            ..RegisterImage::default()
        };
        let row = image_row(&cmd).unwrap();
        assert!(row.kernel.ends_with("/vmlinux"));
        assert_eq!(
            (row.boot_args.as_str(), row.entry.as_str()),
            ("console=ttyS0", "user")
        );
        let e = image_row(&RegisterImage {
            entry: Some("bios".into()),
            ..cmd.clone()
        })
        .unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterValue"));
        assert!(e.to_string().contains("EntryMode"), "{e}");
        let e = image_row(&RegisterImage {
            kernel: Some("relative/vmlinux".into()),
            ..cmd.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("must be an absolute path"), "{e}");
        let e = image_row(&RegisterImage {
            name: "probe".into(),
            ..RegisterImage::default()
        })
        .unwrap_err();
        assert_eq!(e.code(), Some("MissingParameter"));
    }

    #[test]
    fn names_are_unique() {
        let (_dir, db) = crate::ec2::test_db();
        let files = tempfile::tempdir().unwrap();
        let kernel = files.path().join("vmlinux");
        std::fs::write(&kernel, b"k").unwrap();
        let cmd = RegisterImage {
            name: "probe".into(),
            kernel: Some(kernel.display().to_string()),
            ..RegisterImage::default()
        };
        let conn = db.lock();
        register(&conn, &cmd, image_row(&cmd).unwrap()).unwrap();
        let e = register(&conn, &cmd, image_row(&cmd).unwrap()).unwrap_err();
        assert_eq!(e.code(), Some("InvalidAMIName.Duplicate"));
    }
}
