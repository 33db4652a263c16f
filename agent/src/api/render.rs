//! XML shapes shared by several actions: Instance, InstanceState, Reservation, state changes.

use super::AVAILABILITY_ZONE;
use super::instance_network::{self, InstanceNetwork};
use super::xml::Xml;
use crate::compute::StateChange;
use crate::state::instances::{InstanceRow, InstanceState};
use crate::state::volumes::VolumeRow;

/// `<tag><code>..</code><name>..</name></tag>`.
pub fn state(x: &mut Xml, tag: &str, s: InstanceState) {
    x.open(tag)
        .leaf("code", s.code().to_string())
        .leaf("name", s.name())
        .close(tag);
}

/// One `Instance` as an `<item>`, with its network and its attached volumes (`vols`).
pub fn instance(
    x: &mut Xml,
    owner: &str,
    i: &InstanceRow,
    tags: &[(String, String)],
    net: &InstanceNetwork,
    vols: &[VolumeRow],
) {
    x.open("item")
        .leaf("instanceId", &i.id)
        .leaf("imageId", &i.image_id);
    state(x, "instanceState", i.state);
    instance_network::render(x, owner, net);
    x.leaf("reason", &i.transition_reason)
        .leaf_opt("keyName", i.key_name.as_ref())
        .leaf("amiLaunchIndex", i.launch_index.to_string())
        .open("productCodes")
        .close("productCodes")
        .leaf("instanceType", &i.instance_type)
        .leaf("launchTime", &i.launch_time)
        .open("placement")
        .leaf("availabilityZone", AVAILABILITY_ZONE)
        .leaf("groupName", "")
        .leaf("tenancy", "default")
        .close("placement")
        .open("monitoring")
        .leaf("state", "disabled")
        .close("monitoring");
    if let (Some(code), Some(message)) = (&i.state_reason_code, &i.state_reason_message) {
        x.open("stateReason")
            .leaf("code", code)
            .leaf("message", message)
            .close("stateReason");
    }
    x.leaf("architecture", &i.architecture);
    super::block_devices::instance_mapping(x, vols); // EBS
    x.leaf("virtualizationType", "hvm")
        .leaf_opt("clientToken", i.client_token.as_ref())
        .leaf("instanceInitiatedShutdownBehavior", &i.shutdown_behavior);
    if !tags.is_empty() {
        x.tag_set(tags);
    }
    x.open("cpuOptions")
        .leaf("coreCount", i.vcpus.to_string())
        .leaf("threadsPerCore", "1")
        .close("cpuOptions")
        .close("item");
}

/// The body of a `Reservation`: id, owner, groups and instances.
pub fn reservation_body(
    x: &mut Xml,
    owner: &str,
    rows: &[&InstanceRow],
    tags: &std::collections::HashMap<String, Vec<(String, String)>>,
    nets: &std::collections::HashMap<String, InstanceNetwork>,
    vols: &std::collections::HashMap<String, Vec<VolumeRow>>,
) {
    let Some(first) = rows.first() else { return };
    x.leaf("reservationId", &first.reservation_id)
        .leaf("ownerId", owner)
        .open("groupSet")
        .close("groupSet")
        .open("instancesSet");
    for r in rows {
        let net = nets.get(&r.id).cloned().unwrap_or_default();
        instance(
            x,
            owner,
            r,
            tags.get(&r.id).map_or(&[][..], Vec::as_slice),
            &net,
            vols.get(&r.id).map_or(&[][..], Vec::as_slice),
        );
    }
    x.close("instancesSet");
}

/// An `instancesSet` of `InstanceStateChange`s.
pub fn state_changes(x: &mut Xml, changes: &[StateChange]) {
    x.open("instancesSet");
    for c in changes {
        x.open("item").leaf("instanceId", &c.id);
        state(x, "currentState", c.current);
        state(x, "previousState", c.previous);
        x.close("item");
    }
    x.close("instancesSet");
}
