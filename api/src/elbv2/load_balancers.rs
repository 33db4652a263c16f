//! Load balancers: CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer and their
//! attributes.

use control::elbv2::ElbError;
use control::elbv2::load_balancers::{self, NewLoadBalancer};
use serde_json::Value;
use shapes::elbv2::{
    AvailabilityZone, CreateLoadBalancerOutput, DescribeLoadBalancerAttributesOutput,
    DescribeLoadBalancersOutput, IpAddressType, LoadBalancer, LoadBalancerAddress,
    LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerState, LoadBalancerStateEnum,
    LoadBalancerTypeEnum, ModifyLoadBalancerAttributesOutput, ops,
};
use state::elbv2::LoadBalancerRow;

use super::{invalid, page, pairs, refused, time};
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

/// A stored load balancer as the model's `LoadBalancer`.
fn shape(conn: &rusqlite::Connection, lb: &LoadBalancerRow) -> Result<LoadBalancer, ApiError> {
    let db_err = |e: rusqlite::Error| refused(&ElbError::from(e));
    let mut zones = Vec::new();
    for (subnet, eni) in state::elbv2::interfaces_of(conn, &lb.arn).map_err(db_err)? {
        let zone = state::vpcs::get_subnet(conn, &subnet)
            .map_err(db_err)?
            .map(|s| s.availability_zone);
        let private = state::enis::get(conn, &eni)
            .map_err(db_err)?
            .map(|e| e.private_ip);
        zones.push(AvailabilityZone {
            zone_name: zone,
            subnet_id: Some(subnet),
            outpost_id: None,
            load_balancer_addresses: Some(vec![LoadBalancerAddress {
                ip_address: lb.public_ip.clone(),
                allocation_id: None,
                private_i_pv4_address: private,
                i_pv6_address: None,
            }]),
            source_nat_ipv6_prefixes: None,
        });
    }
    let groups = state::elbv2::lb_groups(conn, &lb.arn).map_err(db_err)?;
    Ok(LoadBalancer {
        load_balancer_arn: Some(lb.arn.clone()),
        dns_name: Some(lb.dns_name.clone()),
        canonical_hosted_zone_id: Some("ZKEC2LOCAL1ELB".into()),
        created_time: time(lb.created_ms),
        load_balancer_name: Some(lb.name.clone()),
        scheme: LoadBalancerSchemeEnum::from_wire(&lb.scheme),
        vpc_id: Some(lb.vpc_id.clone()),
        state: Some(LoadBalancerState {
            code: LoadBalancerStateEnum::from_wire(&lb.state),
            reason: None,
        }),
        type_: LoadBalancerTypeEnum::from_wire(&lb.kind),
        availability_zones: Some(zones),
        security_groups: (lb.kind == "application" || !groups.is_empty()).then_some(groups),
        ip_address_type: Some(IpAddressType::Ipv4),
        customer_owned_ipv4_pool: None,
        enforce_security_group_inbound_rules_on_private_link_traffic: None,
        enable_prefix_for_ipv6_source_nat: None,
        ipam_pools: None,
    })
}

/// CreateLoadBalancer.
pub(super) fn create(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::CreateLoadBalancer>(value)?;
    let mut subnets = r.subnets.unwrap_or_default();
    for m in r.subnet_mappings.unwrap_or_default() {
        if m.allocation_id.is_some() || m.private_i_pv4_address.is_some() {
            return Err(invalid(
                "SubnetMappings with an AllocationId or a PrivateIPv4Address are not supported here",
            ));
        }
        subnets.extend(m.subnet_id);
    }
    if matches!(r.ip_address_type, Some(t) if t != IpAddressType::Ipv4) {
        return Err(invalid("Only the ipv4 IpAddressType is supported here"));
    }
    let req = NewLoadBalancer {
        name: r.name,
        kind: r.type_.map(|t| t.as_str().to_string()),
        scheme: r.scheme.map(|s| s.as_str().to_string()),
        subnets,
        security_groups: r.security_groups.unwrap_or_default(),
        tags: pairs(r.tags),
    };
    let lb =
        c.st.plane
            .create_load_balancer(&req)
            .map_err(|e| refused(&e))?;
    let conn = c.st.plane.db.lock();
    output::<ops::CreateLoadBalancer>(CreateLoadBalancerOutput {
        load_balancers: Some(vec![shape(&conn, &lb)?]),
    })
}

/// DescribeLoadBalancers.
pub(super) fn describe(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeLoadBalancers>(value)?;
    let conn = c.st.plane.db.lock();
    let mut chosen = state::elbv2::lbs(&conn).map_err(|e| refused(&ElbError::from(e)))?;
    if let Some(arns) = &r.load_balancer_arns {
        chosen.retain(|l| arns.contains(&l.arn));
        if chosen.len() != arns.len() {
            return Err(refused(&ElbError::LoadBalancerNotFound));
        }
    }
    if let Some(names) = &r.names {
        chosen.retain(|l| names.contains(&l.name));
        if chosen.len() != names.len() {
            return Err(refused(&ElbError::LoadBalancerNotFound));
        }
    }
    let (items, next) = page(chosen, r.marker.as_deref(), r.page_size)?;
    let lbs = items
        .iter()
        .map(|l| shape(&conn, l))
        .collect::<Result<Vec<_>, _>>()?;
    output::<ops::DescribeLoadBalancers>(DescribeLoadBalancersOutput {
        load_balancers: Some(lbs),
        next_marker: next,
    })
}

/// DeleteLoadBalancer.
pub(super) fn delete(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeleteLoadBalancer>(value)?;
    c.st.plane
        .delete_load_balancer(&r.load_balancer_arn)
        .map_err(|e| refused(&e))?;
    output::<ops::DeleteLoadBalancer>(Default::default())
}

fn attribute_shapes(a: control::elbv2::model::Attributes) -> Vec<LoadBalancerAttribute> {
    a.into_iter()
        .map(|(k, v)| LoadBalancerAttribute {
            key: Some(k),
            value: Some(v),
        })
        .collect()
}

/// DescribeLoadBalancerAttributes.
pub(super) fn describe_attributes(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeLoadBalancerAttributes>(value)?;
    let lb = load_balancers::get(&c.st.plane.db.lock(), &r.load_balancer_arn)
        .map_err(|e| refused(&e))?;
    output::<ops::DescribeLoadBalancerAttributes>(DescribeLoadBalancerAttributesOutput {
        attributes: Some(attribute_shapes(load_balancers::lb_attributes(&lb))),
    })
}

/// ModifyLoadBalancerAttributes.
pub(super) fn modify_attributes(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ModifyLoadBalancerAttributes>(value)?;
    let changes: Vec<(String, String)> = r
        .attributes
        .into_iter()
        .map(|a| (a.key.unwrap_or_default(), a.value.unwrap_or_default()))
        .collect();
    let all =
        c.st.plane
            .modify_load_balancer_attributes(&r.load_balancer_arn, &changes)
            .map_err(|e| refused(&e))?;
    output::<ops::ModifyLoadBalancerAttributes>(ModifyLoadBalancerAttributesOutput {
        attributes: Some(attribute_shapes(all)),
    })
}
