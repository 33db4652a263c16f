//! The probe's command-line parameters.

/// The parameter that selects what vCPU 0 does.
pub const MODE_KEY: &[u8] = b"probe.mode";

/// What vCPU 0 does after the start-up lines (`probe.mode=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode<'a> {
    /// Write, read back and check all free memory, then power off (the default).
    Selftest,
    /// Print a counter every second, forever.
    Count,
    /// Power off at once.
    Poweroff,
    /// Any other value, kept to report it.
    Unknown(&'a [u8]),
}

impl<'a> Mode<'a> {
    /// The mode named by `value`.
    pub fn from_value(value: &'a [u8]) -> Self {
        match value {
            b"selftest" => Self::Selftest,
            b"count" => Self::Count,
            b"poweroff" => Self::Poweroff,
            other => Self::Unknown(other),
        }
    }

    /// The mode the command line asks for: [`Mode::Selftest`] when `probe.mode=` is absent.
    pub fn from_cmdline(cmdline: &'a [u8]) -> Self {
        param(cmdline, MODE_KEY).map_or(Self::Selftest, Self::from_value)
    }
}

/// The value of the last `key=value` word of `cmdline` (words are separated by ASCII
/// whitespace); `None` if no word has that key. A bare `key` (without `=`) does not count.
pub fn param<'a>(cmdline: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    cmdline
        .split(u8::is_ascii_whitespace)
        .filter_map(|word| word.strip_prefix(key)?.strip_prefix(b"="))
        .next_back()
}

/// `probe.disk=`: what the probe does with the first virtio block device.
pub const DISK_KEY: &[u8] = b"probe.disk";
/// `probe.net=`: `dhcp` or `static:IP/PREFIX,GATEWAY`.
pub const NET_KEY: &[u8] = b"probe.net";
/// `probe.http=`: the name the HTTP responder on port 80 answers with.
pub const HTTP_KEY: &[u8] = b"probe.http";
/// `probe.fetch=`: an `http://IP[:PORT]/PATH` URL fetched once the address is up.
pub const FETCH_KEY: &[u8] = b"probe.fetch";
/// `probe.source_bytes=`: bytes the TCP source on port 19 sends per connection.
pub const SOURCE_BYTES_KEY: &[u8] = b"probe.source_bytes";
/// `probe.imds=`: `v1` or `v2`, fetch the instance metadata once the address is up.
pub const IMDS_KEY: &[u8] = b"probe.imds";
/// `probe.imds_bench=`: sequential metadata GETs timed after the fetch.
pub const IMDS_BENCH_KEY: &[u8] = b"probe.imds_bench";
/// `probe.ping=`: `IP[,IP...]`, pinged once the address is up (after the metadata fetch).
pub const PING_KEY: &[u8] = b"probe.ping";
/// The `probe.http=` value that makes the responder answer with the instance-id from IMDS.
pub const HTTP_FROM_IMDS: &[u8] = b"imds";
/// What the responder answers under `probe.http=imds` until the metadata fetch has ended.
pub const IMDS_PENDING_NAME: &[u8] = b"imds-pending";
/// What it answers afterwards if IMDS gave no instance-id.
pub const IMDS_UNAVAILABLE_NAME: &[u8] = b"imds-unavailable";
/// Most GETs `probe.imds_bench=` accepts.
pub const MAX_IMDS_BENCH: u32 = 1_000_000;
/// The Linux-style virtio-mmio device announcement: `virtio_mmio.device=SIZE@BASE:IRQ`.
pub const VIRTIO_MMIO_KEY: &[u8] = b"virtio_mmio.device";

/// What `probe.disk=` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskMode<'a> {
    /// Write the pattern, flush, read back and check.
    Write,
    /// Read back and check a pattern written by an earlier `write`.
    Verify,
    /// Sequential and random throughput.
    Bench,
    /// Random 4 KiB reads only, for about 3 s: `probe: disk iops <N>`.
    Iops,
    /// One write attempt, whatever the device says: `probe: disk write status <n>`.
    WriteRoCheck,
    /// Sequence-numbered blocks written in order with commit records (`disk_seq`).
    Seq,
    /// Any other value, kept to report it.
    Unknown(&'a [u8]),
}

impl<'a> DiskMode<'a> {
    /// The disk mode named by `value`.
    pub fn from_value(value: &'a [u8]) -> Self {
        match value {
            b"write" => Self::Write,
            b"verify" => Self::Verify,
            b"bench" => Self::Bench,
            b"iops" => Self::Iops,
            b"write-ro-check" => Self::WriteRoCheck,
            b"seq" => Self::Seq,
            other => Self::Unknown(other),
        }
    }
}

/// Which instance metadata protocol `probe.imds=` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImdsVersion {
    /// Plain GETs.
    V1,
    /// A session token from `PUT /latest/api/token`, sent with every GET.
    V2,
}

impl ImdsVersion {
    /// `v1` or `v2`; anything else is `None`.
    pub fn from_value(value: &[u8]) -> Option<Self> {
        match value {
            b"v1" => Some(Self::V1),
            b"v2" => Some(Self::V2),
            _ => None,
        }
    }
}

/// An IPv4 address with its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address, most significant byte first.
    pub addr: [u8; 4],
    /// The prefix length, 0 to 32.
    pub prefix: u8,
}

/// How `probe.net=` asks for an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetConfig {
    /// Lease one over DHCP (and keep asking while no server answers).
    Dhcp,
    /// A fixed address and an optional default gateway.
    Static {
        /// The interface address.
        cidr: Ipv4Cidr,
        /// The default gateway.
        gateway: Option<[u8; 4]>,
    },
}

impl NetConfig {
    /// Parses `dhcp`, `static:IP/PREFIX,GATEWAY` or `static:IP/PREFIX`.
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value == b"dhcp" {
            return Some(Self::Dhcp);
        }
        let rest = value.strip_prefix(b"static:")?;
        let (cidr, gateway) = match rest.iter().position(|&b| b == b',') {
            Some(comma) => (&rest[..comma], Some(parse_ipv4(&rest[comma + 1..])?)),
            None => (rest, None),
        };
        let slash = cidr.iter().position(|&b| b == b'/')?;
        let addr = parse_ipv4(&cidr[..slash])?;
        let prefix = parse_u64(&cidr[slash + 1..]).filter(|&p| p <= 32)?;
        Some(Self::Static {
            cidr: Ipv4Cidr {
                addr,
                prefix: prefix as u8,
            },
            gateway,
        })
    }
}

/// Parses a dotted-quad IPv4 address.
pub fn parse_ipv4(text: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for byte in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 {
            return None;
        }
        *byte = u8::try_from(parse_u64(part)?).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Parses a decimal number (digits only, no sign, no overflow).
pub fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &b| {
        let digit = u64::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// Parses a hexadecimal number with an optional `0x` prefix.
pub fn parse_hex(text: &[u8]) -> Option<u64> {
    let digits = text
        .strip_prefix(b"0x")
        .or_else(|| text.strip_prefix(b"0X"))
        .unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = u64::from(char::from(b).to_digit(16)?);
        acc.checked_mul(16)?.checked_add(digit)
    })
}

/// Parses a size: a number (decimal, or hex with `0x`) with an optional `K`, `M` or `G`
/// suffix (powers of 1024), as Linux's `memparse` does.
pub fn parse_size(text: &[u8]) -> Option<u64> {
    let (number, shift) = match text.last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 10),
        b'm' | b'M' => (&text[..text.len() - 1], 20),
        b'g' | b'G' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let value = if number.starts_with(b"0x") || number.starts_with(b"0X") {
        parse_hex(number)?
    } else {
        parse_u64(number)?
    };
    value.checked_mul(1u64 << shift)
}

/// Parses the value of `probe.ping=`: one or more dotted-quad addresses separated by commas
/// (`10.0.0.1,10.0.0.3`), in order, repeats kept; `None` if any part is not an address.
pub fn parse_ping_targets(value: &[u8]) -> Option<alloc::vec::Vec<[u8; 4]>> {
    value.split(|&b| b == b',').map(parse_ipv4).collect()
}

/// One `virtio_mmio.device=SIZE@BASE:IRQ` announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmioDevice {
    /// Guest physical address of the register window.
    pub base: u64,
    /// Size of the register window in bytes.
    pub size: u64,
    /// The interrupt line (unused: the probe polls).
    pub irq: u32,
}

impl VirtioMmioDevice {
    /// Parses `SIZE@BASE:IRQ` (`4K@0xd0000000:5`); the `:IRQ` part may be missing.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let at = value.iter().position(|&b| b == b'@')?;
        let size = parse_size(&value[..at])?;
        let rest = &value[at + 1..];
        let (base, irq) = match rest.iter().position(|&b| b == b':') {
            Some(colon) => (
                &rest[..colon],
                u32::try_from(parse_u64(&rest[colon + 1..])?).ok()?,
            ),
            None => (rest, 0),
        };
        let base = if base.starts_with(b"0x") || base.starts_with(b"0X") {
            parse_hex(base)?
        } else {
            parse_u64(base)?
        };
        (size > 0).then_some(Self { base, size, irq })
    }
}

/// Every well-formed `virtio_mmio.device=` token of `cmdline`, in address order (duplicates
/// dropped); malformed ones are skipped.
pub fn virtio_mmio_devices(cmdline: &[u8]) -> alloc::vec::Vec<VirtioMmioDevice> {
    let mut devices: alloc::vec::Vec<VirtioMmioDevice> = all_params(cmdline, VIRTIO_MMIO_KEY)
        .filter_map(VirtioMmioDevice::parse)
        .collect();
    devices.sort_by_key(|d| d.base);
    devices.dedup_by_key(|d| d.base);
    devices
}

/// The values of every `key=value` word of `cmdline`, in order.
pub fn all_params<'a>(cmdline: &'a [u8], key: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    cmdline
        .split(u8::is_ascii_whitespace)
        .filter_map(move |word| word.strip_prefix(key)?.strip_prefix(b"="))
}

/// The disk and network options of the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options<'a> {
    /// `probe.mode=`, if given.
    pub mode: Option<&'a [u8]>,
    /// `probe.disk=`, if given.
    pub disk: Option<DiskMode<'a>>,
    /// `probe.net=`, raw (parse with [`NetConfig::parse`]).
    pub net: Option<&'a [u8]>,
    /// `probe.http=`, if given.
    pub http: Option<&'a [u8]>,
    /// `probe.fetch=`, if given.
    pub fetch: Option<&'a [u8]>,
    /// `probe.source_bytes=`, raw.
    pub source_bytes: Option<&'a [u8]>,
    /// `probe.imds=`, raw (see [`Options::imds`]).
    pub imds: Option<&'a [u8]>,
    /// `probe.imds_bench=`, raw (see [`Options::imds_bench`]).
    pub imds_bench: Option<&'a [u8]>,
    /// `probe.ping=`, raw (parse with [`parse_ping_targets`]).
    pub ping: Option<&'a [u8]>,
}

/// Bytes the TCP source sends per connection unless `probe.source_bytes=` says otherwise.
pub const DEFAULT_SOURCE_BYTES: u64 = 64 << 20;

impl<'a> Options<'a> {
    /// The options of `cmdline` (the last of each key wins).
    pub fn from_cmdline(cmdline: &'a [u8]) -> Self {
        Self {
            mode: param(cmdline, MODE_KEY),
            disk: param(cmdline, DISK_KEY).map(DiskMode::from_value),
            net: param(cmdline, NET_KEY),
            http: param(cmdline, HTTP_KEY),
            fetch: param(cmdline, FETCH_KEY),
            source_bytes: param(cmdline, SOURCE_BYTES_KEY),
            imds: param(cmdline, IMDS_KEY),
            imds_bench: param(cmdline, IMDS_BENCH_KEY),
            ping: param(cmdline, PING_KEY),
        }
    }

    /// True when the probe should bring up the network and serve.
    pub fn wants_net(&self) -> bool {
        self.net.is_some()
            || self.http.is_some()
            || self.imds.is_some()
            || self.imds_bench.is_some()
            || self.ping.is_some()
    }

    /// True for `probe.http=imds`: the responder answers with the instance-id from IMDS.
    pub fn http_from_imds(&self) -> bool {
        self.http == Some(HTTP_FROM_IMDS)
    }

    /// The metadata fetch asked for: `None` if none; else the version of `probe.imds=`, or
    /// v2 when only `probe.http=imds` or `probe.imds_bench=` implies the fetch; `Err` with the
    /// value if `probe.imds=` is neither `v1` nor `v2`.
    pub fn imds(&self) -> Option<Result<ImdsVersion, &'a [u8]>> {
        match self.imds {
            Some(value) => Some(ImdsVersion::from_value(value).ok_or(value)),
            None if self.http_from_imds() || self.imds_bench.is_some() => Some(Ok(ImdsVersion::V2)),
            None => None,
        }
    }

    /// The number of timed GETs of `probe.imds_bench=` (0 if absent); `Err` with the value if
    /// it is not a number up to [`MAX_IMDS_BENCH`].
    pub fn imds_bench(&self) -> Result<u32, &'a [u8]> {
        match self.imds_bench {
            None => Ok(0),
            Some(value) => parse_u64(value)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n <= MAX_IMDS_BENCH)
                .ok_or(value),
        }
    }

    /// True when only the classic `probe.mode=` behaviour applies (no disk or net options).
    pub fn classic(&self) -> bool {
        self.disk.is_none() && !self.wants_net()
    }

    /// The size accepted by `probe.source_bytes=` (with K/M/G suffixes), or the default.
    pub fn source_bytes(&self) -> Option<u64> {
        match self.source_bytes {
            None => Some(DEFAULT_SOURCE_BYTES),
            Some(value) => parse_size(value),
        }
    }

    /// The name the HTTP responder starts with: `probe.http=`, else `probe`; under
    /// `probe.http=imds`, [`IMDS_PENDING_NAME`] until the fetch sets the instance-id.
    pub fn http_name(&self) -> &'a [u8] {
        if self.http_from_imds() {
            return IMDS_PENDING_NAME;
        }
        self.http.unwrap_or(b"probe")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_net_config() {
        assert_eq!(NetConfig::parse(b"dhcp"), Some(NetConfig::Dhcp));
        assert_eq!(
            NetConfig::parse(b"static:10.0.0.2/24,10.0.0.1"),
            Some(NetConfig::Static {
                cidr: Ipv4Cidr {
                    addr: [10, 0, 0, 2],
                    prefix: 24
                },
                gateway: Some([10, 0, 0, 1]),
            })
        );
        assert_eq!(
            NetConfig::parse(b"static:192.168.1.200/32"),
            Some(NetConfig::Static {
                cidr: Ipv4Cidr {
                    addr: [192, 168, 1, 200],
                    prefix: 32
                },
                gateway: None,
            })
        );
        for bad in [
            &b"static:10.0.0.2"[..],
            b"static:10.0.0.2/33,10.0.0.1",
            b"static:10.0.0.256/24",
            b"static:10.0.0/24",
            b"static:10.0.0.2.1/24",
            b"static:10.0.0.2/24,",
            b"static:/24",
            b"DHCP",
            b"",
        ] {
            assert_eq!(NetConfig::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_numbers_and_sizes() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_hex(b"0xd0000000"), Some(0xd000_0000));
        assert_eq!(parse_hex(b"FF"), Some(255));
        assert_eq!(parse_hex(b"0x"), None);
        assert_eq!(parse_size(b"4K"), Some(4096));
        assert_eq!(parse_size(b"512"), Some(512));
        assert_eq!(parse_size(b"64M"), Some(64 << 20));
        assert_eq!(parse_size(b"1g"), Some(1 << 30));
        assert_eq!(parse_size(b"0x1000"), Some(4096));
        assert_eq!(parse_size(b"K"), None);
    }

    #[test]
    fn parses_virtio_mmio_tokens_in_address_order() {
        let line = b"console=ttyS0 virtio_mmio.device=4K@0xd0001000:6 \
            virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=bad \
            virtio_mmio.device=0x200@0xd0002000 virtio_mmio.device=1M@3489673216:7 virtio_mmio.device=4K@0xd0000000:9";
        let devices = virtio_mmio_devices(line);
        assert_eq!(
            devices,
            [
                VirtioMmioDevice {
                    base: 0xd000_0000,
                    size: 4096,
                    irq: 5
                },
                VirtioMmioDevice {
                    base: 0xd000_1000,
                    size: 4096,
                    irq: 6
                },
                VirtioMmioDevice {
                    base: 0xd000_2000,
                    size: 0x200,
                    irq: 0
                },
                VirtioMmioDevice {
                    base: 0xd000_3000,
                    size: 1 << 20,
                    irq: 7
                },
            ]
        );
        assert!(virtio_mmio_devices(b"probe.mode=count").is_empty());
        assert_eq!(VirtioMmioDevice::parse(b"0@0xd0000000:5"), None);
        assert_eq!(VirtioMmioDevice::parse(b"4K0xd0000000:5"), None);
        assert_eq!(VirtioMmioDevice::parse(b"4K@0xd0000000:x"), None);
    }

    #[test]
    fn parses_options() {
        let o = Options::from_cmdline(b"probe.disk=verify probe.net=dhcp probe.http=web-1");
        assert_eq!(o.disk, Some(DiskMode::Verify));
        assert_eq!(o.net, Some(&b"dhcp"[..]));
        assert_eq!(o.http_name(), b"web-1");
        assert!(o.wants_net() && !o.classic());
        assert_eq!(o.source_bytes(), Some(DEFAULT_SOURCE_BYTES));
        assert_eq!(o.mode, None);

        let o = Options::from_cmdline(b"probe.mode=count");
        assert!(o.classic());
        assert_eq!(o.mode, Some(&b"count"[..]));

        let o = Options::from_cmdline(b"probe.http=x probe.source_bytes=1M");
        assert!(o.wants_net());
        assert_eq!(o.source_bytes(), Some(1 << 20));
        let o = Options::from_cmdline(b"probe.net=static:10.0.0.2/24,10.0.0.1");
        assert_eq!(o.http_name(), b"probe");
        assert_eq!(
            Options::from_cmdline(b"probe.source_bytes=x").source_bytes(),
            None
        );

        for (value, mode) in [
            (&b"write"[..], DiskMode::Write),
            (b"verify", DiskMode::Verify),
            (b"bench", DiskMode::Bench),
            (b"iops", DiskMode::Iops),
            (b"write-ro-check", DiskMode::WriteRoCheck),
            (b"seq", DiskMode::Seq),
            (b"Write", DiskMode::Unknown(b"Write")),
        ] {
            assert_eq!(DiskMode::from_value(value), mode);
        }
    }

    #[test]
    fn parses_imds_options() {
        let o = Options::from_cmdline(b"probe.imds=v1");
        assert_eq!(o.imds(), Some(Ok(ImdsVersion::V1)));
        assert!(o.wants_net() && !o.http_from_imds());
        assert_eq!(o.http_name(), b"probe");
        assert_eq!(o.imds_bench(), Ok(0));

        let o = Options::from_cmdline(b"probe.net=dhcp probe.imds=v2");
        assert_eq!(o.imds(), Some(Ok(ImdsVersion::V2)));

        // probe.http=imds implies the fetch, v2 unless probe.imds says v1.
        let o = Options::from_cmdline(b"probe.http=imds");
        assert!(o.http_from_imds() && o.wants_net());
        assert_eq!(o.imds(), Some(Ok(ImdsVersion::V2)));
        assert_eq!(o.http_name(), IMDS_PENDING_NAME);
        let o = Options::from_cmdline(b"probe.http=imds probe.imds=v1");
        assert_eq!(o.imds(), Some(Ok(ImdsVersion::V1)));

        // So does probe.imds_bench=; the last value wins.
        let o = Options::from_cmdline(b"probe.imds_bench=10 probe.imds_bench=250");
        assert_eq!(o.imds(), Some(Ok(ImdsVersion::V2)));
        assert_eq!(o.imds_bench(), Ok(250));
        assert!(o.wants_net());
        assert_eq!(o.imds, None, "probe.imds_bench is not probe.imds");

        for bad in [&b"x"[..], b"-1", b"", b"1000001", b"99999999999"] {
            let mut line = b"probe.imds_bench=".to_vec();
            line.extend_from_slice(bad);
            assert_eq!(
                Options::from_cmdline(&line).imds_bench(),
                Err(bad),
                "{bad:?}"
            );
        }
        assert_eq!(
            Options::from_cmdline(b"probe.imds_bench=1000000").imds_bench(),
            Ok(MAX_IMDS_BENCH)
        );
        for bad in [&b"V2"[..], b"v3", b"", b"2"] {
            let mut line = b"probe.imds=".to_vec();
            line.extend_from_slice(bad);
            assert_eq!(
                Options::from_cmdline(&line).imds(),
                Some(Err(bad)),
                "{bad:?}"
            );
        }

        // Other names are plain names, and nothing asks for the fetch.
        let o = Options::from_cmdline(b"probe.http=imds-1 probe.net=dhcp");
        assert_eq!(o.imds(), None);
        assert_eq!(o.http_name(), b"imds-1");
        assert_eq!(Options::from_cmdline(b"probe.mode=count").imds(), None);
    }

    #[test]
    fn parses_ping_targets() {
        assert_eq!(parse_ping_targets(b"10.0.0.1"), Some(vec![[10, 0, 0, 1]]));
        assert_eq!(
            parse_ping_targets(b"10.0.0.1,192.168.7.254,10.0.0.1"),
            Some(vec![[10, 0, 0, 1], [192, 168, 7, 254], [10, 0, 0, 1]])
        );
        for bad in [
            &b""[..],
            b",",
            b"10.0.0.1,",
            b",10.0.0.1",
            b"10.0.0.1,,10.0.0.2",
            b"10.0.0.256",
            b"10.0.0.1 10.0.0.2",
            b"host.example",
        ] {
            assert_eq!(parse_ping_targets(bad), None, "{bad:?}");
        }
        // probe.ping= alone brings the network up (DHCP); the last one wins.
        let o = Options::from_cmdline(b"probe.ping=10.0.0.9 probe.ping=10.0.0.1,10.0.0.3");
        assert!(o.wants_net() && !o.classic());
        assert_eq!(o.ping, Some(&b"10.0.0.1,10.0.0.3"[..]));
        assert_eq!(o.imds(), None);
        assert_eq!(Options::from_cmdline(b"probe.net=dhcp").ping, None);
    }

    #[test]
    fn finds_the_last_value() {
        let line = b"console=ttyS0 probe.mode=count  reboot=k\tprobe.mode=poweroff";
        assert_eq!(param(line, b"probe.mode"), Some(&b"poweroff"[..]));
        assert_eq!(param(line, b"console"), Some(&b"ttyS0"[..]));
        assert_eq!(param(line, b"reboot"), Some(&b"k"[..]));
        assert_eq!(param(line, b"probe"), None);
        assert_eq!(param(b"probe.mode probe.modex=1", b"probe.mode"), None);
        assert_eq!(param(b"probe.mode=", b"probe.mode"), Some(&b""[..]));
        assert_eq!(param(b"", b"probe.mode"), None);
    }

    #[test]
    fn parses_modes() {
        assert_eq!(Mode::from_cmdline(b"console=ttyS0"), Mode::Selftest);
        assert_eq!(Mode::from_cmdline(b""), Mode::Selftest);
        assert_eq!(Mode::from_cmdline(b"probe.mode=selftest"), Mode::Selftest);
        assert_eq!(Mode::from_cmdline(b"probe.mode=count"), Mode::Count);
        assert_eq!(
            Mode::from_cmdline(b"x probe.mode=poweroff y"),
            Mode::Poweroff
        );
        assert_eq!(
            Mode::from_cmdline(b"probe.mode=Count"),
            Mode::Unknown(b"Count")
        );
        assert_eq!(Mode::from_cmdline(b"probe.mode="), Mode::Unknown(b""));
    }
}
