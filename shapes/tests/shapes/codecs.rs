//! The hand-written codecs: blobs as base64, timestamps as RFC 3339 in UTC.

use chrono::{TimeZone, Utc};
use serde_json::json;
use shapes::{Blob, timestamp};

#[test]
fn a_blob_is_padded_standard_base64() {
    let blob: Blob = serde_json::from_value(json!("aGVsbG8=")).unwrap();
    assert_eq!(blob.0, b"hello");
    assert_eq!(serde_json::to_value(&blob).unwrap(), json!("aGVsbG8="));
    assert_eq!(serde_json::to_value(Blob::default()).unwrap(), json!(""));
    assert_eq!(
        serde_json::to_value(Blob(vec![0xfb, 0xff])).unwrap(),
        json!("+/8=")
    );
}

#[test]
fn a_blob_is_not_unpadded_urlsafe_or_a_number() {
    for bad in [json!("aGVsbG8"), json!("a b"), json!("-_8="), json!(12)] {
        assert!(
            serde_json::from_value::<Blob>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn a_timestamp_is_rfc3339_in_utc_with_z() {
    let t = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
    assert_eq!(timestamp::to_string(&t), "2024-05-01T12:00:00Z");
    let ms = t + chrono::Duration::milliseconds(250);
    assert_eq!(timestamp::to_string(&ms), "2024-05-01T12:00:00.250Z");
    assert_eq!(timestamp::parse("2024-05-01T14:00:00+02:00").unwrap(), t);
    assert_eq!(timestamp::parse("2024-05-01T12:00:00.000Z").unwrap(), t);
    assert!(timestamp::parse("2024-05-01 12:00:00").is_err());
    assert!(timestamp::parse("1714564800").is_err());
}
