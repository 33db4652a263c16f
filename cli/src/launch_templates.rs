//! The CLI's launch-template commands: create (with `--launch-template-data` JSON as `aws`
//! takes it), new versions, describe templates and versions, set the default, delete; and
//! the JSON-to-parameters translation they share, named by EC2's model.

use clap::Subcommand;
use serde_json::Value;
use wire::ServiceModel;
use wire::model::{Resolved, ShapeType};
use wire::query::Flavor;

use super::client::Client;
use super::error::CliError;
use super::output::{parse, print_json};
use super::params::{filter_params, list_params, value_or_file};
use super::xmltree::{child, items, text};

/// The deepest JSON the data may nest (EC2's shapes nest far less).
const MAX_DEPTH: usize = 16;

/// Launch-template commands.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Create a launch template (prints its id, name and versions).
    CreateLaunchTemplate {
        /// Its name.
        #[arg(long)]
        launch_template_name: String,
        /// `RequestLaunchTemplateData` as JSON, or `file://PATH`.
        #[arg(long)]
        launch_template_data: String,
        /// A description of version 1.
        #[arg(long)]
        version_description: Option<String>,
    },
    /// Add a version to a launch template (prints its number).
    CreateLaunchTemplateVersion {
        /// The template by name...
        #[arg(long)]
        launch_template_name: Option<String>,
        /// ...or by id.
        #[arg(long)]
        launch_template_id: Option<String>,
        /// The version it starts from.
        #[arg(long)]
        source_version: Option<String>,
        /// `RequestLaunchTemplateData` as JSON, or `file://PATH`.
        #[arg(long)]
        launch_template_data: String,
        /// Its description.
        #[arg(long)]
        version_description: Option<String>,
    },
    /// List launch templates.
    DescribeLaunchTemplates {
        /// Only these names.
        #[arg(long, num_args = 1..)]
        launch_template_names: Vec<String>,
        /// Only these ids.
        #[arg(long, num_args = 1..)]
        launch_template_ids: Vec<String>,
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
    },
    /// List a launch template's versions.
    DescribeLaunchTemplateVersions {
        /// The template by name...
        #[arg(long)]
        launch_template_name: Option<String>,
        /// ...or by id.
        #[arg(long)]
        launch_template_id: Option<String>,
        /// `$Latest`, `$Default` or numbers.
        #[arg(long, num_args = 1..)]
        versions: Vec<String>,
    },
    /// Set a launch template's default version.
    ModifyLaunchTemplate {
        /// The template by name...
        #[arg(long)]
        launch_template_name: Option<String>,
        /// ...or by id.
        #[arg(long)]
        launch_template_id: Option<String>,
        /// The new default version.
        #[arg(long)]
        default_version: String,
    },
    /// Delete a launch template and its versions.
    DeleteLaunchTemplate {
        /// The template by name...
        #[arg(long)]
        launch_template_name: Option<String>,
        /// ...or by id.
        #[arg(long)]
        launch_template_id: Option<String>,
    },
}

/// `value` (JSON of model shape `shape`) as EC2 query parameters under `prefix`, each name
/// as the model serializes it (`SecurityGroupIds` → `SecurityGroupId.N`).
pub fn json_params(
    out: &mut Vec<(String, String)>,
    prefix: &str,
    shape: &str,
    value: &Value,
) -> Result<(), CliError> {
    let model = ServiceModel::from_json(shapes::ec2::MODEL_JSON)
        .map_err(|e| CliError::Input(format!("EC2's model: {e}")))?;
    let s = model
        .shape(shape)
        .ok_or_else(|| CliError::Input(format!("EC2's model has no shape {shape}")))?;
    structure(&model, out, prefix, shape, s, value, 0)
}

fn structure(
    model: &ServiceModel,
    out: &mut Vec<(String, String)>,
    prefix: &str,
    name: &str,
    shape: &wire::model::Shape,
    value: &Value,
    depth: usize,
) -> Result<(), CliError> {
    let Value::Object(map) = value else {
        return Err(CliError::Input(format!(
            "{prefix}: {name} must be a JSON object"
        )));
    };
    for (k, v) in map {
        let member = shape
            .members
            .get(k)
            .ok_or_else(|| CliError::Input(format!("{prefix}: {name} has no member {k}")))?;
        let r = model.resolve(member);
        let key = format!("{prefix}.{}", Flavor::Ec2.name_of(&r, k));
        node(model, out, &key, &r, v, depth + 1)?;
    }
    Ok(())
}

fn node(
    model: &ServiceModel,
    out: &mut Vec<(String, String)>,
    key: &str,
    r: &Resolved<'_>,
    v: &Value,
    depth: usize,
) -> Result<(), CliError> {
    if depth > MAX_DEPTH {
        return Err(CliError::Input(format!("{key}: nested too deep")));
    }
    match (r.kind(), v) {
        (ShapeType::Structure, _) => structure(model, out, key, r.shape_name, r.shape, v, depth),
        (ShapeType::List, Value::Array(items)) => {
            let element = r
                .shape
                .member
                .as_ref()
                .ok_or_else(|| CliError::Input(format!("{key}: a list without members")))?;
            let er = model.resolve(element);
            for (i, item) in items.iter().enumerate() {
                node(
                    model,
                    out,
                    &format!("{key}.{}", i + 1),
                    &er,
                    item,
                    depth + 1,
                )?;
            }
            Ok(())
        }
        (_, Value::String(s)) => {
            out.push((key.to_string(), s.clone()));
            Ok(())
        }
        (_, Value::Number(n)) => {
            out.push((key.to_string(), n.to_string()));
            Ok(())
        }
        (_, Value::Bool(b)) => {
            out.push((key.to_string(), b.to_string()));
            Ok(())
        }
        _ => Err(CliError::Input(format!(
            "{key}: not a value of {}",
            r.shape_name
        ))),
    }
}

/// The launch data argument's parameters under `LaunchTemplateData`.
fn data_params(out: &mut Vec<(String, String)>, data: &str) -> Result<(), CliError> {
    let text = value_or_file(data)?;
    let v: Value = serde_json::from_slice(&text)
        .map_err(|e| CliError::Input(format!("--launch-template-data is not JSON: {e}")))?;
    json_params(out, "LaunchTemplateData", "RequestLaunchTemplateData", &v)
}

fn which(out: &mut Vec<(String, String)>, name: &Option<String>, id: &Option<String>) {
    if let Some(n) = name {
        out.push(("LaunchTemplateName".into(), n.clone()));
    }
    if let Some(i) = id {
        out.push(("LaunchTemplateId".into(), i.clone()));
    }
}

fn print_templates(root: roxmltree::Node<'_, '_>, set: &str) {
    println!(
        "{:<22} {:<30} {:<8} {:<8} CREATED",
        "LAUNCH_TEMPLATE_ID", "NAME", "DEFAULT", "LATEST"
    );
    let one = child(root, "launchTemplate");
    let list = match one {
        Some(t) => vec![t],
        None => items(root, set),
    };
    for t in list {
        println!(
            "{:<22} {:<30} {:<8} {:<8} {}",
            text(t, "launchTemplateId").unwrap_or(""),
            text(t, "launchTemplateName").unwrap_or(""),
            text(t, "defaultVersionNumber").unwrap_or(""),
            text(t, "latestVersionNumber").unwrap_or(""),
            text(t, "createTime").unwrap_or("")
        );
    }
}

/// Runs a launch-template command.
pub fn run(cmd: &TemplateCommand, json: bool, c: &Client) -> Result<(), CliError> {
    let mut p = Vec::new();
    let action = match cmd {
        TemplateCommand::CreateLaunchTemplate {
            launch_template_name,
            launch_template_data,
            version_description,
        } => {
            p.push(("LaunchTemplateName".into(), launch_template_name.clone()));
            if let Some(d) = version_description {
                p.push(("VersionDescription".into(), d.clone()));
            }
            data_params(&mut p, launch_template_data)?;
            "CreateLaunchTemplate"
        }
        TemplateCommand::CreateLaunchTemplateVersion {
            launch_template_name,
            launch_template_id,
            source_version,
            launch_template_data,
            version_description,
        } => {
            which(&mut p, launch_template_name, launch_template_id);
            if let Some(s) = source_version {
                p.push(("SourceVersion".into(), s.clone()));
            }
            if let Some(d) = version_description {
                p.push(("VersionDescription".into(), d.clone()));
            }
            data_params(&mut p, launch_template_data)?;
            "CreateLaunchTemplateVersion"
        }
        TemplateCommand::DescribeLaunchTemplates {
            launch_template_names,
            launch_template_ids,
            filters,
        } => {
            list_params(&mut p, "LaunchTemplateName", launch_template_names);
            list_params(&mut p, "LaunchTemplateId", launch_template_ids);
            filter_params(&mut p, filters)?;
            "DescribeLaunchTemplates"
        }
        TemplateCommand::DescribeLaunchTemplateVersions {
            launch_template_name,
            launch_template_id,
            versions,
        } => {
            which(&mut p, launch_template_name, launch_template_id);
            list_params(&mut p, "LaunchTemplateVersion", versions);
            "DescribeLaunchTemplateVersions"
        }
        TemplateCommand::ModifyLaunchTemplate {
            launch_template_name,
            launch_template_id,
            default_version,
        } => {
            which(&mut p, launch_template_name, launch_template_id);
            p.push(("SetDefaultVersion".into(), default_version.clone()));
            "ModifyLaunchTemplate"
        }
        TemplateCommand::DeleteLaunchTemplate {
            launch_template_name,
            launch_template_id,
        } => {
            which(&mut p, launch_template_name, launch_template_id);
            "DeleteLaunchTemplate"
        }
    };
    let xml = c.call(action, &p)?;
    if json {
        return print_json(&xml);
    }
    let doc = parse(&xml)?;
    let root = doc.root_element();
    match cmd {
        TemplateCommand::CreateLaunchTemplateVersion { .. }
        | TemplateCommand::DescribeLaunchTemplateVersions { .. } => {
            println!(
                "{:<22} {:<30} {:<8} {:<8} IMAGE_ID",
                "LAUNCH_TEMPLATE_ID", "NAME", "VERSION", "DEFAULT"
            );
            let list = match child(root, "launchTemplateVersion") {
                Some(v) => vec![v],
                None => items(root, "launchTemplateVersionSet"),
            };
            for v in list {
                let image = child(v, "launchTemplateData").and_then(|d| text(d, "imageId"));
                println!(
                    "{:<22} {:<30} {:<8} {:<8} {}",
                    text(v, "launchTemplateId").unwrap_or(""),
                    text(v, "launchTemplateName").unwrap_or(""),
                    text(v, "versionNumber").unwrap_or(""),
                    text(v, "defaultVersion").unwrap_or(""),
                    image.unwrap_or("-")
                );
            }
        }
        _ => print_templates(root, "launchTemplates"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_data_json_becomes_the_query_names_of_the_model() {
        let v: Value = serde_json::from_str(
            r#"{"ImageId":"ami-1","SecurityGroupIds":["sg-1","sg-2"],
                "NetworkInterfaces":[{"DeviceIndex":0,"Groups":["sg-3"],"AssociatePublicIpAddress":true}],
                "TagSpecifications":[{"ResourceType":"instance","Tags":[{"Key":"a","Value":"b"}]}]}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        json_params(
            &mut out,
            "LaunchTemplateData",
            "RequestLaunchTemplateData",
            &v,
        )
        .unwrap();
        let has = |k: &str, v: &str| out.iter().any(|(a, b)| a == k && b == v);
        assert!(has("LaunchTemplateData.ImageId", "ami-1"), "{out:?}");
        assert!(
            has("LaunchTemplateData.SecurityGroupId.2", "sg-2"),
            "{out:?}"
        );
        assert!(
            has("LaunchTemplateData.NetworkInterface.1.DeviceIndex", "0"),
            "{out:?}"
        );
        assert!(
            has(
                "LaunchTemplateData.NetworkInterface.1.SecurityGroupId.1",
                "sg-3"
            ),
            "{out:?}"
        );
        assert!(
            has(
                "LaunchTemplateData.NetworkInterface.1.AssociatePublicIpAddress",
                "true"
            ),
            "{out:?}"
        );
        assert!(
            has("LaunchTemplateData.TagSpecification.1.Tag.1.Key", "a"),
            "{out:?}"
        );
        let bad: Value = serde_json::from_str(r#"{"Nope":1}"#).unwrap();
        assert!(
            json_params(
                &mut out,
                "LaunchTemplateData",
                "RequestLaunchTemplateData",
                &bad
            )
            .is_err()
        );
    }
}
