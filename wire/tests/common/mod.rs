//! Shared by the botocore cross-checks: the virtualenv with botocore, and the models
//! loaded straight from it (never committed).

#![allow(dead_code)]

pub mod outputs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wire::Registry;

/// The botocore version the cross-checks are written against.
pub const BOTOCORE: &str = "1.44.18";

/// The virtualenv with boto3: `$KEC2_VENV`, else `/var/cache/kec2/venv`; made if missing.
/// `None` (the test skips) only when there is no `python3` at all.
pub fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("KEC2_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kec2/venv"));
    let python = venv.join("bin/python3");
    let has_botocore = |p: &Path| {
        Command::new(p)
            .args(["-c", "import boto3, botocore"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_botocore(&python) {
        return Some(python);
    }
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIP: python3 is not installed, so botocore cannot be run");
        return None;
    }
    std::fs::create_dir_all(venv.parent().unwrap()).expect("cannot create the venv's parent dir");
    let st = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status();
    assert!(
        st.is_ok_and(|s| s.success()),
        "cannot create a virtualenv at {} (is python3-venv installed?)",
        venv.display()
    );
    let st = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            &format!("boto3=={}", boto3_for(BOTOCORE)),
        ])
        .status();
    assert!(
        st.is_ok_and(|s| s.success()) && has_botocore(&python),
        "cannot install boto3 from PyPI into {}",
        venv.display()
    );
    Some(python)
}

/// boto3's version shipping with botocore `v` (they move in lockstep: 1.44.x with 1.44.x).
fn boto3_for(v: &str) -> &str {
    v
}

/// The script that drives botocore.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/botocore_cases.py")
}

/// Runs the script with `args` and `stdin`, returning its stdout lines; it must succeed.
pub fn run(python: &Path, args: &[&str], stdin: &str) -> Vec<String> {
    let mut child = Command::new(python)
        .arg(script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run python");
    // Written from a thread: the script answers line by line, so a large input written
    // before reading would fill both pipes and stall.
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_string();
    let writer = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "botocore_cases.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    writer.join().unwrap().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The services the cross-checks use.
pub const SERVICES: &[&str] = &[
    "ec2",
    "sts",
    "sns",
    "autoscaling",
    "elbv2",
    "iam",
    "cloudwatch",
];

/// A registry of the venv's models of [`SERVICES`], written once per botocore version
/// under the target's temporary directory.
pub fn registry(python: &Path) -> Registry {
    let version = run(python, &["version"], "").join("");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("botocore-models-{version}"));
    if !dir.join("done").exists() {
        let fresh = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let mut args = vec!["models", fresh.path().to_str().unwrap()];
        args.extend_from_slice(SERVICES);
        run(python, &args, "");
        std::fs::write(fresh.path().join("done"), "").unwrap();
        // Another test may have won the race: either copy is whole.
        let _ = std::fs::rename(fresh.keep(), &dir);
    }
    let mut reg = Registry::new();
    for s in SERVICES {
        let text = std::fs::read_to_string(dir.join(format!("{s}.json"))).unwrap();
        reg.add_json(&text)
            .unwrap_or_else(|e| panic!("model {s}: {}", wire::error_chain(&e)));
    }
    reg
}

/// Whether two contract Values are equal, numbers compared by value.
pub fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => x.as_f64() == y.as_f64(),
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The trimmed EC2-like fixture model.
pub fn toy_ec2() -> wire::ServiceModel {
    wire::ServiceModel::from_json(include_str!("../fixtures/toy-ec2.json")).unwrap()
}

/// The trimmed multi-protocol (CBOR, JSON, query) fixture model.
pub fn toy_query() -> wire::ServiceModel {
    wire::ServiceModel::from_json(include_str!("../fixtures/toy-query.json")).unwrap()
}

/// A request with a body and headers.
pub fn request<'a>(
    method: &'a str,
    path: &'a str,
    headers: &'a [(String, String)],
    body: &'a [u8],
) -> wire::HttpRequest<'a> {
    wire::HttpRequest {
        method,
        path,
        query: "",
        headers,
        body,
    }
}

/// The model of botocore's service `name` in `reg`.
pub fn model_of<'r>(reg: &'r Registry, name: &str) -> &'r wire::ServiceModel {
    let prefix = match name {
        "elbv2" => "elasticloadbalancing",
        "cloudwatch" => "monitoring",
        s => s,
    };
    reg.services()
        .iter()
        .find(|m| m.metadata.endpoint_prefix == prefix)
        .unwrap()
}
