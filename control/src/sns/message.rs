//! What SNS sends: the JSON documents of a notification and of a subscription
//! confirmation (with the text they are signed over, SignatureVersion 2), the mails, and
//! the caller-facing parts of a message (`MessageStructure=json`, message attributes).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use state::sns::outbox::DeliveryRow;

/// The path the agent serves its signing certificate at.
pub const CERT_PATH: &str = "/sns/SimpleNotificationService-kec2.pem";

/// A delivery as it goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The body: SNS's JSON, or the message itself for raw delivery.
    pub body: String,
    /// SNS's HTTP headers (`x-amz-sns-message-type`, ...).
    pub headers: Vec<(&'static str, String)>,
    /// The subject of a mail.
    pub mail_subject: String,
}

/// The agent's URLs a document carries, under `base` (`http://HOST:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    /// The endpoint's base URL, without a trailing slash.
    pub base: String,
}

impl Urls {
    /// Where the signing certificate is.
    pub fn signing_cert(&self) -> String {
        format!("{}{CERT_PATH}", self.base)
    }

    /// The URL that confirms a subscription (an unsigned GET).
    pub fn subscribe(&self, topic_arn: &str, token: &str) -> String {
        format!(
            "{}/?Action=ConfirmSubscription&TopicArn={}&Token={}",
            self.base,
            encode(topic_arn),
            encode(token)
        )
    }

    /// The URL that ends a subscription.
    pub fn unsubscribe(&self, subscription_arn: &str) -> String {
        format!(
            "{}/?Action=Unsubscribe&SubscriptionArn={}",
            self.base,
            encode(subscription_arn)
        )
    }
}

/// `s` percent-encoded for a query string (everything but RFC 3986's unreserved set).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The confirmation's message text.
pub fn confirmation_text(topic_arn: &str) -> String {
    format!(
        "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, \
         visit the SubscribeURL included in this message."
    )
}

/// The text a document is signed over: each signed field's name and value on lines of their
/// own, in SNS's order (a notification's `Subject` only when it has one).
pub fn string_to_sign(doc: &Map<String, Value>) -> String {
    let fields: &[&str] = if doc.get("Type").and_then(Value::as_str) == Some("Notification") {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut text = String::new();
    for f in fields {
        if let Some(v) = doc.get(*f).and_then(Value::as_str) {
            text.push_str(f);
            text.push('\n');
            text.push_str(v);
            text.push('\n');
        }
    }
    text
}

/// SNS's JSON document for a delivery, signed with `sign` (which gives base64).
pub fn document(d: &DeliveryRow, urls: &Urls, sign: &dyn Fn(&str) -> String) -> Map<String, Value> {
    let s = |v: &str| Value::String(v.to_string());
    let mut doc = Map::new();
    doc.insert("Type".into(), s(&d.kind));
    doc.insert("MessageId".into(), s(&d.message_id));
    if d.kind == "Notification" {
        doc.insert("TopicArn".into(), s(&d.topic_arn));
        if let Some(subject) = &d.subject {
            doc.insert("Subject".into(), s(subject));
        }
        doc.insert("Message".into(), s(&d.message));
        doc.insert("Timestamp".into(), s(&d.timestamp));
    } else {
        let token = d.token.as_deref().unwrap_or("");
        doc.insert("Token".into(), s(token));
        doc.insert("TopicArn".into(), s(&d.topic_arn));
        doc.insert("Message".into(), s(&d.message));
        doc.insert(
            "SubscribeURL".into(),
            s(&urls.subscribe(&d.topic_arn, token)),
        );
        doc.insert("Timestamp".into(), s(&d.timestamp));
    }
    let signature = sign(&string_to_sign(&doc));
    doc.insert("SignatureVersion".into(), s("2"));
    doc.insert("Signature".into(), Value::String(signature));
    doc.insert("SigningCertURL".into(), s(&urls.signing_cert()));
    if d.kind == "Notification" {
        doc.insert(
            "UnsubscribeURL".into(),
            s(&urls.unsubscribe(&d.subscription_arn)),
        );
        if let Ok(Value::Object(a)) = serde_json::from_str::<Value>(&d.message_attributes)
            && !a.is_empty()
        {
            doc.insert("MessageAttributes".into(), Value::Object(a));
        }
    }
    doc
}

/// A delivery rendered for its protocol.
pub fn render(d: &DeliveryRow, urls: &Urls, sign: &dyn Fn(&str) -> String) -> Rendered {
    let mut headers = vec![
        ("x-amz-sns-message-type", d.kind.clone()),
        ("x-amz-sns-message-id", d.message_id.clone()),
        ("x-amz-sns-topic-arn", d.topic_arn.clone()),
    ];
    if d.kind == "Notification" {
        headers.push(("x-amz-sns-subscription-arn", d.subscription_arn.clone()));
    }
    headers.push(("Content-Type", "text/plain; charset=UTF-8".into()));
    let confirmation = d.kind != "Notification";
    let mail_subject = if confirmation {
        "AWS Notification - Subscription Confirmation".to_string()
    } else {
        d.subject
            .clone()
            .unwrap_or_else(|| "AWS Notification Message".to_string())
    };
    let body = if d.raw && !confirmation && d.protocol.starts_with("http") {
        headers.push(("x-amz-sns-rawdelivery", "true".into()));
        d.message.clone()
    } else if d.protocol == "email" {
        if confirmation {
            format!(
                "You have chosen to subscribe to the topic:\n{}\n\nTo confirm this subscription, \
                 click or visit the link below (If this was in error no action is necessary):\n{}\n",
                d.topic_arn,
                urls.subscribe(&d.topic_arn, d.token.as_deref().unwrap_or(""))
            )
        } else {
            format!(
                "{}\n\n--\nIf you wish to stop receiving notifications from this topic, please \
                 click or visit the link below to unsubscribe:\n{}\n",
                d.message,
                urls.unsubscribe(&d.subscription_arn)
            )
        }
    } else {
        Value::Object(document(d, urls, sign)).to_string()
    };
    Rendered {
        body,
        headers,
        mail_subject,
    }
}

/// Why a `MessageStructure=json` message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StructureError {
    /// Not a JSON object.
    #[error("Invalid parameter: Message Structure - JSON message body failed to parse")]
    Parse,
    /// No `default` entry.
    #[error("Invalid parameter: Message Structure - No default entry in JSON message body")]
    NoDefault,
    /// An entry that is not a string.
    #[error("Invalid parameter: Message Structure - the entry {0:?} is not a string")]
    NotString(String),
}

/// The messages per protocol of a `MessageStructure=json` message: a JSON object of
/// strings with a `default` entry.
pub fn structured(message: &str) -> Result<BTreeMap<String, String>, StructureError> {
    let v: Value = serde_json::from_str(message).map_err(|_| StructureError::Parse)?;
    let Value::Object(o) = v else {
        return Err(StructureError::Parse);
    };
    let mut out = BTreeMap::new();
    for (k, v) in o {
        match v {
            Value::String(s) => {
                out.insert(k, s);
            }
            _ => return Err(StructureError::NotString(k.chars().take(64).collect())),
        }
    }
    if !out.contains_key("default") {
        return Err(StructureError::NoDefault);
    }
    Ok(out)
}

/// A message attribute as a caller gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttribute {
    /// Its name.
    pub name: String,
    /// `String`, `String.Array`, `Number` or `Binary`, with an optional `.suffix`.
    pub data_type: String,
    /// The value of a string, array or number.
    pub string_value: Option<String>,
    /// The value of a binary, base64.
    pub binary_base64: Option<String>,
}

/// Why message attributes are refused (SNS's `ParameterValueInvalid`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// More than ten.
    #[error("Number of message attributes [{0}] exceeds the allowed maximum [10].")]
    TooMany(usize),
    /// A name of the wrong form.
    #[error(
        "The message attribute name '{0}' is invalid: it is 1 to 256 letters, digits, _, - and ., not starting with AWS. or Amazon. nor with or ending in a dot"
    )]
    Name(String),
    /// A data type other than SNS's.
    #[error(
        "The message attribute '{0}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
    )]
    Type(String),
    /// A value missing, or not of its type.
    #[error("The message attribute '{0}' with type '{1}' has an invalid value.")]
    Value(String, String),
}

/// The attributes as a notification's `MessageAttributes` shows them (`{"name": {"Type":
/// .., "Value": ..}}`), checked.
pub fn attributes_json(attributes: &[MessageAttribute]) -> Result<String, AttributeError> {
    if attributes.len() > 10 {
        return Err(AttributeError::TooMany(attributes.len()));
    }
    let mut out = Map::new();
    for a in attributes {
        let n = &a.name;
        let lower = n.to_ascii_lowercase();
        let fine_name = (1..=256).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !n.starts_with('.')
            && !n.ends_with('.')
            && !n.contains("..")
            && !lower.starts_with("aws.")
            && !lower.starts_with("amazon.");
        if !fine_name {
            return Err(AttributeError::Name(n.chars().take(256).collect()));
        }
        let base = a.data_type.split('.').next().unwrap_or("");
        let custom_fine = a.data_type.len() <= 256;
        let bad_value = || AttributeError::Value(n.clone(), a.data_type.clone());
        let value = match base {
            "String" | "Number" if custom_fine => {
                let v = a.string_value.as_deref().ok_or_else(bad_value)?;
                if base == "Number" && v.parse::<f64>().map_or(true, |x| !x.is_finite()) {
                    return Err(bad_value());
                }
                if a.data_type.starts_with("String.Array")
                    && !serde_json::from_str::<Value>(v).is_ok_and(|x| x.is_array())
                {
                    return Err(bad_value());
                }
                v.to_string()
            }
            "Binary" if custom_fine => a.binary_base64.clone().ok_or_else(bad_value)?,
            _ => return Err(AttributeError::Type(n.clone())),
        };
        let kind = if base == "Binary" {
            "Binary"
        } else {
            &a.data_type
        };
        out.insert(n.clone(), serde_json::json!({"Type": kind, "Value": value}));
    }
    Ok(Value::Object(out).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str) -> DeliveryRow {
        DeliveryRow {
            seq: 1,
            kind: kind.into(),
            message_id: "7a3c".into(),
            topic_arn: "arn:aws:sns:local-1:123456789012:t".into(),
            subscription_arn: "arn:aws:sns:local-1:123456789012:t:5e1d".into(),
            protocol: "http".into(),
            endpoint: "http://127.0.0.1:9/".into(),
            origin: "http://127.0.0.1:9".into(),
            subject: Some("Hi".into()),
            message: "hello".into(),
            token: Some("tok".into()),
            raw: false,
            message_attributes: r#"{"a":{"Type":"String","Value":"1"}}"#.into(),
            timestamp: "2026-12-07T00:00:00.000Z".into(),
            retry_policy: "{}".into(),
            attempts: 0,
            next_attempt_ms: 0,
        }
    }

    fn urls() -> Urls {
        Urls {
            base: "http://127.0.0.1:8787".into(),
        }
    }

    #[test]
    fn a_notification_is_signed_over_sns_fields_in_sns_order() {
        let doc = document(&row("Notification"), &urls(), &|t| format!("sig({t})"));
        assert_eq!(
            doc["Signature"],
            "sig(Message\nhello\nMessageId\n7a3c\nSubject\nHi\nTimestamp\n2026-12-07T00:00:00.000Z\nTopicArn\narn:aws:sns:local-1:123456789012:t\nType\nNotification\n)"
        );
        assert_eq!(doc["SignatureVersion"], "2");
        assert_eq!(
            doc["SigningCertURL"],
            "http://127.0.0.1:8787/sns/SimpleNotificationService-kec2.pem"
        );
        assert_eq!(
            doc["UnsubscribeURL"],
            "http://127.0.0.1:8787/?Action=Unsubscribe&SubscriptionArn=arn%3Aaws%3Asns%3Alocal-1%3A123456789012%3At%3A5e1d"
        );
        assert_eq!(doc["MessageAttributes"]["a"]["Value"], "1");
    }

    #[test]
    fn a_confirmation_carries_its_token_and_subscribe_url() {
        let doc = document(&row("SubscriptionConfirmation"), &urls(), &|_| "s".into());
        assert_eq!(doc["Token"], "tok");
        assert_eq!(
            doc["SubscribeURL"],
            "http://127.0.0.1:8787/?Action=ConfirmSubscription&TopicArn=arn%3Aaws%3Asns%3Alocal-1%3A123456789012%3At&Token=tok"
        );
        assert!(doc.get("UnsubscribeURL").is_none());
        let text = string_to_sign(&doc);
        assert!(text.starts_with("Message\n") && text.contains("\nToken\ntok\n"));
    }

    #[test]
    fn raw_delivery_sends_the_message_alone_with_sns_headers() {
        let mut d = row("Notification");
        d.raw = true;
        let r = render(&d, &urls(), &|_| "s".into());
        assert_eq!(r.body, "hello");
        assert!(
            r.headers
                .contains(&("x-amz-sns-rawdelivery", "true".into()))
        );
        assert!(
            r.headers
                .contains(&("x-amz-sns-subscription-arn", d.subscription_arn.clone()))
        );
        d.protocol = "email".into();
        let r = render(&d, &urls(), &|_| "s".into());
        assert!(r.body.starts_with("hello\n\n--\n"));
        assert_eq!(r.mail_subject, "Hi");
    }

    #[test]
    fn structured_messages_need_a_default_string() {
        let m = structured(r#"{"default":"d","email":"e"}"#).unwrap();
        assert_eq!(m["email"], "e");
        assert_eq!(structured("{").unwrap_err(), StructureError::Parse);
        assert_eq!(structured("[1]").unwrap_err(), StructureError::Parse);
        assert_eq!(
            structured(r#"{"http":"h"}"#).unwrap_err(),
            StructureError::NoDefault
        );
        assert!(matches!(
            structured(r#"{"default":1}"#).unwrap_err(),
            StructureError::NotString(_)
        ));
    }

    #[test]
    fn message_attributes_are_checked_and_shown_as_sns_does() {
        let a = |name: &str, t: &str, v: &str| MessageAttribute {
            name: name.into(),
            data_type: t.into(),
            string_value: Some(v.into()),
            binary_base64: None,
        };
        let json =
            attributes_json(&[a("level", "String", "high"), a("n", "Number", "1.5")]).unwrap();
        assert_eq!(
            json,
            r#"{"level":{"Type":"String","Value":"high"},"n":{"Type":"Number","Value":"1.5"}}"#
        );
        assert!(attributes_json(&[a("AWS.x", "String", "v")]).is_err());
        assert!(attributes_json(&[a("n", "Number", "one")]).is_err());
        assert!(attributes_json(&[a("n", "Date", "x")]).is_err());
        assert!(attributes_json(&[a("l", "String.Array", "nope")]).is_err());
        assert!(attributes_json(&vec![a("x", "String", "v"); 11]).is_err());
    }
}
