//! Ethernet frames carrying DHCP: taking the UDP payload out of a client's frame (checking
//! it really is IPv4/UDP to port 67 from the expected MAC) and wrapping a reply in
//! Ethernet, IPv4 and UDP headers with their checksums.

use std::net::Ipv4Addr;

use super::{CLIENT_PORT, SERVER_PORT};

/// Length of the Ethernet header.
pub(crate) const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IP_UDP: u8 = 17;

/// The DHCP payload of `frame` if it is an unfragmented IPv4/UDP datagram to port 67 sent
/// from `mac`.
pub fn client_payload<'a>(frame: &'a [u8], mac: &[u8; 6]) -> Option<&'a [u8]> {
    if frame.len() < ETH_HEADER + 20 + 8 || &frame[6..12] != mac {
        return None;
    }
    if u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = &frame[ETH_HEADER..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != IP_UDP || ip.len() < ihl + 8 {
        return None;
    }
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return None; // a fragment
    }
    // The IPv4 total length and the UDP length are the guest's word: each must cover its
    // own header and is cut to what was really received.
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    let udp = ip.get(ihl..total)?;
    if udp.len() < 8 || u16::from_be_bytes([udp[2], udp[3]]) != SERVER_PORT {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]])).min(udp.len());
    udp.get(8..len)
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in chunks {
        let mut pairs = chunk.chunks_exact(2);
        for pair in &mut pairs {
            sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        if let [last] = pairs.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A frame from the server (`src_mac`, `src_ip`) to the client `dst_mac`, sent to the IPv4
/// broadcast address so that a client without an address yet accepts it; it goes out on the
/// client's own tap only.
pub fn server_frame(
    src_mac: &[u8; 6],
    src_ip: Ipv4Addr,
    dst_mac: &[u8; 6],
    payload: &[u8],
) -> Vec<u8> {
    let dst_ip = Ipv4Addr::BROADCAST;
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut f = Vec::with_capacity(ETH_HEADER + total);
    f.extend_from_slice(dst_mac);
    f.extend_from_slice(src_mac);
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = IP_UDP;
    ip[12..16].copy_from_slice(&src_ip.octets());
    ip[16..20].copy_from_slice(&dst_ip.octets());
    let sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut udp = [0u8; 8];
    udp[0..2].copy_from_slice(&SERVER_PORT.to_be_bytes());
    udp[2..4].copy_from_slice(&CLIENT_PORT.to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src_ip.octets());
    pseudo[4..8].copy_from_slice(&dst_ip.octets());
    pseudo[9] = IP_UDP;
    pseudo[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let sum = match checksum(&[&pseudo, &udp, payload]) {
        0 => 0xffff,
        s => s,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&udp);
    f.extend_from_slice(payload);
    f
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 9];
    const SERVER: [u8; 6] = [2, 0, 0, 0, 0, 1];

    /// A client frame: the server frame's layout with the ports and MACs swapped.
    pub fn client_frame(from: &[u8; 6], dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = server_frame(from, Ipv4Addr::UNSPECIFIED, &SERVER, payload);
        f[6..12].copy_from_slice(from);
        let udp = ETH_HEADER + 20;
        f[udp..udp + 2].copy_from_slice(&CLIENT_PORT.to_be_bytes());
        f[udp + 2..udp + 4].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn payload_only_from_the_enis_mac_to_port_67() {
        let f = client_frame(&CLIENT, SERVER_PORT, b"hello");
        assert_eq!(client_payload(&f, &CLIENT), Some(&b"hello"[..]));
        assert_eq!(client_payload(&f, &[2, 0, 0, 0, 0, 8]), None, "another MAC");
        let f = client_frame(&CLIENT, 53, b"hello");
        assert_eq!(client_payload(&f, &CLIENT), None, "another port");
        let mut frag = client_frame(&CLIENT, SERVER_PORT, b"hello");
        frag[ETH_HEADER + 7] = 8;
        assert_eq!(client_payload(&frag, &CLIENT), None, "a fragment");
        assert_eq!(client_payload(&f[..30], &CLIENT), None, "truncated");
    }

    /// The frame that killed the agent: an IPv4 total length (10) shorter than the IPv4
    /// header (20) once sliced `ip[20..10]`.
    #[test]
    fn total_length_shorter_than_the_header_is_refused() {
        let mut f = client_frame(&CLIENT, SERVER_PORT, b"hello");
        f[ETH_HEADER + 2..ETH_HEADER + 4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(client_payload(&f, &CLIENT), None);
        // A header claiming 60 bytes (IHL 15) in a datagram whose total length is 40.
        let mut f = client_frame(&CLIENT, SERVER_PORT, &[0; 64]);
        f[ETH_HEADER] = 0x4f;
        f[ETH_HEADER + 2..ETH_HEADER + 4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(client_payload(&f, &CLIENT), None);
    }

    #[test]
    fn udp_lengths_are_cut_to_what_arrived() {
        let mut f = client_frame(&CLIENT, SERVER_PORT, b"hello");
        let udp = ETH_HEADER + 20;
        f[udp + 4..udp + 6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(client_payload(&f, &CLIENT), None, "shorter than its header");
        f[udp + 4..udp + 6].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(client_payload(&f, &CLIENT), Some(&b"hello"[..]), "longer");
        f[udp + 4..udp + 6].copy_from_slice(&11u16.to_be_bytes());
        assert_eq!(client_payload(&f, &CLIENT), Some(&b"hel"[..]));
    }

    #[test]
    fn reply_headers_and_checksums_are_valid() {
        let f = server_frame(&SERVER, Ipv4Addr::new(172, 31, 0, 1), &CLIENT, b"abc");
        assert_eq!(&f[0..6], &CLIENT);
        assert_eq!(
            checksum(&[&f[ETH_HEADER..ETH_HEADER + 20]]),
            0,
            "IP header sums to zero"
        );
        let udp = &f[ETH_HEADER + 20..];
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&[172, 31, 0, 1]);
        pseudo[4..8].copy_from_slice(&[255; 4]);
        pseudo[9] = IP_UDP;
        pseudo[10..12].copy_from_slice(&(udp.len() as u16).to_be_bytes());
        assert_eq!(checksum(&[&pseudo, udp]), 0, "UDP checksum verifies");
        assert_eq!(&udp[8..], b"abc");
    }
}
