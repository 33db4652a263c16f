//! The CLI's commands other than the instance ones, their shared helpers, and dispatch.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::client::Client;
use super::error::CliError;
use super::output::{parse, print_json};
use super::params::{filter_params, list_params, value_or_file};
use super::xmltree::{items, text};
use super::{Cli, Command, Output, instances};
use wire::credentials::{self, Credentials};

/// The state dir for credentials.
fn state_dir(cli: &Cli) -> PathBuf {
    cli.state_dir
        .clone()
        .or_else(|| std::env::var_os("KEC2_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/lib/kec2"))
}

/// Credentials from the environment, else from the agent's credentials file.
fn credentials(cli: &Cli) -> Result<Credentials, CliError> {
    if let (Ok(access_key), Ok(secret_key)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) && !access_key.is_empty()
    {
        return Ok(Credentials {
            access_key,
            secret_key,
        });
    }
    credentials::load(&credentials::path(&state_dir(cli))).map_err(CliError::Credentials)
}

/// The client for this invocation.
pub fn client(cli: &Cli) -> Result<Client, CliError> {
    let endpoint = cli
        .endpoint_url
        .clone()
        .or_else(|| std::env::var("EC2_ENDPOINT").ok().filter(|e| !e.is_empty()))
        .unwrap_or_else(|| "http://127.0.0.1:8787".into());
    Ok(Client::new(&endpoint, credentials(cli)?))
}

/// `Key=K,Value=V` or `K=V` as (key, value).
fn parse_tag(t: &str) -> Result<(String, Option<String>), CliError> {
    if let Some(rest) = t.strip_prefix("Key=") {
        return Ok(match rest.split_once(",Value=") {
            Some((k, v)) => (k.into(), Some(v.into())),
            None => (rest.into(), None),
        });
    }
    match t.split_once('=') {
        Some((k, v)) => Ok((k.into(), Some(v.into()))),
        None if !t.is_empty() => Ok((t.into(), None)),
        None => Err(CliError::Input(format!("tag '{t}' is not Key=K,Value=V"))),
    }
}

/// Runs the chosen command.
pub fn run(cli: &Cli) -> Result<(), CliError> {
    if let Command::Credentials = cli.command {
        let c = credentials::load(&credentials::path(&state_dir(cli)))
            .map_err(CliError::Credentials)?;
        println!("export AWS_ACCESS_KEY_ID={}", c.access_key);
        println!("export AWS_SECRET_ACCESS_KEY={}", c.secret_key);
        return Ok(());
    }
    let c = client(cli)?;
    let json = cli.output == Output::Json;
    let mut p = Vec::new();
    match &cli.command {
        Command::CreateKeyPair {
            key_name,
            key_type,
            out,
        } => {
            p.push(("KeyName".into(), key_name.clone()));
            p.push(("KeyType".into(), key_type.clone()));
            let xml = c.call("CreateKeyPair", &p)?;
            let doc = parse(&xml)?;
            let root = doc.root_element();
            let material = text(root, "keyMaterial").unwrap_or("");
            let path = out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{key_name}.pem")));
            write_private_key(&path, material)?;
            if json {
                return print_json(&xml);
            }
            println!(
                "{}\t{}\t{}\t{}",
                text(root, "keyPairId").unwrap_or(""),
                key_name,
                text(root, "keyFingerprint").unwrap_or(""),
                path.display()
            );
        }
        Command::ImportKeyPair {
            key_name,
            public_key_material,
        } => {
            let material = value_or_file(public_key_material)?;
            p.push(("KeyName".into(), key_name.clone()));
            p.push(("PublicKeyMaterial".into(), B64.encode(material)));
            let xml = c.call("ImportKeyPair", &p)?;
            if json {
                return print_json(&xml);
            }
            let doc = parse(&xml)?;
            let r = doc.root_element();
            println!(
                "{}\t{}\t{}",
                text(r, "keyPairId").unwrap_or(""),
                text(r, "keyName").unwrap_or(""),
                text(r, "keyFingerprint").unwrap_or("")
            );
        }
        Command::DescribeKeyPairs { key_names } => {
            list_params(&mut p, "KeyName", key_names);
            let xml = c.call("DescribeKeyPairs", &p)?;
            if json {
                return print_json(&xml);
            }
            let doc = parse(&xml)?;
            println!(
                "{:<22} {:<20} {:<8} FINGERPRINT",
                "KEY_PAIR_ID", "NAME", "TYPE"
            );
            for k in items(doc.root_element(), "keySet") {
                println!(
                    "{:<22} {:<20} {:<8} {}",
                    text(k, "keyPairId").unwrap_or(""),
                    text(k, "keyName").unwrap_or(""),
                    text(k, "keyType").unwrap_or(""),
                    text(k, "keyFingerprint").unwrap_or("")
                );
            }
        }
        Command::DeleteKeyPair { key_name } => {
            p.push(("KeyName".into(), key_name.clone()));
            let xml = c.call("DeleteKeyPair", &p)?;
            if json {
                return print_json(&xml);
            }
        }
        Command::RegisterImage { .. } => return register_image(cli, &c),
        Command::DescribeImages { image_ids, filters } => {
            list_params(&mut p, "ImageId", image_ids);
            p.push(("Owner.1".into(), "self".into()));
            filter_params(&mut p, filters)?;
            let xml = c.call("DescribeImages", &p)?;
            if json {
                return print_json(&xml);
            }
            let doc = parse(&xml)?;
            println!("{:<22} {:<30} {:<8} CREATED", "IMAGE_ID", "NAME", "ARCH");
            for i in items(doc.root_element(), "imagesSet") {
                println!(
                    "{:<22} {:<30} {:<8} {}",
                    text(i, "imageId").unwrap_or(""),
                    text(i, "name").unwrap_or(""),
                    text(i, "architecture").unwrap_or(""),
                    text(i, "creationDate").unwrap_or("")
                );
            }
        }
        Command::DeregisterImage { image_id } => {
            p.push(("ImageId".into(), image_id.clone()));
            let xml = c.call("DeregisterImage", &p)?;
            if json {
                return print_json(&xml);
            }
        }
        Command::DescribeInstanceTypes { instance_types } => {
            list_params(&mut p, "InstanceType", instance_types);
            let xml = c.call("DescribeInstanceTypes", &p)?;
            if json {
                return print_json(&xml);
            }
            let doc = parse(&xml)?;
            println!("{:<12} {:>6} {:>10}", "TYPE", "VCPUS", "MEMORY_MIB");
            for t in items(doc.root_element(), "instanceTypeSet") {
                let sub = |set: &str, f: &str| {
                    super::xmltree::child(t, set)
                        .and_then(|n| text(n, f))
                        .unwrap_or("")
                        .to_string()
                };
                println!(
                    "{:<12} {:>6} {:>10}",
                    text(t, "instanceType").unwrap_or(""),
                    sub("vCpuInfo", "defaultVCpus"),
                    sub("memoryInfo", "sizeInMiB")
                );
            }
        }
        Command::CreateTags { resources, tags } | Command::DeleteTags { resources, tags } => {
            let action = if matches!(cli.command, Command::CreateTags { .. }) {
                "CreateTags"
            } else {
                "DeleteTags"
            };
            list_params(&mut p, "ResourceId", resources);
            for (i, t) in tags.iter().enumerate() {
                let (k, v) = parse_tag(t)?;
                p.push((format!("Tag.{}.Key", i + 1), k));
                if let Some(v) = v {
                    p.push((format!("Tag.{}.Value", i + 1), v));
                }
            }
            let xml = c.call(action, &p)?;
            if json {
                return print_json(&xml);
            }
        }
        Command::DescribeTags { filters } => {
            filter_params(&mut p, filters)?;
            let xml = c.call("DescribeTags", &p)?;
            if json {
                return print_json(&xml);
            }
            let doc = parse(&xml)?;
            println!("{:<22} {:<10} {:<20} VALUE", "RESOURCE_ID", "TYPE", "KEY");
            for t in items(doc.root_element(), "tagSet") {
                println!(
                    "{:<22} {:<10} {:<20} {}",
                    text(t, "resourceId").unwrap_or(""),
                    text(t, "resourceType").unwrap_or(""),
                    text(t, "key").unwrap_or(""),
                    text(t, "value").unwrap_or("")
                );
            }
        }
        Command::Network(n) => return super::network::run(cli, &c, n),
        Command::Ebs(cmd) => return super::volumes::run(cmd, json, &c),
        Command::Monitoring(cmd) => return super::monitoring::run(cmd, json, &c),
        Command::AutoScaling(cmd) => return super::autoscaling::run(cmd, json, &c),
        Command::Templates(cmd) => return super::launch_templates::run(cmd, json, &c),
        Command::Elb(cmd) => return super::load_balancing::run(cmd, json, &c),
        _ => return instances::run(cli, &c),
    }
    Ok(())
}

fn write_private_key(path: &Path, material: &str) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .map_err(io)?;
    f.write_all(material.as_bytes()).map_err(io)
}

/// The one member of an image manifest (`images/build.sh` writes them) the CLI reads.
#[derive(serde::Deserialize)]
struct ManifestName {
    name: String,
}

/// The `name` of the image manifest at `path`.
fn manifest_name(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str::<ManifestName>(&text)
        .map(|m| m.name)
        .map_err(|e| {
            CliError::Input(format!(
                "{} is not an image manifest ({e}): give --name",
                path.display()
            ))
        })
}

fn register_image(cli: &Cli, c: &Client) -> Result<(), CliError> {
    let Command::RegisterImage {
        manifest,
        name,
        kernel,
        initrd,
        root_volume,
        boot_args,
        entry,
        description,
    } = &cli.command
    else {
        return Ok(());
    };
    let abs = |p: &Path| -> Result<String, CliError> {
        std::path::absolute(p)
            .map(|a| a.display().to_string())
            .map_err(|source| CliError::Io {
                path: p.display().to_string(),
                source,
            })
    };
    let mut p = Vec::new();
    if let Some(m) = manifest {
        p.push(("ImageLocation".into(), abs(m)?));
    } else if kernel.is_none() {
        return Err(CliError::Input(
            "register-image needs --manifest or --kernel".into(),
        ));
    }
    let opt = |p: &mut Vec<(String, String)>, k: &str, v: &Option<String>| {
        if let Some(v) = v {
            p.push((k.to_string(), v.clone()));
        }
    };
    // EC2 requires a name; an image from a manifest is named as the manifest names it.
    let name = match (name, manifest) {
        (Some(n), _) => n.clone(),
        (None, Some(m)) => manifest_name(m)?,
        (None, None) => {
            return Err(CliError::Input(
                "register-image needs --name with --kernel".into(),
            ));
        }
    };
    p.push(("Name".into(), name));
    opt(&mut p, "BootArgs", boot_args);
    opt(&mut p, "EntryMode", entry);
    opt(&mut p, "Description", description);
    for (k, v) in [
        ("KernelPath", kernel),
        ("InitrdPath", initrd),
        ("RootVolumePath", root_volume),
    ] {
        if let Some(v) = v {
            p.push((k.into(), abs(v)?));
        }
    }
    let xml = c.call("RegisterImage", &p)?;
    if cli.output == Output::Json {
        return print_json(&xml);
    }
    let doc = parse(&xml)?;
    println!("{}", text(doc.root_element(), "imageId").unwrap_or(""));
    Ok(())
}
