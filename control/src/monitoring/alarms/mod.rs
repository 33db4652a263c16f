//! CloudWatch alarms: metric alarms (a statistic or percentile of one metric, or metric
//! math) and composite alarms (a rule over other alarms' states), their states with
//! CloudWatch's reasons, their history and their actions. One file per concern:
//!
//! - `config.rs`: the configuration kept per alarm, states, operators, missing-data
//!   treatments;
//! - `put.rs` and `put_composite.rs`: PutMetricAlarm and PutCompositeAlarm with
//!   CloudWatch's checks;
//! - `commands.rs`: DescribeAlarms, DescribeAlarmsForMetric, DescribeAlarmHistory,
//!   SetAlarmState, DeleteAlarms, Enable/DisableAlarmActions;
//! - `evaluate.rs`: the pure evaluation of a metric alarm over its datapoints;
//! - `rule.rs`: composite rules, parsed with bounded nesting;
//! - `evaluator.rs`: the rounds the agent runs, and the actions of each change;
//! - `tags.rs`: TagResource, UntagResource, ListTagsForResource on alarms;
//! - `actions.rs`: action ARNs, what each does (EC2 actions; SNS for the integrator), the
//!   notification CloudWatch sends.

pub mod actions;
pub mod commands;
pub mod config;
pub mod evaluate;
pub mod evaluator;
pub mod put;
mod put_composite;
pub mod rule;
pub mod tags;
