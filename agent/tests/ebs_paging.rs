//! Paging of the EBS, image, tag and catalog Describe actions: `MaxResults` with the
//! `NextToken` each page gives reaches every item once, whatever is deleted in between;
//! `MaxResults` outside the documented range is refused.

mod common;
mod ebs_common;

use std::time::Duration;

use common::paging::{Key, all_pages, page, unpaged};
use common::{Agent, child_text};
use ebs_common::*;

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
