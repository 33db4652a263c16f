//! The whole lifecycle with probe instances through the `ec2` CLI, and guest-side events:
//! power-off per shutdown behaviour, and a VMM crash.

mod common;

use std::time::Duration;

use common::{Agent, eventually, pid_alive, vmm_control};

const T: Duration = Duration::from_secs(20);

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

#[test]
fn cli_run_three_stop_start_reboot_terminate() {
    let agent = Agent::start(&["--stop-timeout", "5"]);
    let ami = agent.register_probe();

    // Run 3: pending at once, then running, each its own vmm.
    let run = json(&agent.ec2_ok(&[
        "run-instances",
        "--image-id",
        &ami,
        "--instance-type",
        "t2.micro",
        "--count",
        "3",
        "--output",
        "json",
    ]));
    let launched = run["Instances"].as_array().unwrap();
    assert_eq!(launched.len(), 3);
    let ids: Vec<String> = launched
        .iter()
        .map(|i| i["InstanceId"].as_str().unwrap().to_string())
        .collect();
    for i in launched {
        assert_eq!(i["State"]["Name"], "pending");
        assert_eq!(i["State"]["Code"], 0);
        assert_eq!(i["InstanceType"], "t2.micro");
        assert_eq!(i["ImageId"], ami.as_str());
    }
    agent.ec2_ok(&[
        "wait",
        "instance-running",
        "--instance-ids",
        &ids[0],
        &ids[1],
        &ids[2],
    ]);
    let table = agent.ec2_ok(&["describe-instances"]);
    for id in &ids {
        let line = table.lines().find(|l| l.starts_with(id.as_str())).unwrap();
        assert!(line.contains("running"), "{line}");
        assert_eq!(agent.instance(id).code, 16);
    }
    assert_eq!(agent.vmm_pids().len(), 3);

    // Console output is the probe's.
    assert!(eventually(T, || agent
        .ec2_ok(&["get-console-output", "--instance-id", &ids[0]])
        .contains("probe: net dhcp")));
    let console = agent.ec2_ok(&["get-console-output", "--instance-id", &ids[0]]);
    assert!(console.contains("probe: vcpu 0 of 1 up"), "{console}");
    assert!(console.contains("probe: memory 1024 MiB"), "{console}");

    // Stop one: stopping, then stopped, its vmm gone after a graceful ACPI power-button press.
    let pid0 = agent.vmm_pid(&ids[0]).unwrap();
    let out = agent.ec2_ok(&["stop-instances", "--instance-ids", &ids[0]]);
    assert!(out.contains("running") && out.contains("stopping"), "{out}");
    agent.ec2_ok(&["wait", "instance-stopped", "--instance-ids", &ids[0]]);
    let v = agent.instance(&ids[0]);
    assert_eq!((v.state.as_str(), v.code), ("stopped", 80));
    assert_eq!(v.reason_code, "Client.UserInitiatedShutdown");
    assert!(v.transition_reason.starts_with("User initiated ("), "{v:?}");
    assert!(eventually(T, || !pid_alive(pid0)));
    let console = agent.console(&ids[0]);
    assert!(console.contains("probe: power button pressed"), "{console}");
    assert!(!console.contains("ctrl-alt-del received"), "{console}");
    assert_eq!(agent.vmm_pid(&ids[0]), None);

    // Start it again: pending, then running with a new vmm.
    let out = agent.ec2_ok(&["start-instances", "--instance-ids", &ids[0]]);
    assert!(out.contains("stopped") && out.contains("pending"), "{out}");
    agent.ec2_ok(&["wait", "instance-running", "--instance-ids", &ids[0]]);
    let v = agent.instance(&ids[0]);
    assert_eq!(
        v.reason_code, "",
        "a running instance has no StateReason: {v:?}"
    );
    assert_ne!(agent.vmm_pid(&ids[0]), Some(pid0));

    // Reboot one: it stays running while its vmm is replaced.
    let old = agent.vmm_pid(&ids[1]).unwrap();
    let boots = |a: &Agent| a.console(&ids[1]).matches("probe: vcpu 0 of 1 up").count();
    assert_eq!(boots(&agent), 1);
    agent.ec2_ok(&["reboot-instances", "--instance-ids", &ids[1]]);
    let mut states = Vec::new();
    let rebooted = eventually(T, || {
        states.push(agent.instance(&ids[1]).state);
        boots(&agent) == 2 && agent.vmm_pid(&ids[1]).is_some_and(|p| p != old)
    });
    assert!(
        rebooted,
        "no second boot; console:\n{}",
        agent.console(&ids[1])
    );
    assert!(
        states.iter().all(|s| s == "running"),
        "reboot left running: {states:?}"
    );
    assert!(!pid_alive(old));
    assert!(
        agent
            .console(&ids[1])
            .contains("probe: ctrl-alt-del received"),
        "a reboot presses Ctrl-Alt-Del, not the power button"
    );
    agent.wait_state(&ids[1], "running", T);

    // Terminate all: shutting-down, then terminated and still visible; no vmm left.
    let out = agent.ec2_ok(&[
        "terminate-instances",
        "--instance-ids",
        &ids[0],
        &ids[1],
        &ids[2],
    ]);
    assert_eq!(out.matches("shutting-down").count(), 3, "{out}");
    agent.ec2_ok(&[
        "wait",
        "instance-terminated",
        "--instance-ids",
        &ids[0],
        &ids[1],
        &ids[2],
    ]);
    for id in &ids {
        let v = agent.instance(id);
        assert_eq!((v.state.as_str(), v.code), ("terminated", 48));
    }
    assert!(eventually(T, || agent.vmm_pids().is_empty()));
    let json_all = json(&agent.ec2_ok(&["describe-instances", "--output", "json"]));
    assert_eq!(
        json_all["Reservations"][0]["Instances"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn guest_power_off_stops_or_terminates_per_shutdown_behavior() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let stop_id = agent.run_one(&ami);
    let term_id = common::instance_ids(&agent.call(
        "RunInstances",
        &[
            ("ImageId", &ami),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "t2.nano"),
            ("InstanceInitiatedShutdownBehavior", "terminate"),
        ],
    ))[0]
        .clone();
    agent.wait_state(&stop_id, "running", T);
    agent.wait_state(&term_id, "running", T);
    // The guest powers itself off (the probe does on Ctrl-Alt-Del), behind the agent's back.
    for id in [&stop_id, &term_id] {
        assert!(vmm_control(&agent, id, "ctrl-alt-del").contains("\"ok\":true"));
    }
    agent.wait_state(&stop_id, "stopped", T);
    agent.wait_state(&term_id, "terminated", T);
    for id in [&stop_id, &term_id] {
        let v = agent.instance(id);
        assert_eq!(v.reason_code, "Client.InstanceInitiatedShutdown", "{v:?}");
    }
    assert!(agent.vmm_pids().is_empty());
}

#[test]
fn vmm_crash_is_reported_not_hidden() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let id = agent.run_one(&ami);
    agent.wait_state(&id, "running", T);
    let pid = agent.vmm_pid(&id).unwrap();
    // SAFETY: kill(2) on the vmm this test's agent started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    agent.wait_state(&id, "stopped", T);
    let v = agent.instance(&id);
    assert_eq!(v.reason_code, "Server.InternalError", "{v:?}");
    assert!(v.reason_message.contains("without an exit line"), "{v:?}");
    // It can be started again.
    agent.call("StartInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "running", T);
}

#[test]
fn stop_escalates_when_the_guest_ignores_the_power_button_and_force_skips_the_wait() {
    let agent = Agent::start(&["--stop-timeout", "1"]);
    let ami = agent.register_probe();
    let xml = agent.call(
        "RunInstances",
        &[
            ("ImageId", &ami),
            ("MinCount", "2"),
            ("MaxCount", "2"),
            ("InstanceType", "t2.nano"),
        ],
    );
    let ids = common::instance_ids(&xml);
    for id in &ids {
        agent.wait_state(id, "running", T);
    }
    // A paused guest cannot react to the power button: after the timeout the vmm is stopped.
    assert!(vmm_control(&agent, &ids[0], "pause").contains("\"ok\":true"));
    let t = std::time::Instant::now();
    agent.call("StopInstances", &[("InstanceId.1", &ids[0])]);
    agent.wait_state(&ids[0], "stopped", T);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "stopped before the timeout"
    );
    assert!(!agent.console(&ids[0]).contains("power button pressed"));
    // Force skips the power button altogether.
    agent.call(
        "StopInstances",
        &[("InstanceId.1", &ids[1]), ("Force", "true")],
    );
    agent.wait_state(&ids[1], "stopped", T);
    assert!(!agent.console(&ids[1]).contains("power button pressed"));
    let log = std::fs::read_to_string(
        agent
            .dir
            .path()
            .join("instances")
            .join(&ids[1])
            .join("vmm.log"),
    )
    .unwrap();
    assert!(
        log.trim_end()
            .ends_with("vmm: exit: stopped through the control API"),
        "{log}"
    );
    assert!(agent.vmm_pids().is_empty());
}

#[test]
fn terminated_instances_disappear_after_the_retention() {
    let agent = Agent::start(&["--terminated-retention", "2"]);
    let ami = agent.register_probe();
    let id = agent.run_one(&ami);
    agent.wait_state(&id, "running", T);
    agent.call("TerminateInstances", &[("InstanceId.1", &id)]);
    agent.wait_state(&id, "terminated", T);
    assert!(
        agent.states().iter().any(|s| s.0 == id),
        "terminated instances stay visible"
    );
    assert!(
        eventually(T, || agent.states().is_empty()),
        "{:?}",
        agent.states()
    );
    assert!(!agent.dir.path().join("instances").join(&id).exists());
    let (code, _) = agent.call_err("DescribeInstances", &[("InstanceId.1", &id)]);
    assert_eq!(code, "InvalidInstanceID.NotFound");
}

#[test]
fn boot_failures_and_guest_failures_are_reported() {
    let agent = Agent::start(&[]);
    // A kernel file the vmm cannot load: the launch ends stopped, with the vmm's error.
    let junk = agent.dir.path().join("junk-kernel");
    std::fs::write(&junk, b"this is not a kernel").unwrap();
    let xml = agent.call(
        "RegisterImage",
        &[
            ("Name", "junk"),
            ("KernelPath", junk.to_str().unwrap()),
            ("EntryMode", "kernel"),
        ],
    );
    let junk_ami = common::child_text(
        roxmltree::Document::parse(&xml).unwrap().root_element(),
        "imageId",
    );
    let id = agent.run_one(&junk_ami);
    agent.wait_state(&id, "stopped", T);
    let v = agent.instance(&id);
    assert_eq!(v.reason_code, "Server.InternalError", "{v:?}");
    assert!(v.reason_message.contains("failed to boot"), "{v:?}");

    // The probe started in kernel mode: on a host without VT-x/AMD-V, KVM's emulator stops
    // on it, and the vmm reports a guest failure, which must reach the API.
    let hardware_virt = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .split_whitespace()
        .any(|f| f == "vmx" || f == "svm");
    if !hardware_virt {
        let elf = common::probe_manifest().with_file_name("probe.elf");
        let xml = agent.call(
            "RegisterImage",
            &[
                ("Name", "probe-kernel-mode"),
                ("KernelPath", elf.to_str().unwrap()),
                ("EntryMode", "kernel"),
                ("BootArgs", "probe.mode=count"),
            ],
        );
        let ami = common::child_text(
            roxmltree::Document::parse(&xml).unwrap().root_element(),
            "imageId",
        );
        let id = agent.run_one(&ami);
        agent.wait_state(&id, "stopped", T);
        let v = agent.instance(&id);
        assert_eq!(v.reason_code, "Server.InternalError", "{v:?}");
        assert!(
            v.reason_message.contains("vmm: exit: guest failure"),
            "{v:?}"
        );
        // The console log is kept.
        assert!(
            agent.console(&id).contains("probe: vcpu 0"),
            "{}",
            agent.console(&id)
        );
    }
}
