//! Shared helpers: a real agent (real vmm, real KVM, probe instances) in a temp state dir on
//! a free port, the `ec2` CLI, and signed API calls. Every agent is killed on drop, with every
//! vmm whose files are under its state dir.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cli::client::{CallError, Client, Service};
use wire::credentials;

pub mod elb;
#[path = "../netns/mod.rs"]
pub mod netns;
pub mod network;
pub mod paging;

/// The probe image's manifest, built by `images/build.sh probe`.
pub fn probe_manifest() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/out/probe/manifest.json");
    assert!(
        p.exists(),
        "{} is missing: run `images/build.sh probe` first",
        p.display()
    );
    p.canonicalize().unwrap()
}

/// The `vmm` binary beside the agent's (built by `cargo build --release`).
pub fn vmm_bin() -> PathBuf {
    sibling_bin("vmm")
}

/// The `ec2` CLI binary beside the agent's (the `cli` package's; built by `cargo build
/// --release`).
pub fn ec2_bin() -> PathBuf {
    sibling_bin("ec2")
}

/// Another package's binary `name` beside the agent's.
fn sibling_bin(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_agent")).with_file_name(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --release --workspace` first",
        p.display()
    );
    p
}

/// A running agent. Its API is on this host's loopback; its instance networking (bridges,
/// taps, rules, DHCP, metadata) and its VMMs live in a network namespace of its own.
pub struct Agent {
    /// Its state dir (kept alive by the guard).
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
    /// The API's URL.
    pub endpoint: String,
    /// The namespace of its instances' networks (deleted after the agent).
    pub ns: netns::Namespace,
}

impl Agent {
    /// Starts an agent with extra flags.
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kec2-agent-test")
            .tempdir()
            .unwrap();
        let mut a = Agent {
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            endpoint: String::new(),
            ns: netns::Namespace::new("agent"),
        };
        a.launch();
        a
    }

    fn launch(&mut self) {
        let endpoint_file = self.dir.path().join("endpoint");
        let _ = std::fs::remove_file(&endpoint_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_agent"))
            .arg("--state-dir")
            .arg(self.dir.path())
            .args(["--listen", "127.0.0.1:0", "--vmm"])
            .arg(vmm_bin())
            .args(["--netns", &self.ns.0, "--outbound-nat", "false"])
            .args(&self.extra)
            .env("AGENT_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("agent starts");
        self.child = Some(child);
        assert!(
            eventually(Duration::from_secs(10), || endpoint_file.exists()),
            "agent wrote no endpoint file; log:\n{}",
            self.log()
        );
        self.endpoint = std::fs::read_to_string(&endpoint_file)
            .unwrap()
            .trim()
            .to_string();
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Kills the agent with SIGKILL (its VMMs keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the agent again on the same state dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    /// A signed API client.
    pub fn client(&self) -> Client {
        Client::new(&self.endpoint, self.credentials())
    }

    /// The credentials the agent made.
    pub fn credentials(&self) -> credentials::Credentials {
        credentials::load(&credentials::path(self.dir.path())).unwrap()
    }

    /// Calls an action; panics on failure.
    pub fn call(&self, action: &str, params: &[(&str, &str)]) -> String {
        self.try_call(action, params)
            .unwrap_or_else(|e| panic!("{action} failed: {e}\nagent log:\n{}", self.log()))
    }

    /// Calls an action.
    pub fn try_call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, CallError> {
        let p: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.client().call(action, &p)
    }

    /// Calls `service`'s `action` (CloudWatch's and SNS's awsQuery as well as EC2), signed
    /// for that service; panics on failure.
    pub fn call_service(&self, service: Service, action: &str, params: &[(&str, &str)]) -> String {
        let p: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.client()
            .call_service(service, action, &p)
            .unwrap_or_else(|e| panic!("{action} failed: {e}\nagent log:\n{}", self.log()))
    }

    /// Calls an action that must fail; returns (code, message).
    pub fn call_err(&self, action: &str, params: &[(&str, &str)]) -> (String, String) {
        match self.try_call(action, params) {
            Err(CallError::Api { code, message, .. }) => (code, message),
            Err(e) => panic!("{action}: expected an EC2 error, got {e}"),
            Ok(xml) => panic!("{action}: expected an EC2 error, got success:\n{xml}"),
        }
    }

    /// Runs the `ec2` CLI against this agent.
    pub fn ec2(&self, args: &[&str]) -> Output {
        Command::new(ec2_bin())
            .args(args)
            .env("EC2_ENDPOINT", &self.endpoint)
            .env("KEC2_STATE_DIR", self.dir.path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .current_dir(self.dir.path())
            .output()
            .expect("ec2 runs")
    }

    /// Runs the CLI, requires success, returns stdout.
    pub fn ec2_ok(&self, args: &[&str]) -> String {
        let out = self.ec2(args);
        assert!(
            out.status.success(),
            "ec2 {args:?} failed: {}\n{}\nagent log tail:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            tail(&self.log(), 40)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Registers the probe image; returns its id.
    pub fn register_probe(&self) -> String {
        let m = probe_manifest();
        let ami = self.ec2_ok(&["register-image", "--manifest", m.to_str().unwrap()]);
        let ami = ami.trim().to_string();
        assert!(ami.starts_with("ami-"), "register-image printed {ami:?}");
        ami
    }

    /// Registers the probe program as an image with other boot arguments; returns its id.
    pub fn register_probe_with(&self, name: &str, boot_args: &str) -> String {
        let probe = probe_manifest().with_file_name("probe.elf");
        let xml = self.call(
            "RegisterImage",
            &[
                ("Name", name),
                ("KernelPath", probe.to_str().unwrap()),
                ("EntryMode", "user"),
                ("BootArgs", boot_args),
            ],
        );
        let doc = roxmltree::Document::parse(&xml).unwrap();
        doc.descendants()
            .find(|n| n.has_tag_name("imageId"))
            .and_then(|n| n.text())
            .unwrap()
            .to_owned()
    }

    /// Launches one t2.nano instance of `ami` and returns its id.
    pub fn run_one(&self, ami: &str) -> String {
        instance_ids(&self.call(
            "RunInstances",
            &[
                ("ImageId", ami),
                ("MinCount", "1"),
                ("MaxCount", "1"),
                ("InstanceType", "t2.nano"),
            ],
        ))[0]
            .clone()
    }

    /// The instances as `(id, state name)`, in launch order, from DescribeInstances.
    pub fn states(&self) -> Vec<(String, String)> {
        self.states_where(&[])
    }

    /// The instances DescribeInstances with `params` lists, as `(id, state name)`.
    pub fn states_where(&self, params: &[(&str, &str)]) -> Vec<(String, String)> {
        let xml = self.call("DescribeInstances", params);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("instancesSet"))
            .flat_map(|s| s.children().filter(|c| c.has_tag_name("item")))
            .map(|i| {
                (
                    child_text(i, "instanceId"),
                    child_text(child(i, "instanceState"), "name"),
                )
            })
            .collect()
    }

    /// One instance's `<item>` fields: state name, state-reason code and message, transition reason.
    pub fn instance(&self, id: &str) -> InstanceView {
        let xml = self.call("DescribeInstances", &[("InstanceId.1", id)]);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let i = doc
            .descendants()
            .find(|n| n.has_tag_name("item") && child_text(*n, "instanceId") == id)
            .unwrap_or_else(|| panic!("{id} not in DescribeInstances:\n{xml}"));
        let reason = i.children().find(|c| c.has_tag_name("stateReason"));
        InstanceView {
            state: child_text(child(i, "instanceState"), "name"),
            code: child_text(child(i, "instanceState"), "code")
                .parse()
                .unwrap(),
            reason_code: reason.map(|r| child_text(r, "code")).unwrap_or_default(),
            reason_message: reason.map(|r| child_text(r, "message")).unwrap_or_default(),
            transition_reason: child_text(i, "reason"),
        }
    }

    /// Waits until `id` is in `state`.
    pub fn wait_state(&self, id: &str, state: &str, timeout: Duration) {
        let ok = eventually(timeout, || self.instance(id).state == state);
        assert!(
            ok,
            "{id} did not reach {state} in {timeout:?}: {:?}\nagent log tail:\n{}",
            self.instance(id),
            tail(&self.log(), 40)
        );
    }

    /// The pid the agent recorded for an instance's vmm (read from its database).
    pub fn vmm_pid(&self, id: &str) -> Option<i32> {
        let conn = rusqlite::Connection::open(self.dir.path().join("state.db")).unwrap();
        conn.query_row("SELECT pid FROM instances WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    }

    /// The instance's console log as the agent keeps it.
    pub fn console(&self, id: &str) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join("instances")
                .join(id)
                .join("console.log"),
        )
        .unwrap_or_default()
    }

    /// Waits up to `timeout` until the instance's console has `needle`; returns the console.
    pub fn console_with(&self, id: &str, needle: &str, timeout: Duration) -> String {
        let found = eventually(timeout, || self.console(id).contains(needle));
        let console = self.console(id);
        assert!(
            found,
            "{id}: no {needle:?} on the console:\n{console}\nagent log:\n{}",
            tail(&self.log(), 40)
        );
        console
    }

    /// Pids of live vmm processes whose files are under this agent's state dir.
    pub fn vmm_pids(&self) -> Vec<i32> {
        vmms_under(self.dir.path())
    }
}

/// A described instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    /// State name.
    pub state: String,
    /// State code.
    pub code: u32,
    /// StateReason code.
    pub reason_code: String,
    /// StateReason message.
    pub reason_message: String,
    /// StateTransitionReason.
    pub transition_reason: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        // A VMM being spawned when the agent died may still be between fork and exec (its
        // command line is then the agent's): sweep a few times for anything under the dir.
        for _ in 0..4 {
            for pid in procs_under(self.dir.path(), false) {
                // SAFETY: kill(2) on a process (group) this test's agent started.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Live vmm processes whose command line mentions `dir`.
pub fn vmms_under(dir: &Path) -> Vec<i32> {
    procs_under(dir, true)
}

/// Live processes whose command line mentions `dir` (only vmms with `vmm_only`).
fn procs_under(dir: &Path, vmm_only: bool) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let kind_ok = !vmm_only || cmd.contains("--api-sock");
        if pid != me && kind_ok && cmd.contains(&needle) && pid_alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Polls `f` until true or `timeout`.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// The last `n` lines.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The first child element named `name`.
pub fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> roxmltree::Node<'a, 'i> {
    n.children()
        .find(|c| c.has_tag_name(name))
        .unwrap_or_else(|| panic!("no <{name}> in <{}>", n.tag_name().name()))
}

/// The text of the first child named `name` ("" if absent).
pub fn child_text(n: roxmltree::Node<'_, '_>, name: &str) -> String {
    n.children()
        .find(|c| c.has_tag_name(name))
        .and_then(|c| c.text())
        .unwrap_or("")
        .to_string()
}

/// Every `instanceId` in a document, in order.
pub fn instance_ids(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("instanceId"))
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

/// Sends a JSON-lines request to an instance's vmm control socket directly (as a guest-side
/// event would happen without the agent knowing).
pub fn vmm_control(agent: &Agent, id: &str, action: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let sock = agent.dir.path().join("instances").join(id).join("api.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    writeln!(s, "{{\"action\":\"{action}\"}}").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line
}

/// The virtualenv with boto3 and the `aws` CLI: `$KEC2_VENV`, else `/var/cache/kec2/venv`;
/// made if missing, with the boto3 whose botocore (1.44.18) `shapes/` and `wire/` are
/// generated from and tested with, and an `aws` CLI that runs on that botocore.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("KEC2_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kec2/venv"));
    let python = venv.join("bin/python3");
    let has_boto3 = |p: &Path| {
        Command::new(p)
            .args(["-c", "import boto3"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_boto3(&python) && venv.join("bin/aws").exists() {
        return python;
    }
    std::fs::create_dir_all(venv.parent().unwrap()).expect("cannot create the venv's parent dir");
    let st = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status();
    assert!(
        st.is_ok_and(|s| s.success()),
        "cannot create a virtualenv at {} (is python3-venv installed? scripts/install-deps.sh installs it)",
        venv.display()
    );
    let st = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "boto3==1.44.18", "awscli==1.46.3"])
        .status();
    assert!(
        st.is_ok_and(|s| s.success()) && has_boto3(&python),
        "cannot install boto3 from PyPI into {}",
        venv.display()
    );
    python
}

/// Runs boto3 script `script` (a file under `agent/tests/`) against `agent` with the venv's
/// python. It gets the endpoint, the state dir and the probe manifest as arguments; the run
/// must succeed and print `ok_line`.
pub fn run_boto3(agent: &Agent, script: &str, ok_line: &str) {
    let manifest = probe_manifest();
    run_python(agent, script, &[manifest.to_str().unwrap()], ok_line);
}

/// Runs `script` (under `agent/tests/`) with the venv's python, the agent's endpoint, its
/// state dir and `args`, outside any AWS profile; it must succeed and print `ok_line`.
/// Returns its output.
pub fn run_python(agent: &Agent, script: &str, args: &[&str], ok_line: &str) -> String {
    let out = Command::new(venv_python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .arg(&agent.endpoint)
        .arg(agent.dir.path())
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_DATA_PATH")
        .output()
        .expect("cannot run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains(ok_line),
        "{script} did not print {ok_line:?}:\n{stdout}\n{}\nagent log tail:\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&agent.log(), 30)
    );
    stdout
}

/// Boots the probe in namespace `ns` on `tap0` with MAC `mac` and kernel command line
/// `cmdline`, its console in `log`.
pub fn boot_probe_on_tap0(ns: &netns::Namespace, mac: &str, cmdline: &str, log: &Path) -> Child {
    let probe = probe_manifest().with_file_name("probe.elf");
    Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(vmm_bin())
        .arg("--kernel")
        .arg(probe)
        .args(["--mem-mib", "64", "--net", &format!("tap=tap0,mac={mac}")])
        .args(["--cmdline", cmdline])
        .arg("--serial-log")
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
