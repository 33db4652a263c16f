//! The reconciler: a round every few seconds (and whenever a command wakes it) keeps every
//! group at its desired capacity.
//!
//! 1. Scheduled actions that are due change their groups; alarms in ALARM re-invoke their
//!    policies once a minute (as CloudWatch does for Auto Scaling actions); predictive
//!    policies in `ForecastAndScale` raise the minimum ahead of the forecast.
//! 2. Per group: members whose instance stopped, terminated, vanished or failed a status
//!    check (or, with `HealthCheckType=ELB`, its target group's check, after the grace
//!    period) are marked unhealthy and replaced; then the difference between desired and
//!    actual capacity becomes launch activities (into the emptiest subnet) or scale-in
//!    terminations (by the termination policies, never a protected instance).
//! 3. Every open activity moves on: a launch launches (client token from its id) and is
//!    successful once the instance runs and is registered with the target groups; a
//!    termination or detachment deregisters first and waits for the draining to end.
//!
//! Everything it decides is written before it acts, so a restart resumes each activity where
//! it stood.

use std::collections::HashMap;
use std::sync::Arc;

use state::autoscaling::{self as db, ActivityRow, MemberRow};
use state::instances::{self, InstanceState};

use super::activities::{
    self, DRAINING, FAILED, IN_PROGRESS, LAUNCH, NewActivity, SUCCESSFUL, TERMINATE, Unhealthy,
};
use super::launch::{self, Launch};
use super::model::{Group, HEALTHY, IN_SERVICE, PENDING, TERMINATING, UNHEALTHY, counts, now_ms};
use super::targets::{self, TargetHealth};
use super::termination::{Candidate, choose, launch_subnet};
use crate::Plane;
use crate::monitoring::status_checks::Check;

/// The most launches one group starts in one round.
const LAUNCHES_PER_ROUND: usize = 10;
/// How long a group waits after a failed launch before it tries again: doubled after each
/// failure in a row, up to [`MAX_LAUNCH_BACKOFF_MS`].
const LAUNCH_BACKOFF_MS: i64 = 10_000;
/// The longest wait between failed launches.
const MAX_LAUNCH_BACKOFF_MS: i64 = 300_000;
/// Activity progress: the instance is deregistered and draining.
const DEREGISTERED: i64 = 50;
/// Activity progress: the instance's termination was asked.
const TERMINATE_ASKED: i64 = 75;

/// What the reconciler remembers between rounds (nothing that must survive a restart).
#[derive(Debug, Default)]
pub struct Memory {
    /// Per group, when launching may be tried again after a failure.
    launch_backoff: HashMap<String, i64>,
    /// Per group, failed launches in a row.
    launch_failures: HashMap<String, u32>,
    /// Per (policy ARN, alarm name), when an alarm last invoked the policy.
    pub alarm_invoked: HashMap<(String, String), i64>,
    /// Per instance, when its termination was last asked (it runs beside the rounds).
    terminate_asked: HashMap<String, i64>,
}

/// Runs rounds for ever: every `every`, or sooner when a command wakes it.
pub async fn run(plane: Arc<Plane>, every: std::time::Duration) {
    let mut memory = Memory::default();
    loop {
        if let Err(e) = round(&plane, &mut memory).await {
            tracing::warn!(error = %host::error_chain(&e), "auto scaling round failed");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = plane.autoscaling.notified() => {}
        }
    }
}

/// One round.
pub async fn round(plane: &Arc<Plane>, memory: &mut Memory) -> rusqlite::Result<()> {
    let now = now_ms();
    super::scheduled::fire_due(plane, now)?;
    super::alarm_actions::reinvoke(plane, &mut memory.alarm_invoked, now).await;
    super::predictive::apply(plane, now)?;
    let groups: Vec<Group> = db::groups(&plane.db.lock())?
        .into_iter()
        .map(Group::from_row)
        .collect();
    for g in groups {
        check_health(plane, &g, now)?;
        promote_attached(plane, &g)?;
        targets::sync_members(plane, &g)?;
        plan(plane, &g, memory, now)?;
    }
    let open = db::open_activities(&plane.db.lock())?;
    for a in open {
        progress(plane, a, memory)?;
    }
    finish_deletions(plane)?;
    Ok(())
}

/// Why member `m` is unhealthy now, if it is.
fn unhealthy_now(
    plane: &Plane,
    g: &Group,
    m: &MemberRow,
    now: i64,
) -> rusqlite::Result<Option<Unhealthy>> {
    let row = instances::get(&plane.db.lock(), &m.instance_id)?;
    let running = matches!(
        row.as_ref().map(|r| r.state),
        Some(InstanceState::Running | InstanceState::Pending)
    );
    if !running {
        return Ok(Some(Unhealthy::StoppedOrTerminated));
    }
    if m.health == UNHEALTHY {
        return Ok(Some(Unhealthy::User));
    }
    let graced = now >= m.launched_ms + i64::from(g.config.grace) * 1000;
    if !graced {
        return Ok(None);
    }
    let failed = plane
        .health
        .get(&m.instance_id)
        .is_some_and(|h| h.system == Check::Failed || h.instance == Check::Failed);
    if failed {
        return Ok(Some(Unhealthy::StatusCheck));
    }
    if g.config.health_check_type == "ELB"
        && targets::health(plane, &g.config.target_groups, &m.instance_id)
            == TargetHealth::Unhealthy
    {
        return Ok(Some(Unhealthy::Elb));
    }
    Ok(None)
}

/// Marks the group's unhealthy in-service members and replaces them.
fn check_health(plane: &Plane, g: &Group, now: i64) -> rusqlite::Result<()> {
    if g.config.suspended("HealthCheck") && g.config.suspended("ReplaceUnhealthy") {
        return Ok(());
    }
    let members = db::members_of(&plane.db.lock(), &g.name)?;
    for mut m in members.into_iter().filter(|m| m.lifecycle == IN_SERVICE) {
        let judged = if g.config.suspended("HealthCheck") && m.health == HEALTHY {
            None
        } else {
            unhealthy_now(plane, g, &m, now)?
        };
        let Some(why) = judged else { continue };
        m.health = UNHEALTHY.into();
        let replace = !g.config.suspended("ReplaceUnhealthy");
        plane.asg_write(|tx| {
            if replace {
                m.lifecycle = TERMINATING.into();
            }
            db::put_member(tx, &m)?;
            if replace {
                tracing::info!(group = %g.name, instance = %m.instance_id, ?why, "replacing an unhealthy instance");
                activities::record(
                    tx,
                    NewActivity {
                        group: &g.name,
                        kind: TERMINATE,
                        instance_id: Some(&m.instance_id),
                        subnet_id: Some(&m.subnet_id),
                        description: activities::terminate_description(&m.instance_id),
                        cause: activities::unhealthy_cause(why, now),
                        status: IN_PROGRESS,
                    },
                    now,
                )?;
            }
            Ok::<_, rusqlite::Error>(())
        })?;
    }
    Ok(())
}

/// Puts in service the attached instances (pending members no launch is bringing up).
fn promote_attached(plane: &Plane, g: &Group) -> rusqlite::Result<()> {
    let (members, launching): (Vec<MemberRow>, Vec<String>) = {
        let conn = plane.db.lock();
        let launching = db::open_activities(&conn)?
            .into_iter()
            .filter(|a| a.kind == LAUNCH)
            .filter_map(|a| a.instance_id)
            .collect();
        (db::members_of(&conn, &g.name)?, launching)
    };
    for mut m in members
        .into_iter()
        .filter(|m| m.lifecycle == PENDING && !launching.contains(&m.instance_id))
    {
        let state = instances::get(&plane.db.lock(), &m.instance_id)?.map(|r| r.state);
        if state != Some(InstanceState::Running) {
            continue;
        }
        if !g.config.suspended("AddToLoadBalancer")
            && let Err(e) = targets::register(plane, &g.config.target_groups, &m.instance_id)
        {
            tracing::warn!(instance = %m.instance_id, error = %e, "cannot register with the target groups");
            continue;
        }
        m.lifecycle = IN_SERVICE.into();
        plane.asg_write(|tx| db::put_member(tx, &m))?;
    }
    Ok(())
}

/// The group's capacity now: counting members and launches that have no instance yet, with
/// the subnets they occupy.
fn occupancy(members: &[MemberRow], open: &[ActivityRow]) -> Vec<String> {
    let mut subnets: Vec<String> = members
        .iter()
        .filter(|m| counts(m))
        .map(|m| m.subnet_id.clone())
        .collect();
    subnets.extend(
        open.iter()
            .filter(|a| a.kind == LAUNCH && a.instance_id.is_none())
            .filter_map(|a| a.subnet_id.clone()),
    );
    subnets
}

/// Starts the launches or terminations that bring group `g` to its desired capacity.
fn plan(plane: &Plane, g: &Group, memory: &mut Memory, now: i64) -> rusqlite::Result<()> {
    let (members, open) = {
        let conn = plane.db.lock();
        let open: Vec<ActivityRow> = db::open_activities(&conn)?
            .into_iter()
            .filter(|a| a.group_name == g.name)
            .collect();
        (db::members_of(&conn, &g.name)?, open)
    };
    let occupied = occupancy(&members, &open);
    let active = occupied.len();
    let desired = g.config.desired.max(0) as usize;
    let prefix = g.config.pending_cause.as_deref();
    if active < desired {
        if g.config.suspended("Launch")
            || memory.launch_backoff.get(&g.name).is_some_and(|t| now < *t)
        {
            return Ok(());
        }
        let mut taken: Vec<&str> = occupied.iter().map(String::as_str).collect();
        let mut subnets = Vec::new();
        for _ in 0..(desired - active).min(LAUNCHES_PER_ROUND) {
            let Some(s) = launch_subnet(&g.config.subnets, &taken) else {
                break;
            };
            taken.push(s);
            subnets.push(s.to_string());
        }
        plane.asg_write(|tx| {
            for s in &subnets {
                activities::record(
                    tx,
                    NewActivity {
                        group: &g.name,
                        kind: LAUNCH,
                        instance_id: None,
                        subnet_id: Some(s),
                        description: activities::launch_description(None),
                        cause: activities::launch_cause(prefix, active, g.config.desired, now),
                        status: IN_PROGRESS,
                    },
                    now,
                )?;
            }
            Ok::<_, rusqlite::Error>(())
        })?;
    } else if active > desired {
        if g.config.suspended("Terminate") && !g.config.deleting {
            return Ok(());
        }
        let current = launch::resolve(plane, &g.config.template).ok();
        let candidates: Vec<Candidate> = members
            .iter()
            .filter(|m| counts(m))
            .map(|m| Candidate {
                id: m.instance_id.clone(),
                subnet: m.subnet_id.clone(),
                launched_ms: m.launched_ms,
                current_template: current.as_ref().is_some_and(|c| {
                    serde_json::from_str::<launch::Resolved>(&m.template).is_ok_and(|t| t == *c)
                }),
                protected: m.protected && !g.config.deleting,
            })
            .collect();
        let victims = choose(
            &candidates,
            &g.config.termination_policies(),
            active - desired,
            now,
        );
        plane.asg_write(|tx| {
            for v in &victims {
                let Some(mut m) = db::member_by_id(tx, v)? else {
                    continue;
                };
                m.lifecycle = TERMINATING.into();
                db::put_member(tx, &m)?;
                activities::record(
                    tx,
                    NewActivity {
                        group: &g.name,
                        kind: TERMINATE,
                        instance_id: Some(v),
                        subnet_id: Some(&m.subnet_id),
                        description: activities::terminate_description(v),
                        cause: activities::scale_in_cause(prefix, active, g.config.desired, v, now),
                        status: IN_PROGRESS,
                    },
                    now,
                )?;
            }
            Ok::<_, rusqlite::Error>(())
        })?;
    } else if prefix.is_some() && open.is_empty() {
        let mut g = g.clone();
        g.config.pending_cause = None;
        plane.asg_write(|tx| db::set_group_config(tx, &g.name, &g.config_text()))?;
    }
    Ok(())
}

/// Moves one open activity on.
fn progress(plane: &Arc<Plane>, a: ActivityRow, memory: &mut Memory) -> rusqlite::Result<()> {
    match a.kind.as_str() {
        LAUNCH => progress_launch(plane, a, memory),
        _ => progress_removal(plane, a, memory),
    }
}

/// How long a termination asked is left to run before it is asked again.
const TERMINATE_RETRY_MS: i64 = 60_000;

/// Asks for instance `id`'s termination in a task of its own (a slow shutdown does not hold
/// up the round), unless one was asked recently.
fn terminate(plane: &Arc<Plane>, id: &str, memory: &mut Memory) {
    let now = now_ms();
    if memory
        .terminate_asked
        .get(id)
        .is_some_and(|t| now - t < TERMINATE_RETRY_MS)
    {
        return;
    }
    memory.terminate_asked.insert(id.to_string(), now);
    let plane = plane.clone();
    let ids = vec![id.to_string()];
    tokio::spawn(async move {
        if let Err(e) = plane.terminate_instances(&ids).await {
            tracing::warn!(instance = %ids[0], error = %host::error_chain(&e), "cannot terminate");
        }
    });
}

/// The tags a group's instances get.
fn instance_tags(g: &Group) -> Vec<(String, String)> {
    let mut tags = vec![("aws:autoscaling:groupName".to_string(), g.name.clone())];
    tags.extend(
        g.config
            .tags
            .iter()
            .filter(|t| t.propagate)
            .map(|t| (t.key.clone(), t.value.clone())),
    );
    tags
}

fn fail(plane: &Plane, mut a: ActivityRow, message: String) -> rusqlite::Result<()> {
    tracing::info!(group = %a.group_name, activity = %a.id, %message, "scaling activity failed");
    if a.kind == LAUNCH && a.instance_id.is_none() {
        a.description = activities::failed_launch_description(&message);
    }
    plane.asg_write(|tx| activities::finish(tx, &mut a, FAILED, Some(message), now_ms()))
}

fn progress_launch(plane: &Plane, mut a: ActivityRow, memory: &mut Memory) -> rusqlite::Result<()> {
    let Some(g) = db::group_by_name(&plane.db.lock(), &a.group_name)?.map(Group::from_row) else {
        return fail(plane, a, "The Auto Scaling group was deleted.".into());
    };
    let Some(id) = a.instance_id.clone() else {
        let subnet = a.subnet_id.clone().unwrap_or_default();
        let order = Launch {
            template: &g.config.template,
            subnet: &subnet,
            instance_type: g.config.instance_types.first().map(String::as_str),
            tags: instance_tags(&g),
            token: launch::token(&a.id),
        };
        return match launch::launch(plane, &order) {
            Ok(l) => {
                a.instance_id = Some(l.instance_id.clone());
                a.description = activities::launch_description(Some(&l.instance_id));
                let member = MemberRow {
                    instance_id: l.instance_id.clone(),
                    group_name: g.name.clone(),
                    lifecycle: PENDING.into(),
                    health: HEALTHY.into(),
                    protected: g.config.protect_new,
                    subnet_id: subnet.clone(),
                    instance_type: l.instance_type.clone(),
                    template: serde_json::to_string(&l.template).unwrap_or_else(|_| "{}".into()),
                    launched_ms: now_ms(),
                };
                memory.launch_failures.remove(&g.name);
                plane.asg_write(|tx| {
                    db::put_member(tx, &member)?;
                    db::update_activity(tx, &a)
                })
            }
            Err(message) => {
                let n = memory.launch_failures.entry(g.name.clone()).or_default();
                *n = n.saturating_add(1);
                let wait = LAUNCH_BACKOFF_MS
                    .saturating_mul(1 << (*n - 1).min(10))
                    .min(MAX_LAUNCH_BACKOFF_MS);
                memory
                    .launch_backoff
                    .insert(g.name.clone(), now_ms() + wait);
                fail(plane, a, message)
            }
        };
    };
    let state = instances::get(&plane.db.lock(), &id)?.map(|r| r.state);
    match state {
        Some(InstanceState::Pending) => Ok(()),
        Some(InstanceState::Running) => {
            if !g.config.suspended("AddToLoadBalancer")
                && let Err(e) = targets::register(plane, &g.config.target_groups, &id)
            {
                tracing::warn!(instance = %id, error = %e, "cannot register with the target groups");
                return Ok(());
            }
            plane.asg_write(|tx| {
                if let Some(mut m) = db::member_by_id(tx, &id)?
                    && m.lifecycle == PENDING
                {
                    m.lifecycle = IN_SERVICE.into();
                    db::put_member(tx, &m)?;
                }
                activities::finish(tx, &mut a, SUCCESSFUL, None, now_ms())
            })
        }
        _ => {
            plane.asg_write(|tx| db::delete_member(tx, &id))?;
            fail(
                plane,
                a,
                format!("Instance {id} did not reach the running state."),
            )
        }
    }
}

/// A termination or detachment: deregister and wait for draining, then terminate (or just
/// let go) and end.
fn progress_removal(
    plane: &Arc<Plane>,
    mut a: ActivityRow,
    memory: &mut Memory,
) -> rusqlite::Result<()> {
    let Some(id) = a.instance_id.clone() else {
        return fail(plane, a, "No instance to act on.".into());
    };
    let tgs = db::group_by_name(&plane.db.lock(), &a.group_name)?
        .map(Group::from_row)
        .map(|g| g.config.target_groups)
        .unwrap_or_default();
    if a.progress < DEREGISTERED {
        let registered = targets::health(plane, &tgs, &id) != TargetHealth::Absent;
        if registered {
            if let Err(e) = targets::deregister(plane, &tgs, &id) {
                tracing::warn!(instance = %id, error = %e, "cannot deregister from the target groups");
                return Ok(());
            }
            a.status = DRAINING.into();
        }
        a.progress = DEREGISTERED;
        return plane.asg_write(|tx| db::update_activity(tx, &a));
    }
    if targets::health(plane, &tgs, &id) == TargetHealth::Draining {
        return Ok(());
    }
    if a.kind != TERMINATE {
        return plane.asg_write(|tx| {
            db::delete_member(tx, &id)?;
            activities::finish(tx, &mut a, SUCCESSFUL, None, now_ms())
        });
    }
    let state = instances::get(&plane.db.lock(), &id)?.map(|r| r.state);
    match state {
        None | Some(InstanceState::Terminated) => {
            memory.terminate_asked.remove(&id);
            plane.asg_write(|tx| {
                db::delete_member(tx, &id)?;
                activities::finish(tx, &mut a, SUCCESSFUL, None, now_ms())
            })
        }
        Some(InstanceState::ShuttingDown) => Ok(()),
        Some(_) => {
            if a.status != IN_PROGRESS || a.progress < TERMINATE_ASKED {
                a.status = IN_PROGRESS.into();
                a.progress = TERMINATE_ASKED;
                plane.asg_write(|tx| db::update_activity(tx, &a))?;
            }
            terminate(plane, &id, memory);
            Ok(())
        }
    }
}

/// Deletes the groups a ForceDelete emptied.
fn finish_deletions(plane: &Plane) -> rusqlite::Result<()> {
    let groups: Vec<Group> = db::groups(&plane.db.lock())?
        .into_iter()
        .map(Group::from_row)
        .filter(|g| g.config.deleting)
        .collect();
    for g in groups {
        plane.asg_write(|tx| {
            let busy = !db::members_of(tx, &g.name)?.is_empty()
                || db::open_activities(tx)?
                    .iter()
                    .any(|a| a.group_name == g.name);
            if !busy {
                super::target_tracking::delete_group_alarms(plane, tx, &g.name);
                db::delete_group(tx, &g.name)?;
            }
            Ok::<_, rusqlite::Error>(())
        })?;
    }
    Ok(())
}
