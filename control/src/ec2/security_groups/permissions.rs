//! Security-group permissions: checked (protocols, ports, ICMP types, CIDRs, descriptions,
//! peer groups of the same VPC) and turned into rule rows.

use rusqlite::Connection;

use host::network::cidr::{Cidr, CidrError};
use state::new_id;
use state::security_groups::{self, GroupRow, RuleRow};

/// One permission as a request gives it, its fields named as the request named them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    /// The prefix of its fields' names (`IpPermissions.1.`), empty in the flat form.
    pub prefix: String,
    /// `tcp`, `udp`, `icmp`, `-1` or their numbers; `-1` when not given.
    pub protocol: String,
    /// The first port (ICMP: the type).
    pub from_port: Option<i32>,
    /// The last port (ICMP: the code).
    pub to_port: Option<i32>,
    /// Where traffic may come from or go to.
    pub peers: Vec<Peer>,
}

/// The other end of a permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A CIDR block.
    Cidr {
        /// The prefix of its fields' names (`IpPermissions.1.IpRanges.1.`, empty flat).
        prefix: String,
        /// The block as given.
        block: String,
        /// Its description.
        description: Option<String>,
    },
    /// A security group of the same VPC, by id or by name.
    Group {
        /// The prefix of its fields' names (`IpPermissions.1.Groups.1.`).
        prefix: String,
        /// The group's id.
        id: Option<String>,
        /// The group's name (in the VPC of the group being changed).
        name: Option<String>,
        /// Its description.
        description: Option<String>,
    },
}

/// Why a permission is refused.
#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    /// Not tcp, udp, icmp, -1 or their numbers.
    #[error(
        "Value for parameter {field} is invalid: '{value}' is not a supported protocol; the allowed values are tcp (6), udp (17), icmp (1) and -1 (all)"
    )]
    Protocol {
        /// The field.
        field: String,
        /// What was given.
        value: String,
    },
    /// A port, ICMP type or code out of range, a range backwards, a description too long.
    #[error("Value for parameter {field} is invalid: {why}")]
    Port {
        /// The field.
        field: String,
        /// What is wrong and what is allowed.
        why: String,
    },
    /// A CIDR block that does not parse.
    #[error("Value for parameter {field} is invalid: {source}")]
    Cidr {
        /// The field.
        field: String,
        /// The parse error.
        #[source]
        source: CidrError,
    },
    /// A permission names neither a CIDR block nor a group.
    #[error(
        "The request must contain the parameter {0}IpRanges or {0}Groups (a CIDR block or a security group as the peer)"
    )]
    NoPeer(String),
    /// No permission at all.
    #[error("The request must contain the parameter IpPermissions")]
    Missing,
    /// A peer group that does not exist.
    #[error("The security group '{0}' does not exist")]
    UnknownGroup(String),
    /// A peer group of another VPC.
    #[error(
        "You have specified two resources that belong to different networks: {peer} is in {peer_vpc}, the group in {vpc}."
    )]
    OtherVpc {
        /// The peer group.
        peer: String,
        /// Its VPC.
        peer_vpc: String,
        /// The group's VPC.
        vpc: String,
    },
    /// The database failed.
    #[error("the state database failed")]
    Db(#[from] rusqlite::Error),
}

impl crate::Refusal for PermissionError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Protocol { .. } | Self::Port { .. } | Self::Cidr { .. } => {
                "InvalidParameterValue"
            }
            Self::NoPeer(_) | Self::Missing => "MissingParameter",
            Self::UnknownGroup(_) | Self::OtherVpc { .. } => "InvalidGroup.NotFound",
            Self::Db(_) => return None,
        })
    }
}

fn protocol(field: &str, v: &str) -> Result<&'static str, PermissionError> {
    match v.to_ascii_lowercase().as_str() {
        "tcp" | "6" => Ok("tcp"),
        "udp" | "17" => Ok("udp"),
        "icmp" | "1" => Ok("icmp"),
        "-1" => Ok("-1"),
        _ => Err(PermissionError::Protocol {
            field: field.into(),
            value: v.into(),
        }),
    }
}

/// Checks and normalises ports: TCP/UDP need both, 0 to 65535, from <= to; ICMP type and code
/// are -1 (all) to 255, all types only with all codes; all protocols take none.
fn ports(
    prefix: &str,
    protocol: &str,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<(Option<i32>, Option<i32>), PermissionError> {
    let bad = |why: String| PermissionError::Port {
        field: format!("{prefix}FromPort"),
        why,
    };
    match protocol {
        "tcp" | "udp" => {
            let (Some(f), Some(t)) = (from, to) else {
                return Err(bad(
                    "both FromPort and ToPort are required with TCP/UDP".into()
                ));
            };
            if !(0..=65535).contains(&f) || !(0..=65535).contains(&t) {
                return Err(bad(format!("ports {f}-{t}: TCP/UDP ports are 0 to 65535")));
            }
            if f > t {
                return Err(bad(format!("from port {f} is above to port {t}")));
            }
            Ok((Some(f), Some(t)))
        }
        "icmp" => {
            let (kind, code) = (from.unwrap_or(-1), to.unwrap_or(-1));
            if !(-1..=255).contains(&kind) || !(-1..=255).contains(&code) {
                return Err(bad(format!(
                    "ICMP type {kind} and code {code}: each is -1 (all) to 255"
                )));
            }
            if kind == -1 && code != -1 {
                return Err(bad("all ICMP types (-1) requires all codes (-1)".into()));
            }
            Ok((Some(kind), Some(code)))
        }
        _ => Ok((None, None)),
    }
}

fn description(given: Option<&str>, field: &str) -> Result<String, PermissionError> {
    let d = given.unwrap_or("").to_owned();
    if d.chars().count() > 255 {
        return Err(PermissionError::Port {
            field: field.into(),
            why: "descriptions are at most 255 characters".into(),
        });
    }
    Ok(d)
}

fn cidr(field: &str, v: &str) -> Result<String, PermissionError> {
    v.parse::<Cidr>()
        .map(|c| c.to_string())
        .map_err(|source| PermissionError::Cidr {
            field: field.into(),
            source,
        })
}

/// A peer group by id or name (in `group`'s VPC), which must be in `group`'s VPC.
fn peer_group(
    conn: &Connection,
    group: &GroupRow,
    id: Option<&str>,
    name: Option<&str>,
    prefix: &str,
) -> Result<String, PermissionError> {
    let found = match (id, name) {
        (Some(id), _) => security_groups::get_group(conn, id)?
            .ok_or_else(|| PermissionError::UnknownGroup(id.into()))?,
        (None, Some(n)) => security_groups::group_by_name(conn, &group.vpc_id, n)?
            .ok_or_else(|| PermissionError::UnknownGroup(n.into()))?,
        (None, None) => return Err(PermissionError::NoPeer(prefix.into())),
    };
    if found.vpc_id != group.vpc_id {
        return Err(PermissionError::OtherVpc {
            peer: found.id,
            peer_vpc: found.vpc_id,
            vpc: group.vpc_id.clone(),
        });
    }
    Ok(found.id)
}

/// `permissions` as rules of `group` (ingress, or egress when `egress`; ids fresh, not
/// stored).
pub fn rules(
    conn: &Connection,
    group: &GroupRow,
    egress: bool,
    permissions: &[Permission],
) -> Result<Vec<RuleRow>, PermissionError> {
    let mut out = Vec::new();
    for p in permissions {
        let field = format!("{}IpProtocol", p.prefix);
        let proto = protocol(&field, &p.protocol)?;
        let (from_port, to_port) = ports(&p.prefix, proto, p.from_port, p.to_port)?;
        let before = out.len();
        for peer in &p.peers {
            let (cidr, peer_group_id, description) = match peer {
                Peer::Cidr {
                    prefix,
                    block,
                    description: d,
                } => (
                    Some(cidr(&format!("{prefix}CidrIp"), block)?),
                    None,
                    description(d.as_deref(), &format!("{prefix}Description"))?,
                ),
                Peer::Group {
                    prefix: _,
                    id,
                    name,
                    description: d,
                } => (
                    None,
                    Some(peer_group(
                        conn,
                        group,
                        id.as_deref(),
                        name.as_deref(),
                        &p.prefix,
                    )?),
                    description(d.as_deref(), &format!("{}Description", peer_prefix(peer)))?,
                ),
            };
            out.push(RuleRow {
                id: new_id("sgr"),
                group_id: group.id.clone(),
                egress,
                protocol: proto.into(),
                from_port,
                to_port,
                cidr,
                peer_group_id,
                description,
            });
        }
        if out.len() == before {
            return Err(PermissionError::NoPeer(p.prefix.clone()));
        }
    }
    if out.is_empty() {
        return Err(PermissionError::Missing);
    }
    Ok(out)
}

fn peer_prefix(peer: &Peer) -> &str {
    match peer {
        Peer::Cidr { prefix, .. } | Peer::Group { prefix, .. } => prefix,
    }
}

/// How EC2 quotes a rule in its duplicate and not-found messages.
pub fn describe_rule(r: &RuleRow) -> String {
    let peer = r
        .cidr
        .clone()
        .or(r.peer_group_id.clone())
        .unwrap_or_default();
    let proto = match r.protocol.as_str() {
        "-1" => "ALL".to_owned(),
        p => p.to_ascii_uppercase(),
    };
    let ports = match (r.from_port, r.to_port) {
        (Some(f), Some(t)) => format!(", from port: {f}, to port: {t}"),
        _ => String::new(),
    };
    format!("peer: {peer}, {proto}{ports}, ALLOW")
}
