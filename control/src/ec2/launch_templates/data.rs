//! What a launch asks for, before it is checked: a launch template version's data, or a
//! RunInstances request's own parameters. Kept as JSON in the state (serde), so every member
//! is optional and a list left empty means "not given".

use serde::{Deserialize, Serialize};

/// The parameters of a launch (EC2's `RequestLaunchTemplateData`, plus RunInstances' own
/// `SubnetId` and `PrivateIpAddress`, which a template keeps in its network interfaces).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LaunchData {
    /// `ImageId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// `InstanceType`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// `KeyName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// `SecurityGroupId.N`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// `SecurityGroup.N` (names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// `UserData`, base64 as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// `InstanceInitiatedShutdownBehavior`: `stop` or `terminate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_behavior: Option<String>,
    /// `BlockDeviceMapping.N`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub block_devices: Vec<BlockDevice>,
    /// `NetworkInterface.N`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_interfaces: Vec<NetworkInterface>,
    /// `MetadataOptions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataOptions>,
    /// `TagSpecification.N` (`instance`, `volume`, `network-interface`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag_specifications: Vec<TagSpecification>,
    /// `Monitoring.Enabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<bool>,
    /// `HibernationOptions.Configured`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hibernation: Option<bool>,
    /// RunInstances' `SubnetId` (a template has it in its network interface).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// RunInstances' `PrivateIpAddress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
}

/// One `BlockDeviceMapping.N`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockDevice {
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `NoDevice` was given.
    pub no_device: bool,
    /// `Ebs.SnapshotId`.
    pub snapshot_id: Option<String>,
    /// `Ebs.VolumeSize` (GiB).
    pub volume_size: Option<i64>,
    /// `Ebs.VolumeType`.
    pub volume_type: Option<String>,
    /// `Ebs.Iops`.
    pub iops: Option<i64>,
    /// `Ebs.Throughput`.
    pub throughput: Option<i64>,
    /// `Ebs.DeleteOnTermination`.
    pub delete_on_termination: Option<bool>,
    /// `Ebs.Encrypted`.
    pub encrypted: Option<bool>,
}

/// One `NetworkInterface.N`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkInterface {
    /// `DeviceIndex`.
    pub device_index: Option<i32>,
    /// `SubnetId`.
    pub subnet_id: Option<String>,
    /// `SecurityGroupId.N` (`Groups`).
    pub groups: Vec<String>,
    /// `AssociatePublicIpAddress`.
    pub associate_public_ip: Option<bool>,
    /// `PrivateIpAddress`.
    pub private_ip: Option<String>,
    /// `NetworkInterfaceId` (an existing interface).
    pub network_interface_id: Option<String>,
    /// `DeleteOnTermination`.
    pub delete_on_termination: Option<bool>,
    /// `Description`.
    pub description: Option<String>,
}

/// `MetadataOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetadataOptions {
    /// `optional` or `required`.
    pub http_tokens: Option<String>,
    /// `enabled` or `disabled`.
    pub http_endpoint: Option<String>,
    /// `HttpPutResponseHopLimit`.
    pub hop_limit: Option<i32>,
}

/// One `TagSpecification.N`: tags for the resources of one type a launch makes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TagSpecification {
    /// `instance`, `volume` or `network-interface`.
    pub resource_type: String,
    /// The tags, in the order given.
    pub tags: Vec<(String, String)>,
}

impl LaunchData {
    /// The data as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// Stored data read back.
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// The tags given for resources of `kind`.
    pub fn tags_for(&self, kind: &str) -> Vec<(String, String)> {
        self.tag_specifications
            .iter()
            .filter(|s| s.resource_type == kind)
            .flat_map(|s| s.tags.iter().cloned())
            .collect()
    }
}
