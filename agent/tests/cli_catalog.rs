//! The `ec2` CLI's catalog commands: credentials, key pairs (files, modes, fingerprints),
//! images, instance types, tags, JSON output.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Agent;

#[test]
fn credentials_command_prints_exports_that_work() {
    let agent = Agent::start(&[]);
    let out = agent.ec2_ok(&[
        "credentials",
        "--state-dir",
        agent.dir.path().to_str().unwrap(),
    ]);
    let creds = agent.credentials();
    assert_eq!(
        out,
        format!(
            "export AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\n",
            creds.access_key, creds.secret_key
        )
    );
    let mode = std::fs::metadata(agent.dir.path().join("credentials"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(agent.dir.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "the state dir is private");
    // Environment credentials take precedence over the file: wrong ones are refused.
    let out = std::process::Command::new(common::ec2_bin())
        .args(["describe-instances", "--endpoint-url", &agent.endpoint])
        .env("AWS_ACCESS_KEY_ID", &creds.access_key)
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        .env("KEC2_STATE_DIR", agent.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SignatureDoesNotMatch"));
}

#[test]
fn key_pairs_through_the_cli() {
    let agent = Agent::start(&[]);
    for (name, kind) in [("ed", "ed25519"), ("rs", "rsa")] {
        let out = agent.ec2_ok(&["create-key-pair", "--key-name", name, "--key-type", kind]);
        let pem = agent.dir.path().join(format!("{name}.pem"));
        let mode = std::fs::metadata(&pem).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o400, "{name}.pem");
        let key = ssh_key::PrivateKey::from_openssh(std::fs::read(&pem).unwrap()).unwrap();
        let fp = key
            .public_key()
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string();
        assert!(
            out.contains(&fp),
            "create-key-pair printed {out}, key has {fp}"
        );
        let listed = agent.ec2_ok(&["describe-key-pairs", "--key-names", name]);
        assert!(listed.contains(&fp) && listed.contains(kind), "{listed}");
        // Import the same public key under another name: same fingerprint.
        let pub_path = agent.dir.path().join(format!("{name}.pub"));
        std::fs::write(&pub_path, key.public_key().to_openssh().unwrap()).unwrap();
        let imported = agent.ec2_ok(&[
            "import-key-pair",
            "--key-name",
            &format!("{name}-imported"),
            "--public-key-material",
            &format!("file://{}", pub_path.display()),
        ]);
        assert!(imported.contains(&fp), "{imported}");
    }
    // A second create with a taken name fails and leaves the first key file alone.
    let out = agent.ec2(&["create-key-pair", "--key-name", "ed"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidKeyPair.Duplicate"));
    agent.ec2_ok(&["delete-key-pair", "--key-name", "ed"]);
    let listed = agent.ec2_ok(&["describe-key-pairs", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let names: Vec<&str> = v["KeyPairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["KeyName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ed-imported", "rs", "rs-imported"]);
}

#[test]
fn images_types_and_tags_through_the_cli() {
    let agent = Agent::start(&[]);
    let ami = agent.register_probe();
    let elf = common::probe_manifest().with_file_name("probe.elf");
    let by_files = agent.ec2_ok(&[
        "register-image",
        "--name",
        "probe-files",
        "--kernel",
        elf.to_str().unwrap(),
        "--boot-args",
        "probe.mode=count",
        "--entry",
        "user",
    ]);
    let ami2 = by_files.trim().to_string();
    assert!(ami2.starts_with("ami-") && ami2 != ami);
    let listed = agent.ec2_ok(&["describe-images"]);
    assert!(listed.contains(&ami) && listed.contains(&ami2) && listed.contains("probe-files"));
    let filtered = agent.ec2_ok(&[
        "describe-images",
        "--filters",
        "Name=name,Values=probe-files",
    ]);
    assert!(
        filtered.contains(&ami2) && !filtered.contains(&ami),
        "{filtered}"
    );
    // Instances from the second image boot the probe too.
    let ud = agent.dir.path().join("user-data.sh");
    std::fs::write(&ud, "#!/bin/sh\necho hello from user data\n").unwrap();
    let run = agent.ec2_ok(&[
        "run-instances",
        "--image-id",
        &ami2,
        "--instance-type",
        "t2.nano",
        "--tag",
        "role=web",
        "--user-data",
        &format!("file://{}", ud.display()),
    ]);
    let id = run
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    agent.ec2_ok(&["wait", "instance-running", "--instance-ids", &id]);
    let attr = |name: &str| {
        agent.ec2_ok(&[
            "describe-instance-attribute",
            "--instance-id",
            &id,
            "--attribute",
            name,
        ])
    };
    assert_eq!(attr("userData"), "#!/bin/sh\necho hello from user data\n");
    assert_eq!(attr("instanceType").trim(), "t2.nano");
    assert_eq!(attr("instanceInitiatedShutdownBehavior").trim(), "stop");
    agent.ec2_ok(&[
        "create-tags",
        "--resources",
        &id,
        &ami2,
        "--tags",
        "Key=env,Value=prod",
    ]);
    let tags = agent.ec2_ok(&["describe-tags", "--filters", "Name=key,Values=env"]);
    assert_eq!(tags.lines().count(), 3, "{tags}");
    let web = agent.ec2_ok(&[
        "describe-instances",
        "--filters",
        "Name=tag:role,Values=web",
    ]);
    assert!(web.contains(&id));
    let none = agent.ec2_ok(&["describe-instances", "--filters", "Name=tag:role,Values=db"]);
    assert!(!none.contains(&id));
    agent.ec2_ok(&["delete-tags", "--resources", &id, "--tags", "env"]);
    let tags = agent.ec2_ok(&["describe-tags", "--filters", "Name=key,Values=env"]);
    assert_eq!(tags.lines().count(), 2, "{tags}");
    // Instance types with their real sizes.
    let types = agent.ec2_ok(&["describe-instance-types"]);
    for (t, v, m) in [
        ("t2.nano", 1, 512),
        ("t3.micro", 2, 1024),
        ("m5.xlarge", 4, 16384),
        ("c5.large", 2, 4096),
        ("r5.large", 2, 16384),
    ] {
        let line = types
            .lines()
            .find(|l| l.starts_with(&format!("{t} ")))
            .unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1..], [v.to_string(), m.to_string()], "{line}");
    }
    // Deregistration.
    agent.ec2_ok(&["deregister-image", "--image-id", &ami]);
    assert!(!agent.ec2_ok(&["describe-images"]).contains(&ami));
    agent.ec2_ok(&["terminate-instances", "--instance-ids", &id]);
    agent.ec2_ok(&["wait", "instance-terminated", "--instance-ids", &id]);
}
