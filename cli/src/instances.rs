//! The CLI's instance commands: run, describe, start, stop, reboot, terminate, status,
//! console output, and waiters.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::client::Client;
use super::error::CliError;
use super::output::{parse, print_json};
use super::params::{filter_params, list_params, value_or_file};
use super::xmltree::{child, items, text};
use super::{Cli, Command, Output};

/// One instance as the table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceLine {
    /// Id.
    pub id: String,
    /// State name.
    pub state: String,
    /// Type.
    pub instance_type: String,
    /// Image.
    pub image_id: String,
    /// Key name.
    pub key_name: String,
    /// Launch time.
    pub launch_time: String,
    /// StateReason message, or the transition reason.
    pub reason: String,
}

fn instance_lines(root: roxmltree::Node<'_, '_>, direct: bool) -> Vec<InstanceLine> {
    let sets: Vec<roxmltree::Node<'_, '_>> = if direct {
        vec![root]
    } else {
        items(root, "reservationSet")
    };
    let mut out = Vec::new();
    for r in sets {
        for i in items(r, "instancesSet") {
            let state = child(i, "instanceState")
                .and_then(|s| text(s, "name"))
                .unwrap_or("")
                .to_string();
            let reason = child(i, "stateReason")
                .and_then(|s| text(s, "message"))
                .or_else(|| text(i, "reason"))
                .unwrap_or("")
                .to_string();
            out.push(InstanceLine {
                id: text(i, "instanceId").unwrap_or("").into(),
                state,
                instance_type: text(i, "instanceType").unwrap_or("").into(),
                image_id: text(i, "imageId").unwrap_or("").into(),
                key_name: text(i, "keyName").unwrap_or("-").into(),
                launch_time: text(i, "launchTime").unwrap_or("").into(),
                reason,
            });
        }
    }
    out
}

fn print_table(lines: &[InstanceLine]) {
    println!(
        "{:<20} {:<14} {:<10} {:<22} {:<12} {:<25} REASON",
        "INSTANCE_ID", "STATE", "TYPE", "IMAGE_ID", "KEY", "LAUNCH_TIME"
    );
    for l in lines {
        println!(
            "{:<20} {:<14} {:<10} {:<22} {:<12} {:<25} {}",
            l.id, l.state, l.instance_type, l.image_id, l.key_name, l.launch_time, l.reason
        );
    }
}

fn print_changes(xml: &str) -> Result<(), CliError> {
    let doc = parse(xml)?;
    println!("{:<20} {:<14} CURRENT", "INSTANCE_ID", "PREVIOUS");
    for i in items(doc.root_element(), "instancesSet") {
        let name = |tag: &str| {
            child(i, tag)
                .and_then(|s| text(s, "name"))
                .unwrap_or("")
                .to_string()
        };
        println!(
            "{:<20} {:<14} {}",
            text(i, "instanceId").unwrap_or(""),
            name("previousState"),
            name("currentState")
        );
    }
    Ok(())
}

/// `--launch-template LaunchTemplateName=N,Version=V` (or `LaunchTemplateId=ID`) as the
/// `LaunchTemplate.*` parameters.
fn template_params(p: &mut Vec<(String, String)>, spec: &str) -> Result<(), CliError> {
    for part in spec.split(',') {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            CliError::Input(format!(
                "--launch-template '{spec}' is not LaunchTemplateName=NAME,Version=V"
            ))
        })?;
        if !matches!(k, "LaunchTemplateName" | "LaunchTemplateId" | "Version") {
            return Err(CliError::Input(format!(
                "--launch-template takes LaunchTemplateName, LaunchTemplateId and Version, not {k}"
            )));
        }
        p.push((format!("LaunchTemplate.{k}"), v.to_string()));
    }
    Ok(())
}

/// The instances' lines, from DescribeInstances.
pub fn describe(c: &Client, ids: &[String]) -> Result<Vec<InstanceLine>, CliError> {
    let mut p = Vec::new();
    list_params(&mut p, "InstanceId", ids);
    let xml = c.call("DescribeInstances", &p)?;
    let doc = parse(&xml)?;
    Ok(instance_lines(doc.root_element(), false))
}

/// Runs an instance command.
pub fn run(cli: &Cli, c: &Client) -> Result<(), CliError> {
    let json = cli.output == Output::Json;
    let mut p: Vec<(String, String)> = Vec::new();
    let (action, changes) = match &cli.command {
        Command::RunInstances {
            image_id,
            instance_type,
            launch_template,
            key_name,
            count,
            user_data,
            client_token,
            instance_initiated_shutdown_behavior,
            tags,
        } => {
            let (min, max) = count.split_once(':').unwrap_or((count, count));
            if let Some(i) = image_id {
                p.push(("ImageId".into(), i.clone()));
            }
            if let Some(t) = instance_type {
                p.push(("InstanceType".into(), t.clone()));
            }
            if let Some(t) = launch_template {
                template_params(&mut p, t)?;
            }
            p.push(("MinCount".into(), min.into()));
            p.push(("MaxCount".into(), max.into()));
            if let Some(k) = key_name {
                p.push(("KeyName".into(), k.clone()));
            }
            if let Some(u) = user_data {
                p.push(("UserData".into(), B64.encode(value_or_file(u)?)));
            }
            if let Some(t) = client_token {
                p.push(("ClientToken".into(), t.clone()));
            }
            if let Some(b) = instance_initiated_shutdown_behavior {
                p.push(("InstanceInitiatedShutdownBehavior".into(), b.clone()));
            }
            if !tags.is_empty() {
                p.push(("TagSpecification.1.ResourceType".into(), "instance".into()));
                for (i, t) in tags.iter().enumerate() {
                    let (k, v) = t.split_once('=').unwrap_or((t, ""));
                    p.push((format!("TagSpecification.1.Tag.{}.Key", i + 1), k.into()));
                    p.push((format!("TagSpecification.1.Tag.{}.Value", i + 1), v.into()));
                }
            }
            let xml = c.call("RunInstances", &p)?;
            if json {
                return print_json(&xml);
            }
            let doc = parse(&xml)?;
            print_table(&instance_lines(doc.root_element(), true));
            return Ok(());
        }
        Command::DescribeInstances {
            instance_ids,
            filters,
            max_results,
            next_token,
        } => {
            list_params(&mut p, "InstanceId", instance_ids);
            filter_params(&mut p, filters)?;
            if let Some(m) = max_results {
                p.push(("MaxResults".into(), m.to_string()));
            }
            if let Some(t) = next_token {
                p.push(("NextToken".into(), t.clone()));
            }
            let xml = c.call("DescribeInstances", &p)?;
            if json {
                return print_json(&xml);
            }
            let doc = parse(&xml)?;
            print_table(&instance_lines(doc.root_element(), false));
            if let Some(t) = text(doc.root_element(), "nextToken") {
                println!("NEXT_TOKEN {t}");
            }
            return Ok(());
        }
        Command::StartInstances { instance_ids } => {
            list_params(&mut p, "InstanceId", instance_ids);
            ("StartInstances", true)
        }
        Command::StopInstances {
            instance_ids,
            force,
        } => {
            list_params(&mut p, "InstanceId", instance_ids);
            if *force {
                p.push(("Force".into(), "true".into()));
            }
            ("StopInstances", true)
        }
        Command::TerminateInstances { instance_ids } => {
            list_params(&mut p, "InstanceId", instance_ids);
            ("TerminateInstances", true)
        }
        Command::RebootInstances { instance_ids } => {
            list_params(&mut p, "InstanceId", instance_ids);
            ("RebootInstances", false)
        }
        Command::DescribeInstanceStatus {
            instance_ids,
            include_all_instances,
        } => {
            list_params(&mut p, "InstanceId", instance_ids);
            if *include_all_instances {
                p.push(("IncludeAllInstances".into(), "true".into()));
            }
            let xml = c.call("DescribeInstanceStatus", &p)?;
            if json {
                return print_json(&xml);
            }
            let doc = parse(&xml)?;
            println!(
                "{:<20} {:<14} {:<16} INSTANCE_STATUS",
                "INSTANCE_ID", "STATE", "SYSTEM_STATUS"
            );
            for s in items(doc.root_element(), "instanceStatusSet") {
                let sub = |set: &str, f: &str| {
                    child(s, set)
                        .and_then(|n| text(n, f))
                        .unwrap_or("")
                        .to_string()
                };
                println!(
                    "{:<20} {:<14} {:<16} {}",
                    text(s, "instanceId").unwrap_or(""),
                    sub("instanceState", "name"),
                    sub("systemStatus", "status"),
                    sub("instanceStatus", "status")
                );
            }
            return Ok(());
        }
        Command::DescribeInstanceAttribute {
            instance_id,
            attribute,
        } => {
            p.push(("InstanceId".into(), instance_id.clone()));
            p.push(("Attribute".into(), attribute.clone()));
            let xml = c.call("DescribeInstanceAttribute", &p)?;
            if json {
                return print_json(&xml);
            }
            let doc = parse(&xml)?;
            let value = child(doc.root_element(), attribute)
                .and_then(|n| text(n, "value"))
                .unwrap_or("");
            if attribute == "userData" {
                let bytes = B64
                    .decode(value)
                    .map_err(|e| CliError::Parse(e.to_string()))?;
                print!("{}", String::from_utf8_lossy(&bytes));
            } else {
                println!("{value}");
            }
            return Ok(());
        }
        Command::GetConsoleOutput { instance_id } => {
            p.push(("InstanceId".into(), instance_id.clone()));
            let xml = c.call("GetConsoleOutput", &p)?;
            if json {
                return print_json(&xml);
            }
            let doc = parse(&xml)?;
            let out = text(doc.root_element(), "output").unwrap_or("");
            let bytes = B64
                .decode(out.trim())
                .map_err(|e| CliError::Parse(e.to_string()))?;
            print!("{}", String::from_utf8_lossy(&bytes));
            return Ok(());
        }
        Command::Wait {
            condition,
            instance_ids,
            timeout,
        } => return wait(c, condition, instance_ids, Duration::from_secs(*timeout)),
        _ => return Ok(()),
    };
    let xml = c.call(action, &p)?;
    if json {
        return print_json(&xml);
    }
    if changes {
        print_changes(&xml)?;
    }
    Ok(())
}

/// Polls until every instance is in the wanted state.
fn wait(c: &Client, condition: &str, ids: &[String], timeout: Duration) -> Result<(), CliError> {
    let (want, fail): (&str, &[&str]) = match condition {
        "instance-running" => (
            "running",
            &["shutting-down", "terminated", "stopping", "stopped"],
        ),
        "instance-stopped" => ("stopped", &["pending", "terminated"]),
        "instance-terminated" => ("terminated", &[]),
        other => {
            return Err(CliError::Input(format!(
                "unknown waiter '{other}': use instance-running, instance-stopped or instance-terminated"
            )));
        }
    };
    let deadline = Instant::now() + timeout;
    loop {
        let lines = describe(c, ids)?;
        if lines.iter().all(|l| l.state == want) {
            return Ok(());
        }
        if let Some(l) = lines.iter().find(|l| fail.contains(&l.state.as_str())) {
            return Err(CliError::Input(format!(
                "waiter {condition} failed: {} is {} ({})",
                l.id, l.state, l.reason
            )));
        }
        if Instant::now() > deadline {
            return Err(CliError::Timeout(condition.into()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
