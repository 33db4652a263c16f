//! Frame copying between tap frames and descriptor chains, without KVM.

use vm_memory::{Bytes, GuestAddress};

use super::path::copy_to_chain;
use super::tap::{TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6};
use super::*;
use crate::devices::virtio::queue::{Descriptor, DescriptorChain};
use crate::kvm::memory::create_guest_memory;

fn chain(descs: &[(u64, u32, bool)]) -> DescriptorChain {
    DescriptorChain {
        head: 0,
        descriptors: descs
            .iter()
            .map(|(addr, len, writable)| Descriptor {
                addr: GuestAddress(*addr),
                len: *len,
                writable: *writable,
            })
            .collect(),
    }
}

#[test]
fn a_frame_is_scattered_across_rx_buffers() {
    let mem = create_guest_memory(1 << 20).unwrap();
    let frame: Vec<u8> = (0..100u8).collect();
    let c = chain(&[(0x1000, 12, true), (0x2000, 60, true), (0x3000, 60, true)]);
    assert_eq!(copy_to_chain(&mem, &c, &frame), Some(100));
    let mut a = [0u8; 12];
    let mut b = [0u8; 60];
    let mut d = [0u8; 28];
    mem.read_slice(&mut a, GuestAddress(0x1000)).unwrap();
    mem.read_slice(&mut b, GuestAddress(0x2000)).unwrap();
    mem.read_slice(&mut d, GuestAddress(0x3000)).unwrap();
    assert_eq!([&a[..], &b[..], &d[..]].concat(), frame);
}

#[test]
fn rx_refuses_small_or_readable_buffers() {
    let mem = create_guest_memory(1 << 20).unwrap();
    let frame = vec![7u8; 100];
    assert_eq!(
        copy_to_chain(&mem, &chain(&[(0x1000, 99, true)]), &frame),
        None
    );
    assert_eq!(
        copy_to_chain(
            &mem,
            &chain(&[(0x1000, 50, false), (0x2000, 100, true)]),
            &frame
        ),
        None
    );
}

#[test]
fn mac_formats_like_ip_link() {
    assert_eq!(
        format_mac(&[0x02, 0, 0xab, 1, 2, 0xff]),
        "02:00:ab:01:02:ff"
    );
}

#[test]
fn offloads_follow_what_the_guest_accepted() {
    assert_eq!(
        tap_offloads(0),
        0,
        "a guest without offloads gets whole frames"
    );
    assert_eq!(
        tap_offloads(F_GUEST_TSO4),
        0,
        "TSO needs checksum offload too"
    );
    assert_eq!(tap_offloads(F_GUEST_CSUM), TUN_F_CSUM);
    assert_eq!(
        tap_offloads(F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6),
        TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6
    );
}
