//! The probe boots under the real `vmm` on real KVM and reports what the VMM gave it.

mod common;

use std::time::Duration;

use common::{probe_elf, run_with_timeout, stderr, stdout, vmm};

/// Boots the probe's self-test and checks every line a user would look for.
fn boot_selftest(vcpus: u32, mem_mib: u64) {
    let cmdline = format!("probe.mode=selftest tag=v{vcpus}m{mem_mib}");
    let out = run_with_timeout(
        vmm()
            .arg("--kernel")
            .arg(probe_elf())
            .args(["--vcpus", &vcpus.to_string()])
            .args(["--mem-mib", &mem_mib.to_string()])
            .args(["--cmdline", &cmdline]),
        Duration::from_secs(60),
    );
    let console = stdout(&out);
    let log = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "console:\n{console}\nvmm:\n{log}"
    );
    for i in 0..vcpus {
        let line = format!("probe: vcpu {i} of {vcpus} up");
        assert!(
            console.lines().any(|l| l == line),
            "missing {line:?} in:\n{console}"
        );
    }
    let lines: Vec<&str> = console.lines().collect();
    assert!(
        lines.contains(&format!("probe: memory {mem_mib} MiB").as_str()),
        "{console}"
    );
    assert!(
        lines.contains(&format!("probe: cmdline {cmdline}").as_str()),
        "{console}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("probe: selftest ok ")),
        "{console}"
    );
    assert_eq!(lines.last(), Some(&"probe: power off 0"), "{console}");
    assert!(
        log.contains("vmm: exit: guest powered off (status 0)"),
        "{log}"
    );
}

#[test]
fn probe_boots_on_1_vcpu_with_64_mib() {
    boot_selftest(1, 64);
}

#[test]
fn probe_boots_on_4_vcpus_with_64_mib() {
    boot_selftest(4, 64);
}

#[test]
fn probe_boots_on_1_vcpu_with_512_mib() {
    boot_selftest(1, 512);
}

#[test]
fn probe_boots_on_4_vcpus_with_512_mib() {
    boot_selftest(4, 512);
}

#[test]
fn poweroff_mode_powers_off_at_once() {
    let out = run_with_timeout(
        vmm().arg("--kernel").arg(probe_elf()).args([
            "--mem-mib",
            "64",
            "--cmdline",
            "probe.mode=poweroff",
        ]),
        Duration::from_secs(30),
    );
    let console = stdout(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(!console.contains("selftest"), "{console}");
    assert!(console.ends_with("probe: power off 0\n"), "{console}");
}

#[test]
fn unknown_mode_reports_a_failure_status() {
    let out = run_with_timeout(
        vmm().arg("--kernel").arg(probe_elf()).args([
            "--mem-mib",
            "64",
            "--cmdline",
            "probe.mode=bogus",
        ]),
        Duration::from_secs(30),
    );
    assert!(stdout(&out).contains("probe: unknown probe.mode=bogus"));
    assert!(
        stderr(&out).contains("guest powered off (status 1)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_file_boots_the_same_probe() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    let config = dir.path().join("vm.json");
    let json = serde_json::json!({
        "kernel": probe_elf(),
        "vcpus": 2,
        "mem_mib": 96,
        "cmdline": "probe.mode=selftest from=json",
        "serial_log": log,
    });
    std::fs::write(&config, json.to_string()).unwrap();
    let out = run_with_timeout(vmm().arg("--config").arg(&config), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).is_empty(),
        "with a log file the console stays off stdout"
    );
    let console = std::fs::read_to_string(&log).unwrap();
    assert!(console.contains("probe: vcpu 1 of 2 up"), "{console}");
    assert!(console.contains("probe: memory 96 MiB"), "{console}");
    assert!(
        console.contains("probe: cmdline probe.mode=selftest from=json"),
        "{console}"
    );
}
