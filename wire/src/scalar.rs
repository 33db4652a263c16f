//! Scalar conversions between the Value contract and wire forms: timestamps (RFC 3339
//! `Z` strings in the contract), blobs (base64 strings in the contract) and numbers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// The contract's form of a time: whole seconds, or milliseconds when there are any
/// (`2026-12-07T01:02:03Z`, `2026-12-07T01:02:03.123Z`). Finer parts are dropped.
pub fn contract_time(t: DateTime<Utc>) -> String {
    let ms = t.timestamp_subsec_millis();
    let whole = t.format("%Y-%m-%dT%H:%M:%S");
    if ms == 0 {
        format!("{whole}Z")
    } else {
        format!("{whole}.{ms:03}Z")
    }
}

/// Parses an ISO 8601 / RFC 3339 time (any offset, any fraction).
pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    if s.len() > 64 {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

/// Parses an RFC 822 / HTTP date (`Mon, 07 Dec 2026 01:02:03 GMT`).
pub fn parse_rfc822(s: &str) -> Option<DateTime<Utc>> {
    if s.len() > 64 {
        return None;
    }
    DateTime::parse_from_rfc2822(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The first and last epoch seconds of years 0000 to 9999, the years RFC 3339 can write.
const EPOCH_RANGE: std::ops::RangeInclusive<f64> = -62_167_219_200.0..=253_402_300_799.999;

/// A time from epoch seconds (fractions kept to the millisecond), within years 0000-9999.
pub fn from_epoch(secs: f64) -> Option<DateTime<Utc>> {
    if !EPOCH_RANGE.contains(&secs) {
        return None;
    }
    let ms = (secs * 1000.0).round() as i64;
    Utc.timestamp_millis_opt(ms).single()
}

/// Parses a contract timestamp string.
pub fn parse_contract(s: &str) -> Option<DateTime<Utc>> {
    parse_iso(s)
}

/// Epoch seconds as JSON wants them: an integer when whole, else a float.
pub fn epoch_json(t: DateTime<Utc>) -> serde_json::Value {
    let ms = t.timestamp_millis();
    if ms % 1000 == 0 {
        serde_json::Value::from(ms / 1000)
    } else {
        serde_json::Value::from(ms as f64 / 1000.0)
    }
}

/// ISO 8601 with milliseconds, as EC2 and awsQuery write times.
pub fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// RFC 822, as HTTP dates.
pub fn rfc822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Decodes standard base64 (padding required).
pub fn decode_blob(s: &str) -> Option<Vec<u8>> {
    B64.decode(s).ok()
}

/// Encodes standard base64 with padding.
pub fn encode_blob(b: &[u8]) -> String {
    B64.encode(b)
}

/// A finite float as a JSON number.
pub fn float_value(f: f64) -> Option<serde_json::Value> {
    serde_json::Number::from_f64(f).map(serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_times_round_trip() {
        let t = parse_iso("2026-12-07T01:02:03.123456Z").unwrap();
        assert_eq!(contract_time(t), "2026-12-07T01:02:03.123Z");
        let t = parse_iso("2026-12-07T02:02:03+01:00").unwrap();
        assert_eq!(contract_time(t), "2026-12-07T01:02:03Z");
        assert_eq!(iso_millis(t), "2026-12-07T01:02:03.000Z");
        assert_eq!(epoch_json(t), serde_json::json!(1796605323));
        assert_eq!(
            contract_time(from_epoch(1796605323.5).unwrap()),
            "2026-12-07T01:02:03.500Z"
        );
        assert!(from_epoch(f64::NAN).is_none());
        assert!(from_epoch(1e12).is_none());
        assert_eq!(
            contract_time(from_epoch(253_402_300_799.0).unwrap()),
            "9999-12-31T23:59:59Z"
        );
        assert!(parse_iso("yesterday").is_none());
        assert_eq!(rfc822(t), "Mon, 07 Dec 2026 01:02:03 GMT");
        assert_eq!(parse_rfc822("Mon, 07 Dec 2026 01:02:03 GMT"), Some(t));
    }
}
