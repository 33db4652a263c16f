//! Typed shapes shared by several instance actions: Instance, InstanceState, Reservation and
//! state changes.

use std::collections::HashMap;

use shapes::ec2;

use super::AVAILABILITY_ZONE;
use super::instance_network::{self, InstanceNetwork};
use super::typed::{self, tag_set};
use host::compute::StateChange;
use state::instances::{InstanceRow, InstanceState};
use state::volumes::VolumeRow;

/// An `InstanceState`: its code and name.
pub fn state(s: InstanceState) -> ec2::InstanceState {
    ec2::InstanceState {
        code: i32::try_from(s.code()).ok(),
        name: ec2::InstanceStateName::from_wire(s.name()),
    }
}

/// One `Instance`, with its network and its attached volumes (`vols`).
pub fn instance(
    owner: &str,
    i: &InstanceRow,
    tags: &[(String, String)],
    net: &InstanceNetwork,
    vols: &[VolumeRow],
) -> ec2::Instance {
    let mut out = ec2::Instance {
        instance_id: Some(i.id.clone()),
        image_id: Some(i.image_id.clone()),
        state: Some(state(i.state)),
        state_transition_reason: Some(i.transition_reason.clone()),
        key_name: i.key_name.clone(),
        ami_launch_index: i32::try_from(i.launch_index).ok(),
        product_codes: Some(Vec::new()),
        instance_type: ec2::InstanceType::from_wire(&i.instance_type),
        launch_time: typed::time(&i.launch_time),
        placement: Some(ec2::Placement {
            availability_zone: Some(AVAILABILITY_ZONE.to_string()),
            group_name: Some(String::new()),
            tenancy: Some(ec2::Tenancy::Default),
            ..Default::default()
        }),
        monitoring: Some(ec2::Monitoring {
            state: Some(if i.detailed_monitoring {
                ec2::MonitoringState::Enabled
            } else {
                ec2::MonitoringState::Disabled
            }),
            ..Default::default()
        }),
        state_reason: match (&i.state_reason_code, &i.state_reason_message) {
            (Some(code), Some(message)) => Some(ec2::StateReason {
                code: Some(code.clone()),
                message: Some(message.clone()),
            }),
            _ => None,
        },
        architecture: ec2::ArchitectureValues::from_wire(&i.architecture),
        virtualization_type: Some(ec2::VirtualizationType::Hvm),
        client_token: i.client_token.clone(),
        tags: tag_set(tags),
        cpu_options: Some(ec2::CpuOptions {
            core_count: i32::try_from(i.vcpus).ok(),
            threads_per_core: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    instance_network::fill(&mut out, owner, net);
    super::block_devices::instance_mapping(&mut out, vols); // EBS
    out
}

/// A `Reservation` of `rows` (all of one reservation): id, owner, groups and instances.
pub fn reservation(
    owner: &str,
    rows: &[&InstanceRow],
    tags: &HashMap<String, Vec<(String, String)>>,
    nets: &HashMap<String, InstanceNetwork>,
    vols: &HashMap<String, Vec<VolumeRow>>,
) -> ec2::Reservation {
    let empty = InstanceNetwork::default();
    ec2::Reservation {
        reservation_id: rows.first().map(|r| r.reservation_id.clone()),
        owner_id: Some(owner.to_string()),
        groups: Some(Vec::new()),
        instances: Some(
            rows.iter()
                .map(|r| {
                    instance(
                        owner,
                        r,
                        tags.get(&r.id).map_or(&[][..], Vec::as_slice),
                        nets.get(&r.id).unwrap_or(&empty),
                        vols.get(&r.id).map_or(&[][..], Vec::as_slice),
                    )
                })
                .collect(),
        ),
        requester_id: None,
    }
}

/// `InstanceStateChange`s.
pub fn state_changes(changes: &[StateChange]) -> Option<Vec<ec2::InstanceStateChange>> {
    Some(
        changes
            .iter()
            .map(|c| ec2::InstanceStateChange {
                instance_id: Some(c.id.clone()),
                current_state: Some(state(c.current)),
                previous_state: Some(state(c.previous)),
            })
            .collect(),
    )
}
