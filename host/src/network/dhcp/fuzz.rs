//! Property tests feeding the DHCP server what a hostile guest can put on its tap: random
//! bytes, and well-formed frames and messages with every length field and option lying.
//! `PROPTEST_CASES` sets how many cases each runs (64 by default; the fuzz step of
//! `scripts/test.sh` runs many more).

use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::SERVER_PORT;
use super::frame::tests::{CLIENT, client_frame};
use super::frame::{ETH_HEADER, client_payload, server_frame};
use super::packet::tests::{client_message, lease};
use super::packet::{MessageType, Request, answer, reply};

const SERVER: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);

/// Parses a datagram as the server does and, if it is a request, builds the answer.
fn serve(payload: &[u8]) -> Option<Vec<u8>> {
    let request = Request::parse(payload).ok()?;
    let kind = answer(&request, &lease(), SERVER)?;
    let offered = (kind != MessageType::Nak).then(lease);
    let out = reply(&request, kind, offered.as_ref(), SERVER);
    Some(server_frame(&[2, 0, 0, 0, 0, 1], SERVER, &CLIENT, &out))
}

/// A length field: often near the header sizes, where the edge cases are.
fn small_or_any() -> impl Strategy<Value = u16> {
    prop_oneof![0u16..128, any::<u16>()]
}

proptest! {
    #![proptest_config(crate::fuzz_config())]

    #[test]
    fn fuzz_dhcp_frame_random_bytes(mut frame in proptest::collection::vec(any::<u8>(), 0..2048)) {
        // Half the cases come from the served MAC, so that parsing goes past the first check.
        if frame.len() >= 12 && frame[0] & 1 == 0 {
            frame[6..12].copy_from_slice(&CLIENT);
        }
        if let Some(payload) = client_payload(&frame, &CLIENT) {
            prop_assert!(payload.len() + ETH_HEADER + 28 <= frame.len());
            let _ = serve(payload);
        }
    }

    #[test]
    fn fuzz_dhcp_frame_lying_lengths(
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        version_ihl in prop_oneof![0x40u8..=0x4f, any::<u8>()],
        total in small_or_any(),
        udp_len in small_or_any(),
        fragment in prop_oneof![Just(0u16), Just(0x4000), any::<u16>()],
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = client_frame(&CLIENT, SERVER_PORT, &payload);
        let ip = ETH_HEADER;
        f[ip] = version_ihl;
        f[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
        f[ip + 6..ip + 8].copy_from_slice(&fragment.to_be_bytes());
        f[ip + 24..ip + 26].copy_from_slice(&udp_len.to_be_bytes());
        f.truncate(cut.index(f.len() + 1));
        if let Some(got) = client_payload(&f, &CLIENT) {
            // Whatever the headers claim, the payload lies inside what arrived, after
            // the header the guest declared.
            let ihl = usize::from(version_ihl & 0x0f) * 4;
            prop_assert!(ihl >= 20);
            prop_assert!(ETH_HEADER + ihl + 8 + got.len() <= f.len());
            prop_assert!(got.len() + 8 <= usize::from(udp_len));
            prop_assert!(ihl + 8 + got.len() <= usize::from(total));
        }
    }

    #[test]
    fn fuzz_dhcp_packet_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let _ = serve(&bytes);
    }

    #[test]
    fn fuzz_dhcp_packet_hostile_options(
        kind in 0u8..12,
        mac in any::<[u8; 6]>(),
        options in proptest::collection::vec(any::<u8>(), 0..1200),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut p = client_message(kind, mac, None, None);
        // Replace the well-formed options after the message type with garbage.
        p.truncate(240 + 3);
        p.extend_from_slice(&options);
        p.truncate(cut.index(p.len() + 1).max(1));
        if let Some(out) = serve(&p) {
            let parsed = Request::parse(&p).unwrap();
            prop_assert_eq!(parsed.mac, mac);
            // The reply frame echoes the transaction id and never grows with the input.
            prop_assert!(out.len() <= ETH_HEADER + 28 + 600);
            let xid = &out[ETH_HEADER + 28 + 4..ETH_HEADER + 28 + 8];
            prop_assert_eq!(xid, &p[4..8]);
        }
    }
}
