//! DHCP messages (RFC 2131/2132): parsing the client's requests and building the server's
//! answers. Pure code, no sockets.

use std::net::Ipv4Addr;

/// BOOTP op: request from a client.
const BOOTREQUEST: u8 = 1;
/// BOOTP op: reply from a server.
const BOOTREPLY: u8 = 2;
/// Hardware type Ethernet, 6-byte addresses.
const HTYPE_ETHERNET: u8 = 1;
/// Length of the fixed BOOTP header.
const FIXED_LEN: usize = 236;
/// The options area starts with this cookie.
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

const OPT_PAD: u8 = 0;
const OPT_SUBNET_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_DNS: u8 = 6;
const OPT_HOSTNAME: u8 = 12;
const OPT_MTU: u8 = 26;
const OPT_BROADCAST: u8 = 28;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_RENEWAL_TIME: u8 = 58;
const OPT_REBINDING_TIME: u8 = 59;
const OPT_END: u8 = 255;

/// DHCP message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Client looks for servers.
    Discover,
    /// Server offers an address.
    Offer,
    /// Client asks for the offered (or its previous) address.
    Request,
    /// Client refuses an address already in use.
    Decline,
    /// Server confirms.
    Ack,
    /// Server refuses.
    Nak,
    /// Client gives its address back.
    Release,
    /// Client has an address and wants only the options.
    Inform,
}

impl MessageType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            4 => Self::Decline,
            5 => Self::Ack,
            6 => Self::Nak,
            7 => Self::Release,
            8 => Self::Inform,
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        match self {
            Self::Discover => 1,
            Self::Offer => 2,
            Self::Request => 3,
            Self::Decline => 4,
            Self::Ack => 5,
            Self::Nak => 6,
            Self::Release => 7,
            Self::Inform => 8,
        }
    }
}

/// Why a datagram is not a DHCP request we answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than a BOOTP header and cookie.
    #[error("datagram of {0} bytes is too short for DHCP")]
    TooShort(usize),
    /// Not a BOOTREQUEST over Ethernet.
    #[error("not a BOOTP request over Ethernet")]
    NotARequest,
    /// The magic cookie is missing.
    #[error("no DHCP magic cookie")]
    NoCookie,
    /// An option runs past the end.
    #[error("option {0} is truncated")]
    Truncated(u8),
    /// No or unknown message type.
    #[error("missing or unknown DHCP message type")]
    NoMessageType,
}

/// A client's request, as far as the server cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The message type.
    pub kind: MessageType,
    /// Transaction id, echoed back.
    pub xid: u32,
    /// BOOTP flags (the broadcast bit), echoed back.
    pub flags: u16,
    /// The client's current address (renewals).
    pub ciaddr: Ipv4Addr,
    /// Relay agent address, echoed back.
    pub giaddr: Ipv4Addr,
    /// The client's MAC address.
    pub mac: [u8; 6],
    /// Option 50, the address it asks for.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54, the server it answers to.
    pub server_id: Option<Ipv4Addr>,
}

fn ip_at(bytes: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3])
}

impl Request {
    /// Parses a datagram sent to the server port.
    pub fn parse(bytes: &[u8]) -> Result<Self, PacketError> {
        if bytes.len() < FIXED_LEN + MAGIC_COOKIE.len() {
            return Err(PacketError::TooShort(bytes.len()));
        }
        if bytes[0] != BOOTREQUEST || bytes[1] != HTYPE_ETHERNET || bytes[2] != 6 {
            return Err(PacketError::NotARequest);
        }
        if bytes[FIXED_LEN..FIXED_LEN + 4] != MAGIC_COOKIE {
            return Err(PacketError::NoCookie);
        }
        let mut kind = None;
        let mut requested_ip = None;
        let mut server_id = None;
        let mut at = FIXED_LEN + 4;
        while at < bytes.len() {
            let code = bytes[at];
            if code == OPT_END {
                break;
            }
            if code == OPT_PAD {
                at += 1;
                continue;
            }
            let len = *bytes.get(at + 1).ok_or(PacketError::Truncated(code))? as usize;
            let value = bytes
                .get(at + 2..at + 2 + len)
                .ok_or(PacketError::Truncated(code))?;
            match (code, len) {
                (OPT_MESSAGE_TYPE, 1) => kind = MessageType::from_code(value[0]),
                (OPT_REQUESTED_IP, 4) => requested_ip = Some(ip_at(value, 0)),
                (OPT_SERVER_ID, 4) => server_id = Some(ip_at(value, 0)),
                _ => {}
            }
            at += 2 + len;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&bytes[28..34]);
        Ok(Request {
            kind: kind.ok_or(PacketError::NoMessageType)?,
            xid: u32::from_be_bytes(bytes[4..8].try_into().unwrap()),
            flags: u16::from_be_bytes([bytes[10], bytes[11]]),
            ciaddr: ip_at(bytes, 12),
            giaddr: ip_at(bytes, 24),
            mac,
            requested_ip,
            server_id,
        })
    }
}

/// What the server gives one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The client's address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The default router.
    pub router: Ipv4Addr,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// The host name.
    pub hostname: String,
    /// Lease time in seconds.
    pub lease_secs: u32,
    /// Interface MTU.
    pub mtu: u16,
}

impl Lease {
    /// The subnet mask for `prefix`.
    pub fn mask(&self) -> Ipv4Addr {
        let bits = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix.min(32)))
        };
        Ipv4Addr::from(bits)
    }

    /// The subnet's broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.ip) | !u32::from(self.mask()))
    }
}

/// Builds the server's reply of `kind` to `request`. `lease` fills the address and options
/// (absent for a NAK); `server` is this server's address.
pub fn reply(
    request: &Request,
    kind: MessageType,
    lease: Option<&Lease>,
    server: Ipv4Addr,
) -> Vec<u8> {
    let mut out = vec![0u8; FIXED_LEN];
    out[0] = BOOTREPLY;
    out[1] = HTYPE_ETHERNET;
    out[2] = 6;
    out[4..8].copy_from_slice(&request.xid.to_be_bytes());
    out[10..12].copy_from_slice(&request.flags.to_be_bytes());
    if kind == MessageType::Inform {
        out[12..16].copy_from_slice(&request.ciaddr.octets());
    }
    if let (Some(lease), MessageType::Offer | MessageType::Ack) = (lease, kind) {
        if request.kind != MessageType::Inform {
            out[16..20].copy_from_slice(&lease.ip.octets());
        }
    }
    out[20..24].copy_from_slice(&server.octets());
    out[24..28].copy_from_slice(&request.giaddr.octets());
    out[28..34].copy_from_slice(&request.mac);
    out.extend(MAGIC_COOKIE);
    let mut option = |code: u8, value: &[u8]| {
        out.push(code);
        out.push(value.len() as u8);
        out.extend_from_slice(value);
    };
    option(OPT_MESSAGE_TYPE, &[kind.code()]);
    option(OPT_SERVER_ID, &server.octets());
    if let (Some(lease), MessageType::Offer | MessageType::Ack) = (lease, kind) {
        if request.kind != MessageType::Inform {
            option(OPT_LEASE_TIME, &lease.lease_secs.to_be_bytes());
            option(OPT_RENEWAL_TIME, &(lease.lease_secs / 2).to_be_bytes());
            option(
                OPT_REBINDING_TIME,
                &(lease.lease_secs / 8 * 7).to_be_bytes(),
            );
        }
        option(OPT_SUBNET_MASK, &lease.mask().octets());
        option(OPT_ROUTER, &lease.router.octets());
        option(OPT_BROADCAST, &lease.broadcast().octets());
        option(OPT_MTU, &lease.mtu.to_be_bytes());
        if !lease.dns.is_empty() {
            let dns: Vec<u8> = lease
                .dns
                .iter()
                .take(8)
                .flat_map(|ip| ip.octets())
                .collect();
            option(OPT_DNS, &dns);
        }
        if !lease.hostname.is_empty() {
            let name = lease.hostname.as_bytes();
            option(OPT_HOSTNAME, &name[..name.len().min(255)]);
        }
    }
    out.push(OPT_END);
    // Some clients ignore replies shorter than a minimal BOOTP packet.
    if out.len() < 300 {
        out.resize(300, OPT_PAD);
    }
    out
}

/// What the server should answer to `request` for a client whose lease is `lease`.
pub fn answer(request: &Request, lease: &Lease, server: Ipv4Addr) -> Option<MessageType> {
    match request.kind {
        MessageType::Discover => Some(MessageType::Offer),
        MessageType::Request => {
            if request.server_id.is_some_and(|id| id != server) {
                return None; // The client chose another server.
            }
            let asked = request.requested_ip.unwrap_or(request.ciaddr);
            if asked == lease.ip {
                Some(MessageType::Ack)
            } else {
                Some(MessageType::Nak)
            }
        }
        MessageType::Inform => Some(MessageType::Ack),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A client message of `kind` with options, as a DHCP client sends it.
    pub fn client_message(
        kind: u8,
        mac: [u8; 6],
        requested: Option<Ipv4Addr>,
        server: Option<Ipv4Addr>,
    ) -> Vec<u8> {
        let mut p = vec![0u8; FIXED_LEN];
        p[0] = BOOTREQUEST;
        p[1] = HTYPE_ETHERNET;
        p[2] = 6;
        p[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        p[10] = 0x80;
        p[28..34].copy_from_slice(&mac);
        p.extend(MAGIC_COOKIE);
        p.extend([OPT_MESSAGE_TYPE, 1, kind]);
        if let Some(ip) = requested {
            p.extend([OPT_REQUESTED_IP, 4]);
            p.extend(ip.octets());
        }
        if let Some(ip) = server {
            p.extend([OPT_SERVER_ID, 4]);
            p.extend(ip.octets());
        }
        p.extend([55, 3, 1, 3, 6, OPT_END]);
        p
    }

    pub fn lease() -> Lease {
        Lease {
            ip: Ipv4Addr::new(172, 31, 0, 5),
            prefix: 20,
            router: Ipv4Addr::new(172, 31, 0, 1),
            dns: vec![Ipv4Addr::new(172, 31, 0, 2)],
            hostname: "ip-172-31-0-5".into(),
            lease_secs: 3600,
            mtu: 1500,
        }
    }

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 5];
    const SERVER: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);

    /// Finds option `code` in a reply.
    fn option(reply: &[u8], code: u8) -> Option<Vec<u8>> {
        let mut at = FIXED_LEN + 4;
        while at + 1 < reply.len() && reply[at] != OPT_END {
            if reply[at] == OPT_PAD {
                at += 1;
                continue;
            }
            let len = reply[at + 1] as usize;
            if reply[at] == code {
                return Some(reply[at + 2..at + 2 + len].to_vec());
            }
            at += 2 + len;
        }
        None
    }

    #[test]
    fn parses_a_discover() {
        let r = Request::parse(&client_message(1, MAC, None, None)).unwrap();
        assert_eq!(r.kind, MessageType::Discover);
        assert_eq!((r.xid, r.flags, r.mac), (0xdead_beef, 0x8000, MAC));
    }

    #[test]
    fn offer_carries_address_and_options() {
        let r = Request::parse(&client_message(1, MAC, None, None)).unwrap();
        let kind = answer(&r, &lease(), SERVER).unwrap();
        assert_eq!(kind, MessageType::Offer);
        let out = reply(&r, kind, Some(&lease()), SERVER);
        assert_eq!(out[0], BOOTREPLY);
        assert_eq!(&out[4..8], &0xdead_beefu32.to_be_bytes());
        assert_eq!(&out[16..20], &[172, 31, 0, 5]);
        assert_eq!(option(&out, OPT_MESSAGE_TYPE), Some(vec![2]));
        assert_eq!(option(&out, OPT_SUBNET_MASK), Some(vec![255, 255, 240, 0]));
        assert_eq!(option(&out, OPT_ROUTER), Some(vec![172, 31, 0, 1]));
        assert_eq!(option(&out, OPT_BROADCAST), Some(vec![172, 31, 15, 255]));
        assert_eq!(
            option(&out, OPT_LEASE_TIME),
            Some(3600u32.to_be_bytes().to_vec())
        );
        assert_eq!(option(&out, OPT_HOSTNAME), Some(b"ip-172-31-0-5".to_vec()));
        assert_eq!(option(&out, OPT_DNS), Some(vec![172, 31, 0, 2]));
    }

    #[test]
    fn request_for_the_lease_is_acked_and_others_naked() {
        let ok = Request::parse(&client_message(3, MAC, Some(lease().ip), Some(SERVER))).unwrap();
        assert_eq!(answer(&ok, &lease(), SERVER), Some(MessageType::Ack));
        let other = Request::parse(&client_message(
            3,
            MAC,
            Some(Ipv4Addr::new(10, 0, 0, 9)),
            None,
        ))
        .unwrap();
        assert_eq!(answer(&other, &lease(), SERVER), Some(MessageType::Nak));
        let nak = reply(&other, MessageType::Nak, None, SERVER);
        assert_eq!(&nak[16..20], &[0, 0, 0, 0]);
        assert_eq!(option(&nak, OPT_ROUTER), None);
        let elsewhere = Request::parse(&client_message(
            3,
            MAC,
            Some(lease().ip),
            Some(Ipv4Addr::new(9, 9, 9, 9)),
        ))
        .unwrap();
        assert_eq!(answer(&elsewhere, &lease(), SERVER), None);
        let release = Request::parse(&client_message(7, MAC, None, None)).unwrap();
        assert_eq!(answer(&release, &lease(), SERVER), None);
    }

    #[test]
    fn malformed_datagrams_are_refused() {
        assert_eq!(Request::parse(&[0u8; 10]), Err(PacketError::TooShort(10)));
        let mut reply_op = client_message(1, MAC, None, None);
        reply_op[0] = BOOTREPLY;
        assert_eq!(Request::parse(&reply_op), Err(PacketError::NotARequest));
        let mut no_cookie = client_message(1, MAC, None, None);
        no_cookie[FIXED_LEN] = 0;
        assert_eq!(Request::parse(&no_cookie), Err(PacketError::NoCookie));
        let mut truncated = client_message(1, MAC, None, None);
        truncated.truncate(FIXED_LEN + 4);
        truncated.extend([OPT_HOSTNAME, 40, b'x']);
        assert_eq!(
            Request::parse(&truncated),
            Err(PacketError::Truncated(OPT_HOSTNAME))
        );
        let mut no_type = client_message(1, MAC, None, None);
        no_type[FIXED_LEN + 4] = OPT_PAD;
        no_type[FIXED_LEN + 5] = OPT_PAD;
        no_type[FIXED_LEN + 6] = OPT_PAD;
        assert_eq!(Request::parse(&no_type), Err(PacketError::NoMessageType));
    }

    #[test]
    fn masks_for_every_prefix() {
        let mut l = lease();
        l.prefix = 16;
        assert_eq!(l.mask(), Ipv4Addr::new(255, 255, 0, 0));
        l.prefix = 28;
        assert_eq!(l.mask(), Ipv4Addr::new(255, 255, 255, 240));
        l.prefix = 0;
        assert_eq!(l.mask(), Ipv4Addr::new(0, 0, 0, 0));
    }
}
