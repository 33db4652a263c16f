//! The reachability check of running instances' primary ENIs (the instance status check).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::{Network, NetworkError, bridge_name};
use crate::netns::NetNsError;
use crate::network::cidr::Cidr;
use crate::network::dhcp::parse_mac;
use crate::network::reachability::{self, ArpTarget, Reach};
use state::{enis, vpcs};

/// Why the reachability check could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReachabilityError {
    /// The instances' interfaces could not be read.
    #[error("cannot read the instances' network interfaces")]
    Db(#[from] rusqlite::Error),
    /// A VPC bridge's MAC could not be found.
    #[error("cannot find a VPC bridge's address")]
    Bridge(#[source] Box<NetworkError>),
    /// The taps' namespace could not be entered.
    #[error("cannot enter the instances' network namespace")]
    NetNs(#[from] NetNsError),
    /// The check's thread ended abnormally.
    #[error("the reachability check stopped")]
    Stopped(#[from] tokio::task::JoinError),
}

impl Network {
    /// Asks each instance of `instance_ids` for its primary ENI's address over ARP, all at
    /// once, waiting up to `wait`. An instance without a plugged primary ENI is left out.
    pub async fn reachability(
        &self,
        instance_ids: &[String],
        wait: Duration,
    ) -> Result<HashMap<String, Reach>, ReachabilityError> {
        let targets = self.arp_targets(instance_ids)?;
        if targets.is_empty() {
            return Ok(HashMap::new());
        }
        let ns = self.config.netns.clone();
        let arp: Vec<ArpTarget> = targets.iter().map(|(_, t)| t.clone()).collect();
        let found = tokio::task::spawn_blocking(move || ns.run(|| reachability::check(&arp, wait)))
            .await??;
        Ok(targets.into_iter().map(|(id, _)| id).zip(found).collect())
    }

    /// The ARP target of each instance's primary ENI (device index 0), with its subnet's
    /// router and its VPC bridge's MAC as the sender.
    fn arp_targets(
        &self,
        instance_ids: &[String],
    ) -> Result<Vec<(String, ArpTarget)>, ReachabilityError> {
        let (rows, vpc_seq, subnet_cidr) = {
            let conn = self.db.lock();
            let mut rows = Vec::new();
            for id in instance_ids {
                if let Some(eni) = enis::of_instance(&conn, id)?
                    .into_iter()
                    .find(|e| e.device_index == Some(0))
                {
                    rows.push((id.clone(), eni));
                }
            }
            let vpc_seq: HashMap<String, i64> = vpcs::vpcs(&conn)?
                .into_iter()
                .map(|v| (v.id, v.seq))
                .collect();
            let subnet_cidr: HashMap<String, String> = vpcs::subnets(&conn)?
                .into_iter()
                .map(|s| (s.id, s.cidr))
                .collect();
            (rows, vpc_seq, subnet_cidr)
        };
        let mut targets = Vec::with_capacity(rows.len());
        for (id, eni) in rows {
            let (Some(seq), Some(cidr), Ok(guest_ip), Some(guest_mac)) = (
                vpc_seq.get(&eni.vpc_id),
                subnet_cidr
                    .get(&eni.subnet_id)
                    .and_then(|c| c.parse::<Cidr>().ok()),
                eni.private_ip.parse::<Ipv4Addr>(),
                parse_mac(&eni.mac),
            ) else {
                continue;
            };
            let router_mac = self
                .bridge_mac(&bridge_name(*seq))
                .map_err(|e| ReachabilityError::Bridge(Box::new(e)))?;
            targets.push((
                id,
                ArpTarget {
                    tap: eni.tap(),
                    guest_ip,
                    guest_mac,
                    router_ip: cidr.router(),
                    router_mac,
                },
            ));
        }
        Ok(targets)
    }
}
