//! Restart safety: SIGKILL the agent while instances run, kill a VMM while it is down, start
//! it again: the same instances, still running, nothing lost, the dead one reported.

mod common;

use std::time::Duration;

use common::{Agent, eventually, pid_alive};

const T: Duration = Duration::from_secs(20);

#[test]
fn sigkill_agent_then_restart_reattaches_and_reports_the_dead_vmm() {
    let mut agent = Agent::start(&["--stop-timeout", "5", "--metrics-interval", "1"]);
    let ami = agent.register_probe();
    agent.call(
        "CreateKeyPair",
        &[("KeyName", "k1"), ("KeyType", "ed25519")],
    );
    let xml = agent.call(
        "RunInstances",
        &[
            ("ImageId", &ami),
            ("MinCount", "3"),
            ("MaxCount", "3"),
            ("InstanceType", "t2.nano"),
            ("KeyName", "k1"),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "team"),
            ("TagSpecification.1.Tag.1.Value", "blue"),
        ],
    );
    let ids = common::instance_ids(&xml);
    assert_eq!(ids.len(), 3);
    for id in &ids {
        agent.wait_state(id, "running", T);
    }
    let pids: Vec<i32> = ids.iter().map(|id| agent.vmm_pid(id).unwrap()).collect();
    let before = agent.call("DescribeInstances", &[]);

    agent.kill9();
    // The VMs outlive the agent.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        pids.iter().all(|p| pid_alive(*p)),
        "a vmm died with the agent"
    );
    // One VMM dies while the agent is down.
    // SAFETY: kill(2) on a vmm this test's agent started.
    unsafe {
        libc::kill(pids[2], libc::SIGKILL);
    }
    assert!(eventually(T, || !pid_alive(pids[2])));

    agent.restart();
    // Same instances, same ids, same VMMs for the two that lived.
    let states = agent.states();
    assert_eq!(states.iter().map(|s| s.0.clone()).collect::<Vec<_>>(), ids);
    for i in 0..2 {
        assert_eq!(states[i].1, "running", "{states:?}");
        assert_eq!(agent.vmm_pid(&ids[i]), Some(pids[i]));
        assert!(pid_alive(pids[i]));
    }
    let dead = agent.instance(&ids[2]);
    assert_eq!(dead.state, "stopped", "{dead:?}");
    assert_eq!(dead.reason_code, "Server.InternalError", "{dead:?}");
    assert!(dead.reason_message.contains("killed"), "{dead:?}");
    // Nothing lost: image, key pair, tags, launch data.
    let after = agent.call("DescribeInstances", &[]);
    for needle in [
        "<keyName>k1</keyName>",
        "<key>team</key>",
        "<value>blue</value>",
        ami.as_str(),
    ] {
        assert_eq!(
            before.matches(needle).count(),
            after.matches(needle).count(),
            "{needle}"
        );
    }
    assert!(agent.call("DescribeImages", &[]).contains(&ami));
    assert!(
        agent
            .call("DescribeKeyPairs", &[])
            .contains("<keyName>k1</keyName>")
    );
    // The new agent's sampler checks the reattached instance within a few seconds.
    let status = || agent.call("DescribeInstanceStatus", &[("InstanceId.1", &ids[0])]);
    assert!(
        eventually(T, || !status().contains("<status>initializing</status>")),
        "{}",
        status()
    );
    let status = status();
    assert!(
        status.contains("<status>ok</status>") && !status.contains("impaired"),
        "{status}"
    );
    // The credentials did not change, so old clients still work.
    assert!(agent.ec2_ok(&["describe-instances"]).contains(&ids[0]));

    // The new agent controls the reattached VMMs: stop one gracefully, watch the exit.
    agent.call("StopInstances", &[("InstanceId.1", &ids[0])]);
    agent.wait_state(&ids[0], "stopped", T);
    assert!(!pid_alive(pids[0]));
    assert_eq!(
        agent.instance(&ids[0]).reason_code,
        "Client.UserInitiatedShutdown"
    );
    // A reattached VMM that dies is noticed without any request.
    // SAFETY: kill(2) on a vmm this test's agent started.
    unsafe {
        libc::kill(pids[1], libc::SIGKILL);
    }
    agent.wait_state(&ids[1], "stopped", T);
    // And the dead one starts again.
    agent.call("StartInstances", &[("InstanceId.1", &ids[2])]);
    agent.wait_state(&ids[2], "running", T);
    assert!(
        agent
            .console(&ids[2])
            .matches("probe: vcpu 0 of 1 up")
            .count()
            >= 2
    );
}

#[test]
fn restart_during_a_stop_finishes_the_stop() {
    // A guest that ignores the power button is simulated by a long stop timeout and an agent
    // killed right after StopInstances: the new agent must finish the stop.
    let mut agent = Agent::start(&["--stop-timeout", "30"]);
    let ami = agent.register_probe();
    let id = agent.run_one(&ami);
    agent.wait_state(&id, "running", T);
    let pid = agent.vmm_pid(&id).unwrap();
    // Pause the guest so the power button cannot be handled, then stop and kill the agent.
    assert!(common::vmm_control(&agent, &id, "pause").contains("\"ok\":true"));
    agent.call("StopInstances", &[("InstanceId.1", &id)]);
    assert_eq!(agent.instance(&id).state, "stopping");
    agent.kill9();
    assert!(pid_alive(pid));
    agent.restart();
    agent.wait_state(&id, "stopped", T);
    assert!(!pid_alive(pid));
    assert_eq!(
        agent.instance(&id).reason_code,
        "Client.UserInitiatedShutdown"
    );
}

#[test]
fn restart_adopts_a_vmm_whose_pid_was_never_recorded() {
    // The agent can die between spawning a VMM and recording its pid; the next one must
    // adopt that VMM rather than start a second one.
    let mut agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let id = agent.run_one(&ami);
    agent.wait_state(&id, "running", T);
    let pid = agent.vmm_pid(&id).unwrap();
    agent.kill9();
    let conn = rusqlite::Connection::open(agent.dir.path().join("state.db")).unwrap();
    conn.execute(
        "UPDATE instances SET pid = NULL, pid_start = NULL WHERE id = ?1",
        [&id],
    )
    .unwrap();
    drop(conn);
    agent.restart();
    agent.wait_state(&id, "running", T);
    assert_eq!(agent.vmm_pid(&id), Some(pid));
    assert_eq!(agent.vmm_pids(), vec![pid]);
    assert_eq!(
        agent.console(&id).matches("probe: vcpu 0 of 1 up").count(),
        1
    );
    agent.call("StopInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "stopped", T);
    assert!(!pid_alive(pid));
}

/// The effects journal: what a change recorded but a killed agent had not applied is applied
/// at the next start, and struck. The crash is made by hand between the commit and the
/// effect: the agent is killed, and the journal and the volume's row are left as a
/// DeleteVolume leaves them when the agent dies right after its transaction.
#[test]
fn effects_recorded_before_a_kill_are_applied_at_the_next_start() {
    let mut agent = Agent::start(&[]);
    let xml = agent.call(
        "CreateVolume",
        &[("AvailabilityZone", "local-1a"), ("Size", "1")],
    );
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let vol = common::child_text(doc.root_element(), "volumeId");
    let file = host::storage::volume_path(agent.dir.path(), &vol);
    assert!(file.exists(), "{}", file.display());

    agent.kill9();
    {
        let db = state::Db::open(&agent.dir.path().join("state.db")).unwrap();
        let conn = db.lock();
        state::volumes::set_state(&conn, &vol, state::volumes::VolumeState::Deleting).unwrap();
        state::effects::record(&conn, "delete-volume", &vol, "").unwrap();
        state::effects::record(&conn, "sync-firewall", "", "").unwrap();
        state::effects::record(&conn, "from-a-newer-agent", "x", "").unwrap();
    }
    agent.restart();

    assert!(
        !file.exists(),
        "the volume's file outlived the replayed effect"
    );
    let (code, _) = agent.call_err("DescribeVolumes", &[("VolumeId.1", &vol)]);
    assert_eq!(code, "InvalidVolume.NotFound");
    let db = state::Db::open(&agent.dir.path().join("state.db")).unwrap();
    let left: Vec<String> = state::effects::pending(&db.lock())
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(left, vec!["from-a-newer-agent".to_string()]);
    assert!(
        agent
            .log()
            .contains("an effect of a kind this agent does not know is left in the journal"),
        "{}",
        common::tail(&agent.log(), 20)
    );
}
