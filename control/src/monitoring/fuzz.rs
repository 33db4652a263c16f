//! The parsers a CloudWatch caller feeds, fed garbage: metric math expressions, dashboard
//! bodies, statistic names and composite alarm rules. Each must answer (a value or an error), never panic, and
//! refuse nesting past its bound rather than recurse without one. `PROPTEST_CASES` raises
//! the count (scripts/test.sh runs 10,000).

use proptest::prelude::*;

use super::alarms::rule;
use super::dashboard_body;
use super::metric_math;
use super::statistics::Stat;

/// Strings made mostly of what the grammars use, so that the parsers get past their first
/// token.
fn near_grammar() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("m1".to_string()),
            Just("METRICS()".to_string()),
            Just("SUM(".to_string()),
            Just("AVG(".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just(",".to_string()),
            Just("{\"widgets\":[".to_string()),
            Just("{\"type\":\"metric\",\"properties\":{".to_string()),
            Just("}".to_string()),
            Just("p99.9".to_string()),
            Just("ALARM(\"cpu\")".to_string()),
            Just("OK(".to_string()),
            Just("INSUFFICIENT_DATA".to_string()),
            Just(" AND ".to_string()),
            Just(" OR ".to_string()),
            Just("NOT ".to_string()),
            Just("TRUE".to_string()),
            Just("\"".to_string()),
            "[-+*/ .0-9a-zA-Z\"':{}]{0,4}",
        ],
        0..64,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn fuzz_metric_math_answers_any_text(text in prop_oneof![near_grammar(), ".*"]) {
        let _ = metric_math::parse(&text);
    }

    #[test]
    fn fuzz_dashboard_bodies_answer_any_text(text in prop_oneof![near_grammar(), ".*"]) {
        let _ = dashboard_body::check(&text);
    }

    #[test]
    fn fuzz_composite_rules_answer_any_text(text in prop_oneof![near_grammar(), ".*"]) {
        if let Ok(r) = rule::parse(&text) {
            // A rule that parses evaluates, whatever the children's states.
            let _ = r.holds(&|_| None);
            prop_assert!(r.alarms().len() <= rule::MAX_ALARMS);
        }
    }

    #[test]
    fn fuzz_statistic_names_answer_any_text(text in prop_oneof![near_grammar(), ".{0,12}"]) {
        let _ = Stat::parse(&text);
    }
}

#[test]
fn deep_nesting_is_refused_not_recursed() {
    for depth in [33, 1_000, 100_000] {
        let text = format!("{}m1{}", "(".repeat(depth), ")".repeat(depth));
        assert!(metric_math::parse(&text).is_err(), "depth {depth}");
        let body = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        assert!(!dashboard_body::check(&body).is_empty(), "depth {depth}");
        let rule_text = format!("{}TRUE{}", "(".repeat(depth), ")".repeat(depth));
        assert!(rule::parse(&rule_text).is_err(), "depth {depth}");
        assert!(rule::parse(&"NOT ".repeat(depth)).is_err(), "depth {depth}");
    }
}
