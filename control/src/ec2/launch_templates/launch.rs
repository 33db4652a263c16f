//! Launching: a RunInstances request's data laid over its template's (if it names one),
//! checked into the RunInstances command, the instances tagged with the template they came
//! from (`aws:ec2launchtemplate:id`, `aws:ec2launchtemplate:version`) as EC2 tags them.

use state::instances::InstanceRow;

use super::command::{self, Counts, LaunchDataError};
use super::data::{LaunchData, TagSpecification};
use super::merge::for_launch;
use super::versions::{self, ResolveTemplateError};
use super::{ResolvedTemplate, TemplateLaunch, TemplateRef};
use crate::ec2::instances::RunInstancesError;
use crate::{Plane, Refusal};

/// A launch: the request's own data, the template it names if any, and how many.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// `LaunchTemplate`.
    pub template: Option<TemplateRef>,
    /// The request's own parameters, which override the template's.
    pub data: LaunchData,
    /// `MinCount`, `MaxCount`, `ClientToken`.
    pub counts: Counts,
}

/// Why a launch (from a template or not) is refused.
#[derive(Debug, thiserror::Error)]
pub enum LaunchFromTemplateError {
    /// The template or its version cannot be had.
    #[error(transparent)]
    Template(#[from] ResolveTemplateError),
    /// The merged data cannot be launched.
    #[error(transparent)]
    Data(#[from] LaunchDataError),
    /// RunInstances refused or failed.
    #[error(transparent)]
    Run(#[from] RunInstancesError),
}

impl Refusal for LaunchFromTemplateError {
    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Template(e) => e.code(),
            Self::Data(e) => e.code(),
            Self::Run(e) => e.code(),
        }
    }
}

impl Plane {
    /// The template and version `r` names (`$Default` when it names none).
    pub fn resolve_launch_template(
        &self,
        r: &TemplateRef,
    ) -> Result<ResolvedTemplate, ResolveTemplateError> {
        let conn = self.db.lock();
        let t = versions::find(&conn, r.id.as_deref(), r.name.as_deref())?;
        let (v, _) = versions::version(&conn, &t, r.version.as_deref())?;
        Ok(ResolvedTemplate {
            id: t.id,
            name: t.name,
            version: v.version,
        })
    }

    /// Launches exactly one instance from a template, with `l`'s overrides and tags.
    pub fn launch_from_template(
        &self,
        l: &TemplateLaunch,
    ) -> Result<Vec<InstanceRow>, LaunchFromTemplateError> {
        self.run_with_data(&template_launch(l))
    }

    /// RunInstances from its request's data: laid over the template's when it names one,
    /// then checked and launched.
    pub fn run_with_data(
        &self,
        r: &RunRequest,
    ) -> Result<Vec<InstanceRow>, LaunchFromTemplateError> {
        let data = match &r.template {
            None => r.data.clone(),
            Some(t) => {
                let (resolved, template) = {
                    let conn = self.db.lock();
                    let row = versions::find(&conn, t.id.as_deref(), t.name.as_deref())?;
                    let (v, data) = versions::version(&conn, &row, t.version.as_deref())?;
                    (
                        ResolvedTemplate {
                            id: row.id,
                            name: row.name,
                            version: v.version,
                        },
                        data,
                    )
                };
                launch_data(&template, &r.data, &resolved)
            }
        };
        let cmd = command::run_instances(&data, &r.counts)?;
        Ok(self.run_instances(&cmd)?)
    }
}

/// The RunInstances request a [`TemplateLaunch`] makes: one instance, its overrides, its
/// tags on the instance and its volumes.
fn template_launch(l: &TemplateLaunch) -> RunRequest {
    let spec = |kind: &str| TagSpecification {
        resource_type: kind.to_string(),
        tags: l.tags.clone(),
    };
    RunRequest {
        template: Some(l.template.clone()),
        data: LaunchData {
            subnet_id: l.subnet_id.clone(),
            instance_type: l.instance_type.clone(),
            tag_specifications: if l.tags.is_empty() {
                Vec::new()
            } else {
                vec![spec("instance"), spec("volume")]
            },
            ..LaunchData::default()
        },
        counts: Counts {
            min: 1,
            max: 1,
            client_token: l.client_token.clone(),
        },
    }
}

/// What a launch from version `t` of a template asks for: the request over the template,
/// and the template's own tags on the instance.
fn launch_data(template: &LaunchData, request: &LaunchData, t: &ResolvedTemplate) -> LaunchData {
    let mut merged = for_launch(template, request);
    system_tags(&mut merged, t);
    merged
}

/// The tags EC2 puts on an instance launched from a template.
fn system_tags(data: &mut LaunchData, t: &ResolvedTemplate) {
    let tags = vec![
        ("aws:ec2launchtemplate:id".to_string(), t.id.clone()),
        (
            "aws:ec2launchtemplate:version".to_string(),
            t.version.to_string(),
        ),
    ];
    match data
        .tag_specifications
        .iter_mut()
        .find(|s| s.resource_type == "instance")
    {
        Some(s) => s.tags.extend(tags),
        None => data.tag_specifications.push(TagSpecification {
            resource_type: "instance".into(),
            tags,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::NetworkInterface;
    use super::*;

    #[test]
    fn a_template_launch_overrides_the_subnet_and_type_and_tags_instance_and_volumes() {
        let template = LaunchData {
            image_id: Some("ami-00000001".into()),
            instance_type: Some("t2.micro".into()),
            network_interfaces: vec![NetworkInterface {
                device_index: Some(0),
                subnet_id: Some("subnet-00000001".into()),
                groups: vec!["sg-00000001".into()],
                associate_public_ip: Some(true),
                ..Default::default()
            }],
            tag_specifications: vec![TagSpecification {
                resource_type: "instance".into(),
                tags: vec![("team".into(), "web".into())],
            }],
            ..Default::default()
        };
        let l = TemplateLaunch {
            template: TemplateRef {
                name: Some("web".into()),
                ..Default::default()
            },
            subnet_id: Some("subnet-00000002".into()),
            instance_type: Some("t2.nano".into()),
            tags: vec![("aws:autoscaling:groupName".into(), "asg".into())],
            client_token: Some("tok-1".into()),
        };
        let req = template_launch(&l);
        let resolved = ResolvedTemplate {
            id: "lt-00000001".into(),
            name: "web".into(),
            version: 4,
        };
        let data = launch_data(&template, &req.data, &resolved);
        let cmd = command::run_instances(&data, &req.counts).unwrap();
        assert_eq!((cmd.spec.min_count, cmd.spec.max_count), (1, 1));
        assert_eq!(cmd.spec.client_token.as_deref(), Some("tok-1"));
        assert_eq!(cmd.spec.instance_type.name, "t2.nano");
        assert_eq!(cmd.network.subnet_id.as_deref(), Some("subnet-00000002"));
        assert_eq!(cmd.network.group_ids, ["sg-00000001"]);
        assert_eq!(cmd.network.public_ip, Some(true));
        let has = |tags: &[(String, String)], k: &str, v: &str| {
            tags.iter().any(|(a, b)| a == k && b == v)
        };
        let t = &cmd.spec.tags;
        assert!(
            has(t, "team", "web") && has(t, "aws:autoscaling:groupName", "asg"),
            "{t:?}"
        );
        assert!(has(t, "aws:ec2launchtemplate:id", "lt-00000001"), "{t:?}");
        assert!(has(t, "aws:ec2launchtemplate:version", "4"), "{t:?}");
        assert!(has(
            &cmd.spec.volume_tags,
            "aws:autoscaling:groupName",
            "asg"
        ));
    }
}
