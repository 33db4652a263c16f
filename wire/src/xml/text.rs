//! The text of XML elements, written as bytes: tags, escaped strings, decimals and
//! timestamps.
//! The typed encoder writes its XML scalars with these, and so do the EC2 writers that
//! `shapes` generates, so that both give the same bytes.

use chrono::{DateTime, Utc};

use super::xml_char;
use crate::scalar;

/// The bytes that may start something `escaped` escapes or replaces: markup, the C0
/// controls XML cannot carry, and 0xEF (which leads U+FFFE and U+FFFF).
static XML_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = !xml_char(b as u8 as char);
        b += 1;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    t[0xef] = true;
    t
};

/// Whether any of the eight bytes of `word` is below 0x20 (a control, or tab, newline or
/// return: these go the slow way too), markup, or 0xEF (SWAR: a zero byte of `word ^ b`
/// sets that byte's high bit in `has_zero`).
fn may_be_special(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let any = below_space
        | has_zero(word ^ (ONES * u64::from(b'&')))
        | has_zero(word ^ (ONES * u64::from(b'<')))
        | has_zero(word ^ (ONES * u64::from(b'>')))
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\'')))
        | has_zero(word ^ (ONES * 0xef));
    any != 0
}

/// `<tag>`.
pub fn open_tag(out: &mut Vec<u8>, tag: &str) {
    out.push(b'<');
    out.extend_from_slice(tag.as_bytes());
    out.push(b'>');
}

/// `</tag>`.
pub fn close_tag(out: &mut Vec<u8>, tag: &str) {
    out.extend_from_slice(b"</");
    out.extend_from_slice(tag.as_bytes());
    out.push(b'>');
}

/// `s` as element content, escaped as [`super::escape_into`] escapes it.
pub fn escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none may be special.
        while let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            if may_be_special(word) {
                break;
            }
            i += 8;
        }
        let Some(&b) = bytes.get(i) else { break };
        if !XML_SPECIAL[usize::from(b)] {
            i += 1;
            continue;
        }
        let (replacement, width): (&[u8], usize) = match b {
            b'&' => (b"&amp;", 1),
            b'<' => (b"&lt;", 1),
            b'>' => (b"&gt;", 1),
            b'"' => (b"&quot;", 1),
            b'\'' => (b"&apos;", 1),
            // U+FFFE and U+FFFF; any other character led by 0xEF is kept.
            0xef if matches!(bytes.get(i + 1..i + 3), Some([0xbf, 0xbe | 0xbf])) => {
                ("\u{fffd}".as_bytes(), 3)
            }
            0xef => {
                i += 1;
                continue;
            }
            // The C0 controls XML cannot carry.
            _ => ("\u{fffd}".as_bytes(), 1),
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(replacement);
        i += width;
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
}

/// An integer in decimal, as `Display` writes it.
pub fn decimal(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[at..]);
}

/// `scalar::iso_millis(t)` (`2026-12-07T01:02:03.000Z`), without its allocation and
/// formatting machinery for the years 0 to 9999.
pub fn iso_millis(out: &mut Vec<u8>, t: DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // Signed years and leap seconds: as chrono writes them.
        out.extend_from_slice(scalar::iso_millis(t).as_bytes());
        return;
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    put(20, 3, nanos / 1_000_000);
    out.extend_from_slice(&b);
}
