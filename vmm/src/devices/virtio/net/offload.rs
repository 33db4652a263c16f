//! Which offloads the tap may use towards the guest: what the tap's kernel accepts decides what
//! is offered, and what the guest accepted decides what is set (`TUNSETOFFLOAD`).

use super::tap::{TUN_F_CSUM, TUN_F_TSO_ECN, TUN_F_TSO4, TUN_F_TSO6, Tap};
use super::{F_GUEST_CSUM, F_GUEST_ECN, F_GUEST_TSO4, F_GUEST_TSO6};

/// The offloads the tap may use towards the guest: partial checksums when the guest accepts
/// them, and TSO only on top of that.
pub(super) fn tap_offloads(acked: u64) -> u32 {
    if acked & F_GUEST_CSUM == 0 {
        return 0;
    }
    let mut flags = TUN_F_CSUM;
    if acked & F_GUEST_TSO4 != 0 {
        flags |= TUN_F_TSO4;
    }
    if acked & F_GUEST_TSO6 != 0 {
        flags |= TUN_F_TSO6;
    }
    if acked & F_GUEST_ECN != 0 && flags & (TUN_F_TSO4 | TUN_F_TSO6) != 0 {
        flags |= TUN_F_TSO_ECN;
    }
    flags
}

/// The guest offload features this tap can honour: each `TUNSETOFFLOAD` combination is tried
/// (then the offloads are cleared again), so the guest is never offered what activation could
/// not set.
pub(super) fn guest_offloads(tap: &Tap) -> u64 {
    let mut features = 0;
    if tap.set_offload(TUN_F_CSUM).is_ok() {
        features |= F_GUEST_CSUM;
        for (flags, feature) in [(TUN_F_TSO4, F_GUEST_TSO4), (TUN_F_TSO6, F_GUEST_TSO6)] {
            if tap.set_offload(TUN_F_CSUM | flags).is_ok() {
                features |= feature;
            }
        }
        let tso = tap_offloads(features);
        if tso & (TUN_F_TSO4 | TUN_F_TSO6) != 0 && tap.set_offload(tso | TUN_F_TSO_ECN).is_ok() {
            features |= F_GUEST_ECN;
        }
    }
    let _ = tap.set_offload(0);
    features
}
