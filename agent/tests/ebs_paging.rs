//! Paging of the EBS, image, tag and catalog Describe actions: `MaxResults` with the
//! `NextToken` each page gives reaches every item once, whatever is deleted in between;
//! `MaxResults` outside the documented range is refused.

mod common;
mod ebs_common;

use std::time::Duration;

use common::{Agent, child_text};
use ebs_common::*;

/// The key of a described item.
type Key<'k> = &'k dyn Fn(roxmltree::Node<'_, '_>) -> String;

/// The keys of `set`'s items in one answer, and its `nextToken`.
fn page(
    xml: &str,
    set: &str,
    key: &dyn Fn(roxmltree::Node<'_, '_>) -> String,
) -> (Vec<String>, Option<String>) {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let items = doc
        .descendants()
        .filter(|n| n.has_tag_name("item") && n.parent().is_some_and(|p| p.has_tag_name(set)))
        .map(key)
        .collect();
    let token = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("nextToken"))
        .and_then(|n| n.text())
        .map(str::to_string);
    (items, token)
}

/// Every key of `action` page by page (`max` a page), checking each page's size.
fn all_pages(
    agent: &Agent,
    action: &str,
    set: &str,
    max: usize,
    key: &dyn Fn(roxmltree::Node<'_, '_>) -> String,
) -> Vec<String> {
    let max_s = max.to_string();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let mut p = vec![("MaxResults", max_s.as_str())];
        if let Some(t) = &token {
            p.push(("NextToken", t.as_str()));
        }
        let (items, next) = page(&agent.call(action, &p), set, key);
        assert!(
            items.len() <= max,
            "{action}: {} items in a page of {max}",
            items.len()
        );
        out.extend(items);
        match next {
            Some(t) => token = Some(t),
            None => return out,
        }
    }
    panic!("{action} did not end after 100 pages");
}

/// Every key of `action` unpaged, sorted.
fn unpaged(
    agent: &Agent,
    action: &str,
    set: &str,
    key: &dyn Fn(roxmltree::Node<'_, '_>) -> String,
) -> Vec<String> {
    let (mut items, token) = page(&agent.call(action, &[]), set, key);
    assert_eq!(token, None, "{action} unpaged gave a token");
    items.sort();
    items
}

#[test]
fn describe_actions_page_through_everything() {
    let agent = Agent::start(&[]);
    let vols: Vec<String> = (0..7)
        .map(|i| {
            let name = format!("v{i}");
            create_volume(
                &agent,
                &[
                    ("Size", "1"),
                    ("TagSpecification.1.ResourceType", "volume"),
                    ("TagSpecification.1.Tag.1.Key", "Name"),
                    ("TagSpecification.1.Tag.1.Value", &name),
                    ("TagSpecification.1.Tag.2.Key", "n"),
                ],
            )
        })
        .collect();
    for v in &vols {
        wait_volume(&agent, v, "available", Duration::from_secs(30));
    }
    let snaps: Vec<String> = vols[..6]
        .iter()
        .map(|v| snapshot(&agent, v, Duration::from_secs(30)))
        .collect();
    let probe = probe_elf();
    for i in 0..6 {
        agent.call(
            "RegisterImage",
            &[
                ("Name", &format!("paged-{i}")),
                ("KernelPath", probe.to_str().unwrap()),
                ("EntryMode", "user"),
            ],
        );
    }

    let by = |tag: &'static str| move |n: roxmltree::Node<'_, '_>| child_text(n, tag);
    let tag_key = |n: roxmltree::Node<'_, '_>| {
        format!("{} {}", child_text(n, "resourceId"), child_text(n, "key"))
    };
    let cases: [(&str, &str, Key<'_>); 5] = [
        ("DescribeVolumes", "volumeSet", &by("volumeId")),
        ("DescribeSnapshots", "snapshotSet", &by("snapshotId")),
        ("DescribeImages", "imagesSet", &by("imageId")),
        ("DescribeTags", "tagSet", &tag_key),
        (
            "DescribeInstanceTypes",
            "instanceTypeSet",
            &by("instanceType"),
        ),
    ];
    for (action, set, key) in cases {
        let everything = unpaged(&agent, action, set, key);
        assert!(everything.len() > 5, "{action}: {everything:?}");
        let paged = all_pages(&agent, action, set, 5, key);
        assert_eq!(
            paged, everything,
            "{action}: pages in id order, each item once"
        );
        let (code, _) = agent.call_err(action, &[("MaxResults", "4")]);
        assert_eq!(code, "InvalidParameterValue", "{action} MaxResults=4");
    }

    // A page boundary stays put when the item it ends on is deleted.
    let first = agent.call("DescribeVolumes", &[("MaxResults", "5")]);
    let (items, token) = page(&first, "volumeSet", &by("volumeId"));
    agent.call("DeleteVolume", &[("VolumeId", items.last().unwrap())]);
    let token = token.unwrap();
    let rest = agent.call(
        "DescribeVolumes",
        &[("MaxResults", "5"), ("NextToken", &token)],
    );
    let (rest, next) = page(&rest, "volumeSet", &by("volumeId"));
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(next, None);
    // Above EC2's largest page, DescribeVolumes answers its largest page (500).
    let (all, _) = page(
        &agent.call("DescribeVolumes", &[("MaxResults", "1000")]),
        "volumeSet",
        &by("volumeId"),
    );
    assert_eq!(all.len(), 6);
    let (code, _) = agent.call_err("DescribeVolumes", &[("NextToken", "forged")]);
    assert_eq!(code, "InvalidParameterValue");
    drop(snaps);
}
