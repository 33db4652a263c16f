//! Guest memory: anonymous, MAP_NORESERVE mappings, touched lazily, registered with KVM.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{
    GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
    MmapRegion,
};

use crate::arch::x86_64::layout::ram_regions;

/// Why guest memory could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// A region could not be mapped.
    #[error("cannot map {size} bytes of guest memory")]
    Map {
        /// Size of the region.
        size: u64,
        /// The cause.
        #[source]
        source: vm_memory::mmap::MmapRegionError,
    },
    /// The regions do not form valid guest memory.
    #[error("guest memory regions are invalid")]
    Regions(#[source] vm_memory::region::GuestRegionCollectionError),
    /// A region's address does not fit.
    #[error("guest memory region at {0:#x} is invalid")]
    Region(u64),
    /// KVM refused a memory slot.
    #[error("KVM refused guest memory slot {slot}")]
    Register {
        /// The slot.
        slot: u32,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// Maps `mem_size` bytes of guest RAM (split around the MMIO hole) without reserving swap or
/// touching a page.
pub fn create_guest_memory(mem_size: u64) -> Result<GuestMemoryMmap, MemoryError> {
    let regions = ram_regions(mem_size)
        .into_iter()
        .map(|(start, size)| {
            let mapping = MmapRegion::build(
                None,
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            )
            .map_err(|source| MemoryError::Map { size, source })?;
            GuestRegionMmap::new(mapping, GuestAddress(start)).ok_or(MemoryError::Region(start))
        })
        .collect::<Result<Vec<_>, _>>()?;
    GuestMemoryMmap::from_regions(regions).map_err(MemoryError::Regions)
}

/// Gives every region of `memory` to the VM as a memory slot.
pub fn register_with_kvm(vm: &VmFd, memory: &GuestMemoryMmap) -> Result<(), MemoryError> {
    for (slot, region) in memory.iter().enumerate() {
        let slot = slot as u32;
        let host = region
            .get_host_address(vm_memory::MemoryRegionAddress(0))
            .map_err(|_| MemoryError::Region(region.start_addr().0))?;
        let mem_region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the mapping behind `host` lives as long as `memory`, which the VMM keeps
        // until the VM is gone, and it is `memory_size` bytes long.
        unsafe { vm.set_user_memory_region(mem_region) }
            .map_err(|source| MemoryError::Register { slot, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::x86_64::layout::{MIB, MMIO_GAP_END};
    use vm_memory::Bytes;

    #[test]
    fn memory_is_mapped_where_the_layout_says() {
        let mem = create_guest_memory(64 * MIB).unwrap();
        mem.write_obj(0xdead_beefu32, GuestAddress(64 * MIB - 4))
            .unwrap();
        assert_eq!(
            mem.read_obj::<u32>(GuestAddress(64 * MIB - 4)).unwrap(),
            0xdead_beef
        );
        assert!(mem.write_obj(1u8, GuestAddress(64 * MIB)).is_err());
    }

    #[test]
    fn large_memory_continues_above_4g() {
        let mem = create_guest_memory(4096 * MIB).unwrap();
        assert_eq!(mem.num_regions(), 2);
        mem.write_obj(7u8, GuestAddress(MMIO_GAP_END)).unwrap();
        assert!(mem.write_obj(7u8, GuestAddress(MMIO_GAP_END - 1)).is_err());
    }
}
