//! The parsers an SNS caller feeds, fed garbage: `MessageStructure=json` messages,
//! delivery policies, ARNs, endpoints and message attributes. Each must answer (a value or
//! an error), never panic. `PROPTEST_CASES` raises the count (scripts/test.sh runs 10,000).

use proptest::prelude::*;

use super::checks;
use super::filter_policy;
use super::message::{self, MessageAttribute};
use super::policy;

/// Strings made mostly of what the grammars use, so that the parsers get past their first
/// token.
fn near_grammar() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("\"default\":".to_string()),
            Just("\"http\":".to_string()),
            Just("{\"healthyRetryPolicy\":".to_string()),
            Just("{\"http\":{\"defaultHealthyRetryPolicy\":".to_string()),
            Just("\"numRetries\":".to_string()),
            Just("\"minDelayTarget\":".to_string()),
            Just("\"backoffFunction\":\"exponential\"".to_string()),
            Just("arn:aws:sns:local-1:123456789012:".to_string()),
            Just("http://".to_string()),
            Just("@".to_string()),
            Just(":".to_string()),
            Just(",".to_string()),
            "[-0-9a-z\" .:{}]{0,4}",
        ],
        0..48,
    )
    .prop_map(|parts| parts.concat())
}

/// Filter policies made of their own parts.
fn filter_grammar() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{\"level\": [".to_string()),
            Just("{\"prefix\": \"h\"}".to_string()),
            Just("{\"numeric\": [\">\", 1, \"<=\", 9]}".to_string()),
            Just("{\"anything-but\": [\"a\", 2]}".to_string()),
            Just("{\"anything-but\": {\"prefix\": \"x\"}}".to_string()),
            Just("{\"exists\": false}".to_string()),
            Just("\"high\"".to_string()),
            Just("1.5".to_string()),
            Just(",".to_string()),
            Just("]".to_string()),
            Just("}".to_string()),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn fuzz_message_structures_answer_any_text(text in prop_oneof![near_grammar(), ".*"]) {
        if let Ok(m) = message::structured(&text) {
            prop_assert!(m.contains_key("default"));
        }
    }

    #[test]
    fn fuzz_delivery_policies_answer_any_text(text in prop_oneof![near_grammar(), ".*"]) {
        if let Ok((Some(p), _)) = policy::topic_policy(&text) {
            for n in 1..=p.num_retries {
                let d = p.delay_before(n);
                prop_assert!((0..=p.max_delay_target).contains(&d));
            }
        }
        let _ = policy::subscription_policy(&text);
    }

    #[test]
    fn fuzz_filter_policies_answer_any_text(
        text in prop_oneof![near_grammar(), filter_grammar(), ".*"],
        value in prop_oneof![near_grammar(), ".{0,8}"],
    ) {
        if let Ok(p) = filter_policy::parse(&text) {
            for kind in ["String", "Number", "String.Array"] {
                let _ = p.matches(&[MessageAttribute {
                    name: "level".into(),
                    data_type: kind.into(),
                    string_value: Some(value.clone()),
                    binary_base64: None,
                }]);
            }
        }
    }

    #[test]
    fn fuzz_arns_and_endpoints_answer_any_text(text in prop_oneof![near_grammar(), ".*"]) {
        let _ = checks::check_topic_arn("TopicArn", &text, "123456789012");
        let _ = checks::check_subscription_arn("SubscriptionArn", &text, "123456789012");
        for p in ["http", "https", "email", "email-json", &text] {
            let _ = checks::check_endpoint(p, Some(&text));
        }
    }

    #[test]
    fn fuzz_message_attributes_answer_any_text(
        name in prop_oneof![near_grammar(), ".{0,12}"],
        kind in prop_oneof![Just("String".to_string()), Just("Number".to_string()),
            Just("String.Array".to_string()), Just("Binary".to_string()), ".{0,8}"],
        value in prop_oneof![near_grammar(), ".*"],
    ) {
        let _ = message::attributes_json(&[MessageAttribute {
            name,
            data_type: kind,
            string_value: Some(value.clone()),
            binary_base64: Some(value),
        }]);
    }
}

#[test]
fn deep_nesting_is_refused_not_recursed() {
    for depth in [33, 1_000, 100_000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(message::structured(&text).is_err(), "depth {depth}");
        assert!(policy::topic_policy(&text).is_err(), "depth {depth}");
        assert!(filter_policy::parse(&text).is_err(), "depth {depth}");
        let text = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert!(message::structured(&text).is_err(), "depth {depth}");
    }
}
