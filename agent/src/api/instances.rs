//! Instance actions: RunInstances, DescribeInstances, Start/Stop/Reboot/TerminateInstances,
//! DescribeInstanceStatus and GetConsoleOutput.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::errors::ApiError;
use super::xml::Xml;
use super::{AVAILABILITY_ZONE, Call, instance_network, launch_network, render};
use crate::compute::launch::LaunchRequest;
use crate::compute::{catalog, supervisor};
use crate::state::instances::{self, InstanceQuery, InstanceRow, InstanceState};
use crate::state::{images, keypairs, tags};

/// Largest decoded user data, as on EC2.
const MAX_USER_DATA: usize = 16 * 1024;
/// Most console output returned, as on EC2.
const MAX_CONSOLE: u64 = 64 * 1024;

/// Whether `s` looks like `prefix-` and 8 or 17 hex digits.
pub fn well_formed_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|h| {
            (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// The most `InstanceId.N` one call takes (EC2's limit for TerminateInstances, used for
/// every action that names instances but DescribeInstanceStatus).
const MAX_INSTANCE_IDS: usize = 1000;
/// The most `InstanceId.N` DescribeInstanceStatus takes (EC2's limit).
const MAX_STATUS_IDS: usize = 100;

/// The `InstanceId.N` list: required for the state-changing actions, at most `max`, each
/// well formed.
fn instance_ids(c: &Call<'_>, required: bool, max: usize) -> Result<Vec<String>, ApiError> {
    let ids = c.p.list("InstanceId");
    if required && ids.is_empty() {
        return Err(ApiError::missing("InstanceId"));
    }
    if ids.len() > max {
        return Err(ApiError::invalid(
            "InstanceId",
            format!("{} instance ids given; the limit is {max}", ids.len()),
        ));
    }
    for id in &ids {
        if !well_formed_id(id, "i") {
            return Err(ApiError::new(
                "InvalidInstanceID.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"i-...\")"),
            ));
        }
    }
    Ok(ids)
}

/// RunInstances.
pub async fn run(c: &Call<'_>) -> Result<String, ApiError> {
    let image_id = c.p.required("ImageId")?;
    if !well_formed_id(image_id, "ami") {
        return Err(ApiError::new(
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{image_id}\" (expecting \"ami-...\")"),
        ));
    }
    let min =
        c.p.int("MinCount", 1, 1000)?
            .ok_or_else(|| ApiError::missing("MinCount"))?;
    let max =
        c.p.int("MaxCount", 1, 1000)?
            .ok_or_else(|| ApiError::missing("MaxCount"))?;
    if min > max {
        return Err(ApiError::invalid(
            "MinCount",
            format!("MinCount ({min}) must not be greater than MaxCount ({max})"),
        ));
    }
    let type_name = c.p.get("InstanceType").unwrap_or("t2.micro");
    let instance_type = catalog::lookup(type_name).ok_or_else(|| {
        ApiError::new(
            "InvalidParameterValue",
            format!(
                "Invalid value '{type_name}' for InstanceType. Allowed values: {}",
                catalog::names()
            ),
        )
    })?;
    let shutdown_behavior = match c.p.get("InstanceInitiatedShutdownBehavior") {
        None | Some("stop") => "stop",
        Some("terminate") => "terminate",
        Some(other) => {
            return Err(ApiError::invalid(
                "InstanceInitiatedShutdownBehavior",
                format!("'{other}' is not one of: stop, terminate"),
            ));
        }
    };
    let user_data = match c.p.get("UserData") {
        None | Some("") => None,
        Some(ud) => {
            let bytes = B64
                .decode(ud.trim())
                .map_err(|_| ApiError::invalid("UserData", "user data must be base64-encoded"))?;
            if bytes.len() > MAX_USER_DATA {
                return Err(ApiError::invalid(
                    "UserData",
                    format!(
                        "user data is {} bytes; the limit is {MAX_USER_DATA}",
                        bytes.len()
                    ),
                ));
            }
            Some(ud.trim().to_string())
        }
    };
    let client_token = c.p.get("ClientToken").map(str::to_string);
    if client_token
        .as_ref()
        .is_some_and(|t| t.is_empty() || t.len() > 64 || !t.is_ascii())
    {
        return Err(ApiError::invalid("ClientToken", "1 to 64 ASCII characters"));
    }
    let tag_list = c.p.tag_specifications("instance")?;
    let key_name = c.p.get("KeyName").map(str::to_string);
    let (image, network) = {
        let conn = c.st.db.lock();
        if let Some(k) = &key_name
            && keypairs::by_name(&conn, k)?.is_none()
        {
            return Err(ApiError::new(
                "InvalidKeyPair.NotFound",
                format!("The key pair '{k}' does not exist"),
            ));
        }
        let image = images::get(&conn, image_id)?.ok_or_else(|| {
            ApiError::new(
                "InvalidAMIID.NotFound",
                format!("The image id '[{image_id}]' does not exist"),
            )
        })?;
        (image, launch_network::resolve(&conn, c.p, max as u32)?)
    };
    let volumes = super::block_devices::launch_plan(c, &image)?; // EBS
    let req = LaunchRequest {
        image,
        instance_type,
        min_count: min as u32,
        max_count: max as u32,
        key_name,
        user_data,
        shutdown_behavior: shutdown_behavior.to_string(),
        client_token,
        tags: tag_list,
        network,
        hibernation: c.p.bool("HibernationOptions.Configured")?,
        volumes,
    };
    let rows = c.st.compute.launch(&req)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let (tag_map, nets, vols) = {
        let conn = c.st.db.lock();
        (
            tags::for_resources(&conn, &ids)?,
            instance_network::load(&conn, &ids)?,
            super::block_devices::attached_map(&conn)?,
        )
    };
    let mut x = Xml::response("RunInstances", c.request_id);
    let refs: Vec<&InstanceRow> = rows.iter().collect();
    render::reservation_body(&mut x, &c.st.account_id, &refs, &tag_map, &nets, &vols);
    Ok(x.finish())
}

/// Builds the row query from `InstanceId.N` and the filters.
fn instance_query(c: &Call<'_>) -> Result<InstanceQuery, ApiError> {
    let mut q = InstanceQuery {
        ids: instance_ids(c, false, MAX_INSTANCE_IDS)?,
        ..Default::default()
    };
    for filter in c.p.filters()? {
        let (name, values) = (filter.name, filter.values);
        if values.is_empty() {
            return Err(ApiError::invalid(
                &name,
                "a filter needs at least one value",
            ));
        }
        match name.as_str() {
            "instance-id" => q.ids.extend(values),
            "instance-state-name" => {
                if let Some(bad) = values.iter().find(|v| InstanceState::parse(v).is_none()) {
                    return Err(ApiError::invalid(
                        "instance-state-name",
                        format!(
                            "'{bad}' is not a state: pending, running, shutting-down, terminated, stopping, stopped"
                        ),
                    ));
                }
                q.states.extend(values)
            }
            "instance-state-code" => q.states.extend(values.iter().filter_map(|v| {
                InstanceState::ALL
                    .into_iter()
                    .find(|s| s.code().to_string() == *v)
                    .map(|s| s.name().to_string())
            })),
            "image-id" => q.image_ids.extend(values),
            "instance-type" => q.types.extend(values),
            "key-name" => q.key_names.extend(values),
            "reservation-id" => q.reservation_ids.extend(values),
            "tag-key" => q.tag_keys.push(values),
            n if n.starts_with("tag:") => q.tags.push((n[4..].to_string(), values)),
            other => {
                return Err(ApiError::new(
                    "InvalidParameterValue",
                    format!(
                        "The filter '{other}' is invalid. Supported: instance-id, \
                         instance-state-name, instance-state-code, image-id, instance-type, \
                         key-name, reservation-id, tag:KEY, tag-key"
                    ),
                ));
            }
        }
    }
    Ok(q)
}

/// Reads `NextToken` (the last `seq` shown) and `MaxResults`.
fn page(c: &Call<'_>, q: &mut InstanceQuery, min: i64) -> Result<Option<usize>, ApiError> {
    let max = c.p.int("MaxResults", min, 1000)?;
    if max.is_some() && !c.p.list("InstanceId").is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    if let Some(tok) = c.p.get("NextToken") {
        let seq = tok
            .strip_prefix("seq-")
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| {
                ApiError::invalid(
                    "NextToken",
                    format!("'{tok}' is not a token this agent gave"),
                )
            })?;
        q.after_seq = Some(seq);
    }
    let limit = max.map(|m| m as usize);
    q.limit = limit.map(|m| m + 1);
    Ok(limit)
}

/// Fails with `InvalidInstanceID.NotFound` if any explicitly named id is unknown.
fn check_named_ids(c: &Call<'_>, rows: &[InstanceRow]) -> Result<(), ApiError> {
    let named = c.p.list("InstanceId");
    let missing: Vec<&String> = named
        .iter()
        .filter(|id| !rows.iter().any(|r| &r.id == *id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("', '");
    Err(ApiError::new(
        "InvalidInstanceID.NotFound",
        format!("The instance ID '{list}' does not exist"),
    ))
}

/// DescribeInstances.
pub fn describe(c: &Call<'_>) -> Result<String, ApiError> {
    let mut q = instance_query(c)?;
    let limit = page(c, &mut q, 5)?;
    let (mut rows, tag_map, nets, vols) = {
        let conn = c.st.db.lock();
        let rows = instances::query(&conn, &q)?;
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let tag_map = tags::for_resources(&conn, &ids)?;
        let nets = instance_network::load(&conn, &ids)?;
        let vols = super::block_devices::attached_map(&conn)?; // EBS
        (rows, tag_map, nets, vols)
    };
    if q.after_seq.is_none() {
        check_named_ids(c, &rows)?;
    }
    let next = match limit {
        Some(l) if rows.len() > l => {
            rows.truncate(l);
            rows.last().map(|r| format!("seq-{}", r.seq))
        }
        _ => None,
    };
    let mut x = Xml::response("DescribeInstances", c.request_id);
    // About 1.5 KB an instance.
    x.reserve(rows.len() * 1600).open("reservationSet");
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        while end < rows.len() && rows[end].reservation_id == rows[start].reservation_id {
            end += 1;
        }
        let group: Vec<&InstanceRow> = rows[start..end].iter().collect();
        x.open("item");
        render::reservation_body(&mut x, &c.st.account_id, &group, &tag_map, &nets, &vols);
        x.close("item");
        start = end;
    }
    x.close("reservationSet");
    x.leaf_opt("nextToken", next);
    Ok(x.finish())
}

/// StartInstances.
pub async fn start(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = instance_ids(c, true, MAX_INSTANCE_IDS)?;
    let changes = c.st.compute.start(&ids).await?;
    let mut x = Xml::response("StartInstances", c.request_id);
    render::state_changes(&mut x, &changes);
    Ok(x.finish())
}

/// StopInstances (`Force=true` skips the graceful wait).
pub async fn stop(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = instance_ids(c, true, MAX_INSTANCE_IDS)?;
    let force = c.p.bool("Force")?;
    let changes = if c.p.bool("Hibernate")? {
        if force {
            return Err(ApiError::new(
                "InvalidParameterCombination",
                "Force and Hibernate cannot be used together",
            ));
        }
        c.st.compute.hibernate(&ids).await?
    } else {
        c.st.compute.stop(&ids, force).await?
    };
    let mut x = Xml::response("StopInstances", c.request_id);
    render::state_changes(&mut x, &changes);
    Ok(x.finish())
}

/// RebootInstances.
pub async fn reboot(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = instance_ids(c, true, MAX_INSTANCE_IDS)?;
    c.st.compute.reboot(&ids).await?;
    Ok(Xml::returns_true("RebootInstances", c.request_id))
}

/// TerminateInstances.
pub async fn terminate(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = instance_ids(c, true, MAX_INSTANCE_IDS)?;
    let changes = c.st.compute.terminate(&ids).await?;
    let mut x = Xml::response("TerminateInstances", c.request_id);
    render::state_changes(&mut x, &changes);
    Ok(x.finish())
}

fn status_summary(x: &mut Xml, tag: &str, status: &str, check: &str) {
    x.open(tag).leaf("status", status).open("details");
    x.open("item")
        .leaf("name", "reachability")
        .leaf("status", check)
        .close("item");
    x.close("details").close(tag);
}

/// DescribeInstanceStatus: running instances (all with `IncludeAllInstances=true`), with the
/// instance check passing while the VMM process is alive.
pub fn describe_status(c: &Call<'_>) -> Result<String, ApiError> {
    let mut q = InstanceQuery {
        ids: instance_ids(c, false, MAX_STATUS_IDS)?,
        ..Default::default()
    };
    let all = c.p.bool("IncludeAllInstances")?;
    let limit = page(c, &mut q, 5)?;
    let mut rows = instances::query(&c.st.db.lock(), &q)?;
    check_named_ids(c, &rows)?;
    let next = match limit {
        Some(l) if rows.len() > l => {
            rows.truncate(l);
            rows.last().map(|r| format!("seq-{}", r.seq))
        }
        _ => None,
    };
    let mut x = Xml::response("DescribeInstanceStatus", c.request_id);
    x.open("instanceStatusSet");
    for r in rows
        .iter()
        .filter(|r| all || r.state == InstanceState::Running)
    {
        let alive = matches!((r.pid, r.pid_start), (Some(p), Some(s)) if supervisor::alive(p, s));
        let (status, check) = match (r.state, alive) {
            (InstanceState::Running, true) => ("ok", "passed"),
            (InstanceState::Running, false) => ("impaired", "failed"),
            (InstanceState::Pending, _) => ("initializing", "initializing"),
            _ => ("not-applicable", "not-applicable"),
        };
        x.open("item")
            .leaf("instanceId", &r.id)
            .leaf("availabilityZone", AVAILABILITY_ZONE);
        render::state(&mut x, "instanceState", r.state);
        status_summary(&mut x, "systemStatus", status, check);
        status_summary(&mut x, "instanceStatus", status, check);
        x.close("item");
    }
    x.close("instanceStatusSet");
    x.leaf_opt("nextToken", next);
    Ok(x.finish())
}

/// GetConsoleOutput: the last 64 KiB of the serial console, base64-encoded.
pub fn console_output(c: &Call<'_>) -> Result<String, ApiError> {
    let id = c.p.required("InstanceId")?;
    if !well_formed_id(id, "i") {
        return Err(ApiError::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"i-...\")"),
        ));
    }
    if instances::get(&c.st.db.lock(), id)?.is_none() {
        return Err(ApiError::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{id}' does not exist"),
        ));
    }
    let path = c.st.compute.dir(id).console();
    let bytes = read_tail(&path, MAX_CONSOLE).map_err(|e| ApiError::internal(&e))?;
    let mut x = Xml::response("GetConsoleOutput", c.request_id);
    x.leaf("instanceId", id)
        .leaf("timestamp", crate::state::now_iso())
        .leaf("output", B64.encode(bytes));
    Ok(x.finish())
}

/// The last `max` bytes of a file (nothing if it does not exist yet).
fn read_tail(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}
