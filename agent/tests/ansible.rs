//! Ansible's `amazon.aws` collection (the `ansible` package from PyPI, in a virtualenv outside
//! the checkout) against a real agent: `ec2_key`, `ec2_security_group`, `ec2_instance`
//! (create and wait, info, stop, terminate) and `ec2_vol` (create, attach, detach, delete),
//! run by the playbook `agent/tests/ansible/ec2.yml` one phase at a time. Between phases the
//! test checks through the EC2 API what a user would: the key and the group exist, the
//! instance runs, then is stopped, then terminated; the volume is made, attached (to the
//! stopped instance: the agent has no hot-plug), detached, then gone.
//!
//! The virtualenv is `$KEC2_ANSIBLE_VENV`, else `/var/cache/kec2/ansible-venv`, made on first
//! use with the pinned versions below. The test is skipped, saying so, only when it has to
//! install them and PyPI cannot be reached.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Agent, child_text};

/// The `ansible` release (it bundles `amazon.aws` 10.1.2), the `ansible-core` it runs on, and
/// the boto3 whose botocore `shapes/` and `wire/` are generated from.
const PACKAGES: [&str; 3] = ["ansible==12.3.0", "ansible-core==2.19.14", "boto3==1.44.18"];

/// Whether `venv` has the pinned packages (a `pip freeze` holding each pin).
fn venv_complete(venv: &Path) -> bool {
    let Ok(out) = Command::new(venv.join("bin/python3"))
        .args(["-m", "pip", "freeze"])
        .output()
    else {
        return false;
    };
    let frozen = String::from_utf8_lossy(&out.stdout);
    out.status.success()
        && PACKAGES
            .iter()
            .all(|p| frozen.lines().any(|l| l.eq_ignore_ascii_case(p)))
}

/// Why PyPI cannot be reached, if it cannot: asks the virtualenv's pip (with the machine's
/// pip configuration) for the versions of `ansible`.
fn pypi_unreachable(venv: &Path) -> Option<String> {
    let out = Command::new(venv.join("bin/pip"))
        .args(["index", "versions", "ansible", "--timeout", "20"])
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .filter(|l| !l.contains("pip index is currently an experimental command"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Err(e) => Some(format!("cannot run {}/bin/pip: {e}", venv.display())),
    }
}

/// The Ansible virtualenv's `bin/`, made if missing; `None` (the test is skipped) only when
/// the packages are missing and PyPI cannot be reached.
fn ansible_bin() -> Option<PathBuf> {
    let venv = std::env::var_os("KEC2_ANSIBLE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kec2/ansible-venv"));
    if venv_complete(&venv) {
        return Some(venv.join("bin"));
    }
    if !venv.join("bin/pip").exists() {
        std::fs::create_dir_all(venv.parent().unwrap())
            .expect("cannot create the venv's parent dir");
        let st = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status();
        assert!(
            st.is_ok_and(|s| s.success()),
            "cannot create a virtualenv at {} (is python3-venv installed? scripts/install-deps.sh installs it)",
            venv.display()
        );
    }
    if let Some(why) = pypi_unreachable(&venv) {
        // Straight to stderr, past the test harness's capture, so that the run shows it
        // (scripts/test.sh counts these lines as skipped tests).
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED: ansible test: {} lacks {} and PyPI cannot be reached to install them: {why}",
            venv.display(),
            PACKAGES.join(" ")
        );
        return None;
    }
    let out = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet"])
        .args(PACKAGES)
        .output()
        .expect("cannot run pip");
    assert!(
        out.status.success() && venv_complete(&venv),
        "PyPI answers, but installing {} into {} failed:\n{}",
        PACKAGES.join(" "),
        venv.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(venv.join("bin"))
}

/// Runs the phase `tag` of the playbook against `agent`; it must succeed.
fn playbook(bin: &Path, agent: &Agent, ami: &str, tag: &str) {
    let creds = agent.credentials();
    let home = agent.dir.path().join("ansible-home");
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ansible/ec2.yml");
    let extra = serde_json::json!({
        "endpoint": agent.endpoint,
        "access_key": creds.access_key,
        "secret_key": creds.secret_key,
        "ami": ami,
    });
    let mut cmd = Command::new(bin.join("ansible-playbook"));
    cmd.args(["-i", "localhost,", "--tags", tag, "-e"])
        .arg(extra.to_string())
        .arg(&book)
        .env("ANSIBLE_HOME", &home)
        .env("ANSIBLE_COLLECTIONS_PATH", home.join("collections"))
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "false")
        .env("PYTHONWARNINGS", "ignore");
    for var in [
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "ANSIBLE_CONFIG",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("cannot run ansible-playbook");
    assert!(
        out.status.success(),
        "the playbook's {tag} phase failed:\n{}\n{}\nagent log tail:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        common::tail(&agent.log(), 30)
    );
}

/// The `item`s of the first `set` element in `doc`.
fn items<'a, 'i>(doc: &'a roxmltree::Document<'i>, set: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    doc.descendants()
        .find(|n| n.has_tag_name(set))
        .map(|s| s.children().filter(|c| c.has_tag_name("item")).collect())
        .unwrap_or_default()
}

/// The instances named `ansible-vm` as `(id, state)`.
fn vms(agent: &Agent) -> Vec<(String, String)> {
    agent.states_where(&[
        ("Filter.1.Name", "tag:Name"),
        ("Filter.1.Value.1", "ansible-vm"),
    ])
}

/// The volumes named `ansible-vol` as `(id, status, attached instance)`.
fn vols(agent: &Agent) -> Vec<(String, String, String)> {
    let xml = agent.call(
        "DescribeVolumes",
        &[
            ("Filter.1.Name", "tag:Name"),
            ("Filter.1.Value.1", "ansible-vol"),
        ],
    );
    let doc = roxmltree::Document::parse(&xml).unwrap();
    items(&doc, "volumeSet")
        .into_iter()
        .map(|v| {
            let attached = v
                .descendants()
                .find(|n| n.has_tag_name("attachmentSet"))
                .and_then(|s| s.children().find(|c| c.has_tag_name("item")))
                .map(|a| child_text(a, "instanceId"))
                .unwrap_or_default();
            (child_text(v, "volumeId"), child_text(v, "status"), attached)
        })
        .collect()
}

#[test]
fn ansible_drives_keys_groups_instances_and_volumes() {
    let Some(bin) = ansible_bin() else { return };
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let ami = agent.register_probe();

    playbook(&bin, &agent, &ami, "create");
    let keys = agent.call("DescribeKeyPairs", &[("KeyName.1", "ansible-key")]);
    assert!(keys.contains("<keyName>ansible-key</keyName>"), "{keys}");
    let groups = agent.call("DescribeSecurityGroups", &[("GroupName.1", "ansible-sg")]);
    let doc = roxmltree::Document::parse(&groups).unwrap();
    let group = &items(&doc, "securityGroupInfo")[..];
    assert_eq!(group.len(), 1, "{groups}");
    let group_id = child_text(group[0], "groupId");
    let rule = items(&doc, "ipPermissions");
    assert!(
        rule.iter()
            .any(|r| child_text(*r, "ipProtocol") == "tcp" && child_text(*r, "fromPort") == "22"),
        "the group lacks the SSH rule: {groups}"
    );
    let running = vms(&agent);
    assert_eq!(running.len(), 1, "{running:?}");
    let (id, state) = &running[0];
    assert_eq!(state, "running");
    let shown = agent.call("DescribeInstances", &[("InstanceId.1", id)]);
    assert!(
        shown.contains(&format!("<groupId>{group_id}</groupId>")),
        "{shown}"
    );
    assert!(shown.contains("<keyName>ansible-key</keyName>"), "{shown}");
    let made = vols(&agent);
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!((made[0].1.as_str(), made[0].2.as_str()), ("available", ""));

    // The agent attaches volumes to stopped instances only (no hot-plug).
    playbook(&bin, &agent, &ami, "stop");
    assert_eq!(vms(&agent), [(id.clone(), "stopped".to_string())]);

    playbook(&bin, &agent, &ami, "attach");
    let attached = vols(&agent);
    assert_eq!((attached[0].1.as_str(), &attached[0].2), ("in-use", id));
    let shown = agent.call("DescribeInstances", &[("InstanceId.1", id)]);
    assert!(
        shown.contains(&format!("<volumeId>{}</volumeId>", attached[0].0)),
        "{shown}"
    );

    playbook(&bin, &agent, &ami, "detach");
    let detached = vols(&agent);
    assert_eq!(
        (detached[0].1.as_str(), detached[0].2.as_str()),
        ("available", ""),
        "{detached:?}"
    );

    playbook(&bin, &agent, &ami, "teardown");
    agent.wait_state(id, "terminated", Duration::from_secs(30));
    assert_eq!(vols(&agent), []);
}
