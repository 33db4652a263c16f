//! The alarm operations as `control::monitoring::alarms`' commands: PutMetricAlarm,
//! PutCompositeAlarm, DescribeAlarms, DescribeAlarmsForMetric, DescribeAlarmHistory,
//! SetAlarmState (whose change runs the new state's actions, as CloudWatch runs them),
//! DeleteAlarms, EnableAlarmActions and DisableAlarmActions; TagResource, UntagResource and
//! ListTagsForResource on alarms.

use control::monitoring::alarms::commands::{
    self, AlarmsForMetric, DescribeAlarms, DescribeHistory,
};
use control::monitoring::alarms::config::{
    Alarm, AlarmKind, AlarmQuery, QueryMetric, StateValue as State, alarm_arn,
};
use control::monitoring::alarms::{evaluator, put, tags};
use serde_json::Value;
use shapes::Empty;
use shapes::cloudwatch::{
    AlarmHistoryItem, AlarmType, ComparisonOperator, CompositeAlarm, DescribeAlarmHistoryOutput,
    DescribeAlarmsForMetricOutput, DescribeAlarmsOutput, Dimension, HistoryItemType,
    ListTagsForResourceOutput, Metric, MetricAlarm, MetricDataQuery, MetricStat, ScanBy,
    StandardUnit, StateValue, Statistic, Tag, TagResourceOutput, UntagResourceOutput, ops,
};

use super::{pairs, refused};
use crate::errors::ApiError;
use crate::operation::{input, output};
use crate::{Call, Reply};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn time(ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(ms)
}

fn tags(t: Option<Vec<Tag>>) -> Vec<(String, String)> {
    t.unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect()
}

fn query(q: MetricDataQuery) -> AlarmQuery {
    AlarmQuery {
        id: q.id,
        metric: q.metric_stat.map(|s| QueryMetric {
            namespace: s.metric.namespace,
            metric_name: s.metric.metric_name,
            dimensions: pairs(s.metric.dimensions),
            period: s.period,
            stat: s.stat,
            unit: s.unit.map(|u| u.as_str().to_string()),
        }),
        expression: q.expression,
        label: q.label,
        return_data: q.return_data,
        period: q.period,
    }
}

/// PutMetricAlarm.
pub(super) fn put_metric_alarm(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::PutMetricAlarm>(value)?;
    let unsupported = [
        ("EvaluationWindow", r.evaluation_window.is_some()),
        ("WarmUpConfiguration", r.warm_up_configuration.is_some()),
        ("EvaluationCriteria", r.evaluation_criteria.is_some()),
        ("EvaluationInterval", r.evaluation_interval.is_some()),
        ("ActionConfiguration", r.action_configuration.is_some()),
    ]
    .into_iter()
    .find_map(|(n, given)| given.then_some(n));
    let command = put::PutMetricAlarm {
        name: r.alarm_name,
        description: r.alarm_description,
        actions_enabled: r.actions_enabled,
        ok_actions: r.ok_actions.unwrap_or_default(),
        alarm_actions: r.alarm_actions.unwrap_or_default(),
        insufficient_data_actions: r.insufficient_data_actions.unwrap_or_default(),
        namespace: r.namespace,
        metric_name: r.metric_name,
        dimensions: pairs(r.dimensions),
        statistic: r.statistic.map(|s| s.as_str().to_string()),
        extended_statistic: r.extended_statistic,
        metrics: r
            .metrics
            .unwrap_or_default()
            .into_iter()
            .map(query)
            .collect(),
        period: r.period,
        unit: r.unit.map(|u| u.as_str().to_string()),
        evaluation_periods: r.evaluation_periods,
        datapoints_to_alarm: r.datapoints_to_alarm,
        threshold: r.threshold,
        comparison_operator: r.comparison_operator.map(|o| o.as_str().to_string()),
        treat_missing_data: r.treat_missing_data,
        evaluate_low_sample_count_percentile: r.evaluate_low_sample_count_percentile,
        threshold_metric_id: r.threshold_metric_id,
        tags: tags(r.tags),
        unsupported,
    };
    put::put_metric_alarm(&c.st.plane.metrics, &command, now_ms()).map_err(|e| refused(&e))?;
    output::<ops::PutMetricAlarm>(Empty {})
}

/// PutCompositeAlarm.
pub(super) fn put_composite_alarm(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::PutCompositeAlarm>(value)?;
    let unsupported = [
        ("ActionsSuppressor", r.actions_suppressor.is_some()),
        (
            "ActionsSuppressorWaitPeriod",
            r.actions_suppressor_wait_period.is_some(),
        ),
        (
            "ActionsSuppressorExtensionPeriod",
            r.actions_suppressor_extension_period.is_some(),
        ),
        ("ActionConfiguration", r.action_configuration.is_some()),
    ]
    .into_iter()
    .find_map(|(n, given)| given.then_some(n));
    let command = put::PutCompositeAlarm {
        name: r.alarm_name,
        description: r.alarm_description,
        actions_enabled: r.actions_enabled,
        ok_actions: r.ok_actions.unwrap_or_default(),
        alarm_actions: r.alarm_actions.unwrap_or_default(),
        insufficient_data_actions: r.insufficient_data_actions.unwrap_or_default(),
        rule: r.alarm_rule,
        tags: tags(r.tags),
        unsupported,
    };
    put::put_composite_alarm(&c.st.plane.metrics, &command, now_ms()).map_err(|e| refused(&e))?;
    output::<ops::PutCompositeAlarm>(Empty {})
}

fn state_shape(s: State) -> StateValue {
    match s {
        State::Ok => StateValue::Ok,
        State::Alarm => StateValue::Alarm,
        State::InsufficientData => StateValue::InsufficientData,
    }
}

fn dimensions(d: &[(String, String)]) -> Vec<Dimension> {
    d.iter()
        .map(|(name, value)| Dimension {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn metric_alarm(account: &str, a: Alarm) -> Option<MetricAlarm> {
    let AlarmKind::Metric(m) = a.config.kind else {
        return None;
    };
    let queries = m
        .metrics
        .iter()
        .map(|q| MetricDataQuery {
            id: q.id.clone(),
            metric_stat: q.metric.as_ref().map(|s| MetricStat {
                metric: Metric {
                    namespace: s.namespace.clone(),
                    metric_name: s.metric_name.clone(),
                    dimensions: Some(dimensions(&s.dimensions)),
                },
                period: s.period,
                stat: s.stat.clone(),
                unit: s.unit.as_deref().and_then(StandardUnit::from_wire),
            }),
            expression: q.expression.clone(),
            label: q.label.clone(),
            return_data: q.return_data,
            period: q.period,
            account_id: None,
        })
        .collect::<Vec<_>>();
    let math = !queries.is_empty();
    Some(MetricAlarm {
        alarm_arn: Some(alarm_arn(account, &a.config.name)),
        alarm_name: Some(a.config.name),
        alarm_description: a.config.description,
        alarm_configuration_updated_timestamp: time(a.config_updated_ms),
        actions_enabled: Some(a.actions_enabled),
        ok_actions: Some(a.config.ok_actions),
        alarm_actions: Some(a.config.alarm_actions),
        insufficient_data_actions: Some(a.config.insufficient_data_actions),
        state_value: Some(state_shape(a.state)),
        state_reason: Some(a.reason),
        state_reason_data: a.reason_data,
        state_updated_timestamp: time(a.state_updated_ms),
        state_transitioned_timestamp: time(a.state_transitioned_ms),
        metric_name: m.metric_name,
        namespace: m.namespace,
        statistic: m.statistic.as_deref().and_then(Statistic::from_wire),
        extended_statistic: m.extended_statistic,
        dimensions: Some(dimensions(&m.dimensions)),
        period: (!math).then_some(m.period as i32),
        unit: m.unit.as_deref().and_then(StandardUnit::from_wire),
        evaluation_periods: Some(m.evaluation_periods as i32),
        datapoints_to_alarm: m.datapoints_to_alarm.map(|d| d as i32),
        threshold: Some(m.threshold),
        comparison_operator: ComparisonOperator::from_wire(m.comparison.as_str()),
        treat_missing_data: m.treat_missing_data,
        evaluate_low_sample_count_percentile: m.evaluate_low_sample_count_percentile,
        metrics: math.then_some(queries),
        ..Default::default()
    })
}

fn composite_alarm(account: &str, a: Alarm) -> Option<CompositeAlarm> {
    let AlarmKind::Composite(r) = a.config.kind else {
        return None;
    };
    Some(CompositeAlarm {
        alarm_arn: Some(alarm_arn(account, &a.config.name)),
        alarm_name: Some(a.config.name),
        alarm_description: a.config.description,
        alarm_rule: Some(r.rule),
        alarm_configuration_updated_timestamp: time(a.config_updated_ms),
        actions_enabled: Some(a.actions_enabled),
        ok_actions: Some(a.config.ok_actions),
        alarm_actions: Some(a.config.alarm_actions),
        insufficient_data_actions: Some(a.config.insufficient_data_actions),
        state_value: Some(state_shape(a.state)),
        state_reason: Some(a.reason),
        state_reason_data: a.reason_data,
        state_updated_timestamp: time(a.state_updated_ms),
        state_transitioned_timestamp: time(a.state_transitioned_ms),
        ..Default::default()
    })
}

/// DescribeAlarms.
pub(super) fn describe_alarms(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeAlarms>(value)?;
    let d = DescribeAlarms {
        names: r.alarm_names.unwrap_or_default(),
        prefix: r.alarm_name_prefix,
        types: r
            .alarm_types
            .unwrap_or_default()
            .iter()
            .map(|t| t.as_str().to_string())
            .collect(),
        children_of: r.children_of_alarm_name,
        parents_of: r.parents_of_alarm_name,
        state: r.state_value.map(|s| s.as_str().to_string()),
        action_prefix: r.action_prefix,
        max_records: r.max_records,
        next_token: r.next_token,
    };
    let page = commands::describe_alarms(&c.st.plane.metrics, &d).map_err(|e| refused(&e))?;
    let account = &c.st.account_id;
    let mut metric_alarms = Vec::new();
    let mut composite_alarms = Vec::new();
    for a in page.alarms {
        match &a.config.kind {
            AlarmKind::Metric(_) => metric_alarms.extend(metric_alarm(account, a)),
            AlarmKind::Composite(_) => composite_alarms.extend(composite_alarm(account, a)),
        }
    }
    output::<ops::DescribeAlarms>(DescribeAlarmsOutput {
        composite_alarms: Some(composite_alarms),
        metric_alarms: Some(metric_alarms),
        log_alarms: None,
        next_token: page.next_token,
    })
}

/// DescribeAlarmsForMetric.
pub(super) fn describe_alarms_for_metric(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeAlarmsForMetric>(value)?;
    let q = AlarmsForMetric {
        namespace: r.namespace,
        metric_name: r.metric_name,
        dimensions: r.dimensions.map(|d| pairs(Some(d))),
        statistic: r.statistic.map(|s| s.as_str().to_string()),
        extended_statistic: r.extended_statistic,
        period: r.period,
        unit: r.unit.map(|u| u.as_str().to_string()),
    };
    let alarms =
        commands::describe_alarms_for_metric(&c.st.plane.metrics, &q).map_err(|e| refused(&e))?;
    let account = &c.st.account_id;
    output::<ops::DescribeAlarmsForMetric>(DescribeAlarmsForMetricOutput {
        metric_alarms: Some(
            alarms
                .into_iter()
                .filter_map(|a| metric_alarm(account, a))
                .collect(),
        ),
    })
}

/// DescribeAlarmHistory.
pub(super) fn describe_alarm_history(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DescribeAlarmHistory>(value)?;
    let d = DescribeHistory {
        alarm_name: r.alarm_name,
        types: r
            .alarm_types
            .unwrap_or_default()
            .iter()
            .map(|t| t.as_str().to_string())
            .collect(),
        item_type: r.history_item_type.map(|t| t.as_str().to_string()),
        start_ms: r.start_date.map(|t| t.timestamp_millis()),
        end_ms: r.end_date.map(|t| t.timestamp_millis()),
        max_records: r.max_records,
        next_token: r.next_token,
        ascending: r.scan_by == Some(ScanBy::TimestampAscending),
    };
    let page =
        commands::describe_alarm_history(&c.st.plane.metrics, &d).map_err(|e| refused(&e))?;
    let items = page
        .items
        .into_iter()
        .map(|h| AlarmHistoryItem {
            alarm_name: Some(h.alarm_name),
            alarm_type: AlarmType::from_wire(&h.alarm_type),
            timestamp: time(h.time_ms),
            history_item_type: HistoryItemType::from_wire(&h.item_type),
            history_summary: Some(h.summary),
            history_data: Some(h.data),
            ..Default::default()
        })
        .collect();
    output::<ops::DescribeAlarmHistory>(DescribeAlarmHistoryOutput {
        alarm_history_items: Some(items),
        next_token: page.next_token,
    })
}

/// SetAlarmState: a change runs the new state's actions in the background, as an
/// evaluation's would.
pub(super) fn set_alarm_state(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::SetAlarmState>(value)?;
    let state = State::parse(r.state_value.as_str()).unwrap_or(State::InsufficientData);
    let change = commands::set_alarm_state(
        &c.st.plane.metrics,
        &r.alarm_name,
        state,
        &r.state_reason,
        r.state_reason_data.as_deref(),
        now_ms(),
    )
    .map_err(|e| refused(&e))?;
    if let Some(t) = change {
        let plane = c.st.plane.clone();
        tokio::spawn(async move { evaluator::act(&plane, vec![t]).await });
    }
    output::<ops::SetAlarmState>(Empty {})
}

/// DeleteAlarms.
pub(super) fn delete_alarms(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DeleteAlarms>(value)?;
    commands::delete_alarms(&c.st.plane.metrics, &r.alarm_names).map_err(|e| refused(&e))?;
    output::<ops::DeleteAlarms>(Empty {})
}

/// EnableAlarmActions.
pub(super) fn enable_alarm_actions(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::EnableAlarmActions>(value)?;
    commands::set_alarm_actions(&c.st.plane.metrics, &r.alarm_names, true)
        .map_err(|e| refused(&e))?;
    output::<ops::EnableAlarmActions>(Empty {})
}

/// DisableAlarmActions.
pub(super) fn disable_alarm_actions(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::DisableAlarmActions>(value)?;
    commands::set_alarm_actions(&c.st.plane.metrics, &r.alarm_names, false)
        .map_err(|e| refused(&e))?;
    output::<ops::DisableAlarmActions>(Empty {})
}

/// TagResource (alarms).
pub(super) fn tag_resource(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::TagResource>(value)?;
    tags::tag_resource(
        &c.st.plane.metrics,
        &c.st.account_id,
        &r.resource_arn,
        &self::tags(Some(r.tags)),
    )
    .map_err(|e| refused(&e))?;
    output::<ops::TagResource>(TagResourceOutput {})
}

/// UntagResource (alarms).
pub(super) fn untag_resource(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::UntagResource>(value)?;
    tags::untag_resource(
        &c.st.plane.metrics,
        &c.st.account_id,
        &r.resource_arn,
        &r.tag_keys,
    )
    .map_err(|e| refused(&e))?;
    output::<ops::UntagResource>(UntagResourceOutput {})
}

/// ListTagsForResource (alarms).
pub(super) fn list_tags_for_resource(c: &Call<'_>, value: Value) -> Result<Reply, ApiError> {
    let r = input::<ops::ListTagsForResource>(value)?;
    let list = tags::list_tags(&c.st.plane.metrics, &c.st.account_id, &r.resource_arn)
        .map_err(|e| refused(&e))?;
    output::<ops::ListTagsForResource>(ListTagsForResourceOutput {
        tags: Some(
            list.into_iter()
                .map(|(key, value)| Tag { key, value })
                .collect(),
        ),
    })
}
