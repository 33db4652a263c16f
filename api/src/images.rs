//! Image actions: RegisterImage, DescribeImages, DeregisterImage.

use shapes::ec2::{
    ArchitectureValues, DeregisterImageRequest, DeregisterImageResult, DescribeImagesRequest,
    DescribeImagesResult, DeviceType, HypervisorType, Image, ImageState, ImageTypeValues,
    RegisterImageRequest, RegisterImageResult, VirtualizationType,
};

use super::block_devices::typed_mappings;
use super::errors::ApiError;
use super::filters::filters_match;
use super::typed::{self, Page, non_empty, tag_set};
use super::{Call, image_devices};
use control::ec2::register_image::{self, RegisterImage};
use state::images::{self, ImageRow};
use state::tags;
use state::well_formed_id;

/// RegisterImage: from `ImageLocation` (a manifest.json) or from `KernelPath`, `InitrdPath`,
/// `RootVolumePath`, `BootArgs`, `EntryMode` and `Architecture`.
pub fn register(
    c: &Call<'_>,
    input: RegisterImageRequest,
) -> Result<RegisterImageResult, ApiError> {
    // The model requires `Name`: a manifest's name is the client's to use (`ec2
    // register-image` does).
    let cmd = RegisterImage {
        name: input.name.clone(),
        description: input.description.clone().unwrap_or_default(),
        location: input.image_location.clone(),
        kernel: input.kernel_path.clone(),
        initrd: input.initrd_path.clone(),
        root_volume: input.root_volume_path.clone(),
        boot_args: input.boot_args.clone(),
        entry: input.entry_mode.clone(),
        architecture: input.architecture.map(|a| a.as_str().to_string()),
        root_device_name: input.root_device_name.clone(),
        mappings: typed_mappings(input.block_device_mappings.as_deref())?,
        tags: typed::tag_specifications(input.tag_specifications.as_deref(), "image")?,
    };
    let row =
        c.st.plane
            .register_image(&cmd)
            .map_err(|e| ApiError::refused(&e))?;
    Ok(RegisterImageResult {
        image_id: Some(row.id),
    })
}

/// Checks an image's `Description` (at most 255 characters).
pub fn check_description(description: &str) -> Result<(), ApiError> {
    register_image::check_description(description).map_err(|e| ApiError::refused(&e))
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
    c.st.plane
        .deregister_image(&id)
        .map_err(|e| ApiError::refused(&e))?;
    Ok(DeregisterImageResult {
        return_: Some(true),
        delete_snapshot_results: None,
    })
}
