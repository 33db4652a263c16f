//! TagResource, UntagResource and ListTagsForResource for alarms (named by their ARN), and
//! the checks every alarm's tags get: keys not starting with `aws:`, at most 50 per alarm.

use std::collections::BTreeMap;

use state::metrics::{MetricsStore, StoreError};

use super::config::{Alarm, REGION};
use crate::Refusal;

/// The most tags an alarm has.
pub const MAX_TAGS: usize = 50;

/// Why a tag command is refused.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// A malformed ARN, a reserved key or too many tags.
    #[error("{0}")]
    Invalid(String),
    /// No alarm has that ARN.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error("the alarm store failed")]
    Store(#[from] StoreError),
}

impl Refusal for TagError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Invalid(_) => "InvalidParameterValue",
            Self::NotFound(_) => "ResourceNotFoundException",
            Self::Store(_) => return None,
        })
    }
}

/// Checks tags as every alarm's are checked: no `aws:` keys, at most [`MAX_TAGS`].
pub fn check_tags(tags: &[(String, String)]) -> Result<(), String> {
    if let Some((k, _)) = tags
        .iter()
        .find(|(k, _)| k.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(format!(
            "The tag key {k} is invalid: keys starting with aws: are reserved."
        ));
    }
    let distinct: BTreeMap<&str, &str> =
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if distinct.len() > MAX_TAGS {
        return Err(format!(
            "A resource has at most {MAX_TAGS} tags, not {}.",
            distinct.len()
        ));
    }
    Ok(())
}

/// The alarm `arn` names in `account`, read.
fn alarm_of(store: &MetricsStore, account: &str, arn: &str) -> Result<Alarm, TagError> {
    let prefix = format!("arn:aws:cloudwatch:{REGION}:{account}:alarm:");
    let Some(name) = arn.strip_prefix(&prefix) else {
        if arn.starts_with("arn:aws:cloudwatch:") {
            return Err(TagError::NotFound(format!(
                "The resource {arn} does not exist."
            )));
        }
        return Err(TagError::Invalid(format!(
            "The value {arn} for parameter ResourceARN is invalid: it is an alarm's ARN, {prefix}<name>."
        )));
    };
    let row = store
        .alarm(name)?
        .ok_or_else(|| TagError::NotFound(format!("The resource {arn} does not exist.")))?;
    Alarm::from_row(&row)
        .ok_or_else(|| TagError::NotFound(format!("The resource {arn} does not exist.")))
}

fn save(store: &MetricsStore, alarm: &Alarm, arn: &str) -> Result<(), TagError> {
    let config = serde_json::to_string(&alarm.config).unwrap_or_default();
    if !store.set_alarm_config(&alarm.config.name, &config)? {
        return Err(TagError::NotFound(format!(
            "The resource {arn} does not exist."
        )));
    }
    Ok(())
}

/// TagResource: adds `tags`, replacing the values of keys it has.
pub fn tag_resource(
    store: &MetricsStore,
    account: &str,
    arn: &str,
    tags: &[(String, String)],
) -> Result<(), TagError> {
    let mut alarm = alarm_of(store, account, arn)?;
    let mut merged: BTreeMap<String, String> = alarm.config.tags.iter().cloned().collect();
    merged.extend(tags.iter().cloned());
    let merged: Vec<(String, String)> = merged.into_iter().collect();
    check_tags(&merged).map_err(TagError::Invalid)?;
    alarm.config.tags = merged;
    save(store, &alarm, arn)
}

/// UntagResource: removes the keys named (keys it does not have are passed over).
pub fn untag_resource(
    store: &MetricsStore,
    account: &str,
    arn: &str,
    keys: &[String],
) -> Result<(), TagError> {
    let mut alarm = alarm_of(store, account, arn)?;
    alarm.config.tags.retain(|(k, _)| !keys.contains(k));
    save(store, &alarm, arn)
}

/// ListTagsForResource: the alarm's tags, by key.
pub fn list_tags(
    store: &MetricsStore,
    account: &str,
    arn: &str,
) -> Result<Vec<(String, String)>, TagError> {
    let alarm = alarm_of(store, account, arn)?;
    let mut tags = alarm.config.tags;
    tags.sort();
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::alarms::config::alarm_arn;
    use crate::monitoring::alarms::put::{PutMetricAlarm, put_metric_alarm};
    use crate::monitoring::test_store;

    const ACCOUNT: &str = "123456789012";

    #[test]
    fn tags_are_added_replaced_removed_and_checked() {
        let (_d, s) = test_store();
        let p = PutMetricAlarm {
            name: "cpu".into(),
            namespace: Some("MyApp".into()),
            metric_name: Some("Load".into()),
            statistic: Some("Average".into()),
            period: Some(60),
            evaluation_periods: Some(1),
            threshold: Some(1.0),
            comparison_operator: Some("GreaterThanThreshold".into()),
            tags: vec![("team".into(), "web".into())],
            ..Default::default()
        };
        put_metric_alarm(&s, &p, 1000).unwrap();
        let arn = alarm_arn(ACCOUNT, "cpu");
        let before = s.alarm("cpu").unwrap().unwrap().config_updated_ms;
        tag_resource(
            &s,
            ACCOUNT,
            &arn,
            &[("team".into(), "db".into()), ("env".into(), "prod".into())],
        )
        .unwrap();
        assert_eq!(
            list_tags(&s, ACCOUNT, &arn).unwrap(),
            vec![
                ("env".to_string(), "prod".to_string()),
                ("team".to_string(), "db".to_string())
            ]
        );
        assert_eq!(s.alarm("cpu").unwrap().unwrap().config_updated_ms, before);
        untag_resource(&s, ACCOUNT, &arn, &["env".into(), "nope".into()]).unwrap();
        assert_eq!(list_tags(&s, ACCOUNT, &arn).unwrap().len(), 1);
        let e = tag_resource(&s, ACCOUNT, &arn, &[("aws:x".into(), "1".into())]).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterValue"));
        let many: Vec<(String, String)> =
            (0..50).map(|i| (format!("k{i}"), String::new())).collect();
        let e = tag_resource(&s, ACCOUNT, &arn, &many).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterValue"));
        assert_eq!(
            list_tags(&s, ACCOUNT, &arn).unwrap().len(),
            1,
            "nothing changed"
        );
        let e = list_tags(&s, ACCOUNT, &alarm_arn(ACCOUNT, "ghost")).unwrap_err();
        assert_eq!(e.code(), Some("ResourceNotFoundException"));
        let e = list_tags(&s, ACCOUNT, "not-an-arn").unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterValue"));
    }
}
