//! Instance actions: RunInstances, DescribeInstances, Start/Stop/Reboot/TerminateInstances
//! and GetConsoleOutput (DescribeInstanceStatus and monitoring: `instance_status.rs`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use shapes::Empty;
use shapes::ec2::{
    DescribeInstancesRequest, Filter, GetConsoleOutputRequest, GetConsoleOutputResult,
    RebootInstancesRequest, Reservation, RunInstancesRequest, StartInstancesRequest,
    StartInstancesResult, StopInstancesRequest, StopInstancesResult, TerminateInstancesRequest,
    TerminateInstancesResult,
};

use super::errors::ApiError;
use super::filters::{self as filter, canonical_name, filters_match};
use super::instance_network::InstanceNetwork;
use super::typed;
use super::{Call, instance_network, launch_templates, render};
use control::ec2::instances::StopMode;
use control::ec2::launch_templates::command::Counts;
use control::ec2::launch_templates::{RunRequest, TemplateRef};
use state::instances::{self, InstanceQuery, InstanceRow, InstanceState};
use state::tags;

mod filters;
mod page;

pub use page::InstancesPage;

/// Most console output returned, as on EC2.
const MAX_CONSOLE: u64 = 64 * 1024;

use state::well_formed_id;

/// The most `InstanceId.N` one call takes (EC2's limit for TerminateInstances, used for
/// every action that names instances but DescribeInstanceStatus).
pub(crate) const MAX_INSTANCE_IDS: usize = 1000;

/// The `InstanceId.N` list: required for the state-changing actions, at most `max`, each
/// well formed.
pub(crate) fn instance_ids(
    ids: &[String],
    required: bool,
    max: usize,
) -> Result<Vec<String>, ApiError> {
    if required && ids.is_empty() {
        return Err(ApiError::missing("InstanceId"));
    }
    if ids.len() > max {
        return Err(ApiError::invalid(
            "InstanceId",
            format!("{} instance ids given; the limit is {max}", ids.len()),
        ));
    }
    for id in ids {
        if !well_formed_id(id, "i") {
            return Err(ApiError::new(
                "InvalidInstanceID.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"i-...\")"),
            ));
        }
    }
    Ok(ids.to_vec())
}

/// A count of RunInstances (`MinCount`, `MaxCount`): 1 to 1000.
fn count(field: &str, n: i32) -> Result<u32, ApiError> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| ApiError::invalid(field, format!("'{n}' is not an integer from 1 to 1000")))
}

/// RunInstances: the request's own parameters, over its launch template's when it names
/// one, launched through the control plane's one launch path.
pub async fn run(c: &Call<'_>, input: RunInstancesRequest) -> Result<Reservation, ApiError> {
    let min = count("MinCount", input.min_count)?;
    let max = count("MaxCount", input.max_count)?;
    if min > max {
        return Err(ApiError::invalid(
            "MinCount",
            format!("MinCount ({min}) must not be greater than MaxCount ({max})"),
        ));
    }
    let client_token = input.client_token.clone();
    if client_token
        .as_ref()
        .is_some_and(|t| t.is_empty() || t.len() > 64 || !t.is_ascii())
    {
        return Err(ApiError::invalid("ClientToken", "1 to 64 ASCII characters"));
    }
    let req = RunRequest {
        template: input.launch_template.as_ref().map(|t| TemplateRef {
            id: t.launch_template_id.clone(),
            name: t.launch_template_name.clone(),
            version: t.version.clone(),
        }),
        data: launch_templates::data::from_run(&input)?,
        counts: Counts {
            min,
            max,
            client_token,
        },
    };
    let rows =
        c.st.plane
            .run_with_data(&req)
            .map_err(|e| ApiError::refused(&e))?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let (tag_map, nets, vols) = {
        let conn = c.st.db.lock();
        (
            tags::for_resources(&conn, &ids)?,
            instance_network::load(&conn, &ids)?,
            super::block_devices::attached_map(&conn)?,
        )
    };
    let refs: Vec<&InstanceRow> = rows.iter().collect();
    Ok(render::reservation(
        &c.st.account_id,
        &refs,
        &tag_map,
        &nets,
        &vols,
    ))
}

/// Builds the row query from `InstanceId.N` and the filters that SQL answers (exact
/// values), and returns the other filters, to be matched against each instance as shown.
/// A camelCase name is taken in its kebab-case spelling (`subnetId` for `subnet-id`).
fn instance_query(
    ids: &[String],
    given: Option<&[Filter]>,
) -> Result<(InstanceQuery, Vec<filter::Filter>), ApiError> {
    let mut q = InstanceQuery {
        ids: instance_ids(ids, false, MAX_INSTANCE_IDS)?,
        ..Default::default()
    };
    let mut rest = Vec::new();
    for f in typed::filters(given)? {
        let Some(name) = canonical_name(&f.name, filters::known) else {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!(
                    "The filter '{}' is invalid. Supported: {}",
                    f.name,
                    filters::supported()
                ),
            ));
        };
        let values = f.values;
        if values.is_empty() {
            return Err(ApiError::invalid(
                &name,
                "a filter needs at least one value",
            ));
        }
        let wildcard = values.iter().any(|v| v.contains(['*', '?']));
        if wildcard && name != "instance-state-name" {
            rest.push(filter::Filter::new(name, values));
            continue;
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
            _ => rest.push(filter::Filter::new(name, values)),
        }
    }
    Ok((q, rest))
}

/// `MaxResults` cannot go with `InstanceId.N`.
pub(crate) fn check_page_combination(
    max_results: Option<i32>,
    ids: &[String],
) -> Result<(), ApiError> {
    if max_results.is_some() && !ids.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    Ok(())
}

/// Reads `NextToken` (the last `seq` shown) and `MaxResults` (5 to 1000) into `q`; the
/// page's size.
fn seq_page(
    q: &mut InstanceQuery,
    max_results: Option<i32>,
    next_token: Option<&str>,
    ids: &[String],
) -> Result<Option<usize>, ApiError> {
    let limit = max_results
        .map(|n| {
            usize::try_from(n)
                .ok()
                .filter(|m| (5..=1000).contains(m))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "MaxResults",
                        format!("'{n}' is not an integer from 5 to 1000"),
                    )
                })
        })
        .transpose()?;
    check_page_combination(max_results, ids)?;
    if let Some(tok) = next_token {
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
    q.limit = limit.map(|m| m + 1);
    Ok(limit)
}

/// Fails with `InvalidInstanceID.NotFound` if any explicitly named id is unknown.
pub(crate) fn check_named_ids(named: &[String], rows: &[InstanceRow]) -> Result<(), ApiError> {
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

/// DescribeInstances: pages by `seq` (`NextToken` is `seq-N`, the last one shown).
pub fn describe(c: &Call<'_>, input: DescribeInstancesRequest) -> Result<InstancesPage, ApiError> {
    let named = input.instance_ids.unwrap_or_default();
    let (mut q, rest) = instance_query(&named, input.filters.as_deref())?;
    let limit = seq_page(
        &mut q,
        input.max_results,
        input.next_token.as_deref(),
        &named,
    )?;
    if !rest.is_empty() {
        // The page is cut after matching.
        q.limit = None;
    }
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
        check_named_ids(&named, &rows)?;
    }
    if !rest.is_empty() {
        let none = InstanceNetwork::default();
        let supported = filters::supported();
        let mut keep = Vec::with_capacity(rows.len());
        for r in rows {
            let shown = filters::Shown {
                row: &r,
                net: nets.get(&r.id).unwrap_or(&none),
                vols: vols.get(&r.id).map_or(&[][..], Vec::as_slice),
                owner: &c.st.account_id,
            };
            let t = tag_map.get(&r.id).map_or(&[][..], Vec::as_slice);
            if filters_match(&rest, t, &supported, |name| filters::field(name, &shown))? {
                keep.push(r);
            }
        }
        rows = keep;
    }
    let next_token = match limit {
        Some(l) if rows.len() > l => {
            rows.truncate(l);
            rows.last().map(|r| format!("seq-{}", r.seq))
        }
        _ => None,
    };
    Ok(InstancesPage {
        owner: c.st.account_id.clone(),
        rows,
        tags: tag_map,
        nets,
        vols,
        next_token,
    })
}

/// StartInstances.
pub async fn start(
    c: &Call<'_>,
    input: StartInstancesRequest,
) -> Result<StartInstancesResult, ApiError> {
    let ids = instance_ids(&input.instance_ids, true, MAX_INSTANCE_IDS)?;
    let changes =
        c.st.plane
            .start_instances(&ids)
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(StartInstancesResult {
        starting_instances: render::state_changes(&changes),
    })
}

/// StopInstances (`Force=true` skips the graceful wait).
pub async fn stop(
    c: &Call<'_>,
    input: StopInstancesRequest,
) -> Result<StopInstancesResult, ApiError> {
    let ids = instance_ids(&input.instance_ids, true, MAX_INSTANCE_IDS)?;
    let force = input.force.unwrap_or(false);
    let mode = match (input.hibernate.unwrap_or(false), force) {
        (true, true) => {
            return Err(ApiError::new(
                "InvalidParameterCombination",
                "Force and Hibernate cannot be used together",
            ));
        }
        (true, false) => StopMode::Hibernate,
        (false, true) => StopMode::Force,
        (false, false) => StopMode::Graceful,
    };
    let changes =
        c.st.plane
            .stop_instances(&ids, mode)
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(StopInstancesResult {
        stopping_instances: render::state_changes(&changes),
    })
}

/// RebootInstances.
pub async fn reboot(c: &Call<'_>, input: RebootInstancesRequest) -> Result<Empty, ApiError> {
    let ids = instance_ids(&input.instance_ids, true, MAX_INSTANCE_IDS)?;
    c.st.plane
        .reboot_instances(&ids)
        .await
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}

/// TerminateInstances.
pub async fn terminate(
    c: &Call<'_>,
    input: TerminateInstancesRequest,
) -> Result<TerminateInstancesResult, ApiError> {
    let ids = instance_ids(&input.instance_ids, true, MAX_INSTANCE_IDS)?;
    let changes =
        c.st.plane
            .terminate_instances(&ids)
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(TerminateInstancesResult {
        terminating_instances: render::state_changes(&changes),
    })
}

/// The `InstanceId` a request names: `MissingParameter` when empty,
/// `InvalidInstanceID.Malformed` when not an instance id.
pub fn named_instance(id: &str) -> Result<&str, ApiError> {
    if id.is_empty() {
        return Err(ApiError::missing("InstanceId"));
    }
    if !well_formed_id(id, "i") {
        return Err(ApiError::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"i-...\")"),
        ));
    }
    Ok(id)
}

/// GetConsoleOutput: the last 64 KiB of the serial console, base64-encoded.
pub fn console_output(
    c: &Call<'_>,
    input: GetConsoleOutputRequest,
) -> Result<GetConsoleOutputResult, ApiError> {
    let id = named_instance(&input.instance_id)?;
    if instances::get(&c.st.db.lock(), id)?.is_none() {
        return Err(ApiError::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{id}' does not exist"),
        ));
    }
    let path = c.st.plane.compute.dir(id).console();
    let bytes = read_tail(&path, MAX_CONSOLE).map_err(|e| ApiError::internal(&e))?;
    Ok(GetConsoleOutputResult {
        instance_id: Some(id.to_string()),
        timestamp: Some(chrono::Utc::now()),
        output: Some(B64.encode(bytes)),
    })
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
