//! The CLI's load-balancing commands, with `aws elbv2`'s names: target groups, targets and
//! their health, load balancers and listeners.

use clap::Subcommand;
use roxmltree::Node;

use super::client::{Client, ELBV2};
use super::error::CliError;
use super::output::parse;
use super::xmltree::{child, members, query_to_json, text};

/// Load-balancing commands.
#[derive(Debug, Subcommand)]
pub enum ElbCommand {
    /// Create a target group (prints its ARN).
    CreateTargetGroup {
        /// Its name.
        #[arg(long)]
        name: String,
        /// HTTP or TCP.
        #[arg(long, default_value = "HTTP")]
        protocol: String,
        /// The targets' port.
        #[arg(long, default_value_t = 80)]
        port: u16,
        /// Its VPC.
        #[arg(long)]
        vpc_id: String,
        /// `instance` or `ip`.
        #[arg(long, default_value = "instance")]
        target_type: String,
        /// The health check's path (HTTP).
        #[arg(long)]
        health_check_path: Option<String>,
        /// Seconds between health checks.
        #[arg(long)]
        health_check_interval_seconds: Option<u16>,
        /// Passed checks in a row that make a target healthy.
        #[arg(long)]
        healthy_threshold_count: Option<u16>,
    },
    /// Register targets (`Id=i-...[,Port=N]` or an id).
    RegisterTargets {
        /// The target group.
        #[arg(long)]
        target_group_arn: String,
        /// The targets.
        #[arg(long, num_args = 1.., required = true)]
        targets: Vec<String>,
    },
    /// Deregister targets (they drain first).
    DeregisterTargets {
        /// The target group.
        #[arg(long)]
        target_group_arn: String,
        /// The targets.
        #[arg(long, num_args = 1.., required = true)]
        targets: Vec<String>,
    },
    /// The health of a target group's targets.
    DescribeTargetHealth {
        /// The target group.
        #[arg(long)]
        target_group_arn: String,
    },
    /// Create a load balancer (prints its ARN, DNS name and address).
    CreateLoadBalancer {
        /// Its name.
        #[arg(long)]
        name: String,
        /// Its subnets.
        #[arg(long, num_args = 1.., required = true)]
        subnets: Vec<String>,
        /// Its security groups.
        #[arg(long, num_args = 1..)]
        security_groups: Vec<String>,
        /// `application` or `network`.
        #[arg(long = "type", default_value = "application")]
        kind: String,
    },
    /// List load balancers.
    DescribeLoadBalancers,
    /// Create a listener forwarding to a target group (prints its ARN).
    CreateListener {
        /// The load balancer.
        #[arg(long)]
        load_balancer_arn: String,
        /// HTTP or TCP.
        #[arg(long, default_value = "HTTP")]
        protocol: String,
        /// Its port.
        #[arg(long, default_value_t = 80)]
        port: u16,
        /// The target group of its default forward action.
        #[arg(long)]
        target_group_arn: String,
    },
}

/// A target as `Id=...,Port=...` (or a bare id) as request parameters `Targets.member.N.*`.
fn target_params(n: usize, t: &str) -> Result<Vec<(String, String)>, CliError> {
    let mut out = Vec::new();
    for part in t.split(',') {
        let (k, v) = part.split_once('=').unwrap_or(("Id", part));
        if !matches!(k, "Id" | "Port") || v.is_empty() {
            return Err(CliError::Input(format!(
                "a target is Id=ID[,Port=PORT], not {t:?}"
            )));
        }
        out.push((format!("Targets.member.{n}.{k}"), v.to_string()));
    }
    Ok(out)
}

fn targets(arn: &str, list: &[String]) -> Result<Vec<(String, String)>, CliError> {
    let mut p = vec![("TargetGroupArn".to_string(), arn.to_string())];
    for (i, t) in list.iter().enumerate() {
        p.extend(target_params(i + 1, t)?);
    }
    Ok(p)
}

fn call(c: &Client, action: &str, p: &[(String, String)]) -> Result<String, CliError> {
    Ok(c.call_service(ELBV2, action, p)?)
}

fn result<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    action: &str,
) -> Result<Node<'a, 'i>, CliError> {
    let name = format!("{action}Result");
    child(doc.root_element(), &name)
        .ok_or_else(|| CliError::Parse(format!("no {name} in the answer to {action}")))
}

/// Prints the result as JSON (`--output json`) or runs `table`.
fn show(
    xml: &str,
    action: &str,
    json: bool,
    table: impl FnOnce(Node<'_, '_>),
) -> Result<(), CliError> {
    let doc = parse(xml)?;
    let r = result(&doc, action)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&query_to_json(r)).unwrap_or_default()
        );
    } else {
        table(r);
    }
    Ok(())
}

/// Runs a load-balancing command.
pub fn run(cmd: &ElbCommand, json: bool, c: &Client) -> Result<(), CliError> {
    let s = |v: &str| v.to_string();
    match cmd {
        ElbCommand::CreateTargetGroup {
            name,
            protocol,
            port,
            vpc_id,
            target_type,
            health_check_path,
            health_check_interval_seconds,
            healthy_threshold_count,
        } => {
            let mut p = vec![
                (s("Name"), name.clone()),
                (s("Protocol"), protocol.clone()),
                (s("Port"), port.to_string()),
                (s("VpcId"), vpc_id.clone()),
                (s("TargetType"), target_type.clone()),
            ];
            if let Some(path) = health_check_path {
                p.push((s("HealthCheckPath"), path.clone()));
            }
            if let Some(i) = health_check_interval_seconds {
                p.push((s("HealthCheckIntervalSeconds"), i.to_string()));
            }
            if let Some(n) = healthy_threshold_count {
                p.push((s("HealthyThresholdCount"), n.to_string()));
            }
            let xml = call(c, "CreateTargetGroup", &p)?;
            show(&xml, "CreateTargetGroup", json, |r| {
                for t in members(r, "TargetGroups") {
                    println!("{}", text(t, "TargetGroupArn").unwrap_or(""));
                }
            })
        }
        ElbCommand::RegisterTargets {
            target_group_arn,
            targets: list,
        } => {
            call(c, "RegisterTargets", &targets(target_group_arn, list)?)?;
            Ok(())
        }
        ElbCommand::DeregisterTargets {
            target_group_arn,
            targets: list,
        } => {
            call(c, "DeregisterTargets", &targets(target_group_arn, list)?)?;
            Ok(())
        }
        ElbCommand::DescribeTargetHealth { target_group_arn } => {
            let p = vec![(s("TargetGroupArn"), target_group_arn.clone())];
            let xml = call(c, "DescribeTargetHealth", &p)?;
            show(&xml, "DescribeTargetHealth", json, |r| {
                println!("TARGET\tPORT\tSTATE\tREASON");
                for d in members(r, "TargetHealthDescriptions") {
                    let target = child(d, "Target");
                    let health = child(d, "TargetHealth");
                    println!(
                        "{}\t{}\t{}\t{}",
                        field(target, "Id"),
                        field(target, "Port"),
                        field(health, "State"),
                        field(health, "Reason")
                    );
                }
            })
        }
        ElbCommand::CreateLoadBalancer {
            name,
            subnets,
            security_groups,
            kind,
        } => {
            let mut p = vec![(s("Name"), name.clone()), (s("Type"), kind.clone())];
            for (i, n) in subnets.iter().enumerate() {
                p.push((format!("Subnets.member.{}", i + 1), n.clone()));
            }
            for (i, g) in security_groups.iter().enumerate() {
                p.push((format!("SecurityGroups.member.{}", i + 1), g.clone()));
            }
            let xml = call(c, "CreateLoadBalancer", &p)?;
            show(&xml, "CreateLoadBalancer", json, print_lbs)
        }
        ElbCommand::DescribeLoadBalancers => {
            let xml = call(c, "DescribeLoadBalancers", &[])?;
            show(&xml, "DescribeLoadBalancers", json, print_lbs)
        }
        ElbCommand::CreateListener {
            load_balancer_arn,
            protocol,
            port,
            target_group_arn,
        } => {
            let p = vec![
                (s("LoadBalancerArn"), load_balancer_arn.clone()),
                (s("Protocol"), protocol.clone()),
                (s("Port"), port.to_string()),
                (s("DefaultActions.member.1.Type"), s("forward")),
                (
                    s("DefaultActions.member.1.TargetGroupArn"),
                    target_group_arn.clone(),
                ),
            ];
            let xml = call(c, "CreateListener", &p)?;
            show(&xml, "CreateListener", json, |r| {
                for l in members(r, "Listeners") {
                    println!("{}", text(l, "ListenerArn").unwrap_or(""));
                }
            })
        }
    }
}

/// A child's text of an optional node ("" if absent).
fn field<'a>(n: Option<Node<'a, '_>>, name: &str) -> &'a str {
    n.and_then(|n| text(n, name)).unwrap_or("")
}

/// Load balancers as a table: ARN, DNS name, address, state.
fn print_lbs(r: Node<'_, '_>) {
    println!("LOAD_BALANCER_ARN\tDNS_NAME\tADDRESS\tSTATE");
    for lb in members(r, "LoadBalancers") {
        let address = members(lb, "AvailabilityZones")
            .first()
            .and_then(|z| members(*z, "LoadBalancerAddresses").first().copied())
            .and_then(|a| text(a, "IpAddress"))
            .unwrap_or("");
        let state = child(lb, "State")
            .and_then(|s| text(s, "Code"))
            .unwrap_or("");
        println!(
            "{}\t{}\t{address}\t{state}",
            text(lb, "LoadBalancerArn").unwrap_or(""),
            text(lb, "DNSName").unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_ids_or_id_and_port() {
        assert_eq!(
            target_params(1, "i-1").unwrap(),
            [("Targets.member.1.Id".to_string(), "i-1".to_string())]
        );
        assert_eq!(target_params(2, "Id=10.0.0.5,Port=8080").unwrap().len(), 2);
        assert!(target_params(1, "Ip=x").is_err());
        assert!(target_params(1, "Id=").is_err());
    }
}
