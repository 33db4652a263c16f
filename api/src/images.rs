//! Image actions: RegisterImage, DescribeImages, DeregisterImage.

use std::path::{Path, PathBuf};

use shapes::ec2::{
    ArchitectureValues, DeregisterImageRequest, DeregisterImageResult, DescribeImagesRequest,
    DescribeImagesResult, DeviceType, HypervisorType, Image, ImageState, ImageTypeValues,
    RegisterImageRequest, RegisterImageResult, VirtualizationType,
};

use super::errors::ApiError;
use super::filters::filters_match;
use super::instances::well_formed_id;
use super::typed::{self, Page, non_empty, tag_set};
use super::{Call, image_devices};
use state::images::{self, ImageRow};
use state::{new_id, now_iso, tags};

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
pub fn register(
    c: &Call<'_>,
    input: RegisterImageRequest,
) -> Result<RegisterImageResult, ApiError> {
    let manifest = match input.image_location.as_deref() {
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
    let kernel = match input.kernel_path.as_deref() {
        Some(k) => Some(k.to_string()),
        None => from_manifest(&|m, d| Some(relative_to(d, &m.kernel))),
    }
    .ok_or_else(|| ApiError::missing("KernelPath (or ImageLocation)"))?;
    let kernel = existing_file("KernelPath", &kernel)?;
    let initrd = match input.initrd_path.as_deref() {
        Some(i) => Some(i.to_string()),
        None => from_manifest(&|m, d| m.initrd.as_ref().map(|i| relative_to(d, i))),
    }
    .map(|i| existing_file("InitrdPath", &i))
    .transpose()?;
    let root_volume = match input.root_volume_path.as_deref() {
        Some(r) => Some(r.to_string()),
        None => from_manifest(&|m, d| m.root_volume.as_ref().map(|r| relative_to(d, r))),
    }
    .map(|r| existing_file("RootVolumePath", &r))
    .transpose()?;
    let boot_args = input
        .boot_args
        .clone()
        .or_else(|| from_manifest(&|m, _| Some(m.boot_args.clone())))
        .unwrap_or_default();
    let entry = input
        .entry_mode
        .clone()
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
    let architecture = input
        .architecture
        .map(|a| a.as_str().to_string())
        .or_else(|| from_manifest(&|m, _| m.architecture.clone()))
        .unwrap_or_else(|| "x86_64".into());
    if architecture != "x86_64" {
        return Err(ApiError::invalid(
            "Architecture",
            format!("'{architecture}' is not supported; the allowed value is x86_64"),
        ));
    }
    // The model requires `Name`: a manifest's name is the client's to use (`ec2
    // register-image` does).
    let name = input.name.clone();
    if name.len() < 3 || name.len() > 128 {
        return Err(ApiError::invalid(
            "Name",
            "image names are 3 to 128 characters",
        ));
    }
    let description = input.description.clone().unwrap_or_default();
    check_description(&description)?;
    let tag_list = typed::tag_specifications(input.tag_specifications.as_deref(), "image")?;
    let (root_snapshot_id, devices) = super::image_devices::register_devices(
        c,
        input.root_device_name.as_deref(),
        input.block_device_mappings.as_deref(),
    )?; // EBS
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
    Ok(RegisterImageResult {
        image_id: Some(row.id),
    })
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

/// DescribeImages: `ImageId.N`, `Owner.N` (`self` or this account), filters, and
/// `MaxResults` (5 to 1000) with `NextToken`.
pub fn describe(
    c: &Call<'_>,
    input: DescribeImagesRequest,
) -> Result<DescribeImagesResult, ApiError> {
    let ids = input.image_ids.unwrap_or_default();
    for id in &ids {
        if !well_formed_id(id, "ami") {
            return Err(ApiError::new(
                "InvalidAMIID.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
            ));
        }
    }
    let owners = input.owners.unwrap_or_default();
    let ours = owners.is_empty() || owners.iter().any(|o| o == "self" || *o == c.st.account_id);
    let filters = typed::filters(input.filters.as_deref())?;
    let page = Page::new(input.max_results, input.next_token.as_deref(), 5, 1000)?;
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
    let mut out = Vec::new();
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
        out.push(Image {
            image_id: Some(r.id.clone()),
            image_location: Some(r.kernel.clone()),
            state: ImageState::from_wire(image_state),
            owner_id: Some(c.st.account_id.clone()),
            creation_date: Some(r.created.clone()),
            public: Some(false),
            architecture: ArchitectureValues::from_wire(&r.architecture),
            image_type: Some(ImageTypeValues::Machine),
            name: Some(r.name.clone()),
            description: Some(r.description.clone()),
            root_device_type: DeviceType::from_wire(root_device_type(r)),
            root_device_name: Some(host::compute::disks::ROOT_DEVICE.to_string()),
            block_device_mappings: Some(image_devices::image_mapping(r, devs, &snaps)), // EBS
            virtualization_type: VirtualizationType::from_wire("hvm"),
            hypervisor: HypervisorType::from_wire("xen"),
            tags: tag_set(t),
            ..Image::default()
        });
    }
    let (out, next_token) = page.apply(out, |i| i.image_id.as_deref().unwrap_or_default());
    Ok(DescribeImagesResult {
        images: Some(out),
        next_token,
    })
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
pub fn deregister(
    c: &Call<'_>,
    input: DeregisterImageRequest,
) -> Result<DeregisterImageResult, ApiError> {
    let id = non_empty(&input.image_id, "ImageId")?.to_string();
    if !well_formed_id(&id, "ami") {
        return Err(ApiError::new(
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
        ));
    }
    if !images::delete(&c.st.db.lock(), &id)? {
        return Err(not_found(&[&id]));
    }
    Ok(DeregisterImageResult {
        return_: Some(true),
        delete_snapshot_results: None,
    })
}
