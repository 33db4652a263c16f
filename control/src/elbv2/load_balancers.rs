//! Load balancers: CreateLoadBalancer (an address from the public pool, an interface in
//! each subnet with the load balancer's groups, the DNS name), DeleteLoadBalancer (with its
//! listeners, rules and interfaces; refused under deletion protection), and their
//! attributes.

use host::network::addressing::{self, AddressError, NewEni};
use host::network::cidr::Cidr;
use rusqlite::Connection;
use state::elbv2::{self as db, LoadBalancerRow};

use super::error::ElbError;
use super::model::{self, Attributes};
use super::now_ms;
use crate::Plane;
use crate::effects::Effect;

/// The most load balancers the agent keeps.
pub const MAX_LOAD_BALANCERS: usize = 50;

/// What CreateLoadBalancer asks for.
#[derive(Debug, Clone, Default)]
pub struct NewLoadBalancer {
    /// Its name.
    pub name: String,
    /// `application` (the default) or `network`.
    pub kind: Option<String>,
    /// `internet-facing` (the default) or `internal`.
    pub scheme: Option<String>,
    /// Its subnets (one per zone: this host has one zone, so one subnet, or several of one
    /// VPC).
    pub subnets: Vec<String>,
    /// Its security groups (the VPC's default group when none is given to an application
    /// load balancer).
    pub security_groups: Vec<String>,
    /// Its tags.
    pub tags: Vec<(String, String)>,
}

/// A load balancer's attributes (defaults filled in).
pub fn lb_attributes(lb: &LoadBalancerRow) -> Attributes {
    let mut a = model::lb_attribute_defaults();
    a.extend(model::from_json::<Attributes>(&lb.attributes));
    a
}

/// The load balancer `arn`.
pub fn get(conn: &Connection, arn: &str) -> Result<LoadBalancerRow, ElbError> {
    db::lb_by_arn(conn, arn)?.ok_or(ElbError::LoadBalancerNotFound)
}

fn address_error(e: AddressError) -> ElbError {
    match e {
        AddressError::Db(e) => ElbError::Db(e),
        other => ElbError::NoAddress(other.to_string()),
    }
}

/// The subnets' common VPC.
fn vpc_of_subnets(conn: &Connection, subnets: &[String]) -> Result<String, ElbError> {
    if subnets.is_empty() {
        return Err(ElbError::Validation(
            "At least one subnet must be specified".into(),
        ));
    }
    let mut vpc: Option<String> = None;
    for id in subnets {
        let s = state::vpcs::get_subnet(conn, id)?
            .ok_or_else(|| ElbError::SubnetNotFound(id.clone()))?;
        match &vpc {
            Some(v) if *v != s.vpc_id => {
                return Err(ElbError::InvalidSubnet(
                    "The subnets must all be in the same VPC".into(),
                ));
            }
            _ => vpc = Some(s.vpc_id),
        }
    }
    Ok(vpc.unwrap_or_default())
}

/// The load balancer's groups, checked to be of `vpc`.
fn groups(
    conn: &Connection,
    vpc: &str,
    kind: &str,
    given: &[String],
) -> Result<Vec<String>, ElbError> {
    if given.is_empty() {
        if kind == "network" {
            return Ok(Vec::new());
        }
        let default = state::security_groups::group_by_name(conn, vpc, "default")?;
        return Ok(default.into_iter().map(|g| g.id).collect());
    }
    for g in given {
        match state::security_groups::get_group(conn, g)? {
            Some(row) if row.vpc_id == vpc => {}
            _ => {
                return Err(ElbError::InvalidSecurityGroup(format!(
                    "Security group '{g}' does not exist in VPC '{vpc}'"
                )));
            }
        }
    }
    Ok(given.to_vec())
}

/// CreateLoadBalancer.
pub fn create(
    conn: &Connection,
    account: &str,
    pool: &Cidr,
    req: &NewLoadBalancer,
) -> Result<(LoadBalancerRow, Vec<Effect>), ElbError> {
    if !model::well_formed_name(&req.name) || req.name.starts_with("internal-") {
        return Err(ElbError::Validation(format!(
            "Load balancer name '{}' must be 1 to 32 alphanumeric characters or hyphens, not starting or ending with a hyphen nor with 'internal-'",
            req.name
        )));
    }
    let kind = req.kind.clone().unwrap_or_else(|| "application".into());
    if !matches!(kind.as_str(), "application" | "network") {
        return Err(ElbError::Validation(format!(
            "Load balancer type '{kind}' is not supported here: 'application' or 'network'"
        )));
    }
    let scheme = req
        .scheme
        .clone()
        .unwrap_or_else(|| "internet-facing".into());
    let vpc = vpc_of_subnets(conn, &req.subnets)?;
    let group_ids = groups(conn, &vpc, &kind, &req.security_groups)?;
    super::tags::check_new(&req.tags)?;
    if let Some(existing) = db::lb_by_name(conn, &req.name)? {
        let same = existing.kind == kind
            && existing.scheme == scheme
            && db::interfaces_of(conn, &existing.arn)?
                .iter()
                .map(|(s, _)| s)
                .eq(sorted(&req.subnets).iter());
        return if same {
            Ok((existing, Vec::new()))
        } else {
            Err(ElbError::DuplicateLoadBalancerName(req.name.clone()))
        };
    }
    if db::lbs(conn)?.len() >= MAX_LOAD_BALANCERS {
        return Err(ElbError::TooMany(
            "TooManyLoadBalancers",
            format!("The agent keeps at most {MAX_LOAD_BALANCERS} load balancers"),
        ));
    }
    let id = model::new_id();
    let arn = model::lb_arn(account, &kind, &req.name, &id);
    let public = addressing::free_public_ip(conn, pool, None).map_err(address_error)?;
    let description = format!("ELB {}", model::lb_dimension(&arn));
    for subnet_id in sorted(&req.subnets) {
        let subnet = state::vpcs::get_subnet(conn, &subnet_id)?
            .ok_or_else(|| ElbError::SubnetNotFound(subnet_id.clone()))?;
        let eni = addressing::create_eni(
            conn,
            &NewEni {
                subnet: &subnet,
                group_ids: &group_ids,
                private_ip: None,
                description: description.clone(),
                attach: None,
                wants_public_ip: false,
            },
        )
        .map_err(address_error)?;
        db::insert_interface(conn, &arn, &subnet_id, &eni.id)?;
    }
    let row = LoadBalancerRow {
        seq: 0,
        arn: arn.clone(),
        name: req.name.clone(),
        kind,
        scheme,
        vpc_id: vpc,
        public_ip: Some(public.to_string()),
        dns_name: format!("{}-{id}.{}.elb.localhost", req.name, model::REGION),
        state: "provisioning".into(),
        attributes: "{}".into(),
        created_ms: now_ms(),
    };
    db::insert_lb(conn, &row)?;
    db::set_lb_groups(conn, &arn, &group_ids)?;
    db::put_tags(conn, &arn, &req.tags)?;
    Ok((
        row,
        vec![Effect::SyncBridges, Effect::SyncLoadBalancer { arn }],
    ))
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// DeleteLoadBalancer: idempotent, as ELB's is.
pub fn delete(conn: &Connection, arn: &str) -> Result<Vec<Effect>, ElbError> {
    let Some(lb) = db::lb_by_arn(conn, arn)? else {
        return Ok(Vec::new());
    };
    if lb_attributes(&lb)
        .get("deletion_protection.enabled")
        .is_some_and(|v| v == "true")
    {
        return Err(ElbError::OperationNotPermitted(format!(
            "Load balancer '{arn}' cannot be deleted because deletion protection is enabled"
        )));
    }
    for (_, eni) in db::interfaces_of(conn, arn)? {
        state::security_groups::set_eni_groups(conn, &eni, &[])?;
        state::enis::delete(conn, &eni)?;
    }
    db::delete_lb(conn, arn)?;
    Ok(vec![
        Effect::SyncLoadBalancer { arn: arn.into() },
        Effect::SyncBridges,
    ])
}

/// ModifyLoadBalancerAttributes: gives every attribute after the change.
pub fn modify_attributes(
    conn: &Connection,
    arn: &str,
    changes: &[(String, String)],
) -> Result<(Attributes, Vec<Effect>), ElbError> {
    let lb = get(conn, arn)?;
    if changes.is_empty() {
        return Err(ElbError::Validation(
            "At least one attribute must be specified".into(),
        ));
    }
    let mut stored: Attributes = model::from_json(&lb.attributes);
    for (k, v) in changes {
        model::check_lb_attribute(k, v)?;
        stored.insert(k.clone(), v.clone());
    }
    db::set_lb_attributes(conn, arn, &model::to_json(&stored))?;
    Ok((
        lb_attributes(&get(conn, arn)?),
        vec![Effect::SyncLoadBalancer { arn: arn.into() }],
    ))
}

impl Plane {
    /// CreateLoadBalancer.
    pub fn create_load_balancer(&self, req: &NewLoadBalancer) -> Result<LoadBalancerRow, ElbError> {
        let pool = self.network.config.public_pool;
        self.elb_write(|tx| create(tx, &self.account_id, &pool, req))
    }

    /// DeleteLoadBalancer.
    pub fn delete_load_balancer(&self, arn: &str) -> Result<(), ElbError> {
        self.elb_write(|tx| Ok(((), delete(tx, arn)?)))
    }

    /// ModifyLoadBalancerAttributes.
    pub fn modify_load_balancer_attributes(
        &self,
        arn: &str,
        changes: &[(String, String)],
    ) -> Result<Attributes, ElbError> {
        self.elb_write(|tx| modify_attributes(tx, arn, changes))
    }
}
