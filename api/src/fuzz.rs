//! Property tests feeding the API's parsers what a caller can send: random and hostile form
//! bodies and filter patterns (the `wire` crate fuzzes SigV4), and checking the wildcard matcher
//! against a plain reference. `PROPTEST_CASES` sets how many cases each runs (64 by default;
//! the fuzz step of `scripts/test.sh` runs many more).

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::filters::Wildcard;
use super::query::{check_pairs, parse_pairs};

/// The textbook dynamic programme: `m[i][j]` is whether the first `i` pattern characters
/// match the first `j` text characters.
fn reference(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let mut m = vec![vec![false; t.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        for j in 0..=t.len() {
            m[i][j] = match p[i - 1] {
                '*' => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                '?' => j > 0 && m[i - 1][j - 1],
                c => j > 0 && m[i - 1][j - 1] && t[j - 1] == c,
            };
        }
    }
    m[p.len()][t.len()]
}

/// A form key a Query API client might send, lists and filters included.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "Action|Version|DryRun|InstanceId|ImageId|UserData",
        "(InstanceId|ResourceId|Owner)\\.[0-9]{1,3}",
        "Filter\\.[0-9]{1,3}\\.(Name|Value\\.[0-9]{1,3})",
        "(Tag|TagSpecification\\.[0-9]\\.Tag)\\.[0-9]{1,3}\\.(Key|Value)",
        "[ -~]{1,30}",
    ]
}

proptest! {
    #![proptest_config(crate::fuzz_config())]

    #[test]
    fn fuzz_wildcard_agrees_with_reference(
        pattern in "[ab*?]{0,12}",
        text in "[ab]{0,12}",
    ) {
        prop_assert_eq!(Wildcard::new(&pattern).matches(&text), reference(&pattern, &text));
    }

    #[test]
    fn fuzz_wildcard_agrees_on_any_characters(pattern in "\\PC{0,10}", text in "\\PC{0,10}") {
        prop_assert_eq!(Wildcard::new(&pattern).matches(&text), reference(&pattern, &text));
    }

    #[test]
    fn fuzz_wildcard_hostile_patterns_are_fast(
        unit in "[*?a]{1,4}",
        repeat in 1usize..20_000,
        tail in "[ab]{0,3}",
        text_len in 0usize..400,
    ) {
        let pattern = format!("{}{tail}", unit.repeat(repeat));
        let text = "a".repeat(text_len);
        let started = Instant::now();
        let got = Wildcard::new(&pattern).matches(&text);
        prop_assert!(started.elapsed() < Duration::from_millis(200));
        if pattern.len() <= 40 {
            prop_assert_eq!(got, reference(&pattern, &text));
        }
    }

    #[test]
    fn fuzz_form_random_text(body in "\\PC{0,400}") {
        if let Ok(pairs) = parse_pairs(&body) {
            prop_assert!(pairs.iter().all(|(k, _)| !k.is_empty()));
            let _ = check_pairs(&pairs);
        }
    }

    #[test]
    fn fuzz_form_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(body) = std::str::from_utf8(&bytes) {
            let _ = parse_pairs(body);
        }
        let lossy = String::from_utf8_lossy(&bytes);
        let _ = parse_pairs(&lossy);
    }

    /// Any pairs, encoded as SigV4 encodes them, decode to themselves.
    #[test]
    fn fuzz_form_round_trip(pairs in proptest::collection::vec((key(), "\\PC{0,40}"), 0..30)) {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", wire::sigv4::uri_encode(k, false), wire::sigv4::uri_encode(v, false)))
            .collect::<Vec<_>>()
            .join("&");
        prop_assert_eq!(parse_pairs(&body).unwrap(), pairs.clone());
        let mut unique = pairs;
        unique.sort();
        unique.dedup_by(|a, b| a.0 == b.0);
        prop_assert!(check_pairs(&unique).is_ok());
    }

    #[test]
    fn fuzz_form_hostile_escapes(body in "([A-Za-z.=&+]|%[0-9a-fA-FgG]{0,2}|%){0,200}") {
        let _ = parse_pairs(&body);
    }
}
