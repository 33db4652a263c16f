//! ELB's refusals: each variant is one of the codes botocore's `elbv2` model gives the
//! operations (`ValidationError` being the protocol's own), its message as ELB words it.

use crate::Refusal;

/// Why an ELB command is refused (or failed).
#[derive(Debug, thiserror::Error)]
pub enum ElbError {
    /// The request's form or a value is wrong.
    #[error("{0}")]
    Validation(String),
    /// The request contradicts the resources' configuration.
    #[error("{0}")]
    InvalidConfiguration(String),
    /// A load balancer of that name exists.
    #[error("A load balancer with the same name '{0}' exists, but with different settings")]
    DuplicateLoadBalancerName(String),
    /// A target group of that name exists.
    #[error("A target group with the same name '{0}' exists, but with different settings")]
    DuplicateTargetGroupName(String),
    /// A listener on that port exists.
    #[error("A listener already exists on this port for this load balancer")]
    DuplicateListener,
    /// No such load balancer.
    #[error("One or more load balancers not found")]
    LoadBalancerNotFound,
    /// No such target group.
    #[error("One or more target groups not found")]
    TargetGroupNotFound,
    /// No such listener.
    #[error("One or more listeners not found")]
    ListenerNotFound,
    /// No such rule.
    #[error("One or more rules not found")]
    RuleNotFound,
    /// A subnet does not exist.
    #[error("The subnet ID '{0}' is not valid")]
    SubnetNotFound(String),
    /// The subnets are not usable together.
    #[error("{0}")]
    InvalidSubnet(String),
    /// A security group does not exist or is of another VPC.
    #[error("{0}")]
    InvalidSecurityGroup(String),
    /// A target cannot be registered or is not one.
    #[error("{0}")]
    InvalidTarget(String),
    /// Something uses the resource.
    #[error("{0}")]
    ResourceInUse(String),
    /// A rule has that priority.
    #[error("The specified priority is in use")]
    PriorityInUse,
    /// The operation is not allowed (deletion protection, the default rule).
    #[error("{0}")]
    OperationNotPermitted(String),
    /// The listener's protocol does not fit the load balancer or target group.
    #[error("{0}")]
    IncompatibleProtocols(String),
    /// A protocol this endpoint does not serve.
    #[error("{0}")]
    UnsupportedProtocol(String),
    /// An action that cannot be used here.
    #[error("{0}")]
    InvalidLoadBalancerAction(String),
    /// A certificate that is not one the host holds.
    #[error("Certificate '{0}' not found")]
    CertificateNotFound(String),
    /// More tags than a resource may have.
    #[error("{0}")]
    TooManyTags(String),
    /// A key given twice.
    #[error("Duplicate tag keys are not allowed")]
    DuplicateTagKeys,
    /// More than the agent keeps.
    #[error("{0}")]
    TooMany(&'static str, String),
    /// The address pool or a subnet is full.
    #[error("{0}")]
    NoAddress(String),
    /// The database failed.
    #[error("the load balancers' state cannot be read or written")]
    Db(#[from] rusqlite::Error),
}

impl Refusal for ElbError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Validation(_) => "ValidationError",
            Self::InvalidConfiguration(_) | Self::NoAddress(_) => "InvalidConfigurationRequest",
            Self::DuplicateLoadBalancerName(_) => "DuplicateLoadBalancerName",
            Self::DuplicateTargetGroupName(_) => "DuplicateTargetGroupName",
            Self::DuplicateListener => "DuplicateListener",
            Self::LoadBalancerNotFound => "LoadBalancerNotFound",
            Self::TargetGroupNotFound => "TargetGroupNotFound",
            Self::ListenerNotFound => "ListenerNotFound",
            Self::RuleNotFound => "RuleNotFound",
            Self::SubnetNotFound(_) => "SubnetNotFound",
            Self::InvalidSubnet(_) => "InvalidSubnet",
            Self::InvalidSecurityGroup(_) => "InvalidSecurityGroup",
            Self::InvalidTarget(_) => "InvalidTarget",
            Self::ResourceInUse(_) => "ResourceInUse",
            Self::PriorityInUse => "PriorityInUse",
            Self::OperationNotPermitted(_) => "OperationNotPermitted",
            Self::IncompatibleProtocols(_) => "IncompatibleProtocols",
            Self::UnsupportedProtocol(_) => "UnsupportedProtocol",
            Self::InvalidLoadBalancerAction(_) => "InvalidLoadBalancerAction",
            Self::CertificateNotFound(_) => "CertificateNotFound",
            Self::TooManyTags(_) => "TooManyTags",
            Self::DuplicateTagKeys => "DuplicateTagKeys",
            Self::TooMany(code, _) => code,
            Self::Db(_) => return None,
        })
    }
}
