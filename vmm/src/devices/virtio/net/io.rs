//! Frames between the tap and guest memory without an intermediate copy: a chain's buffers
//! become an iovec list, and one `readv` or `writev` on the tap moves a whole frame (its
//! virtio-net header first) straight into or out of the guest's buffers.

use vm_memory::{GuestMemoryBackend, GuestMemoryMmap};

use super::tap::VNET_HDR_LEN;
use crate::devices::virtio::queue::DescriptorChain;

/// An iovec list pointing into guest memory, reused from frame to frame.
///
/// It holds raw pointers only while one `readv`/`writev` is built and made: each
/// [`IoVecs::fill`] replaces them all, and they point into the guest memory mapping, which the
/// device keeps alive (`Active::memory`) for as long as it uses them.
///
/// An rx list ends with one byte of the device's own: the tap cuts a frame to the buffers
/// given and says only how much it copied, so a frame that reaches that byte did not fit.
#[derive(Default)]
pub struct IoVecs(Vec<libc::iovec>, Box<u8>);

// SAFETY: the pointers refer to the guest memory mapping, which is shared by every thread of
// the process; the list is only used by whichever thread owns the device at the time.
unsafe impl Send for IoVecs {}

impl std::fmt::Debug for IoVecs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("IoVecs").field(&self.0.len()).finish()
    }
}

/// Why a chain cannot carry a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// A buffer goes the wrong way (a device-readable one in an rx chain, or the reverse).
    Direction,
    /// Shorter than a virtio-net header, or longer than any frame.
    Length(u64),
    /// A buffer is not (wholly) in guest memory.
    Memory,
}

impl IoVecs {
    /// Points the list at `chain`'s buffers, which must all be device-`writable` (rx) or all
    /// device-readable (tx), hold at least a header and at most `max` bytes. Returns their
    /// total length; for rx, a read of more than that means the frame did not fit.
    pub fn fill(
        &mut self,
        mem: &GuestMemoryMmap,
        chain: &DescriptorChain,
        writable: bool,
        max: usize,
    ) -> Result<usize, ChainError> {
        self.0.clear();
        if chain.descriptors.iter().any(|d| d.writable != writable) {
            return Err(ChainError::Direction);
        }
        let total: u64 = chain.descriptors.iter().map(|d| u64::from(d.len)).sum();
        if total < VNET_HDR_LEN as u64 || total > max as u64 {
            return Err(ChainError::Length(total));
        }
        for d in &chain.descriptors {
            // A buffer may span two memory regions: one iovec per piece.
            for slice in mem.get_slices(d.addr, d.len as usize) {
                let slice = slice.map_err(|_| {
                    self.0.clear();
                    ChainError::Memory
                })?;
                self.0.push(libc::iovec {
                    iov_base: slice.ptr_guard_mut().as_ptr().cast(),
                    iov_len: slice.len(),
                });
            }
        }
        if writable {
            self.0.push(libc::iovec {
                iov_base: (&raw mut *self.1).cast(),
                iov_len: 1,
            });
        }
        Ok(total as usize)
    }

    /// The list, for `readv`/`writev`.
    pub fn as_slice(&self) -> &[libc::iovec] {
        &self.0
    }

    /// Forgets the pointers.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use vm_memory::GuestAddress;

    use super::*;
    use crate::devices::virtio::queue::Descriptor;
    use crate::kvm::memory::create_guest_memory;

    fn chain(descs: &[(u64, u32, bool)]) -> DescriptorChain {
        DescriptorChain {
            head: 0,
            descriptors: descs
                .iter()
                .map(|&(addr, len, writable)| Descriptor {
                    addr: GuestAddress(addr),
                    len,
                    writable,
                })
                .collect(),
        }
    }

    #[test]
    fn points_at_guest_buffers_in_order() {
        let mem = create_guest_memory(1 << 20).unwrap();
        let mut v = IoVecs::default();
        let c = chain(&[(0x1000, 12, true), (0x2000, 1500, true)]);
        assert_eq!(v.fill(&mem, &c, true, 2000), Ok(1512));
        let host = mem.get_host_address(GuestAddress(0x2000)).unwrap();
        assert_eq!(v.as_slice().len(), 3, "two buffers and the overflow byte");
        assert_eq!(v.as_slice()[1].iov_base.cast::<u8>(), host);
        assert_eq!(v.as_slice()[1].iov_len, 1500);
        assert_eq!(v.as_slice()[2].iov_len, 1);
        let tx = chain(&[(0x1000, 12, false), (0x2000, 1500, false)]);
        assert_eq!(v.fill(&mem, &tx, false, 2000), Ok(1512));
        assert_eq!(v.as_slice().len(), 2);
    }

    #[test]
    fn refuses_mixed_short_or_huge_chains() {
        let mem = create_guest_memory(1 << 20).unwrap();
        let mut v = IoVecs::default();
        let mixed = chain(&[(0x1000, 12, false), (0x2000, 100, true)]);
        assert_eq!(v.fill(&mem, &mixed, true, 2000), Err(ChainError::Direction));
        assert_eq!(
            v.fill(&mem, &mixed, false, 2000),
            Err(ChainError::Direction)
        );
        let short = chain(&[(0x1000, 11, false)]);
        assert_eq!(
            v.fill(&mem, &short, false, 2000),
            Err(ChainError::Length(11))
        );
        let huge = chain(&[(0x1000, 3000, false)]);
        assert_eq!(
            v.fill(&mem, &huge, false, 2000),
            Err(ChainError::Length(3000))
        );
        assert!(v.as_slice().is_empty());
    }
}
