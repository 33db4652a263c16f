//! Hibernation through the API: a counting probe hibernates and resumes where it stopped;
//! a corrupted saved state fails the start clearly, without a fresh boot.

mod common;

use std::time::Duration;

use common::{Agent, eventually, instance_ids, tail};

const T: Duration = Duration::from_secs(30);

/// The counts the probe printed, in order (`probe: count N`).
fn counts(console: &str) -> Vec<u64> {
    console
        .lines()
        .filter_map(|l| l.strip_prefix("probe: count "))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

fn counting_image(agent: &Agent) -> String {
    agent.register_probe_with("counter", "probe.mode=count")
}

fn launch(agent: &Agent, ami: &str, hibernation: bool) -> String {
    let mut params = vec![
        ("ImageId", ami),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("InstanceType", "t2.nano"),
    ];
    if hibernation {
        params.push(("HibernationOptions.Configured", "true"));
    }
    instance_ids(&agent.call("RunInstances", &params))[0].clone()
}

fn wait_count(agent: &Agent, id: &str, at_least: u64) {
    let ok = eventually(T, || {
        counts(&agent.console(id))
            .last()
            .is_some_and(|n| *n >= at_least)
    });
    assert!(
        ok,
        "{id} did not count to {at_least}:\n{}",
        agent.console(id)
    );
}

#[test]
fn a_hibernated_instance_resumes_where_it_stopped() {
    let agent = Agent::start(&[]);
    let ami = counting_image(&agent);
    let id = launch(&agent, &ami, true);
    let xml = agent.call("DescribeInstances", &[("InstanceId.1", &id)]);
    assert!(
        xml.contains("<hibernationOptions><configured>true</configured></hibernationOptions>"),
        "{xml}"
    );
    wait_count(&agent, &id, 3);

    agent.call(
        "StopInstances",
        &[("InstanceId.1", &id), ("Hibernate", "true")],
    );
    agent.wait_state(&id, "stopped", T);
    let view = agent.instance(&id);
    assert_eq!(
        view.reason_code, "Client.UserInitiatedHibernate",
        "{view:?}"
    );
    let saved = agent
        .dir
        .path()
        .join("instances")
        .join(&id)
        .join("jail")
        .join("hibernation.snap");
    assert!(saved.exists(), "the saved state is kept while stopped");
    let before = counts(&agent.console(&id));
    let last = *before.last().unwrap();
    let boots = agent.console(&id).matches("probe: vcpu 0 of 1 up").count();

    agent.call("StartInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "running", T);
    wait_count(&agent, &id, last + 2);
    let after = counts(&agent.console(&id));
    assert_eq!(
        after[before.len()],
        last + 1,
        "the count continues from {last}: {:?}",
        &after[before.len().saturating_sub(3)..]
    );
    assert_eq!(
        agent.console(&id).matches("probe: vcpu 0 of 1 up").count(),
        boots,
        "resumed, not booted again"
    );
    assert!(
        eventually(T, || !saved.exists()),
        "the saved state is dropped once the instance runs"
    );
}

#[test]
fn a_corrupt_saved_state_fails_the_start_without_a_fresh_boot() {
    let agent = Agent::start(&[]);
    let ami = counting_image(&agent);
    let id = launch(&agent, &ami, true);
    wait_count(&agent, &id, 2);
    agent.call(
        "StopInstances",
        &[("InstanceId.1", &id), ("Hibernate", "true")],
    );
    agent.wait_state(&id, "stopped", T);
    let saved = agent
        .dir
        .path()
        .join("instances")
        .join(&id)
        .join("jail")
        .join("hibernation.snap");
    let mut bytes = std::fs::read(&saved).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&saved, &bytes).unwrap();
    let boots = agent.console(&id).matches("probe: vcpu 0 of 1 up").count();

    agent.call("StartInstances", &[("InstanceId.1", &id)]);
    assert!(
        eventually(T, || agent.instance(&id).state == "stopped"
            && agent.instance(&id).reason_code == "Server.InternalError"),
        "{:?}\n{}",
        agent.instance(&id),
        tail(&agent.log(), 20)
    );
    let view = agent.instance(&id);
    assert!(view.reason_message.contains("corrupt"), "{view:?}");
    assert_eq!(
        agent.console(&id).matches("probe: vcpu 0 of 1 up").count(),
        boots,
        "no fresh boot"
    );
}

#[test]
fn hibernation_needs_the_launch_option() {
    let agent = Agent::start(&[]);
    let ami = counting_image(&agent);
    let id = launch(&agent, &ami, false);
    agent.wait_state(&id, "running", T);
    let (code, message) = agent.call_err(
        "StopInstances",
        &[("InstanceId.1", &id), ("Hibernate", "true")],
    );
    assert_eq!(code, "UnsupportedHibernationConfiguration", "{message}");
    assert_eq!(agent.instance(&id).state, "running", "nothing changed");
}
