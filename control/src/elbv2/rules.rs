//! Listener rules: CreateRule, ModifyRule, DeleteRule, SetRulePriorities, with path-pattern
//! and host-header conditions.

use rusqlite::Connection;
use state::elbv2::{self as db, RuleRow};

use super::error::ElbError;
use super::listeners::{self, check_actions};
use super::load_balancers;
use super::model::{self, Action, Conditions};
use crate::Plane;
use crate::effects::Effect;

/// The most rules a listener has (besides its default).
pub const MAX_RULES: usize = 100;

/// Conditions as a request gives them: `(field, values)`.
pub type ConditionInput = (String, Vec<String>);

/// Checks conditions and gathers them.
pub fn conditions(input: &[ConditionInput]) -> Result<Conditions, ElbError> {
    if input.is_empty() {
        return Err(ElbError::Validation(
            "At least one condition must be specified".into(),
        ));
    }
    let mut c = Conditions::default();
    for (field, values) in input {
        if values.is_empty() || values.len() > 5 {
            return Err(ElbError::Validation(format!(
                "A '{field}' condition has 1 to 5 values"
            )));
        }
        for v in values {
            let ok = !v.is_empty() && v.len() <= 128 && v.chars().all(|ch| ch.is_ascii_graphic());
            if !ok {
                return Err(ElbError::Validation(format!(
                    "Condition value '{v}' must be 1 to 128 printable characters"
                )));
            }
        }
        let into = match field.as_str() {
            "path-pattern" => &mut c.paths,
            "host-header" => &mut c.hosts,
            other => {
                return Err(ElbError::Validation(format!(
                    "Condition field '{other}' is not supported here: path-pattern or host-header"
                )));
            }
        };
        if !into.is_empty() {
            return Err(ElbError::Validation(format!(
                "A rule has at most one '{field}' condition"
            )));
        }
        into.extend(values.iter().cloned());
    }
    Ok(c)
}

fn check_priority(p: i32) -> Result<(), ElbError> {
    if (1..=50_000).contains(&p) {
        Ok(())
    } else {
        Err(ElbError::Validation(
            "Priority must be between 1 and 50000".into(),
        ))
    }
}

/// The rule `arn`.
pub fn get(conn: &Connection, arn: &str) -> Result<RuleRow, ElbError> {
    db::rule_by_arn(conn, arn)?.ok_or(ElbError::RuleNotFound)
}

/// CreateRule.
pub fn create(
    conn: &Connection,
    listener_arn: &str,
    priority: i32,
    cond: &[ConditionInput],
    actions: &[Action],
    tags: &[(String, String)],
) -> Result<(RuleRow, Vec<Effect>), ElbError> {
    let l = listeners::get(conn, listener_arn)?;
    let lb = load_balancers::get(conn, &l.lb_arn)?;
    if lb.kind != "application" {
        return Err(ElbError::Validation(
            "Rules are supported only by application load balancers' listeners".into(),
        ));
    }
    check_priority(priority)?;
    let c = conditions(cond)?;
    let tgs = check_actions(conn, &lb, &l.protocol, actions)?;
    super::tags::check_new(tags)?;
    let rules = db::rules_of(conn, listener_arn)?;
    if rules.iter().any(|r| r.priority == priority) {
        return Err(ElbError::PriorityInUse);
    }
    if rules.len() >= MAX_RULES {
        return Err(ElbError::TooMany(
            "TooManyRules",
            format!("A listener has at most {MAX_RULES} rules"),
        ));
    }
    let row = RuleRow {
        seq: 0,
        arn: model::rule_arn(listener_arn, &model::new_id()),
        listener_arn: listener_arn.into(),
        priority,
        conditions: model::to_json(&c),
        actions: model::to_json(&actions.to_vec()),
    };
    db::put_rule(conn, &row)?;
    db::set_forwards(conn, &row.arn, &lb.arn, &tgs)?;
    db::put_tags(conn, &row.arn, tags)?;
    Ok((row, vec![Effect::SyncLoadBalancer { arn: lb.arn }]))
}

/// ModifyRule: new conditions and/or actions.
pub fn modify(
    conn: &Connection,
    arn: &str,
    cond: Option<&[ConditionInput]>,
    actions: Option<&[Action]>,
) -> Result<(RuleRow, Vec<Effect>), ElbError> {
    let mut r = get(conn, arn)?;
    let l = listeners::get(conn, &r.listener_arn)?;
    let lb = load_balancers::get(conn, &l.lb_arn)?;
    if let Some(cond) = cond {
        r.conditions = model::to_json(&conditions(cond)?);
    }
    let acts: Vec<Action> = match actions {
        Some(a) => a.to_vec(),
        None => model::from_json(&r.actions),
    };
    let tgs = check_actions(conn, &lb, &l.protocol, &acts)?;
    r.actions = model::to_json(&acts);
    db::put_rule(conn, &r)?;
    db::set_forwards(conn, arn, &lb.arn, &tgs)?;
    Ok((r, vec![Effect::SyncLoadBalancer { arn: lb.arn }]))
}

/// DeleteRule.
pub fn delete(conn: &Connection, arn: &str) -> Result<Vec<Effect>, ElbError> {
    let r = get(conn, arn)?;
    let l = listeners::get(conn, &r.listener_arn)?;
    db::delete_rule(conn, arn)?;
    Ok(vec![Effect::SyncLoadBalancer { arn: l.lb_arn }])
}

/// SetRulePriorities: every change or none.
pub fn set_priorities(
    conn: &Connection,
    changes: &[(String, i32)],
) -> Result<(Vec<RuleRow>, Vec<Effect>), ElbError> {
    let mut touched = Vec::new();
    for (arn, p) in changes {
        check_priority(*p)?;
        touched.push((get(conn, arn)?, *p));
    }
    let mut effects = Vec::new();
    // Move every changed rule out of the way first, so that swaps succeed.
    for (i, (r, _)) in touched.iter().enumerate() {
        let mut moved = r.clone();
        moved.priority = -1 - i as i32;
        db::put_rule(conn, &moved)?;
    }
    let mut out = Vec::new();
    for (r, p) in touched {
        let taken = db::rules_of(conn, &r.listener_arn)?
            .iter()
            .any(|o| o.priority == p && o.arn != r.arn);
        if taken {
            return Err(ElbError::PriorityInUse);
        }
        let mut changed = r.clone();
        changed.priority = p;
        db::put_rule(conn, &changed)?;
        let l = listeners::get(conn, &r.listener_arn)?;
        effects.push(Effect::SyncLoadBalancer { arn: l.lb_arn });
        out.push(changed);
    }
    effects.dedup();
    Ok((out, effects))
}

impl Plane {
    /// CreateRule.
    pub fn create_rule(
        &self,
        listener_arn: &str,
        priority: i32,
        cond: &[ConditionInput],
        actions: &[Action],
        tags: &[(String, String)],
    ) -> Result<RuleRow, ElbError> {
        self.elb_write(|tx| create(tx, listener_arn, priority, cond, actions, tags))
    }

    /// ModifyRule.
    pub fn modify_rule(
        &self,
        arn: &str,
        cond: Option<&[ConditionInput]>,
        actions: Option<&[Action]>,
    ) -> Result<RuleRow, ElbError> {
        self.elb_write(|tx| modify(tx, arn, cond, actions))
    }

    /// DeleteRule.
    pub fn delete_rule(&self, arn: &str) -> Result<(), ElbError> {
        self.elb_write(|tx| Ok(((), delete(tx, arn)?)))
    }

    /// SetRulePriorities.
    pub fn set_rule_priorities(&self, changes: &[(String, i32)]) -> Result<Vec<RuleRow>, ElbError> {
        self.elb_write(|tx| set_priorities(tx, changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_take_paths_and_hosts_once_each() {
        let c = conditions(&[
            ("path-pattern".into(), vec!["/a/*".into()]),
            ("host-header".into(), vec!["x.example".into()]),
        ])
        .unwrap();
        assert_eq!((c.paths.len(), c.hosts.len()), (1, 1));
        for bad in [
            vec![],
            vec![("query-string".to_string(), vec!["a".to_string()])],
            vec![("path-pattern".to_string(), vec![])],
            vec![("path-pattern".to_string(), vec!["has space".to_string()])],
            vec![
                ("path-pattern".to_string(), vec!["/a".to_string()]),
                ("path-pattern".to_string(), vec!["/b".to_string()]),
            ],
        ] {
            assert!(
                matches!(conditions(&bad), Err(ElbError::Validation(_))),
                "{bad:?}"
            );
        }
        assert!(check_priority(0).is_err() && check_priority(50_001).is_err());
    }
}
