//! EC2 launch templates: named, versioned launch data (`data.rs`), kept in the state as
//! JSON; their commands (`templates.rs`: create, new versions from a `SourceVersion`, the
//! default version, deletes); finding a template and its versions (`versions.rs`); data laid
//! over data (`merge.rs`); and launching (`launch.rs`): every RunInstances, with a template
//! or without, goes request data → merged with the template's → checked into the
//! RunInstances command (`command.rs`).

pub mod command;
pub mod data;
mod launch;
pub mod merge;
pub mod templates;
pub mod versions;

pub use data::LaunchData;
pub use launch::{LaunchFromTemplateError, RunRequest};
pub use versions::ResolveTemplateError;

/// A launch template as a launch names it.
#[derive(Debug, Clone, Default)]
pub struct TemplateRef {
    /// `LaunchTemplateId`.
    pub id: Option<String>,
    /// `LaunchTemplateName`.
    pub name: Option<String>,
    /// `"$Latest"`, `"$Default"` or a number; `None` means `$Default`.
    pub version: Option<String>,
}

/// A template and the version of it a launch uses.
#[derive(Debug, Clone)]
pub struct ResolvedTemplate {
    /// `lt-...`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The version number.
    pub version: i64,
}

/// One instance launched from a template, as Auto Scaling launches it.
#[derive(Debug, Clone, Default)]
pub struct TemplateLaunch {
    /// The template and version.
    pub template: TemplateRef,
    /// Overrides the template's subnet (network interface 0's too).
    pub subnet_id: Option<String>,
    /// Overrides the template's instance type.
    pub instance_type: Option<String>,
    /// Added to the instance and its volumes; may be system tags (`aws:...`), which this
    /// internal path allows (the API never does).
    pub tags: Vec<(String, String)>,
    /// RunInstances' idempotency: a retry with the same token launches nothing new.
    pub client_token: Option<String>,
}
