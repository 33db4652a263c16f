//! DescribeInstanceStatus, with the three checks the agent's sampler keeps
//! (`control::monitoring::status_checks`), and Monitor/UnmonitorInstances.

use chrono::{DateTime, Utc};
use shapes::ec2::{
    DescribeInstanceStatusRequest, DescribeInstanceStatusResult, EbsStatusDetails,
    EbsStatusSummary, InstanceMonitoring, InstanceStatus, InstanceStatusDetails,
    InstanceStatusSummary, MonitorInstancesRequest, MonitorInstancesResult, Monitoring,
    MonitoringState, StatusName, StatusType, SummaryStatus, UnmonitorInstancesRequest,
    UnmonitorInstancesResult,
};

use super::errors::ApiError;
use super::filters::filters_match;
use super::instances::{MAX_INSTANCE_IDS, check_named_ids, check_page_combination, instance_ids};
use super::typed::{self, Page};
use super::{AVAILABILITY_ZONE, Call, render};
use control::ec2::monitoring::MonitoringChange;
use control::monitoring::status_checks::{Check, Health};
use state::instances::{self, InstanceQuery, InstanceRow, InstanceState};

/// The most `InstanceId.N` DescribeInstanceStatus takes (EC2's limit).
const MAX_STATUS_IDS: usize = 100;

/// The filters DescribeInstanceStatus knows.
const SUPPORTED: &str = "availability-zone, instance-state-code, instance-state-name, \
    instance-status.status, instance-status.reachability, system-status.status, \
    system-status.reachability, attached-ebs-status.status, attached-ebs-status.reachability";

/// One instance's three summaries, as EC2 words them.
struct Summaries {
    system: (SummaryStatus, Option<(StatusType, Option<i64>)>),
    instance: (SummaryStatus, Option<(StatusType, Option<i64>)>),
    ebs: (SummaryStatus, Option<(StatusType, Option<i64>)>),
}

/// A check's summary status and detail.
fn judged(check: Check, since: Option<i64>) -> (SummaryStatus, Option<(StatusType, Option<i64>)>) {
    let (summary, detail) = match check {
        Check::NotApplicable => return (SummaryStatus::NotApplicable, None),
        Check::Passed => (SummaryStatus::Ok, StatusType::Passed),
        Check::Failed => (SummaryStatus::Impaired, StatusType::Failed),
        Check::Initializing => (SummaryStatus::Initializing, StatusType::Initializing),
        Check::InsufficientData => (
            SummaryStatus::InsufficientData,
            StatusType::InsufficientData,
        ),
    };
    (summary, Some((detail, since)))
}

/// The summaries of `row` given the sampler's latest `health` of it.
fn summaries(row: &InstanceRow, health: Option<Health>) -> Summaries {
    let not_applicable = (SummaryStatus::NotApplicable, None);
    match (row.state, health) {
        (InstanceState::Running, Some(h)) => Summaries {
            system: judged(h.system, h.system_since),
            instance: judged(h.instance, h.instance_since),
            ebs: judged(h.ebs, h.ebs_since),
        },
        // Running or starting, and not sampled since: the checks are starting.
        (InstanceState::Running | InstanceState::Pending, _) => {
            let starting = judged(Check::Initializing, None);
            Summaries {
                system: starting,
                instance: starting,
                ebs: starting,
            }
        }
        _ => Summaries {
            system: not_applicable,
            instance: not_applicable,
            ebs: not_applicable,
        },
    }
}

fn time(seconds: Option<i64>) -> Option<DateTime<Utc>> {
    seconds.and_then(|s| DateTime::from_timestamp(s, 0))
}

fn summary(s: (SummaryStatus, Option<(StatusType, Option<i64>)>)) -> InstanceStatusSummary {
    InstanceStatusSummary {
        status: Some(s.0),
        details: s.1.map(|(status, since)| {
            vec![InstanceStatusDetails {
                name: Some(StatusName::Reachability),
                status: Some(status),
                impaired_since: time(since),
            }]
        }),
    }
}

fn ebs_summary(s: (SummaryStatus, Option<(StatusType, Option<i64>)>)) -> EbsStatusSummary {
    EbsStatusSummary {
        status: Some(s.0),
        details: s.1.map(|(status, since)| {
            vec![EbsStatusDetails {
                name: Some(StatusName::Reachability),
                status: Some(status),
                impaired_since: time(since),
            }]
        }),
    }
}

/// The values of filter `name` for one instance (`None` for a name not known here).
fn field(row: &InstanceRow, s: &Summaries, name: &str) -> Option<Vec<String>> {
    let status =
        |x: &(SummaryStatus, Option<(StatusType, Option<i64>)>)| vec![x.0.as_str().to_string()];
    let detail = |x: &(SummaryStatus, Option<(StatusType, Option<i64>)>)| {
        x.1.map(|(d, _)| d.as_str().to_string())
            .into_iter()
            .collect()
    };
    Some(match name {
        "availability-zone" => vec![AVAILABILITY_ZONE.to_string()],
        "instance-state-name" => vec![row.state.name().to_string()],
        "instance-state-code" => vec![
            render::state(row.state)
                .code
                .unwrap_or_default()
                .to_string(),
        ],
        "instance-status.status" => status(&s.instance),
        "instance-status.reachability" => detail(&s.instance),
        "system-status.status" => status(&s.system),
        "system-status.reachability" => detail(&s.system),
        "attached-ebs-status.status" => status(&s.ebs),
        "attached-ebs-status.reachability" => detail(&s.ebs),
        _ => return None,
    })
}

/// DescribeInstanceStatus: running instances (all with `IncludeAllInstances=true`) with
/// their system, instance and attached-EBS checks; filters; pages (`MaxResults` 5 to 1000)
/// in instance id order.
pub fn describe_status(
    c: &Call<'_>,
    input: DescribeInstanceStatusRequest,
) -> Result<DescribeInstanceStatusResult, ApiError> {
    let named = input.instance_ids.unwrap_or_default();
    let q = InstanceQuery {
        ids: instance_ids(&named, false, MAX_STATUS_IDS)?,
        ..Default::default()
    };
    let all = input.include_all_instances.unwrap_or(false);
    let filters = typed::filters(input.filters.as_deref())?;
    // As before: the range of MaxResults, then its combination with ids, then the token.
    Page::new(input.max_results, None, 5, 1000)?;
    check_page_combination(input.max_results, &named)?;
    let page = Page::new(input.max_results, input.next_token.as_deref(), 5, 1000)?;
    let rows = instances::query(&c.st.db.lock(), &q)?;
    check_named_ids(&named, &rows)?;
    let mut kept = Vec::new();
    for row in rows {
        if !(all || row.state == InstanceState::Running) {
            continue;
        }
        let s = summaries(&row, c.st.plane.health.get(&row.id));
        if filters_match(&filters, &[], SUPPORTED, |name| field(&row, &s, name))? {
            kept.push((row, s));
        }
    }
    let (kept, next_token) = page.apply(kept, |(r, _)| r.id.as_str());
    let statuses = kept
        .into_iter()
        .map(|(r, s)| InstanceStatus {
            instance_id: Some(r.id.clone()),
            availability_zone: Some(AVAILABILITY_ZONE.to_string()),
            instance_state: Some(render::state(r.state)),
            system_status: Some(summary(s.system)),
            instance_status: Some(summary(s.instance)),
            attached_ebs_status: Some(ebs_summary(s.ebs)),
            ..Default::default()
        })
        .collect();
    Ok(DescribeInstanceStatusResult {
        instance_statuses: Some(statuses),
        next_token,
    })
}

/// The answer of Monitor/UnmonitorInstances.
fn monitorings(changes: Vec<(String, MonitoringChange)>) -> Vec<InstanceMonitoring> {
    changes
        .into_iter()
        .map(|(id, change)| InstanceMonitoring {
            instance_id: Some(id),
            monitoring: Some(Monitoring {
                state: Some(match change {
                    MonitoringChange::Pending => MonitoringState::Pending,
                    MonitoringChange::Disabling => MonitoringState::Disabling,
                }),
                ..Default::default()
            }),
        })
        .collect()
}

/// MonitorInstances: detailed (1-minute) monitoring on.
pub fn monitor(
    c: &Call<'_>,
    input: MonitorInstancesRequest,
) -> Result<MonitorInstancesResult, ApiError> {
    let ids = instance_ids(&input.instance_ids, true, MAX_INSTANCE_IDS)?;
    let changes =
        c.st.plane
            .set_monitoring(&ids, true)
            .map_err(|e| ApiError::refused(&e))?;
    Ok(MonitorInstancesResult {
        instance_monitorings: Some(monitorings(changes)),
    })
}

/// UnmonitorInstances: back to basic (5-minute) monitoring.
pub fn unmonitor(
    c: &Call<'_>,
    input: UnmonitorInstancesRequest,
) -> Result<UnmonitorInstancesResult, ApiError> {
    let ids = instance_ids(&input.instance_ids, true, MAX_INSTANCE_IDS)?;
    let changes =
        c.st.plane
            .set_monitoring(&ids, false)
            .map_err(|e| ApiError::refused(&e))?;
    Ok(UnmonitorInstancesResult {
        instance_monitorings: Some(monitorings(changes)),
    })
}
