//! The `AWS/EC2` and `AWS/EBS` metrics of one instance over one window, from two readings of
//! its counters (pure: no clock, no I/O). What each metric counts:
//! - `CPUUtilization`: the vCPU threads' time on a host CPU over the window, as a share of
//!   the window times the instance's vCPUs (0 to 100).
//! - `NetworkIn/Out`, `NetworkPacketsIn/Out`: what the vmm's virtio-net devices passed from
//!   the tap to the guest and back (what the security groups let through).
//! - `DiskReadOps/WriteOps/ReadBytes/WriteBytes`: the instance-store devices, as on EC2;
//!   `EBSReadOps/…` the same for its EBS volumes (Nitro's names).
//! - `AWS/EBS` per volume: `VolumeReadOps/WriteOps/ReadBytes/WriteBytes` and
//!   `VolumeIdleTime` (the window less the time the device was serving requests).

use host::compute::usage::{DeviceCounters, Usage};
use state::metrics::{Aggregate, MetricKey, Observation};

/// A reading of an instance's counters at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// When, in seconds since the epoch (fractional).
    pub at: f64,
    /// The counters.
    pub usage: Usage,
}

/// What the metrics of one window are about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window<'a> {
    /// The instance.
    pub instance_id: &'a str,
    /// Its vCPUs.
    pub vcpus: u32,
    /// Where the window starts, in whole seconds since the epoch (the datapoints' time).
    pub start: i64,
    /// Whether the points are also kept at 1-second resolution (sampling faster than a
    /// minute).
    pub high_resolution: bool,
}

/// The namespace of instance metrics.
pub const EC2_NAMESPACE: &str = "AWS/EC2";
/// The namespace of volume metrics.
pub const EBS_NAMESPACE: &str = "AWS/EBS";

/// The `AWS/EC2` observations of one instance again under its Auto Scaling group's
/// `AutoScalingGroupName` dimension (the store aggregates those of every instance of the
/// group into one metric, as EC2 publishes it).
pub fn by_group(observations: &[Observation], group: &str) -> Vec<Observation> {
    observations
        .iter()
        .filter(|o| o.key.namespace == EC2_NAMESPACE)
        .filter(|o| o.key.dimensions.iter().any(|(n, _)| n == "InstanceId"))
        .map(|o| Observation {
            key: MetricKey::new(
                EC2_NAMESPACE,
                o.key.name.clone(),
                vec![("AutoScalingGroupName".to_string(), group.to_string())],
            ),
            ..o.clone()
        })
        .collect()
}

/// Which kind of disk a block device is, from its serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disk {
    /// An EBS volume (`vol0123…` is `vol-0123…`).
    Ebs(String),
    /// The instance store (`ephemeral0`).
    InstanceStore,
}

/// The disk a block device's serial names (`None`: not one of ours).
pub fn disk_of(device: &DeviceCounters) -> Option<Disk> {
    let serial = device.block_id()?;
    if serial.starts_with("ephemeral") {
        return Some(Disk::InstanceStore);
    }
    let hex = serial.strip_prefix("vol")?;
    (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| Disk::Ebs(format!("vol-{hex}")))
}

/// Counter differences between two readings (zero where a counter went backwards, as after a
/// vmm restart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Delta {
    ops_in: u64,
    ops_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    busy_us: u64,
}

impl Delta {
    fn between(before: Option<&DeviceCounters>, after: &DeviceCounters) -> Self {
        let d = |a: u64, b: Option<u64>| a.saturating_sub(b.unwrap_or(0));
        let b = |f: fn(&DeviceCounters) -> u64| before.map(f);
        if before.is_some_and(|b| b.ops_in > after.ops_in || b.ops_out > after.ops_out) {
            return Delta::default();
        }
        Delta {
            ops_in: d(after.ops_in, b(|c| c.ops_in)),
            ops_out: d(after.ops_out, b(|c| c.ops_out)),
            bytes_in: d(after.bytes_in, b(|c| c.bytes_in)),
            bytes_out: d(after.bytes_out, b(|c| c.bytes_out)),
            busy_us: d(after.busy_us, b(|c| c.busy_us)),
        }
    }

    fn add(&mut self, o: Delta) {
        self.ops_in += o.ops_in;
        self.ops_out += o.ops_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.busy_us += o.busy_us;
    }
}

/// The window's CPU utilization in percent (`None` when a reading lacks the CPU time or the
/// window is empty).
pub fn cpu_utilization(before: &Reading, after: &Reading, vcpus: u32) -> Option<f64> {
    let used = after.usage.vcpu_ns?.checked_sub(before.usage.vcpu_ns?)? as f64;
    let span = (after.at - before.at) * 1e9 * f64::from(vcpus.max(1));
    (span > 0.0).then(|| (used / span * 100.0).clamp(0.0, 100.0))
}

/// The observations of window `w` between readings `before` and `after`.
pub fn observations(w: &Window<'_>, before: &Reading, after: &Reading) -> Vec<Observation> {
    let seconds = (after.at - before.at).max(0.0);
    let mut out = Vec::new();
    let mut ec2 = |name: &str, unit: &str, value: f64| {
        out.push(observation(
            w,
            EC2_NAMESPACE,
            name,
            "InstanceId",
            w.instance_id,
            unit,
            value,
        ));
    };
    if let Some(cpu) = cpu_utilization(before, after, w.vcpus) {
        ec2("CPUUtilization", "Percent", cpu);
    }
    let (mut net, mut store, mut ebs) = (Delta::default(), Delta::default(), Delta::default());
    let mut volumes = Vec::new();
    for dev in &after.usage.devices {
        let prior = before.usage.devices.iter().find(|d| d.device == dev.device);
        let delta = Delta::between(prior, dev);
        if dev.is_net() {
            net.add(delta);
            continue;
        }
        match disk_of(dev) {
            Some(Disk::InstanceStore) => store.add(delta),
            Some(Disk::Ebs(id)) => {
                ebs.add(delta);
                volumes.push((id, delta));
            }
            None => {}
        }
    }
    ec2("NetworkIn", "Bytes", net.bytes_in as f64);
    ec2("NetworkOut", "Bytes", net.bytes_out as f64);
    ec2("NetworkPacketsIn", "Count", net.ops_in as f64);
    ec2("NetworkPacketsOut", "Count", net.ops_out as f64);
    for (prefix, d) in [("Disk", store), ("EBS", ebs)] {
        // A guest's reads move bytes to it, its writes from it.
        ec2(&format!("{prefix}ReadOps"), "Count", d.ops_in as f64);
        ec2(&format!("{prefix}WriteOps"), "Count", d.ops_out as f64);
        ec2(&format!("{prefix}ReadBytes"), "Bytes", d.bytes_in as f64);
        ec2(&format!("{prefix}WriteBytes"), "Bytes", d.bytes_out as f64);
    }
    for (id, d) in volumes {
        let mut ebs = |name: &str, unit: &str, value: f64| {
            out.push(observation(
                w,
                EBS_NAMESPACE,
                name,
                "VolumeId",
                &id,
                unit,
                value,
            ));
        };
        ebs("VolumeReadOps", "Count", d.ops_in as f64);
        ebs("VolumeWriteOps", "Count", d.ops_out as f64);
        ebs("VolumeReadBytes", "Bytes", d.bytes_in as f64);
        ebs("VolumeWriteBytes", "Bytes", d.bytes_out as f64);
        let idle = (seconds - d.busy_us as f64 / 1e6).max(0.0);
        ebs("VolumeIdleTime", "Seconds", idle);
    }
    out
}

/// One datum of window `w`.
pub fn observation(
    w: &Window<'_>,
    namespace: &str,
    name: &str,
    dimension: &str,
    value_of_dimension: &str,
    unit: &str,
    value: f64,
) -> Observation {
    Observation {
        key: MetricKey::new(
            namespace,
            name,
            vec![(dimension.to_string(), value_of_dimension.to_string())],
        ),
        time: w.start,
        high_resolution: w.high_resolution,
        unit: unit.to_string(),
        aggregate: Aggregate::of_value(value, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(
        device: &str,
        ops_in: u64,
        ops_out: u64,
        bytes_in: u64,
        bytes_out: u64,
        busy_us: u64,
    ) -> DeviceCounters {
        DeviceCounters {
            device: device.into(),
            ops_in,
            ops_out,
            busy_us,
            bytes_in,
            bytes_out,
            errors: 0,
        }
    }

    fn reading(at: f64, vcpu_ns: Option<u64>, devices: Vec<DeviceCounters>) -> Reading {
        Reading {
            at,
            usage: Usage {
                vcpu_ns,
                devices,
                uptime_ms: 0,
            },
        }
    }

    fn value(obs: &[Observation], ns: &str, name: &str) -> Option<f64> {
        obs.iter()
            .find(|o| o.key.namespace == ns && o.key.name == name)
            .map(|o| o.aggregate.sum)
    }

    const W: Window<'static> = Window {
        instance_id: "i-0123",
        vcpus: 2,
        start: 600,
        high_resolution: false,
    };

    #[test]
    fn cpu_is_the_vcpu_time_over_the_window_and_the_vcpus() {
        // 2 vCPUs for 10 s is 20 s of CPU; 5 s used is 25 %.
        let a = reading(100.0, Some(1_000_000_000), vec![]);
        let b = reading(110.0, Some(6_000_000_000), vec![]);
        assert_eq!(cpu_utilization(&a, &b, 2), Some(25.0));
        // Never above 100, and nothing without a CPU reading or an empty window.
        let c = reading(110.0, Some(90_000_000_000), vec![]);
        assert_eq!(cpu_utilization(&a, &c, 2), Some(100.0));
        assert_eq!(cpu_utilization(&a, &reading(110.0, None, vec![]), 2), None);
        assert_eq!(cpu_utilization(&a, &a, 2), None);
        // A counter that went back (a new vmm) gives nothing rather than nonsense.
        assert_eq!(
            cpu_utilization(&b, &reading(120.0, Some(5), vec![]), 2),
            None
        );
    }

    #[test]
    fn network_and_disks_are_the_differences_of_the_device_counters() {
        let net = "net kec2t1 02:00:00:00:00:04";
        let a = reading(
            0.0,
            Some(0),
            vec![
                dev(net, 10, 20, 1000, 2000, 0),
                dev("block vol0123456789abcdef0", 1, 1, 4096, 4096, 100),
                dev("block ephemeral0", 0, 0, 0, 0, 0),
            ],
        );
        let b = reading(
            60.0,
            Some(0),
            vec![
                dev(net, 15, 28, 1500, 2800, 0),
                dev("block vol0123456789abcdef0", 3, 5, 12288, 20480, 1_000_100),
                dev("block ephemeral0", 2, 0, 8192, 0, 0),
            ],
        );
        let o = observations(&W, &a, &b);
        assert_eq!(value(&o, EC2_NAMESPACE, "NetworkIn"), Some(500.0));
        assert_eq!(value(&o, EC2_NAMESPACE, "NetworkOut"), Some(800.0));
        assert_eq!(value(&o, EC2_NAMESPACE, "NetworkPacketsIn"), Some(5.0));
        assert_eq!(value(&o, EC2_NAMESPACE, "NetworkPacketsOut"), Some(8.0));
        assert_eq!(value(&o, EC2_NAMESPACE, "DiskReadOps"), Some(2.0));
        assert_eq!(value(&o, EC2_NAMESPACE, "DiskReadBytes"), Some(8192.0));
        assert_eq!(value(&o, EC2_NAMESPACE, "EBSWriteOps"), Some(4.0));
        assert_eq!(value(&o, EC2_NAMESPACE, "EBSWriteBytes"), Some(16384.0));
        assert_eq!(value(&o, EBS_NAMESPACE, "VolumeReadOps"), Some(2.0));
        assert_eq!(value(&o, EBS_NAMESPACE, "VolumeWriteBytes"), Some(16384.0));
        // 60 s less 1 s busy.
        assert_eq!(value(&o, EBS_NAMESPACE, "VolumeIdleTime"), Some(59.0));
        let vol = o.iter().find(|o| o.key.namespace == EBS_NAMESPACE).unwrap();
        assert_eq!(
            vol.key.dimensions,
            vec![("VolumeId".into(), "vol-0123456789abcdef0".into())]
        );
        assert!(o.iter().all(|o| o.time == 600 && !o.high_resolution));
        let cpu = o.iter().find(|o| o.key.name == "CPUUtilization").unwrap();
        assert_eq!(
            cpu.key.dimensions,
            vec![("InstanceId".into(), "i-0123".into())]
        );
        assert_eq!(cpu.unit, "Percent");
    }

    #[test]
    fn a_device_that_restarted_counts_nothing_and_a_new_one_counts_from_zero() {
        let a = reading(0.0, None, vec![dev("net t 0", 100, 100, 100, 100, 0)]);
        let b = reading(
            1.0,
            None,
            vec![
                dev("net t 0", 5, 5, 50, 50, 0),
                dev("net u 1", 2, 3, 20, 30, 0),
            ],
        );
        let o = observations(&W, &a, &b);
        assert_eq!(value(&o, EC2_NAMESPACE, "NetworkIn"), Some(20.0));
        assert_eq!(value(&o, EC2_NAMESPACE, "CPUUtilization"), None);
    }

    #[test]
    fn serials_name_their_disks() {
        let d = |s: &str| disk_of(&dev(&format!("block {s}"), 0, 0, 0, 0, 0));
        assert_eq!(d("vol0abc"), Some(Disk::Ebs("vol-0abc".into())));
        assert_eq!(d("ephemeral0"), Some(Disk::InstanceStore));
        assert_eq!(d("vol"), None);
        assert_eq!(d("volxyz"), None);
        assert_eq!(disk_of(&dev("net t m", 0, 0, 0, 0, 0)), None);
    }
}
