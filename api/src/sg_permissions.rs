//! Security-group permissions as requests give them: `IpPermissions.N` (with `IpRanges`,
//! `Groups`) or the flat legacy form, checked (protocols, ports, ICMP
//! types, CIDRs, peer groups of the same VPC) and turned into rule rows.

use rusqlite::Connection;
use shapes::ec2::IpPermission;

use super::errors::ApiError;
use host::network::cidr::{Cidr, CidrError};
use state::new_id;
use state::security_groups::{self, GroupRow, RuleRow};

/// Why a permission (`IpPermissions.N` or the flat form) is refused.
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
    /// A port, ICMP type or code out of range, or a range backwards.
    #[error("Value for parameter {field} is invalid: {why}")]
    Port {
        /// The field.
        field: String,
        /// What is wrong and what is allowed.
        why: String,
    },
    /// A CIDR block that does not parse.
    #[error("Value for parameter {field} is invalid")]
    Cidr {
        /// The field.
        field: String,
        /// The parse error.
        #[source]
        source: CidrError,
    },
    /// IPv6 ranges and prefix lists are not served.
    #[error("Value for parameter {0} is invalid: IPv6 ranges and prefix lists are not supported")]
    Unsupported(String),
    /// A permission names neither a CIDR block nor a group.
    #[error(
        "The request must contain the parameter {0}IpRanges or {0}Groups (a CIDR block or a security group as the peer)"
    )]
    NoPeer(String),
    /// Both the flat form and `IpPermissions` were given.
    #[error(
        "The parameter IpPermissions cannot be used with IpProtocol, FromPort, ToPort, CidrIp or SourceSecurityGroupName"
    )]
    Mixed,
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

impl From<PermissionError> for ApiError {
    fn from(e: PermissionError) -> Self {
        let code = match &e {
            PermissionError::Protocol { .. }
            | PermissionError::Port { .. }
            | PermissionError::Cidr { .. }
            | PermissionError::Unsupported(_) => "InvalidParameterValue",
            PermissionError::NoPeer(_) | PermissionError::Missing => "MissingParameter",
            PermissionError::Mixed => "InvalidParameterCombination",
            PermissionError::UnknownGroup(_) | PermissionError::OtherVpc { .. } => {
                "InvalidGroup.NotFound"
            }
            PermissionError::Db(db) => return ApiError::internal(db),
        };
        let message = match &e {
            PermissionError::Cidr { source, .. } => format!("{e}: {source}"),
            _ => e.to_string(),
        };
        ApiError::new(code, message)
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
fn peer(
    conn: &Connection,
    group: &GroupRow,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<String, PermissionError> {
    let found = match (id, name) {
        (Some(id), _) => security_groups::get_group(conn, id)?
            .ok_or_else(|| PermissionError::UnknownGroup(id.into()))?,
        (None, Some(n)) => security_groups::group_by_name(conn, &group.vpc_id, n)?
            .ok_or_else(|| PermissionError::UnknownGroup(n.into()))?,
        (None, None) => return Err(PermissionError::NoPeer(String::new())),
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

/// The permissions a request gives: the flat legacy form (`IpProtocol`, `FromPort`,
/// `ToPort`, `CidrIp`, `SourceSecurityGroupName`) or `IpPermissions`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Requested<'a> {
    /// `IpProtocol`.
    pub ip_protocol: Option<&'a str>,
    /// `FromPort`.
    pub from_port: Option<i32>,
    /// `ToPort`.
    pub to_port: Option<i32>,
    /// `CidrIp`.
    pub cidr_ip: Option<&'a str>,
    /// `SourceSecurityGroupName`.
    pub source_security_group_name: Option<&'a str>,
    /// `IpPermissions.N`.
    pub ip_permissions: &'a [IpPermission],
}

/// The request's permissions as rules of `group` (ids fresh, not stored).
pub fn requested_rules(
    conn: &Connection,
    given: &Requested<'_>,
    group: &GroupRow,
    egress: bool,
) -> Result<Vec<RuleRow>, PermissionError> {
    let rule = |protocol: &str, (from, to), cidr: Option<String>, peer, description| RuleRow {
        id: new_id("sgr"),
        group_id: group.id.clone(),
        egress,
        protocol: protocol.into(),
        from_port: from,
        to_port: to,
        cidr,
        peer_group_id: peer,
        description,
    };
    let has_flat = given.ip_protocol.is_some()
        || given.from_port.is_some()
        || given.to_port.is_some()
        || given.cidr_ip.is_some()
        || given.source_security_group_name.is_some();
    if has_flat && !given.ip_permissions.is_empty() {
        return Err(PermissionError::Mixed);
    }
    let mut out = Vec::new();
    if has_flat {
        let proto = protocol("IpProtocol", given.ip_protocol.unwrap_or("-1"))?;
        let range = ports("", proto, given.from_port, given.to_port)?;
        if let Some(v) = given.cidr_ip {
            out.push(rule(
                proto,
                range,
                Some(cidr("CidrIp", v)?),
                None,
                String::new(),
            ));
        }
        if let Some(name) = given.source_security_group_name {
            let peer_id = peer(conn, group, None, Some(name))?;
            out.push(rule(proto, range, None, Some(peer_id), String::new()));
        }
        if out.is_empty() {
            return Err(PermissionError::NoPeer(String::new()));
        }
        return Ok(out);
    }
    for (i, p) in given.ip_permissions.iter().enumerate() {
        let prefix = format!("IpPermissions.{}.", i + 1);
        let unsupported = [
            (
                "Ipv6Ranges",
                p.ipv6_ranges.as_ref().is_some_and(|r| !r.is_empty()),
            ),
            (
                "PrefixListIds",
                p.prefix_list_ids.as_ref().is_some_and(|r| !r.is_empty()),
            ),
        ];
        if let Some((name, _)) = unsupported.iter().find(|(_, given)| *given) {
            return Err(PermissionError::Unsupported(format!("{prefix}{name}")));
        }
        let field = format!("{prefix}IpProtocol");
        let proto = protocol(&field, p.ip_protocol.as_deref().unwrap_or("-1"))?;
        let range = ports(&prefix, proto, p.from_port, p.to_port)?;
        let before = out.len();
        for (m, r) in p
            .ip_ranges
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let f = format!("{prefix}IpRanges.{}.", m + 1);
            let block = cidr(&format!("{f}CidrIp"), r.cidr_ip.as_deref().unwrap_or(""))?;
            let d = description(r.description.as_deref(), &format!("{f}Description"))?;
            out.push(rule(proto, range, Some(block), None, d));
        }
        let pairs = p.user_id_group_pairs.as_deref().unwrap_or_default();
        for (m, g) in pairs.iter().enumerate() {
            let f = format!("{prefix}Groups.{}.", m + 1);
            let peer_id = peer(conn, group, g.group_id.as_deref(), g.group_name.as_deref())
                .map_err(|e| match e {
                    PermissionError::NoPeer(_) => PermissionError::NoPeer(prefix.clone()),
                    e => e,
                })?;
            let d = description(g.description.as_deref(), &format!("{f}Description"))?;
            out.push(rule(proto, range, None, Some(peer_id), d));
        }
        if out.len() == before {
            return Err(PermissionError::NoPeer(prefix));
        }
    }
    if out.is_empty() {
        return Err(PermissionError::Missing);
    }
    Ok(out)
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
