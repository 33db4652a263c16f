//! Image actions: RegisterImage, DescribeImages, DeregisterImage.

use std::path::{Path, PathBuf};

use super::errors::ApiError;
use super::filters::filters_match;
use super::instances::well_formed_id;
use super::xml::Xml;
use super::{Call, image_devices};
use crate::state::images::{self, ImageRow};
use crate::state::{new_id, now_iso, tags};

/// The largest manifest `ImageLocation` may name, in bytes.
const MAX_MANIFEST: u64 = 1 << 20;
/// The longest `BootArgs`, in bytes (the vmm adds its own to the kernel command line).
const MAX_BOOT_ARGS: usize = 4096;

/// An image manifest as `images/build.sh` writes it.
#[derive(Debug, serde::Deserialize)]
pub struct Manifest {
    /// Image name.
    pub name: String,
    /// `user` or `kernel`.
    #[serde(default = "kernel_entry")]
    pub entry: String,
    /// Kernel file, relative to the manifest.
    pub kernel: String,
    /// Initrd file, relative to the manifest.
    #[serde(default)]
    pub initrd: Option<String>,
    /// Root-volume file, relative to the manifest.
    #[serde(default)]
    pub root_volume: Option<String>,
    /// Kernel command line.
    #[serde(default)]
    pub boot_args: String,
    /// Architecture.
    #[serde(default)]
    pub architecture: Option<String>,
}

fn kernel_entry() -> String {
    "kernel".into()
}

/// An absolute path to an existing regular file, or an error naming `field`.
fn existing_file(field: &str, path: &str) -> Result<String, ApiError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(ApiError::invalid(
            field,
            format!("'{path}' must be an absolute path"),
        ));
    }
    if !p.is_file() {
        return Err(ApiError::invalid(
            field,
            format!("'{path}' is not an existing file"),
        ));
    }
    Ok(path.to_string())
}

fn relative_to(dir: &Path, file: &str) -> String {
    let p = PathBuf::from(file);
    if p.is_absolute() { p } else { dir.join(p) }
        .display()
        .to_string()
}

/// RegisterImage: from `ImageLocation` (a manifest.json) or from `KernelPath`, `InitrdPath`,
/// `RootVolumePath`, `BootArgs`, `EntryMode` and `Architecture`.
pub fn register(c: &Call<'_>) -> Result<String, ApiError> {
    let p = c.p;
    let manifest = match p.get("ImageLocation") {
        Some(loc) => {
            let path = existing_file("ImageLocation", loc)?;
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            if size > MAX_MANIFEST {
                return Err(ApiError::invalid(
                    "ImageLocation",
                    format!("'{loc}' is {size} bytes; manifests are at most {MAX_MANIFEST} bytes"),
                ));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ApiError::invalid("ImageLocation", format!("cannot read '{loc}': {e}"))
            })?;
            let m: Manifest = serde_json::from_str(&text).map_err(|e| {
                ApiError::invalid(
                    "ImageLocation",
                    format!("'{loc}' is not an image manifest: {e}"),
                )
            })?;
            Some((
                m,
                Path::new(&path)
                    .parent()
                    .unwrap_or(Path::new("/"))
                    .to_path_buf(),
            ))
        }
        None => None,
    };
    let from_manifest = |f: &dyn Fn(&Manifest, &Path) -> Option<String>| {
        manifest.as_ref().and_then(|(m, dir)| f(m, dir))
    };
    let kernel = match p.get("KernelPath") {
        Some(k) => Some(k.to_string()),
        None => from_manifest(&|m, d| Some(relative_to(d, &m.kernel))),
    }
    .ok_or_else(|| ApiError::missing("KernelPath (or ImageLocation)"))?;
    let kernel = existing_file("KernelPath", &kernel)?;
    let initrd = match p.get("InitrdPath") {
        Some(i) => Some(i.to_string()),
        None => from_manifest(&|m, d| m.initrd.as_ref().map(|i| relative_to(d, i))),
    }
    .map(|i| existing_file("InitrdPath", &i))
    .transpose()?;
    let root_volume = match p.get("RootVolumePath") {
        Some(r) => Some(r.to_string()),
        None => from_manifest(&|m, d| m.root_volume.as_ref().map(|r| relative_to(d, r))),
    }
    .map(|r| existing_file("RootVolumePath", &r))
    .transpose()?;
    let boot_args = p
        .get("BootArgs")
        .map(str::to_string)
        .or_else(|| from_manifest(&|m, _| Some(m.boot_args.clone())))
        .unwrap_or_default();
    let entry = p
        .get("EntryMode")
        .map(str::to_string)
        .or_else(|| from_manifest(&|m, _| Some(m.entry.clone())))
        .unwrap_or_else(kernel_entry);
    if boot_args.len() > MAX_BOOT_ARGS {
        return Err(ApiError::invalid(
            "BootArgs",
            format!(
                "the boot arguments are {} bytes; the limit is {MAX_BOOT_ARGS}",
                boot_args.len()
            ),
        ));
    }
    if entry != "user" && entry != "kernel" {
        return Err(ApiError::invalid(
            "EntryMode",
            format!("'{entry}' is not one of: user, kernel"),
        ));
    }
    let architecture = p
        .get("Architecture")
        .map(str::to_string)
        .or_else(|| from_manifest(&|m, _| m.architecture.clone()))
        .unwrap_or_else(|| "x86_64".into());
    if architecture != "x86_64" {
        return Err(ApiError::invalid(
            "Architecture",
            format!("'{architecture}' is not supported; the allowed value is x86_64"),
        ));
    }
    let name = match (p.get("Name"), &manifest) {
        (Some(n), _) => n.to_string(),
        (None, Some((m, _))) => format!("{}-{}", m.name, &new_id("x")[2..10]),
        (None, None) => return Err(ApiError::missing("Name")),
    };
    if name.len() < 3 || name.len() > 128 {
        return Err(ApiError::invalid(
            "Name",
            "image names are 3 to 128 characters",
        ));
    }
    let description = p.get("Description").unwrap_or_default().to_string();
    check_description(&description)?;
    let tag_list = p.tag_specifications("image")?;
    let (root_snapshot_id, devices) = super::image_devices::register_devices(c)?; // EBS
    let row = ImageRow {
        id: new_id("ami"),
        name,
        description,
        kernel,
        initrd,
        root_volume,
        boot_args,
        entry,
        architecture,
        created: now_iso(),
        root_snapshot_id,
    };
    {
        let mut conn = c.st.db.lock();
        let tx = conn.transaction()?;
        if images::name_taken(&tx, &row.name)? {
            return Err(ApiError::new(
                "InvalidAMIName.Duplicate",
                format!("AMI name {} is already in use by another image", row.name),
            ));
        }
        images::insert(&tx, &row)?;
        images::insert_devices(&tx, &row.id, &devices)?;
        tags::put(&tx, &row.id, &tag_list)?;
        tx.commit()?;
    }
    tracing::info!(id = %row.id, name = %row.name, "image registered");
    let mut x = Xml::response("RegisterImage", c.request_id);
    x.leaf("imageId", &row.id);
    Ok(x.finish())
}

/// The longest image description, in characters (EC2's limit).
pub const MAX_DESCRIPTION: usize = 255;

/// Checks an image's `Description` against [`MAX_DESCRIPTION`].
pub fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "Description",
            format!("image descriptions are at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

fn not_found(ids: &[&String]) -> ApiError {
    let list = ids
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    ApiError::new(
        "InvalidAMIID.NotFound",
        format!("The image id '[{list}]' does not exist"),
    )
}

/// DescribeImages: `ImageId.N`, `Owner.N` (`self` or this account) and filters.
pub fn describe(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = c.p.list("ImageId");
    for id in &ids {
        if !well_formed_id(id, "ami") {
            return Err(ApiError::new(
                "InvalidAMIID.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
            ));
        }
    }
    let owners = c.p.list("Owner");
    let ours = owners.is_empty() || owners.iter().any(|o| o == "self" || *o == c.st.account_id);
    let filters = c.p.filters()?;
    let (rows, tag_map, devices, snaps) = {
        let conn = c.st.db.lock();
        let rows = images::all(&conn)?;
        let refs: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let tag_map = tags::for_resources(&conn, &refs)?;
        let devices = images::all_devices(&conn)?; // EBS
        let snaps = image_devices::image_snapshots(&conn, &rows, &devices)?;
        (rows, tag_map, devices, snaps)
    };
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !rows.iter().any(|r| &r.id == *id))
        .collect();
    if !missing.is_empty() {
        return Err(not_found(&missing));
    }
    let mut x = Xml::response("DescribeImages", c.request_id);
    x.open("imagesSet");
    for r in rows.iter().filter(|_| ours) {
        if !ids.is_empty() && !ids.contains(&r.id) {
            continue;
        }
        let t = tag_map.get(&r.id).map_or(&[][..], Vec::as_slice);
        let devs = devices.get(&r.id).map_or(&[][..], Vec::as_slice);
        let image_state = image_devices::image_state(r, devs, &snaps);
        let keep = filters_match(
            &filters,
            t,
            "image-id, name, architecture, state, owner-id, description",
            |name| {
                let v = match name {
                    "image-id" => &r.id,
                    "name" => &r.name,
                    "architecture" => &r.architecture,
                    "state" => image_state,
                    "owner-id" => &c.st.account_id,
                    "description" => &r.description,
                    _ => return None,
                };
                Some(vec![v.to_string()])
            },
        )?;
        if !keep {
            continue;
        }
        x.open("item")
            .leaf("imageId", &r.id)
            .leaf("imageLocation", &r.kernel)
            .leaf("imageState", image_state)
            .leaf("imageOwnerId", &c.st.account_id)
            .leaf("creationDate", &r.created)
            .leaf("isPublic", "false")
            .leaf("architecture", &r.architecture)
            .leaf("imageType", "machine")
            .leaf("name", &r.name)
            .leaf("description", &r.description)
            .leaf("rootDeviceType", root_device_type(r))
            .leaf("rootDeviceName", crate::compute::disks::ROOT_DEVICE);
        image_devices::image_mapping(&mut x, r, devs, &snaps); // EBS
        x.leaf("virtualizationType", "hvm")
            .leaf("hypervisor", "xen");
        if !t.is_empty() {
            x.tag_set(t);
        }
        x.close("item");
    }
    x.close("imagesSet");
    Ok(x.finish())
}

/// EBS: `ebs` when the image has a root volume (a file or a snapshot).
fn root_device_type(r: &ImageRow) -> &'static str {
    if r.root_snapshot_id.is_some() || r.root_volume.is_some() {
        "ebs"
    } else {
        "instance-store"
    }
}

/// DeregisterImage: the image goes; its snapshots stay, as on EC2.
pub fn deregister(c: &Call<'_>) -> Result<String, ApiError> {
    let id = c.p.required("ImageId")?.to_string();
    if !well_formed_id(&id, "ami") {
        return Err(ApiError::new(
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
        ));
    }
    if !images::delete(&c.st.db.lock(), &id)? {
        return Err(not_found(&[&id]));
    }
    Ok(Xml::returns_true("DeregisterImage", c.request_id))
}
