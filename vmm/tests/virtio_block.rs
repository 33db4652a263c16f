//! virtio-blk end to end: the probe's block driver against the real device on real KVM, with
//! the data checked in the host file.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{api, eventually, probe_elf, run_with_timeout, stderr, stdout, vmm};

/// The probe's disk pattern (images/probe/src/disk.rs): a splitmix64 of the offset and a seed.
fn pattern(offset: u64) -> u64 {
    let mut z = (offset ^ 0x6b65_6332_6469_736b).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn disk(size: u64) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().set_len(size).unwrap();
    file
}

fn boot_disk(disk_spec: &str, mode: &str) -> (String, String, Option<i32>) {
    let out = run_with_timeout(
        vmm()
            .arg("--kernel")
            .arg(probe_elf())
            .args(["--mem-mib", "64", "--disk", disk_spec])
            .args(["--cmdline", &format!("probe.disk={mode}")]),
        Duration::from_secs(60),
    );
    (stdout(&out), stderr(&out), out.status.code())
}

fn line_with<'a>(console: &'a str, prefix: &str) -> &'a str {
    console
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{console}"))
}

#[test]
fn written_data_is_in_the_file_and_survives_a_second_boot() {
    let file = disk(8 << 20);
    let spec = file.path().to_str().unwrap().to_owned();
    let (console, log, code) = boot_disk(&spec, "write");
    assert_eq!(code, Some(0), "{log}");
    let written = line_with(&console, "probe: disk write ok 8388608 bytes checksum ");
    let bytes = std::fs::read(file.path()).unwrap();
    for offset in [0u64, 8, 4096, 1 << 20, (8 << 20) - 8] {
        let word = u64::from_le_bytes(
            bytes[offset as usize..offset as usize + 8]
                .try_into()
                .unwrap(),
        );
        assert_eq!(word, pattern(offset), "word at offset {offset}");
    }
    let (console, _, code) = boot_disk(&spec, "verify");
    assert_eq!(code, Some(0));
    let verified = line_with(&console, "probe: disk verify ok 8388608 bytes checksum ");
    assert_eq!(
        written.rsplit(' ').next(),
        verified.rsplit(' ').next(),
        "the same checksum on both boots"
    );
}

#[test]
fn verify_finds_a_corrupted_word() {
    let file = disk(4 << 20);
    let spec = file.path().to_str().unwrap().to_owned();
    assert_eq!(boot_disk(&spec, "write").2, Some(0));
    std::os::unix::fs::FileExt::write_all_at(file.as_file(), &[0xff; 8], 123_456 & !7).unwrap();
    let (console, _, _) = boot_disk(&spec, "verify");
    assert!(
        console.contains(&format!(
            "probe: disk verify FAILED at offset {}",
            123_456 & !7
        )),
        "{console}"
    );
}

#[test]
fn flushed_data_survives_sigkill_of_the_vmm() {
    let file = disk(4 << 20);
    let mut child = vmm()
        .arg("--kernel")
        .arg(probe_elf())
        .args(["--mem-mib", "64", "--disk", file.path().to_str().unwrap()])
        .args(["--cmdline", "probe.disk=write probe.net=static:10.0.0.2/24"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The probe flushes before it reports; with no network card it then powers off, so kill
    // it the moment the report line appears.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let start = Instant::now();
    let mut line = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 || line.starts_with("probe: disk write") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("probe: disk write ok"), "{line}");
    let bytes = std::fs::read(file.path()).unwrap();
    let bad = (0..bytes.len() / 8).find(|i| {
        u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap()) != pattern(*i as u64 * 8)
    });
    assert_eq!(bad, None, "every flushed word is in the file");
}

#[test]
fn read_only_disk_refuses_writes() {
    let file = disk(1 << 20);
    std::fs::write(file.path(), vec![0x5a; 1 << 20]).unwrap();
    let spec = format!("{},ro", file.path().display());
    let (console, _, code) = boot_disk(&spec, "write-ro-check");
    assert_eq!(code, Some(0));
    assert!(
        console.contains("probe: disk write status 1"),
        "IOERR for a write:\n{console}"
    );
    assert!(
        std::fs::read(file.path())
            .unwrap()
            .iter()
            .all(|b| *b == 0x5a)
    );
}

#[test]
fn iops_limit_holds_within_ten_percent() {
    let file = disk(64 << 20);
    let spec = format!("{},iops=1000", file.path().display());
    let (console, log, code) = boot_disk(&spec, "iops");
    assert_eq!(code, Some(0), "{log}");
    let iops: f64 = line_with(&console, "probe: disk iops ")
        .trim_start_matches("probe: disk iops ")
        .trim()
        .parse()
        .unwrap();
    assert!(
        (900.0..=1100.0).contains(&iops),
        "measured {iops} IOPS against a 1,000 limit"
    );
}

#[test]
fn missing_disk_is_refused_before_boot() {
    let (_, log, code) = boot_disk("/nonexistent/vol.img", "write");
    assert_eq!(code, Some(1));
    assert!(
        log.contains("disk /nonexistent/vol.img cannot be opened"),
        "{log}"
    );
}

#[test]
fn several_disks_and_an_rng_are_announced_and_counted() {
    let (a, b) = (disk(4 << 20), disk(1 << 20));
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let log = dir.path().join("console.log");
    let mut child = vmm()
        .arg("--kernel")
        .arg(probe_elf())
        .args([
            "--mem-mib",
            "64",
            "--rng",
            "--cmdline",
            "probe.disk=write probe.mode=count",
        ])
        .arg("--disk")
        .arg(format!("{},id=vol-a", a.path().display()))
        .arg("--disk")
        .arg(format!("{},ro,id=vol-b", b.path().display()))
        .arg("--api-sock")
        .arg(&sock)
        .arg("--serial-log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let console = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(20), || console()
            .contains("probe: count 1")),
        "{}",
        console()
    );
    let text = console();
    assert!(text.contains("virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 virtio_mmio.device=4K@0xd0002000:7"), "{text}");
    assert!(
        text.contains("probe: disk write ok 4194304 bytes"),
        "the first disk is used: {text}"
    );
    let status = api(&sock, "status");
    let devices = status["status"]["devices"].as_array().unwrap().clone();
    let _ = child.kill();
    let _ = child.wait();
    let names: Vec<&str> = devices
        .iter()
        .map(|d| d["device"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["block vol-a", "block vol-b", "rng"]);
    assert!(
        devices[0]["bytes_out"].as_u64().unwrap() >= 4 << 20,
        "{:?}",
        devices[0]
    );
    assert!(
        devices[0]["bytes_in"].as_u64().unwrap() >= 4 << 20,
        "{:?}",
        devices[0]
    );
    assert_eq!(devices[1]["requests"], 0, "the second disk was not touched");
}
