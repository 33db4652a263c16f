//! The Auto Scaling commands of `ec2`, with the `aws autoscaling` CLI's names:
//! create-auto-scaling-group, describe-auto-scaling-groups, set-desired-capacity,
//! describe-scaling-activities. Auto Scaling is spoken to over awsQuery on the same endpoint.

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{AUTOSCALING, Client};
use super::error::CliError;
use super::output::parse;
use super::params::list_params;
use super::xmltree::{child, members, query_to_json, text};

/// Auto Scaling commands.
#[derive(Debug, Subcommand)]
pub enum AutoScalingCommand {
    /// Create an Auto Scaling group from a launch template.
    CreateAutoScalingGroup {
        /// The group's name.
        #[arg(long)]
        auto_scaling_group_name: String,
        /// The launch template's id.
        #[arg(long, conflicts_with = "launch_template_name")]
        launch_template_id: Option<String>,
        /// The launch template's name.
        #[arg(long)]
        launch_template_name: Option<String>,
        /// The template's version (`$Default`, `$Latest` or a number).
        #[arg(long)]
        launch_template_version: Option<String>,
        /// The least instances.
        #[arg(long)]
        min_size: i32,
        /// The most instances.
        #[arg(long)]
        max_size: i32,
        /// How many instances (the min size when absent).
        #[arg(long)]
        desired_capacity: Option<i32>,
        /// The subnets, comma-separated.
        #[arg(long)]
        vpc_zone_identifier: Option<String>,
    },
    /// List Auto Scaling groups with their sizes and instances.
    DescribeAutoScalingGroups {
        /// Only these groups.
        #[arg(long, num_args = 1..)]
        auto_scaling_group_names: Vec<String>,
    },
    /// Set a group's desired capacity.
    SetDesiredCapacity {
        /// The group.
        #[arg(long)]
        auto_scaling_group_name: String,
        /// The new capacity.
        #[arg(long)]
        desired_capacity: i32,
        /// Refuse while the group is in its cooldown.
        #[arg(long)]
        honor_cooldown: bool,
    },
    /// A group's scaling activities, newest first.
    DescribeScalingActivities {
        /// The group.
        #[arg(long)]
        auto_scaling_group_name: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        max_items: usize,
    },
}

/// Runs an Auto Scaling command.
pub fn run(cmd: &AutoScalingCommand, json: bool, c: &Client) -> Result<(), CliError> {
    match cmd {
        AutoScalingCommand::CreateAutoScalingGroup {
            auto_scaling_group_name,
            launch_template_id,
            launch_template_name,
            launch_template_version,
            min_size,
            max_size,
            desired_capacity,
            vpc_zone_identifier,
        } => {
            let mut p = vec![
                (
                    "AutoScalingGroupName".to_string(),
                    auto_scaling_group_name.clone(),
                ),
                ("MinSize".into(), min_size.to_string()),
                ("MaxSize".into(), max_size.to_string()),
            ];
            let optional = [
                (
                    "LaunchTemplate.LaunchTemplateId",
                    launch_template_id.clone(),
                ),
                (
                    "LaunchTemplate.LaunchTemplateName",
                    launch_template_name.clone(),
                ),
                ("LaunchTemplate.Version", launch_template_version.clone()),
                ("DesiredCapacity", desired_capacity.map(|d| d.to_string())),
                ("VPCZoneIdentifier", vpc_zone_identifier.clone()),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    p.push((k.to_string(), v));
                }
            }
            c.call_service(AUTOSCALING, "CreateAutoScalingGroup", &p)?;
            Ok(())
        }
        AutoScalingCommand::DescribeAutoScalingGroups {
            auto_scaling_group_names,
        } => describe_groups(c, json, auto_scaling_group_names),
        AutoScalingCommand::SetDesiredCapacity {
            auto_scaling_group_name,
            desired_capacity,
            honor_cooldown,
        } => {
            let p = vec![
                (
                    "AutoScalingGroupName".to_string(),
                    auto_scaling_group_name.clone(),
                ),
                ("DesiredCapacity".into(), desired_capacity.to_string()),
                ("HonorCooldown".into(), honor_cooldown.to_string()),
            ];
            c.call_service(AUTOSCALING, "SetDesiredCapacity", &p)?;
            Ok(())
        }
        AutoScalingCommand::DescribeScalingActivities {
            auto_scaling_group_name,
            max_items,
        } => describe_activities(c, json, auto_scaling_group_name.as_deref(), *max_items),
    }
}

/// The `{action}Result` element of an awsQuery answer.
fn result<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    action: &str,
) -> Result<roxmltree::Node<'a, 'i>, CliError> {
    let name = format!("{action}Result");
    child(doc.root_element(), &name)
        .ok_or_else(|| CliError::Parse(format!("no {name} in the answer to {action}")))
}

fn describe_groups(c: &Client, json: bool, names: &[String]) -> Result<(), CliError> {
    let mut p = Vec::new();
    list_params(&mut p, "AutoScalingGroupNames.member", names);
    let xml = c.call_service(AUTOSCALING, "DescribeAutoScalingGroups", &p)?;
    let doc = parse(&xml)?;
    let r = result(&doc, "DescribeAutoScalingGroups")?;
    let groups = members(r, "AutoScalingGroups");
    if json {
        let list: Vec<Value> = groups.iter().map(|g| query_to_json(*g)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "AutoScalingGroups": list })).unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "{:<24} {:>4} {:>4} {:>8}  INSTANCES",
        "NAME", "MIN", "MAX", "DESIRED"
    );
    for g in groups {
        let instances: Vec<String> = members(g, "Instances")
            .into_iter()
            .map(|i| {
                format!(
                    "{}({})",
                    text(i, "InstanceId").unwrap_or(""),
                    text(i, "LifecycleState").unwrap_or("")
                )
            })
            .collect();
        println!(
            "{:<24} {:>4} {:>4} {:>8}  {}",
            text(g, "AutoScalingGroupName").unwrap_or(""),
            text(g, "MinSize").unwrap_or(""),
            text(g, "MaxSize").unwrap_or(""),
            text(g, "DesiredCapacity").unwrap_or(""),
            instances.join(" ")
        );
    }
    Ok(())
}

fn describe_activities(
    c: &Client,
    json: bool,
    group: Option<&str>,
    max: usize,
) -> Result<(), CliError> {
    let mut p = vec![("MaxRecords".to_string(), max.clamp(1, 100).to_string())];
    if let Some(g) = group {
        p.push(("AutoScalingGroupName".into(), g.to_string()));
    }
    let xml = c.call_service(AUTOSCALING, "DescribeScalingActivities", &p)?;
    let doc = parse(&xml)?;
    let r = result(&doc, "DescribeScalingActivities")?;
    let acts = members(r, "Activities");
    if json {
        let list: Vec<Value> = acts.iter().map(|a| query_to_json(*a)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "Activities": list })).unwrap_or_default()
        );
        return Ok(());
    }
    println!("{:<12} {:<26} DESCRIPTION", "STATUS", "START");
    for a in acts {
        println!(
            "{:<12} {:<26} {}",
            text(a, "StatusCode").unwrap_or(""),
            text(a, "StartTime").unwrap_or(""),
            text(a, "Description").unwrap_or("")
        );
    }
    Ok(())
}
