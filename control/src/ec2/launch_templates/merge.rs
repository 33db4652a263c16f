//! Launch data laid over other launch data, member by member: a new template version over
//! its `SourceVersion`, and a RunInstances request over the template it names.

use super::data::{LaunchData, MetadataOptions, TagSpecification};

/// `over` laid on `base`: each member `over` gives replaces `base`'s (a list as a whole),
/// the metadata options member by member. This is how a version made from a
/// `SourceVersion` starts from that version's data.
pub fn overlay(base: &LaunchData, over: &LaunchData) -> LaunchData {
    fn pick<T: Clone>(o: &Option<T>, b: &Option<T>) -> Option<T> {
        o.clone().or_else(|| b.clone())
    }
    fn list<T: Clone>(o: &[T], b: &[T]) -> Vec<T> {
        if o.is_empty() { b.to_vec() } else { o.to_vec() }
    }
    LaunchData {
        image_id: pick(&over.image_id, &base.image_id),
        instance_type: pick(&over.instance_type, &base.instance_type),
        key_name: pick(&over.key_name, &base.key_name),
        security_group_ids: list(&over.security_group_ids, &base.security_group_ids),
        security_groups: list(&over.security_groups, &base.security_groups),
        user_data: pick(&over.user_data, &base.user_data),
        shutdown_behavior: pick(&over.shutdown_behavior, &base.shutdown_behavior),
        block_devices: list(&over.block_devices, &base.block_devices),
        network_interfaces: list(&over.network_interfaces, &base.network_interfaces),
        metadata: metadata(base.metadata.as_ref(), over.metadata.as_ref()),
        tag_specifications: list(&over.tag_specifications, &base.tag_specifications),
        monitoring: pick(&over.monitoring, &base.monitoring),
        hibernation: pick(&over.hibernation, &base.hibernation),
        subnet_id: pick(&over.subnet_id, &base.subnet_id),
        private_ip: pick(&over.private_ip, &base.private_ip),
    }
}

fn metadata(
    base: Option<&MetadataOptions>,
    over: Option<&MetadataOptions>,
) -> Option<MetadataOptions> {
    match (base, over) {
        (None, None) => None,
        (Some(b), None) => Some(b.clone()),
        (None, Some(o)) => Some(o.clone()),
        (Some(b), Some(o)) => Some(MetadataOptions {
            http_tokens: o.http_tokens.clone().or_else(|| b.http_tokens.clone()),
            http_endpoint: o.http_endpoint.clone().or_else(|| b.http_endpoint.clone()),
            hop_limit: o.hop_limit.or(b.hop_limit),
        }),
    }
}

/// A RunInstances request's own parameters laid on its template's data, as EC2 launches
/// them: what the request gives overrides the template; tags of each resource type are
/// merged by key (the request's value wins); and when the template launches through a
/// network interface while the request names a subnet, groups or a private address of
/// its own (and no interface), those go on the template's interface at device index 0.
pub fn for_launch(template: &LaunchData, request: &LaunchData) -> LaunchData {
    let mut out = overlay(template, request);
    out.tag_specifications = merged_tags(&template.tag_specifications, &request.tag_specifications);
    if request.network_interfaces.is_empty()
        && let Some(first) = out
            .network_interfaces
            .iter_mut()
            .find(|n| n.device_index.unwrap_or(0) == 0)
    {
        if let Some(subnet) = request.subnet_id.clone() {
            first.subnet_id = Some(subnet);
            out.subnet_id = None;
        }
        if !request.security_group_ids.is_empty() {
            first.groups = request.security_group_ids.clone();
            out.security_group_ids.clear();
        }
        if let Some(ip) = request.private_ip.clone() {
            first.private_ip = Some(ip);
            out.private_ip = None;
        }
    }
    out
}

/// The template's tag specifications with the request's merged in, per resource type and
/// key.
fn merged_tags(
    template: &[TagSpecification],
    request: &[TagSpecification],
) -> Vec<TagSpecification> {
    let mut out: Vec<TagSpecification> = Vec::new();
    for spec in template.iter().chain(request) {
        let at = match out
            .iter()
            .position(|s| s.resource_type == spec.resource_type)
        {
            Some(i) => i,
            None => {
                out.push(TagSpecification {
                    resource_type: spec.resource_type.clone(),
                    tags: Vec::new(),
                });
                out.len() - 1
            }
        };
        let tags = &mut out[at].tags;
        for (k, v) in &spec.tags {
            match tags.iter_mut().find(|(key, _)| key == k) {
                Some(t) => t.1 = v.clone(),
                None => tags.push((k.clone(), v.clone())),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::data::NetworkInterface;
    use super::*;

    fn spec(kind: &str, tags: &[(&str, &str)]) -> TagSpecification {
        TagSpecification {
            resource_type: kind.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn template() -> LaunchData {
        LaunchData {
            image_id: Some("ami-00000001".into()),
            instance_type: Some("t2.micro".into()),
            user_data: Some("aGk=".into()),
            security_group_ids: vec!["sg-00000001".into()],
            metadata: Some(MetadataOptions {
                http_tokens: Some("required".into()),
                hop_limit: Some(2),
                ..Default::default()
            }),
            tag_specifications: vec![spec("instance", &[("team", "web"), ("env", "dev")])],
            ..Default::default()
        }
    }

    #[test]
    fn a_source_version_is_overridden_member_by_member() {
        let over = LaunchData {
            instance_type: Some("t3.small".into()),
            metadata: Some(MetadataOptions {
                hop_limit: Some(3),
                ..Default::default()
            }),
            tag_specifications: vec![spec("volume", &[("v", "1")])],
            ..Default::default()
        };
        let got = overlay(&template(), &over);
        assert_eq!(got.image_id.as_deref(), Some("ami-00000001"), "kept");
        assert_eq!(got.user_data.as_deref(), Some("aGk="), "kept");
        assert_eq!(got.instance_type.as_deref(), Some("t3.small"), "overridden");
        let m = got.metadata.unwrap();
        assert_eq!(m.http_tokens.as_deref(), Some("required"));
        assert_eq!(m.hop_limit, Some(3));
        assert_eq!(got.security_group_ids, ["sg-00000001"]);
        assert_eq!(
            got.tag_specifications,
            vec![spec("volume", &[("v", "1")])],
            "a list is replaced whole"
        );
        assert_eq!(overlay(&template(), &LaunchData::default()), template());
    }

    #[test]
    fn a_launch_merges_tags_by_key_and_the_request_wins() {
        let req = LaunchData {
            instance_type: Some("t3.micro".into()),
            tag_specifications: vec![spec("instance", &[("env", "prod"), ("x", "y")])],
            ..Default::default()
        };
        let got = for_launch(&template(), &req);
        assert_eq!(got.instance_type.as_deref(), Some("t3.micro"));
        assert_eq!(
            got.tags_for("instance"),
            [
                ("team".to_string(), "web".to_string()),
                ("env".into(), "prod".into()),
                ("x".into(), "y".into())
            ]
        );
    }

    #[test]
    fn a_requested_subnet_goes_on_the_templates_interface_zero() {
        let mut t = template();
        t.security_group_ids.clear();
        t.network_interfaces = vec![NetworkInterface {
            device_index: Some(0),
            subnet_id: Some("subnet-00000001".into()),
            groups: vec!["sg-00000001".into()],
            associate_public_ip: Some(true),
            ..Default::default()
        }];
        let req = LaunchData {
            subnet_id: Some("subnet-00000002".into()),
            security_group_ids: vec!["sg-00000002".into()],
            ..Default::default()
        };
        let got = for_launch(&t, &req);
        assert_eq!(got.subnet_id, None);
        assert!(got.security_group_ids.is_empty());
        let n = &got.network_interfaces[0];
        assert_eq!(n.subnet_id.as_deref(), Some("subnet-00000002"));
        assert_eq!(n.groups, ["sg-00000002"]);
        assert_eq!(n.associate_public_ip, Some(true), "kept");
        // Without a template interface, the subnet stays the instance's.
        let got = for_launch(&template(), &req);
        assert_eq!(got.subnet_id.as_deref(), Some("subnet-00000002"));
        assert_eq!(got.security_group_ids, ["sg-00000002"]);
    }
}
