//! CPUID: what KVM supports, normalised for one vCPU of an `n`-vCPU machine.
//!
//! Each vCPU reports its own APIC id, the machine's processor count and a flat topology
//! (one socket, one thread per core), and the hypervisor bit, so the guest knows it is
//! virtualized and uses KVM's paravirtual clock.

use kvm_bindings::kvm_cpuid_entry2;

/// Leaf 1 ECX: running under a hypervisor.
const ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 EDX: more than one logical processor in the package.
const EDX_HTT: u32 = 1 << 28;
/// Leaf 0xb / 0x1f ECX level type: SMT.
const LEVEL_SMT: u32 = 1;
/// Leaf 0xb / 0x1f ECX level type: core.
const LEVEL_CORE: u32 = 2;

/// Bits needed to number `count` cores.
fn core_id_bits(count: u32) -> u32 {
    u32::BITS - count.saturating_sub(1).leading_zeros()
}

/// Rewrites `entries` (from `KVM_GET_SUPPORTED_CPUID`) for vCPU `index` of `count`.
pub fn normalize(entries: &mut [kvm_cpuid_entry2], index: u32, count: u32) {
    for entry in entries.iter_mut() {
        match entry.function {
            1 => {
                // EBX: [31:24] initial APIC id, [23:16] logical processors per package.
                entry.ebx = (entry.ebx & 0x0000_ffff) | (index << 24) | ((count & 0xff) << 16);
                entry.ecx |= ECX_HYPERVISOR;
                if count > 1 {
                    entry.edx |= EDX_HTT;
                } else {
                    entry.edx &= !EDX_HTT;
                }
            }
            4 => {
                // EAX: [31:26] cores per package - 1, [25:14] threads sharing this cache - 1.
                let cores = (count.max(1) - 1) & 0x3f;
                entry.eax = (entry.eax & 0x3fff) | (cores << 26);
            }
            0xb | 0x1f => {
                entry.edx = index;
                match entry.index {
                    0 => {
                        entry.eax = 0;
                        entry.ebx = 1;
                        entry.ecx = (LEVEL_SMT << 8) | entry.index;
                    }
                    1 => {
                        entry.eax = core_id_bits(count);
                        entry.ebx = count;
                        entry.ecx = (LEVEL_CORE << 8) | entry.index;
                    }
                    _ => {
                        entry.eax = 0;
                        entry.ebx = 0;
                        entry.ecx = entry.index;
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            ebx: 0x0000_0800,
            ..Default::default()
        }
    }

    fn find(entries: &[kvm_cpuid_entry2], function: u32, index: u32) -> kvm_cpuid_entry2 {
        *entries
            .iter()
            .find(|e| e.function == function && e.index == index)
            .unwrap()
    }

    #[test]
    fn leaf_1_carries_apic_id_count_and_hypervisor_bit() {
        let mut entries = vec![leaf(1, 0)];
        normalize(&mut entries, 3, 4);
        let e = entries[0];
        assert_eq!(e.ebx >> 24, 3);
        assert_eq!((e.ebx >> 16) & 0xff, 4);
        assert_eq!(e.ebx & 0xffff, 0x0800, "CLFLUSH size kept");
        assert_ne!(e.ecx & ECX_HYPERVISOR, 0);
        assert_ne!(e.edx & EDX_HTT, 0);
    }

    #[test]
    fn single_vcpu_has_no_htt() {
        let mut entries = vec![leaf(1, 0)];
        entries[0].edx = EDX_HTT;
        normalize(&mut entries, 0, 1);
        assert_eq!(entries[0].edx & EDX_HTT, 0);
        assert_eq!(entries[0].ebx >> 24, 0);
    }

    #[test]
    fn topology_leaf_describes_flat_cores() {
        let mut entries = vec![leaf(0xb, 0), leaf(0xb, 1), leaf(0xb, 2)];
        normalize(&mut entries, 2, 3);
        let smt = find(&entries, 0xb, 0);
        let core = find(&entries, 0xb, 1);
        let end = find(&entries, 0xb, 2);
        assert_eq!(
            (smt.eax, smt.ebx, smt.ecx >> 8, smt.edx),
            (0, 1, LEVEL_SMT, 2)
        );
        assert_eq!(
            (core.eax, core.ebx, core.ecx >> 8, core.edx),
            (2, 3, LEVEL_CORE, 2)
        );
        assert_eq!((end.ebx, end.ecx >> 8), (0, 0));
    }

    #[test]
    fn cache_leaf_counts_cores() {
        let mut entries = vec![leaf(4, 0)];
        entries[0].eax = 0x121;
        normalize(&mut entries, 0, 4);
        assert_eq!(entries[0].eax >> 26, 3);
        assert_eq!(entries[0].eax & 0x3fff, 0x121);
    }

    #[test]
    fn core_bits() {
        assert_eq!(core_id_bits(1), 0);
        assert_eq!(core_id_bits(2), 1);
        assert_eq!(core_id_bits(4), 2);
        assert_eq!(core_id_bits(5), 3);
    }
}
