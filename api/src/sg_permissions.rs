//! Security-group permissions as requests give them, `IpPermissions.N` (with `IpRanges`,
//! `Groups`) or the flat legacy form, as the control plane's [`Permission`]s. The checks of
//! protocols, ports, CIDRs and peers are the control plane's; here only the request's form.

use shapes::ec2::IpPermission;

use super::errors::ApiError;
use control::ec2::security_groups::{Peer, Permission};

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

impl Requested<'_> {
    fn has_flat(&self) -> bool {
        self.ip_protocol.is_some()
            || self.from_port.is_some()
            || self.to_port.is_some()
            || self.cidr_ip.is_some()
            || self.source_security_group_name.is_some()
    }
}

/// The request's permissions: `InvalidParameterCombination` when it mixes both forms,
/// `InvalidParameterValue` for IPv6 ranges and prefix lists, which are not served.
pub fn requested_permissions(given: &Requested<'_>) -> Result<Vec<Permission>, ApiError> {
    if given.has_flat() && !given.ip_permissions.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameter IpPermissions cannot be used with IpProtocol, FromPort, ToPort, \
             CidrIp or SourceSecurityGroupName",
        ));
    }
    if given.has_flat() {
        let mut peers = Vec::new();
        if let Some(block) = given.cidr_ip {
            peers.push(Peer::Cidr {
                prefix: String::new(),
                block: block.into(),
                description: None,
            });
        }
        if let Some(name) = given.source_security_group_name {
            peers.push(Peer::Group {
                prefix: String::new(),
                id: None,
                name: Some(name.into()),
                description: None,
            });
        }
        return Ok(vec![Permission {
            prefix: String::new(),
            protocol: given.ip_protocol.unwrap_or("-1").into(),
            from_port: given.from_port,
            to_port: given.to_port,
            peers,
        }]);
    }
    given
        .ip_permissions
        .iter()
        .enumerate()
        .map(|(i, p)| structured(&format!("IpPermissions.{}.", i + 1), p))
        .collect()
}

/// One `IpPermissions.N` (its fields named from `prefix`).
fn structured(prefix: &str, p: &IpPermission) -> Result<Permission, ApiError> {
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
        return Err(ApiError::new(
            "InvalidParameterValue",
            format!(
                "Value for parameter {prefix}{name} is invalid: IPv6 ranges and prefix lists \
                 are not supported"
            ),
        ));
    }
    let ranges = p.ip_ranges.as_deref().unwrap_or_default();
    let pairs = p.user_id_group_pairs.as_deref().unwrap_or_default();
    let cidrs = ranges.iter().enumerate().map(|(m, r)| Peer::Cidr {
        prefix: format!("{prefix}IpRanges.{}.", m + 1),
        block: r.cidr_ip.clone().unwrap_or_default(),
        description: r.description.clone(),
    });
    let groups = pairs.iter().enumerate().map(|(m, g)| Peer::Group {
        prefix: format!("{prefix}Groups.{}.", m + 1),
        id: g.group_id.clone(),
        name: g.group_name.clone(),
        description: g.description.clone(),
    });
    Ok(Permission {
        prefix: prefix.into(),
        protocol: p.ip_protocol.clone().unwrap_or_else(|| "-1".into()),
        from_port: p.from_port,
        to_port: p.to_port,
        peers: cidrs.chain(groups).collect(),
    })
}
