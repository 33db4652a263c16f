//! Parsers for the text of parameter values: decimal, hex and sized numbers, dotted-quad
//! IPv4 addresses and the address list of `probe.ping=`.

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

/// Parses a percentage: a decimal integer from 0 to 100 (digits only, no `%`).
pub fn parse_percent(text: &[u8]) -> Option<u8> {
    parse_u64(text)
        .filter(|&n| n <= 100)
        .and_then(|n| u8::try_from(n).ok())
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn parses_percentages() {
        assert_eq!(parse_percent(b"0"), Some(0));
        assert_eq!(parse_percent(b"50"), Some(50));
        assert_eq!(parse_percent(b"100"), Some(100));
        assert_eq!(parse_percent(b"007"), Some(7));
        for bad in [
            &b""[..],
            b"101",
            b"-1",
            b"50%",
            b" 5",
            b"1e2",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_percent(bad), None, "{bad:?}");
        }
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
    }
}
