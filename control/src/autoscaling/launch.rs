//! The one door through which Auto Scaling launches: a group's launch template (EC2's
//! `launch_templates`), in a subnet, tagged, with a client token derived from the launch
//! activity so that a launch retried after a crash launches nothing new.

use serde::{Deserialize, Serialize};

use super::model::TemplateSpec;
use crate::Plane;
use crate::ec2::launch_templates::{TemplateLaunch, TemplateRef};

/// A template as resolved: what a member records of where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// `lt-...`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The version number.
    pub version: i64,
}

/// One launch.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The group's template.
    pub template: &'a TemplateSpec,
    /// The subnet.
    pub subnet: &'a str,
    /// An instance type instead of the template's.
    pub instance_type: Option<&'a str>,
    /// The instance's tags (`aws:autoscaling:groupName` and the propagated ones).
    pub tags: Vec<(String, String)>,
    /// The client token.
    pub token: String,
}

/// What a launch gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// The instance.
    pub instance_id: String,
    /// Its type.
    pub instance_type: String,
    /// The template and version it came from.
    pub template: Resolved,
}

/// The client token of launch activity `activity_id`.
pub fn token(activity_id: &str) -> String {
    format!("asg-{activity_id}")
}

fn template_ref(t: &TemplateSpec) -> TemplateRef {
    TemplateRef {
        id: t.id.clone(),
        name: t.name.clone(),
        version: t.version.clone(),
    }
}

/// Resolves a group's template (the version a launch now would use); why not, in
/// Auto Scaling's words.
pub fn resolve(plane: &Plane, t: &TemplateSpec) -> Result<Resolved, String> {
    let r = plane
        .resolve_launch_template(&template_ref(t))
        .map_err(|e| format!("You must use a valid fully-formed launch template. {e}"))?;
    Ok(Resolved {
        id: r.id,
        name: r.name,
        version: r.version,
    })
}

/// Launches one instance; why not, in EC2's words.
pub fn launch(plane: &Plane, l: &Launch<'_>) -> Result<Launched, String> {
    let template = resolve(plane, l.template)?;
    let rows = plane
        .launch_from_template(&TemplateLaunch {
            template: TemplateRef {
                id: Some(template.id.clone()),
                name: None,
                version: Some(template.version.to_string()),
            },
            subnet_id: Some(l.subnet.to_string()),
            instance_type: l.instance_type.map(str::to_string),
            tags: l.tags.clone(),
            client_token: Some(l.token.clone()),
        })
        .map_err(|e| host::error_chain(&e))?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| "the launch gave no instance".to_string())?;
    Ok(Launched {
        instance_id: row.id,
        instance_type: row.instance_type,
        template,
    })
}
