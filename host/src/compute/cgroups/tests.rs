//! Discovery, placement, limits and counters over fake cgroup trees in a temporary
//! directory (mkdir there makes no interface files, so the tests write the ones they read).

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::*;

/// Lines of this development machine's `/proc/self/mountinfo` (v1 controllers, an empty
/// cgroup2 at `unified`).
const THIS_MACHINE: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

/// A Debian 12 host's cgroup line under systemd (pure v2).
const DEBIAN_12: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 \
                         - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

/// A v2 tree whose root offers `controllers`.
fn fake_v2(controllers: &str) -> (TempDir, Cgroups) {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("cgroup.controllers"), controllers).unwrap();
    fs::write(tmp.path().join("cgroup.subtree_control"), "").unwrap();
    let cg = Cgroups::from_mountinfo(&v2_mountinfo(tmp.path()), "0::/system.slice/a.service\n");
    (tmp, cg.unwrap())
}

/// Debian 12's line with the mount point moved to `point`.
fn v2_mountinfo(point: &Path) -> String {
    DEBIAN_12.replace("/sys/fs/cgroup", &point.display().to_string())
}

/// A v1 tree like this machine's, but with `cpu,cpuacct` co-mounted, and the agent's
/// memory cgroup at `/process_api/abc`.
fn fake_v1() -> (TempDir, Cgroups) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().display().to_string();
    for dir in [
        "cpu,cpuacct",
        "memory/process_api/abc",
        "pids",
        "systemd",
        "unified",
    ] {
        fs::create_dir_all(tmp.path().join(dir)).unwrap();
    }
    fs::write(tmp.path().join("unified/cgroup.controllers"), "").unwrap();
    let mountinfo = format!(
        "32 31 0:29 / {root}/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct\n\
         35 31 0:32 / {root}/memory rw,relatime - cgroup cgroup rw,memory\n\
         39 31 0:36 / {root}/pids rw,relatime - cgroup cgroup rw,pids\n\
         40 31 0:37 / {root}/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
         41 31 0:38 / {root}/unified rw,relatime - cgroup2 cgroup2 rw\n"
    );
    let own = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n";
    let cg = Cgroups::from_mountinfo(&mountinfo, own).unwrap();
    (tmp, cg)
}

fn text(path: PathBuf) -> String {
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn instance_limits_follow_the_instance_type() {
    let limits = Limits::for_instance(2, 1024);
    assert_eq!(limits.memory_bytes, Some((1024 + 64) * 1024 * 1024));
    assert_eq!(limits.cpu_quota_us, Some(200_000));
    assert_eq!(limits.cpu_period_us, 100_000);
    assert_eq!(limits.pids, Some(66));
}

#[test]
fn mountinfo_of_this_machine_parses() {
    let mounts = parse_mountinfo(THIS_MACHINE);
    assert_eq!(mounts.len(), 7);
    assert_eq!(mounts[1].point, Path::new("/sys/fs/cgroup/cpu"));
    assert_eq!(mounts[1].fstype, "cgroup");
    assert_eq!(mounts[1].super_options, ["rw", "cpu"]);
    assert_eq!(mounts[5].super_options, ["rw", "name=systemd"]);
    assert_eq!(mounts[6].fstype, "cgroup2");
    assert_eq!(mounts[6].root, "/");
}

#[test]
fn mountinfo_with_optional_fields_and_escapes_parses() {
    let mounts = parse_mountinfo(DEBIAN_12);
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].point, Path::new("/sys/fs/cgroup"));
    assert_eq!(mounts[0].fstype, "cgroup2");
    assert_eq!(
        mounts[0].super_options,
        ["rw", "nsdelegate", "memory_recursiveprot"]
    );
    let odd = "50 31 0:40 /a\\040b /mnt/my\\040cg\\134x rw shared:1 master:2 - cgroup cgroup rw,pids\n\
               not a mountinfo line\n";
    let mounts = parse_mountinfo(odd);
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].root, "/a b");
    assert_eq!(mounts[0].point, Path::new("/mnt/my cg\\x"));
}

#[test]
fn own_cgroups_parse() {
    let own = parse_own_cgroups("4:memory:/process_api/x\n2:cpu,cpuacct:/\n0::/user.slice\n");
    assert_eq!(own[0].controllers, ["memory"]);
    assert_eq!(own[0].path, "/process_api/x");
    assert_eq!(own[1].controllers, ["cpu", "cpuacct"]);
    assert!(own[2].controllers.is_empty());
    assert_eq!(own[2].path, "/user.slice");
}

#[test]
fn v2_is_used_when_its_root_offers_the_controllers() {
    let (_tmp, cg) = fake_v2("cpuset cpu io memory hugetlb pids rdma misc\n");
    assert_eq!(cg.version(), Version::V2);
    assert_eq!(cg.parent(), "kec2");
}

#[test]
fn v2_create_enables_controllers_and_writes_the_limits() {
    let (tmp, cg) = fake_v2("cpuset cpu io memory pids\n");
    let limits = Limits::for_instance(1, 512);
    let made = cg.create("i-0abc", &limits).unwrap();
    let root = tmp.path();
    let dir = root.join("kec2/i-0abc");
    assert_eq!(made.dirs(), std::slice::from_ref(&dir));
    assert_eq!(
        text(root.join("cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    assert_eq!(
        text(root.join("kec2/cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    assert_eq!(text(dir.join("cpu.max")), "100000 100000");
    assert_eq!(text(dir.join("memory.max")), ((512 + 64) << 20).to_string());
    assert_eq!(text(dir.join("pids.max")), "65");
    let procs = dir
        .join("cgroup.procs")
        .into_os_string()
        .into_string()
        .unwrap();
    assert_eq!(made.join_paths(), [CString::new(procs).unwrap()]);
    assert_eq!(cg.limits("i-0abc").unwrap(), limits);
}

#[test]
fn v2_subtree_control_already_enabled_is_left_alone() {
    let (tmp, cg) = fake_v2("cpu memory pids io\n");
    let control = tmp.path().join("cgroup.subtree_control");
    fs::write(&control, "cpu io memory pids\n").unwrap();
    cg.create("i-1", &Limits::for_instance(1, 128)).unwrap();
    assert_eq!(text(control), "cpu io memory pids\n");
}

#[test]
fn v2_unlimited_values_read_back_as_none() {
    let (tmp, cg) = fake_v2("cpu memory pids\n");
    cg.create("i-1", &Limits::for_instance(1, 128)).unwrap();
    let dir = tmp.path().join("kec2/i-1");
    fs::write(dir.join("cpu.max"), "max 100000\n").unwrap();
    fs::write(dir.join("memory.max"), "max\n").unwrap();
    fs::write(dir.join("pids.max"), "max\n").unwrap();
    let limits = cg.limits("i-1").unwrap();
    let unlimited = Limits {
        memory_bytes: None,
        cpu_quota_us: None,
        cpu_period_us: 100_000,
        pids: None,
    };
    assert_eq!(limits, unlimited);
    fs::write(dir.join("cpu.max"), "lots\n").unwrap();
    assert!(matches!(cg.limits("i-1"), Err(ReadError::Parse { .. })));
}

#[test]
fn v2_counters_come_from_cpu_stat_and_memory_files() {
    let (tmp, cg) = fake_v2("cpu memory pids\n");
    cg.create("i-1", &Limits::for_instance(1, 128)).unwrap();
    let dir = tmp.path().join("kec2/i-1");
    fs::write(dir.join("cpu.stat"), "usage_usec 1234\nuser_usec 1000\n").unwrap();
    fs::write(dir.join("memory.current"), "8192\n").unwrap();
    assert_eq!(cg.cpu_usage_ns("i-1"), Some(1_234_000));
    assert_eq!(cg.memory_current_bytes("i-1"), Some(8192));
    assert_eq!(
        cg.memory_peak_bytes("i-1"),
        None,
        "no memory.peak before 5.19"
    );
    fs::write(dir.join("memory.peak"), "65536\n").unwrap();
    assert_eq!(cg.memory_peak_bytes("i-1"), Some(65536));
    assert_eq!(cg.cpu_usage_ns("i-2"), None);
}

#[test]
fn an_empty_cgroup2_beside_v1_controllers_means_v1() {
    let (_tmp, cg) = fake_v1();
    assert_eq!(cg.version(), Version::V1);
}

#[test]
fn v1_cgroups_go_under_the_agents_own_cgroup_once_per_hierarchy() {
    let (tmp, cg) = fake_v1();
    let limits = Limits::for_instance(2, 256);
    let made = cg.create("i-1", &limits).unwrap();
    let root = tmp.path();
    let cpu = root.join("cpu,cpuacct/kec2/i-1");
    let memory = root.join("memory/process_api/abc/kec2/i-1");
    let pids = root.join("pids/kec2/i-1");
    assert_eq!(made.dirs(), [cpu.clone(), memory.clone(), pids.clone()]);
    assert_eq!(
        text(memory.join("memory.limit_in_bytes")),
        ((256 + 64) << 20).to_string()
    );
    assert_eq!(text(cpu.join("cpu.cfs_quota_us")), "200000");
    assert_eq!(text(cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(text(pids.join("pids.max")), "66");
    assert_eq!(made.join_paths().len(), 3);
    assert!(!root.join("unified/kec2").exists());
    assert_eq!(cg.limits("i-1").unwrap(), limits);
}

#[test]
fn v1_unlimited_values_read_back_as_none() {
    let (tmp, cg) = fake_v1();
    cg.create("i-1", &Limits::for_instance(1, 128)).unwrap();
    let root = tmp.path();
    let memory = root.join("memory/process_api/abc/kec2/i-1/memory.limit_in_bytes");
    fs::write(memory, "9223372036854771712\n").unwrap();
    fs::write(root.join("cpu,cpuacct/kec2/i-1/cpu.cfs_quota_us"), "-1\n").unwrap();
    fs::write(root.join("pids/kec2/i-1/pids.max"), "max\n").unwrap();
    let limits = cg.limits("i-1").unwrap();
    assert_eq!(limits.memory_bytes, None);
    assert_eq!(limits.cpu_quota_us, None);
    assert_eq!(limits.pids, None);
    assert_eq!(limits.cpu_period_us, 100_000);
}

#[test]
fn v1_counters_come_from_cpuacct_and_memory_files() {
    let (tmp, cg) = fake_v1();
    cg.create("i-1", &Limits::for_instance(1, 128)).unwrap();
    let root = tmp.path();
    fs::write(
        root.join("cpu,cpuacct/kec2/i-1/cpuacct.usage"),
        "987654321\n",
    )
    .unwrap();
    let memory = root.join("memory/process_api/abc/kec2/i-1");
    fs::write(memory.join("memory.usage_in_bytes"), "4096\n").unwrap();
    fs::write(memory.join("memory.max_usage_in_bytes"), "12288\n").unwrap();
    assert_eq!(cg.cpu_usage_ns("i-1"), Some(987_654_321));
    assert_eq!(cg.memory_current_bytes("i-1"), Some(4096));
    assert_eq!(cg.memory_peak_bytes("i-1"), Some(12288));
}

#[test]
fn create_again_reuses_the_cgroup_and_rewrites_its_limits() {
    let (tmp, cg) = fake_v2("cpu memory pids\n");
    cg.create("i-1", &Limits::for_instance(4, 4096)).unwrap();
    let smaller = Limits::for_instance(1, 512);
    cg.create("i-1", &smaller).unwrap();
    assert_eq!(cg.limits("i-1").unwrap(), smaller);
    assert_eq!(text(tmp.path().join("kec2/i-1/cpu.max")), "100000 100000");
}

#[test]
fn a_failed_create_removes_the_directories_it_made() {
    let (tmp, cg) = fake_v1();
    // The pids hierarchy is the last one made; without its base, its mkdir fails.
    fs::remove_dir(tmp.path().join("pids")).unwrap();
    let err = cg.create("i-1", &Limits::for_instance(1, 128)).unwrap_err();
    assert!(matches!(err, CreateError::Mkdir { .. }), "{err:?}");
    assert!(!tmp.path().join("cpu,cpuacct/kec2").exists());
    assert!(!tmp.path().join("memory/process_api/abc/kec2").exists());
}

#[test]
fn names_that_are_not_one_directory_are_refused() {
    let (tmp, cg) = fake_v2("cpu memory pids\n");
    for bad in ["", ".", "..", "a/b", "../x", "a\0b"] {
        let err = cg.create(bad, &Limits::for_instance(1, 128)).unwrap_err();
        assert!(matches!(err, CreateError::Name(_)), "{bad:?}: {err:?}");
        assert!(
            matches!(cg.remove(bad), Err(RemoveError::Name(_))),
            "{bad:?}"
        );
        assert!(cg.clone().with_parent(bad).is_err(), "{bad:?}");
    }
    assert!(!tmp.path().join("kec2").exists());
}

#[test]
fn the_parent_can_be_renamed() {
    let (tmp, cg) = fake_v2("cpu memory pids\n");
    let cg = cg.with_parent("kec2-test").unwrap();
    let made = cg.create("i-1", &Limits::for_instance(1, 128)).unwrap();
    assert_eq!(made.dirs(), [tmp.path().join("kec2-test/i-1")]);
    assert_eq!(cg.instances(), ["i-1"]);
}

#[test]
fn instances_lists_the_cgroups_under_the_parent() {
    let (tmp, cg) = fake_v1();
    assert!(cg.instances().is_empty());
    cg.create("i-2", &Limits::for_instance(1, 128)).unwrap();
    cg.create("i-1", &Limits::for_instance(1, 128)).unwrap();
    // One left behind in a single hierarchy still counts.
    fs::create_dir(tmp.path().join("pids/kec2/i-3")).unwrap();
    fs::write(tmp.path().join("pids/kec2/notes"), "a file, not a cgroup").unwrap();
    assert_eq!(cg.instances(), ["i-1", "i-2", "i-3"]);
}

#[test]
fn remove_deletes_every_directory_and_accepts_a_missing_one() {
    let (tmp, cg) = fake_v1();
    let made = cg.create("i-1", &Limits::for_instance(1, 128)).unwrap();
    // The kernel removes a cgroup's interface files with it; a fake tree needs help.
    for dir in made.dirs() {
        for file in fs::read_dir(dir).unwrap() {
            fs::remove_file(file.unwrap().path()).unwrap();
        }
    }
    fs::remove_dir(&made.dirs()[2]).unwrap();
    cg.remove("i-1").unwrap();
    assert!(made.dirs().iter().all(|d| !d.exists()));
    assert!(cg.instances().is_empty());
    assert!(tmp.path().join("pids/kec2").exists(), "the parent stays");
    cg.remove("i-1").unwrap();
}

#[test]
fn remove_reports_the_directory_it_cannot_remove() {
    let (tmp, cg) = fake_v2("cpu memory pids\n");
    cg.create("i-1", &Limits::for_instance(1, 128)).unwrap();
    let err = cg.remove("i-1").unwrap_err();
    let RemoveError::Rmdir { path, .. } = err else {
        panic!("{err:?}");
    };
    assert_eq!(path, tmp.path().join("kec2/i-1").display().to_string());
}

#[test]
fn missing_controllers_are_named() {
    let only_cpu = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                    35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
    let err = Cgroups::from_mountinfo(only_cpu, "1:cpu:/\n").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("cpuacct, pids"), "{message}");
    assert!(message.contains("no cgroup2 filesystem"), "{message}");
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("cgroup.controllers"), "cpu io\n").unwrap();
    let err = Cgroups::from_mountinfo(&v2_mountinfo(tmp.path()), "0::/\n").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("offers [cpu io]"), "{message}");
    assert!(message.contains("cpu, cpuacct, memory, pids"), "{message}");
}

#[test]
fn a_v1_mount_of_a_subtree_is_followed() {
    // Docker without a cgroup namespace: the container's cgroup is what is mounted.
    let tmp = tempfile::tempdir().unwrap();
    let point = tmp.path().display();
    let mountinfo: String = ["cpu,cpuacct", "memory", "pids"]
        .iter()
        .map(|c| format!("40 30 0:9 /docker/c1 {point}/{c} rw - cgroup cgroup rw,{c}\n"))
        .collect();
    let own = "8:pids:/docker/c1/agent\n4:memory:/docker/c1\n2:cpu,cpuacct:/docker/c1\n";
    let cg = Cgroups::from_mountinfo(&mountinfo, own).unwrap();
    let dirs = cg.dirs("i-1").unwrap();
    assert_eq!(dirs[0], tmp.path().join("cpu,cpuacct/kec2/i-1"));
    assert_eq!(dirs[1], tmp.path().join("memory/kec2/i-1"));
    assert_eq!(dirs[2], tmp.path().join("pids/agent/kec2/i-1"));
    let outside = "8:pids:/other\n4:memory:/docker/c1\n2:cpu,cpuacct:/docker/c1\n";
    let err = Cgroups::from_mountinfo(&mountinfo, outside).unwrap_err();
    assert!(matches!(err, DetectError::Outside { .. }), "{err:?}");
}

#[test]
fn join_in_child_writes_zero_to_each_file() {
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..3)
        .map(|i| tmp.path().join(format!("procs{i}")))
        .collect();
    files.iter().for_each(|f| fs::write(f, "").unwrap());
    let paths: Vec<CString> = files
        .iter()
        .map(|f| CString::new(f.as_os_str().as_bytes()).unwrap())
        .collect();
    join_in_child(&paths).unwrap();
    assert!(files.iter().all(|f| text(f.clone()) == "0"));
    let missing = CString::new(tmp.path().join("absent").as_os_str().as_bytes()).unwrap();
    let err = join_in_child(&[missing]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}
