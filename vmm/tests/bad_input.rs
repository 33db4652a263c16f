//! Every bad input gets a clear error, a non-zero exit, and leaves nothing behind.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{assert_refused, probe_elf, run_with_timeout, stderr, vmm};

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

#[test]
fn missing_kernel() {
    assert_refused(
        &[os("--kernel"), os("/nonexistent/vmlinux")],
        "kernel /nonexistent/vmlinux cannot be opened",
    );
}

#[test]
fn kernel_that_is_not_elf_or_bzimage() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&[0x90; 8192]).unwrap();
    assert_refused(
        &[os("--kernel"), file.path().as_os_str()],
        "is not an ELF image nor a bzImage",
    );
}

#[test]
fn memory_larger_than_the_host() {
    let probe = probe_elf();
    assert_refused(
        &[
            os("--kernel"),
            probe.as_os_str(),
            os("--mem-mib"),
            os("100000000"),
        ],
        "is more than this host's",
    );
}

#[test]
fn smbios_values_that_do_not_parse() {
    let probe = probe_elf();
    for (spec, expected) in [
        (
            "uuid=ec2-not-a-uuid",
            "smbios: uuid `ec2-not-a-uuid` is not a UUID",
        ),
        (
            "colour=red",
            "smbios: `colour=red` is not valid; allowed: manufacturer=",
        ),
        ("manufacturer", "smbios: `manufacturer` is not valid"),
    ] {
        let err = assert_refused(
            &[os("--kernel"), probe.as_os_str(), os("--smbios"), os(spec)],
            expected,
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let long = format!("serial={}", "9".repeat(256));
    assert_refused(
        &[os("--kernel"), probe.as_os_str(), os("--smbios"), os(&long)],
        "serial is 256 bytes; at most 255 are allowed",
    );
}

#[test]
fn zero_vcpus() {
    let probe = probe_elf();
    assert_refused(
        &[os("--kernel"), probe.as_os_str(), os("--vcpus"), os("0")],
        "vcpus must be between 1 and",
    );
}

#[test]
fn more_vcpus_than_kvm_allows() {
    let probe = probe_elf();
    assert_refused(
        &[
            os("--kernel"),
            probe.as_os_str(),
            os("--vcpus"),
            os("100000"),
        ],
        "vcpus must be between 1 and",
    );
}

#[test]
fn unreadable_initrd() {
    let probe = probe_elf();
    assert_refused(
        &[
            os("--kernel"),
            probe.as_os_str(),
            os("--initrd"),
            os("/nonexistent/initrd.img"),
        ],
        "initrd /nonexistent/initrd.img cannot be opened",
    );
}

#[test]
fn initrd_too_large_for_memory() {
    let probe = probe_elf();
    let big = tempfile::NamedTempFile::new().unwrap();
    big.as_file().set_len(64 << 20).unwrap();
    assert_refused(
        &[
            os("--kernel"),
            probe.as_os_str(),
            os("--mem-mib"),
            os("32"),
            os("--initrd"),
            big.path().as_os_str(),
        ],
        "does not fit in guest memory",
    );
}

#[test]
fn config_file_with_an_unknown_field() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(file, r#"{{"kernel":"{}","cpus":2}}"#, probe_elf().display()).unwrap();
    assert_refused(
        &[os("--config"), file.path().as_os_str()],
        "unknown field `cpus`",
    );
}

#[test]
fn entry_mode_must_be_user_or_kernel() {
    let out = run_with_timeout(
        vmm().args(["--kernel", "/x", "--entry", "ring0"]),
        Duration::from_secs(10),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("`user` or `kernel`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_live_socket_is_not_stolen() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let log = dir.path().join("console.log");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let out = run_with_timeout(
        vmm()
            .arg("--kernel")
            .arg(probe_elf())
            .arg("--api-sock")
            .arg(&sock)
            .arg("--serial-log")
            .arg(&log),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("is in use by another process"), "{err}");
    assert!(
        Path::new(&sock).exists(),
        "the other process's socket is untouched"
    );
    assert!(
        !log.exists(),
        "the console log opened before the failure is removed"
    );
}
