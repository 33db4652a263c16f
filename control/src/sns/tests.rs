//! SNS's commands against a database alone: what a caller sees, and that a refused request
//! changes nothing.

use std::collections::BTreeMap;

use rusqlite::Connection;
use state::sns::outbox;

use super::checks::topic_arn;
use super::publish::{PublishRequest, publish_message};
use super::subscriptions::{self, PENDING_LISTED};
use super::{tags, topics};
use crate::Refusal;

const ACCOUNT: &str = "123456789012";

fn conn() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    state::migrations::migrate(&mut c).unwrap();
    c
}

fn no_attributes() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn topic(c: &Connection, name: &str) -> String {
    topics::create_topic(c, ACCOUNT, name, &no_attributes(), &[], 1).unwrap()
}

/// A confirmed http subscription of `topic` to `url`; gives its ARN.
fn confirmed(c: &Connection, topic: &str, url: &str, attributes: &[(&str, &str)]) -> String {
    let attributes = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let s = subscriptions::subscribe(c, ACCOUNT, topic, "http", Some(url), &attributes, 1).unwrap();
    let row = state::sns::subscription_by_arn(c, &s.arn).unwrap().unwrap();
    subscriptions::confirm_subscription(c, ACCOUNT, topic, &row.token).unwrap();
    s.arn
}

#[test]
fn create_topic_is_idempotent_by_name_and_refuses_other_attributes() {
    let c = conn();
    let attrs = BTreeMap::from([("DisplayName".to_string(), "Ops".to_string())]);
    let arn = topics::create_topic(&c, ACCOUNT, "ops", &attrs, &[], 1).unwrap();
    assert_eq!(arn, "arn:aws:sns:local-1:123456789012:ops");
    assert_eq!(
        topics::create_topic(&c, ACCOUNT, "ops", &attrs, &[], 2).unwrap(),
        arn
    );
    let other = BTreeMap::from([("DisplayName".to_string(), "Other".to_string())]);
    let e = topics::create_topic(&c, ACCOUNT, "ops", &other, &[], 3).unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"));
    for bad in ["", "has space", "dots.fifo", &"x".repeat(257)] {
        let e = topics::create_topic(&c, ACCOUNT, bad, &no_attributes(), &[], 1).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameter"), "{bad:?}");
    }
    let e = topics::create_topic(
        &c,
        ACCOUNT,
        "t",
        &BTreeMap::from([("Colour".to_string(), "red".to_string())]),
        &[],
        1,
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"));
    let page = topics::list_topics(&c, None).unwrap();
    assert_eq!(
        page.items,
        vec![arn.clone()],
        "nothing made by the refusals"
    );
    let a = topics::get_topic_attributes(&c, ACCOUNT, &arn).unwrap();
    assert_eq!(a["DisplayName"], "Ops");
    assert_eq!(a["Owner"], ACCOUNT);
    assert_eq!(a["SubscriptionsPending"], "0");
}

#[test]
fn unknown_topics_are_not_found_and_foreign_ones_not_authorized() {
    let c = conn();
    let ghost = topic_arn(ACCOUNT, "ghost");
    let e = topics::get_topic_attributes(&c, ACCOUNT, &ghost).unwrap_err();
    assert_eq!(e.code(), Some("NotFound"));
    let e = subscriptions::subscribe(
        &c,
        ACCOUNT,
        &ghost,
        "http",
        Some("http://x/"),
        &no_attributes(),
        1,
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("NotFound"));
    let req = PublishRequest {
        topic_arn: Some(ghost.clone()),
        message: "m".into(),
        ..Default::default()
    };
    assert_eq!(
        publish_message(&c, ACCOUNT, &req, 1).unwrap_err().code(),
        Some("NotFound")
    );
    let foreign = "arn:aws:sns:local-1:999999999999:t";
    let e = topics::get_topic_attributes(&c, ACCOUNT, foreign).unwrap_err();
    assert_eq!(e.code(), Some("AuthorizationError"));
    let e = topics::get_topic_attributes(&c, ACCOUNT, "not-an-arn").unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"));
    // DeleteTopic of a topic that does not exist is no error, as on SNS.
    topics::delete_topic(&c, ACCOUNT, &ghost).unwrap();
}

#[test]
fn subscribe_sends_a_confirmation_and_lists_pending_until_confirmed() {
    let c = conn();
    let t = topic(&c, "alerts");
    let s = subscriptions::subscribe(
        &c,
        ACCOUNT,
        &t,
        "http",
        Some("http://127.0.0.1:9/hook"),
        &no_attributes(),
        5,
    )
    .unwrap();
    assert!(!s.confirmed);
    let due = outbox::due(&c, 5, 100, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, "SubscriptionConfirmation");
    let token = due[0].token.clone().unwrap();
    assert_eq!(token.len(), 128);
    let (rows, _) = subscriptions::list_subscriptions(&c, ACCOUNT, None, None).unwrap();
    assert_eq!(subscriptions::listed_arn(&rows[0]), PENDING_LISTED);
    // Subscribing the same endpoint again gives the same subscription and a new confirmation.
    let again = subscriptions::subscribe(
        &c,
        ACCOUNT,
        &t,
        "http",
        Some("http://127.0.0.1:9/hook"),
        &no_attributes(),
        6,
    )
    .unwrap();
    assert_eq!(again.arn, s.arn);
    assert_eq!(outbox::len(&c).unwrap(), 2);
    let e = subscriptions::confirm_subscription(&c, ACCOUNT, &t, "wrong").unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"));
    let arn = subscriptions::confirm_subscription(&c, ACCOUNT, &t, &token).unwrap();
    assert_eq!(arn, s.arn);
    let (rows, _) = subscriptions::list_subscriptions(&c, ACCOUNT, Some(&t), None).unwrap();
    assert_eq!(subscriptions::listed_arn(&rows[0]), s.arn);
    let a = subscriptions::get_subscription_attributes(&c, ACCOUNT, &s.arn).unwrap();
    assert_eq!(a["PendingConfirmation"], "false");
    assert_eq!(a["RawMessageDelivery"], "false");
    let e = subscriptions::get_subscription_attributes(&c, ACCOUNT, PENDING_LISTED).unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"));
}

#[test]
fn bad_protocols_endpoints_and_attributes_are_invalid_parameter_and_change_nothing() {
    let c = conn();
    let t = topic(&c, "t");
    let raw = |v: &str| BTreeMap::from([("RawMessageDelivery".to_string(), v.to_string())]);
    for (protocol, endpoint, attributes) in [
        (
            "sqs",
            Some("arn:aws:sqs:local-1:123456789012:q"),
            no_attributes(),
        ),
        ("http", Some("ftp://x/"), no_attributes()),
        ("email", Some("nobody"), no_attributes()),
        ("http", None, no_attributes()),
        ("http", Some("http://x/"), raw("maybe")),
        ("email", Some("ops@example.com"), raw("true")),
        (
            "http",
            Some("http://x/"),
            BTreeMap::from([("FilterPolicy".to_string(), r#"{"a": "x"}"#.to_string())]),
        ),
    ] {
        let e = subscriptions::subscribe(&c, ACCOUNT, &t, protocol, endpoint, &attributes, 1)
            .unwrap_err();
        assert_eq!(
            e.code(),
            Some("InvalidParameter"),
            "{protocol} {endpoint:?}"
        );
    }
    assert_eq!(outbox::len(&c).unwrap(), 0);
    let (rows, _) = subscriptions::list_subscriptions(&c, ACCOUNT, None, None).unwrap();
    assert!(rows.is_empty());
}

#[test]
fn publish_makes_one_delivery_per_confirmed_subscription_with_its_protocol_message() {
    let c = conn();
    let t = topic(&c, "t");
    let plain = confirmed(&c, &t, "http://127.0.0.1:9/a", &[]);
    let raw = confirmed(
        &c,
        &t,
        "http://127.0.0.1:9/b",
        &[("RawMessageDelivery", "true")],
    );
    subscriptions::subscribe(
        &c,
        ACCOUNT,
        &t,
        "http",
        Some("http://127.0.0.1:9/pending"),
        &no_attributes(),
        1,
    )
    .unwrap();
    for d in outbox::due(&c, i64::MAX, 100, 100).unwrap() {
        outbox::remove(&c, d.seq).unwrap();
    }
    let req = PublishRequest {
        topic_arn: Some(t.clone()),
        subject: Some("Hi".into()),
        message: r#"{"default":"plain","http":"for http"}"#.into(),
        message_structure: Some("json".into()),
        ..Default::default()
    };
    let (id, n) = publish_message(&c, ACCOUNT, &req, 10).unwrap();
    assert_eq!(n, 2, "the pending subscription gets nothing");
    let due = outbox::due(&c, 10, 100, 10).unwrap();
    assert!(
        due.iter()
            .all(|d| d.message_id == id && d.message == "for http")
    );
    let by_sub: BTreeMap<_, _> = due
        .iter()
        .map(|d| (d.subscription_arn.clone(), d.raw))
        .collect();
    assert_eq!(by_sub, BTreeMap::from([(plain, false), (raw, true)]));
}

#[test]
fn refused_publishes_say_why_with_sns_codes() {
    let c = conn();
    let t = topic(&c, "t");
    confirmed(&c, &t, "http://127.0.0.1:9/a", &[]);
    let before = outbox::len(&c).unwrap();
    let base = PublishRequest {
        topic_arn: Some(t.clone()),
        message: "m".into(),
        ..Default::default()
    };
    let cases = [
        PublishRequest {
            message: String::new(),
            ..base.clone()
        },
        PublishRequest {
            message: "x".repeat(262_145),
            ..base.clone()
        },
        PublishRequest {
            subject: Some("line\nbreak".into()),
            ..base.clone()
        },
        PublishRequest {
            message_structure: Some("json".into()),
            message: "not json".into(),
            ..base.clone()
        },
        PublishRequest {
            message_structure: Some("json".into()),
            message: r#"{"http":"x"}"#.into(),
            ..base.clone()
        },
        PublishRequest {
            message_structure: Some("xml".into()),
            ..base.clone()
        },
        PublishRequest {
            topic_arn: None,
            ..base.clone()
        },
        PublishRequest {
            phone_number: Some("+15555550100".into()),
            ..base.clone()
        },
        PublishRequest {
            message_group_id: Some("g".into()),
            ..base.clone()
        },
    ];
    for req in cases {
        let e = publish_message(&c, ACCOUNT, &req, 1).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameter"), "{e}");
    }
    let bad_attr = PublishRequest {
        attributes: vec![super::message::MessageAttribute {
            name: "n".into(),
            data_type: "Number".into(),
            string_value: Some("NaN?".into()),
            binary_base64: None,
        }],
        ..base
    };
    let e = publish_message(&c, ACCOUNT, &bad_attr, 1).unwrap_err();
    assert_eq!(e.code(), Some("ParameterValueInvalid"));
    assert_eq!(outbox::len(&c).unwrap(), before, "nothing queued");
}

#[test]
fn unsubscribe_and_delete_topic_drop_pending_deliveries() {
    let c = conn();
    let t = topic(&c, "t");
    let s = confirmed(&c, &t, "http://127.0.0.1:9/a", &[]);
    let req = PublishRequest {
        topic_arn: Some(t.clone()),
        message: "m".into(),
        ..Default::default()
    };
    publish_message(&c, ACCOUNT, &req, 1).unwrap();
    subscriptions::unsubscribe(&c, ACCOUNT, &s).unwrap();
    assert!(
        outbox::due(&c, i64::MAX, 100, 10)
            .unwrap()
            .iter()
            .all(|d| d.subscription_arn != s)
    );
    subscriptions::unsubscribe(&c, ACCOUNT, &s).unwrap();
    confirmed(&c, &t, "http://127.0.0.1:9/b", &[]);
    publish_message(&c, ACCOUNT, &req, 2).unwrap();
    topics::delete_topic(&c, ACCOUNT, &t).unwrap();
    assert_eq!(outbox::len(&c).unwrap(), 0);
    let e = topics::get_topic_attributes(&c, ACCOUNT, &t).unwrap_err();
    assert_eq!(e.code(), Some("NotFound"));
}

#[test]
fn attributes_are_set_checked_and_cleared() {
    let c = conn();
    let t = topic(&c, "t");
    topics::set_topic_attribute(&c, ACCOUNT, &t, "DisplayName", Some("Ops")).unwrap();
    let policy = r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":1,"minDelayTarget":1,"maxDelayTarget":1}}}"#;
    topics::set_topic_attribute(&c, ACCOUNT, &t, "DeliveryPolicy", Some(policy)).unwrap();
    let a = topics::get_topic_attributes(&c, ACCOUNT, &t).unwrap();
    assert_eq!(a["DisplayName"], "Ops");
    assert!(a["EffectiveDeliveryPolicy"].contains("\"numRetries\":1"));
    for (name, value) in [
        ("DeliveryPolicy", "{"),
        ("SignatureVersion", "1"),
        ("Colour", "red"),
        ("Policy", "[]"),
    ] {
        let e = topics::set_topic_attribute(&c, ACCOUNT, &t, name, Some(value)).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameter"), "{name}");
    }
    let s = confirmed(&c, &t, "http://127.0.0.1:9/a", &[]);
    subscriptions::set_subscription_attribute(&c, ACCOUNT, &s, "RawMessageDelivery", Some("TRUE"))
        .unwrap();
    let a = subscriptions::get_subscription_attributes(&c, ACCOUNT, &s).unwrap();
    assert_eq!(a["RawMessageDelivery"], "true");
    let e = subscriptions::set_subscription_attribute(
        &c,
        ACCOUNT,
        &s,
        "RawMessageDelivery",
        Some("yes"),
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"));
    let ghost = format!("{t}:00000000-0000-4000-8000-000000000000");
    let e = subscriptions::set_subscription_attribute(
        &c,
        ACCOUNT,
        &ghost,
        "RawMessageDelivery",
        Some("true"),
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("NotFound"));
    topics::set_topic_attribute(&c, ACCOUNT, &t, "DisplayName", None).unwrap();
    let a = topics::get_topic_attributes(&c, ACCOUNT, &t).unwrap();
    assert_eq!(a["DisplayName"], "");
}

#[test]
fn tags_are_kept_per_topic_within_fifty() {
    let c = conn();
    let t = topic(&c, "t");
    tags::tag_resource(&c, ACCOUNT, &t, &[("team".into(), "ops".into())]).unwrap();
    assert_eq!(
        tags::list_tags(&c, ACCOUNT, &t).unwrap(),
        vec![("team".into(), "ops".into())]
    );
    let many: Vec<(String, String)> = (0..50).map(|i| (format!("k{i}"), String::new())).collect();
    let e = tags::tag_resource(&c, ACCOUNT, &t, &many).unwrap_err();
    assert_eq!(e.code(), Some("TagLimitExceeded"));
    assert_eq!(
        tags::list_tags(&c, ACCOUNT, &t).unwrap().len(),
        1,
        "all or none"
    );
    tags::untag_resource(&c, ACCOUNT, &t, &["team".into()]).unwrap();
    assert!(tags::list_tags(&c, ACCOUNT, &t).unwrap().is_empty());
    let e = tags::list_tags(&c, ACCOUNT, &topic_arn(ACCOUNT, "ghost")).unwrap_err();
    assert_eq!(e.code(), Some("ResourceNotFound"));
}

#[test]
fn topics_page_by_one_hundred_and_refuse_forged_tokens() {
    let c = conn();
    for i in 0..150 {
        topic(&c, &format!("t{i:03}"));
    }
    let first = topics::list_topics(&c, None).unwrap();
    assert_eq!(first.items.len(), 100);
    let second = topics::list_topics(&c, first.next_token.as_deref()).unwrap();
    assert_eq!(second.items.len(), 50);
    assert_eq!(second.next_token, None);
    let e = topics::list_topics(&c, Some("forged")).unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"));
}

#[test]
fn a_filter_policy_keeps_messages_whose_attributes_do_not_match_from_its_subscription() {
    let c = conn();
    let t = topic(&c, "t");
    let all = confirmed(&c, &t, "http://127.0.0.1:9/all", &[]);
    let high = confirmed(
        &c,
        &t,
        "http://127.0.0.1:9/high",
        &[("FilterPolicy", r#"{"level": ["high"]}"#)],
    );
    let a = subscriptions::get_subscription_attributes(&c, ACCOUNT, &high).unwrap();
    assert_eq!(a["FilterPolicyScope"], "MessageAttributes");
    for d in outbox::due(&c, i64::MAX, 100, 100).unwrap() {
        outbox::remove(&c, d.seq).unwrap();
    }
    let with_level = |level: &str| PublishRequest {
        topic_arn: Some(t.clone()),
        message: "m".into(),
        attributes: vec![super::message::MessageAttribute {
            name: "level".into(),
            data_type: "String".into(),
            string_value: Some(level.into()),
            binary_base64: None,
        }],
        ..Default::default()
    };
    let (_, n) = publish_message(&c, ACCOUNT, &with_level("low"), 1).unwrap();
    assert_eq!(n, 1);
    let (_, n) = publish_message(&c, ACCOUNT, &with_level("high"), 2).unwrap();
    assert_eq!(n, 2);
    let to: Vec<String> = outbox::due(&c, i64::MAX, 100, 100)
        .unwrap()
        .into_iter()
        .map(|d| d.subscription_arn)
        .collect();
    assert_eq!(to.iter().filter(|s| **s == all).count(), 2);
    assert_eq!(to.iter().filter(|s| **s == high).count(), 1);
    let e = subscriptions::set_subscription_attribute(
        &c,
        ACCOUNT,
        &high,
        "FilterPolicyScope",
        Some("MessageBody"),
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameter"));
}
