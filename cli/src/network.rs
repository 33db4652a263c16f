//! The CLI's networking commands: VPCs, subnets, security groups, Elastic IPs, network
//! interfaces and instance metadata options, with `aws ec2`'s names.

use clap::Subcommand;

use super::client::Client;
use super::error::CliError;
use super::output::{parse, print_json};
use super::params::{filter_params, list_params};
use super::xmltree::{child, items, text};
use super::{Cli, Output};

/// Networking commands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a VPC (prints its id and block).
    CreateVpc {
        /// The block, /16 to /28.
        #[arg(long)]
        cidr_block: String,
    },
    /// List VPCs.
    DescribeVpcs {
        /// Only these VPCs.
        #[arg(long, num_args = 1..)]
        vpc_ids: Vec<String>,
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
    },
    /// Delete a VPC.
    DeleteVpc {
        /// The VPC.
        #[arg(long)]
        vpc_id: String,
    },
    /// Create a subnet (prints its id).
    CreateSubnet {
        /// The VPC.
        #[arg(long)]
        vpc_id: String,
        /// The block, inside the VPC's.
        #[arg(long)]
        cidr_block: String,
    },
    /// List subnets.
    DescribeSubnets {
        /// Only these subnets.
        #[arg(long, num_args = 1..)]
        subnet_ids: Vec<String>,
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
    },
    /// Delete a subnet.
    DeleteSubnet {
        /// The subnet.
        #[arg(long)]
        subnet_id: String,
    },
    /// Create a security group (prints its id).
    CreateSecurityGroup {
        /// The name.
        #[arg(long)]
        group_name: String,
        /// The description.
        #[arg(long)]
        description: String,
        /// The VPC (default: the default VPC).
        #[arg(long)]
        vpc_id: Option<String>,
    },
    /// List security groups and their rules.
    DescribeSecurityGroups {
        /// Only these groups.
        #[arg(long, num_args = 1..)]
        group_ids: Vec<String>,
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
    },
    /// Delete a security group.
    DeleteSecurityGroup {
        /// The group.
        #[arg(long)]
        group_id: String,
    },
    /// Allow inbound traffic.
    AuthorizeSecurityGroupIngress(RuleArgs),
    /// Remove an inbound rule.
    RevokeSecurityGroupIngress(RuleArgs),
    /// Allocate an Elastic IP (prints its allocation id and address).
    AllocateAddress,
    /// Associate an Elastic IP with an instance or a network interface.
    AssociateAddress {
        /// The address.
        #[arg(long)]
        allocation_id: String,
        /// The instance (its primary interface).
        #[arg(long)]
        instance_id: Option<String>,
        /// The network interface.
        #[arg(long)]
        network_interface_id: Option<String>,
        /// Move the address if it is associated elsewhere.
        #[arg(long)]
        allow_reassociation: bool,
    },
    /// Disassociate an Elastic IP.
    DisassociateAddress {
        /// The association.
        #[arg(long)]
        association_id: String,
    },
    /// Release an Elastic IP.
    ReleaseAddress {
        /// The address.
        #[arg(long)]
        allocation_id: String,
    },
    /// List Elastic IPs.
    DescribeAddresses {
        /// Only these addresses.
        #[arg(long, num_args = 1..)]
        allocation_ids: Vec<String>,
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
    },
    /// List network interfaces.
    DescribeNetworkInterfaces {
        /// Only these interfaces.
        #[arg(long, num_args = 1..)]
        network_interface_ids: Vec<String>,
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
    },
    /// Change an instance's metadata options.
    ModifyInstanceMetadataOptions {
        /// The instance.
        #[arg(long)]
        instance_id: String,
        /// `optional` or `required`.
        #[arg(long)]
        http_tokens: Option<String>,
        /// `enabled` or `disabled`.
        #[arg(long)]
        http_endpoint: Option<String>,
        /// 1 to 64.
        #[arg(long)]
        http_put_response_hop_limit: Option<u32>,
    },
}

/// One rule in the `aws ec2` short form.
#[derive(Debug, clap::Args)]
pub struct RuleArgs {
    /// The group.
    #[arg(long)]
    pub group_id: String,
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    #[arg(long, allow_hyphen_values = true)]
    pub protocol: String,
    /// `N` or `N-M` (ICMP: type, or `-1`).
    #[arg(long, allow_hyphen_values = true)]
    pub port: Option<String>,
    /// The peer block.
    #[arg(long)]
    pub cidr: Option<String>,
    /// The peer group.
    #[arg(long)]
    pub source_group: Option<String>,
}

fn rule_params(p: &mut Vec<(String, String)>, r: &RuleArgs) -> Result<(), CliError> {
    let mut push = |k: &str, v: &str| p.push((format!("IpPermissions.1.{k}"), v.to_owned()));
    push("IpProtocol", &r.protocol);
    if let Some(port) = &r.port {
        let (from, to) = match port.as_str() {
            "-1" => ("-1", "-1"),
            p => p.split_once('-').unwrap_or((p, p)),
        };
        if from.parse::<i32>().is_err() || to.parse::<i32>().is_err() {
            return Err(CliError::Input(format!("--port '{port}' is not N or N-M")));
        }
        push("FromPort", from);
        push("ToPort", to);
    }
    if let Some(c) = &r.cidr {
        push("IpRanges.1.CidrIp", c);
    }
    if let Some(g) = &r.source_group {
        push("Groups.1.GroupId", g);
    }
    Ok(())
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, String::len))
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let out: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", out.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn kv(p: &mut Vec<(String, String)>, k: &str, v: &str) {
    p.push((k.to_owned(), v.to_owned()));
}

fn t(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    text(node, name).unwrap_or("").to_owned()
}

/// Rules of a group as `PROTO PORTS PEER` strings.
fn rules(group: roxmltree::Node<'_, '_>, set: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in items(group, set) {
        let ports = match (text(p, "fromPort"), text(p, "toPort")) {
            (Some(f), Some(to)) if f == to => f.to_owned(),
            (Some(f), Some(to)) => format!("{f}-{to}"),
            _ => "all".to_owned(),
        };
        let proto = match t(p, "ipProtocol").as_str() {
            "-1" => "all".to_owned(),
            other => other.to_owned(),
        };
        for r in items(p, "ipRanges") {
            out.push(format!("{proto} {ports} {}", t(r, "cidrIp")));
        }
        for g in items(p, "groups") {
            out.push(format!("{proto} {ports} {}", t(g, "groupId")));
        }
    }
    out
}

/// Runs a networking command; the printed line of a create is the new resource's id first.
pub fn run(cli: &Cli, c: &Client, cmd: &NetworkCommand) -> Result<(), CliError> {
    let mut p: Vec<(String, String)> = Vec::new();
    let (action, shown): (&str, fn(&roxmltree::Document<'_>)) = match cmd {
        NetworkCommand::CreateVpc { cidr_block } => {
            kv(&mut p, "CidrBlock", cidr_block);
            ("CreateVpc", |d| {
                let v = child(d.root_element(), "vpc");
                if let Some(v) = v {
                    println!("{}\t{}", t(v, "vpcId"), t(v, "cidrBlock"));
                }
            })
        }
        NetworkCommand::DescribeVpcs { vpc_ids, filters } => {
            list_params(&mut p, "VpcId", vpc_ids);
            filter_params(&mut p, filters)?;
            ("DescribeVpcs", |d| {
                let rows: Vec<Vec<String>> = items(d.root_element(), "vpcSet")
                    .into_iter()
                    .map(|v| vec![t(v, "vpcId"), t(v, "cidrBlock"), t(v, "isDefault")])
                    .collect();
                print_table(&["VPC_ID", "CIDR", "DEFAULT"], &rows);
            })
        }
        NetworkCommand::DeleteVpc { vpc_id } => {
            kv(&mut p, "VpcId", vpc_id);
            ("DeleteVpc", |_| {})
        }
        NetworkCommand::CreateSubnet { vpc_id, cidr_block } => {
            kv(&mut p, "VpcId", vpc_id);
            kv(&mut p, "CidrBlock", cidr_block);
            ("CreateSubnet", |d| {
                if let Some(s) = child(d.root_element(), "subnet") {
                    println!("{}\t{}", t(s, "subnetId"), t(s, "cidrBlock"));
                }
            })
        }
        NetworkCommand::DescribeSubnets {
            subnet_ids,
            filters,
        } => {
            list_params(&mut p, "SubnetId", subnet_ids);
            filter_params(&mut p, filters)?;
            ("DescribeSubnets", |d| {
                let rows: Vec<Vec<String>> = items(d.root_element(), "subnetSet")
                    .into_iter()
                    .map(|s| {
                        vec![
                            t(s, "subnetId"),
                            t(s, "vpcId"),
                            t(s, "cidrBlock"),
                            t(s, "availableIpAddressCount"),
                            t(s, "mapPublicIpOnLaunch"),
                            t(s, "defaultForAz"),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "SUBNET_ID",
                        "VPC_ID",
                        "CIDR",
                        "FREE",
                        "PUBLIC_IP",
                        "DEFAULT",
                    ],
                    &rows,
                );
            })
        }
        NetworkCommand::DeleteSubnet { subnet_id } => {
            kv(&mut p, "SubnetId", subnet_id);
            ("DeleteSubnet", |_| {})
        }
        NetworkCommand::CreateSecurityGroup {
            group_name,
            description,
            vpc_id,
        } => {
            kv(&mut p, "GroupName", group_name);
            kv(&mut p, "GroupDescription", description);
            if let Some(v) = vpc_id {
                kv(&mut p, "VpcId", v);
            }
            ("CreateSecurityGroup", |d| {
                println!("{}", t(d.root_element(), "groupId"));
            })
        }
        NetworkCommand::DescribeSecurityGroups { group_ids, filters } => {
            list_params(&mut p, "GroupId", group_ids);
            filter_params(&mut p, filters)?;
            ("DescribeSecurityGroups", |d| {
                let mut rows = Vec::new();
                for g in items(d.root_element(), "securityGroupInfo") {
                    let head = [t(g, "groupId"), t(g, "groupName"), t(g, "vpcId")];
                    for (dir, set) in [("in", "ipPermissions"), ("out", "ipPermissionsEgress")] {
                        for r in rules(g, set) {
                            let mut row = head.to_vec();
                            row.extend([dir.to_owned(), r]);
                            rows.push(row);
                        }
                    }
                }
                print_table(&["GROUP_ID", "NAME", "VPC_ID", "DIR", "RULE"], &rows);
            })
        }
        NetworkCommand::DeleteSecurityGroup { group_id } => {
            kv(&mut p, "GroupId", group_id);
            ("DeleteSecurityGroup", |_| {})
        }
        NetworkCommand::AuthorizeSecurityGroupIngress(r)
        | NetworkCommand::RevokeSecurityGroupIngress(r) => {
            kv(&mut p, "GroupId", &r.group_id);
            rule_params(&mut p, r)?;
            let action = if matches!(cmd, NetworkCommand::AuthorizeSecurityGroupIngress(_)) {
                "AuthorizeSecurityGroupIngress"
            } else {
                "RevokeSecurityGroupIngress"
            };
            (action, |d| {
                for r in items(d.root_element(), "securityGroupRuleSet") {
                    println!("{}", t(r, "securityGroupRuleId"));
                }
            })
        }
        NetworkCommand::AllocateAddress => {
            kv(&mut p, "Domain", "vpc");
            ("AllocateAddress", |d| {
                let r = d.root_element();
                println!("{}\t{}", t(r, "allocationId"), t(r, "publicIp"));
            })
        }
        NetworkCommand::AssociateAddress {
            allocation_id,
            instance_id,
            network_interface_id,
            allow_reassociation,
        } => {
            kv(&mut p, "AllocationId", allocation_id);
            if let Some(i) = instance_id {
                kv(&mut p, "InstanceId", i);
            }
            if let Some(n) = network_interface_id {
                kv(&mut p, "NetworkInterfaceId", n);
            }
            if *allow_reassociation {
                kv(&mut p, "AllowReassociation", "true");
            }
            ("AssociateAddress", |d| {
                println!("{}", t(d.root_element(), "associationId"));
            })
        }
        NetworkCommand::DisassociateAddress { association_id } => {
            kv(&mut p, "AssociationId", association_id);
            ("DisassociateAddress", |_| {})
        }
        NetworkCommand::ReleaseAddress { allocation_id } => {
            kv(&mut p, "AllocationId", allocation_id);
            ("ReleaseAddress", |_| {})
        }
        NetworkCommand::DescribeAddresses {
            allocation_ids,
            filters,
        } => {
            list_params(&mut p, "AllocationId", allocation_ids);
            filter_params(&mut p, filters)?;
            ("DescribeAddresses", |d| {
                let rows: Vec<Vec<String>> = items(d.root_element(), "addressesSet")
                    .into_iter()
                    .map(|a| {
                        vec![
                            t(a, "allocationId"),
                            t(a, "publicIp"),
                            t(a, "associationId"),
                            t(a, "instanceId"),
                            t(a, "networkInterfaceId"),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ALLOCATION_ID",
                        "PUBLIC_IP",
                        "ASSOCIATION_ID",
                        "INSTANCE",
                        "ENI",
                    ],
                    &rows,
                );
            })
        }
        NetworkCommand::DescribeNetworkInterfaces {
            network_interface_ids,
            filters,
        } => {
            list_params(&mut p, "NetworkInterfaceId", network_interface_ids);
            filter_params(&mut p, filters)?;
            ("DescribeNetworkInterfaces", |d| {
                let rows: Vec<Vec<String>> = items(d.root_element(), "networkInterfaceSet")
                    .into_iter()
                    .map(|e| {
                        let att = child(e, "attachment");
                        let public = child(e, "association").map(|a| t(a, "publicIp"));
                        vec![
                            t(e, "networkInterfaceId"),
                            t(e, "status"),
                            t(e, "subnetId"),
                            t(e, "privateIpAddress"),
                            public.unwrap_or_default(),
                            t(e, "macAddress"),
                            att.map(|a| t(a, "instanceId")).unwrap_or_default(),
                            att.map(|a| t(a, "deviceIndex")).unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ENI_ID",
                        "STATUS",
                        "SUBNET_ID",
                        "PRIVATE_IP",
                        "PUBLIC_IP",
                        "MAC",
                        "INSTANCE",
                        "INDEX",
                    ],
                    &rows,
                );
            })
        }
        NetworkCommand::ModifyInstanceMetadataOptions {
            instance_id,
            http_tokens,
            http_endpoint,
            http_put_response_hop_limit,
        } => {
            kv(&mut p, "InstanceId", instance_id);
            if let Some(v) = http_tokens {
                kv(&mut p, "HttpTokens", v);
            }
            if let Some(v) = http_endpoint {
                kv(&mut p, "HttpEndpoint", v);
            }
            if let Some(v) = http_put_response_hop_limit {
                kv(&mut p, "HttpPutResponseHopLimit", &v.to_string());
            }
            ("ModifyInstanceMetadataOptions", |d| {
                if let Some(o) = child(d.root_element(), "instanceMetadataOptions") {
                    println!(
                        "tokens={} endpoint={} hop-limit={}",
                        t(o, "httpTokens"),
                        t(o, "httpEndpoint"),
                        t(o, "httpPutResponseHopLimit")
                    );
                }
            })
        }
    };
    let xml = c.call(action, &p)?;
    if cli.output == Output::Json {
        return print_json(&xml);
    }
    shown(&parse(&xml)?);
    Ok(())
}
