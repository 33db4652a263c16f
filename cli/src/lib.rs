//! The `ec2` command-line client: `aws ec2`'s command names over the agent's API, and the
//! `aws cloudwatch` and `aws sns` names of its monitoring commands.

pub mod autoscaling;
pub mod client;
pub mod commands;
pub mod error;
pub mod instances;
pub mod launch_templates;
pub mod load_balancing;
pub mod monitoring;
pub mod network;
pub mod output;
pub mod params;
pub mod volumes;
pub mod xmltree;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A readable table.
    Table,
    /// JSON, in the shape of the API's response.
    Json,
}

/// `ec2` flags.
#[derive(Debug, Parser)]
#[command(
    name = "ec2",
    about = "A client for kec2's EC2, CloudWatch and SNS APIs, with the aws CLI's command names"
)]
pub struct Cli {
    /// The agent's URL (default: $EC2_ENDPOINT, else http://127.0.0.1:8787).
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// The agent's state dir, for its credentials file when $AWS_ACCESS_KEY_ID is unset
    /// (default: $KEC2_STATE_DIR, else /var/lib/kec2).
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Launch instances.
    RunInstances {
        /// The image (`ami-...`); the launch template's when one is given.
        #[arg(long)]
        image_id: Option<String>,
        /// The instance type (default: the launch template's, else t2.micro).
        #[arg(long)]
        instance_type: Option<String>,
        /// A launch template: `LaunchTemplateName=NAME` or `LaunchTemplateId=ID`, and
        /// `,Version=V` (`$Latest`, `$Default` or a number).
        #[arg(long)]
        launch_template: Option<String>,
        /// The key pair.
        #[arg(long)]
        key_name: Option<String>,
        /// How many: `N` or `MIN:MAX`.
        #[arg(long, default_value = "1")]
        count: String,
        /// User data: text, or `file://PATH`.
        #[arg(long)]
        user_data: Option<String>,
        /// Idempotency token.
        #[arg(long)]
        client_token: Option<String>,
        /// `stop` or `terminate`.
        #[arg(long)]
        instance_initiated_shutdown_behavior: Option<String>,
        /// Tags as `KEY=VALUE` (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// List instances.
    DescribeInstances {
        /// Only these instances.
        #[arg(long, num_args = 1..)]
        instance_ids: Vec<String>,
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
        /// Page size.
        #[arg(long)]
        max_results: Option<u32>,
        /// Page token.
        #[arg(long)]
        next_token: Option<String>,
    },
    /// Start stopped instances.
    StartInstances {
        /// The instances.
        #[arg(long, num_args = 1.., required = true)]
        instance_ids: Vec<String>,
    },
    /// Stop instances.
    StopInstances {
        /// The instances.
        #[arg(long, num_args = 1.., required = true)]
        instance_ids: Vec<String>,
        /// Skip the graceful wait.
        #[arg(long)]
        force: bool,
    },
    /// Reboot instances.
    RebootInstances {
        /// The instances.
        #[arg(long, num_args = 1.., required = true)]
        instance_ids: Vec<String>,
    },
    /// Terminate instances.
    TerminateInstances {
        /// The instances.
        #[arg(long, num_args = 1.., required = true)]
        instance_ids: Vec<String>,
    },
    /// Instance status checks.
    DescribeInstanceStatus {
        /// Only these instances.
        #[arg(long, num_args = 1..)]
        instance_ids: Vec<String>,
        /// Include instances that are not running.
        #[arg(long)]
        include_all_instances: bool,
    },
    /// Show one attribute of an instance (`userData` is printed decoded).
    DescribeInstanceAttribute {
        /// The instance.
        #[arg(long)]
        instance_id: String,
        /// `instanceType`, `userData` or `instanceInitiatedShutdownBehavior`.
        #[arg(long)]
        attribute: String,
    },
    /// Print an instance's console output.
    GetConsoleOutput {
        /// The instance.
        #[arg(long)]
        instance_id: String,
    },
    /// Create a key pair and write `NAME.pem` (mode 0400).
    CreateKeyPair {
        /// The name.
        #[arg(long)]
        key_name: String,
        /// `rsa` or `ed25519`.
        #[arg(long, default_value = "ed25519")]
        key_type: String,
        /// Where to write the private key (default: `./NAME.pem`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import an OpenSSH public key.
    ImportKeyPair {
        /// The name.
        #[arg(long)]
        key_name: String,
        /// The public key: `file://PATH` or the key line.
        #[arg(long)]
        public_key_material: String,
    },
    /// List key pairs.
    DescribeKeyPairs {
        /// Only these names.
        #[arg(long, num_args = 1..)]
        key_names: Vec<String>,
    },
    /// Delete a key pair.
    DeleteKeyPair {
        /// The name.
        #[arg(long)]
        key_name: String,
    },
    /// Register an image from a manifest or from files.
    RegisterImage {
        /// An `images/build.sh` manifest.json.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// The name (required without --manifest).
        #[arg(long)]
        name: Option<String>,
        /// Kernel file.
        #[arg(long)]
        kernel: Option<PathBuf>,
        /// Initrd file.
        #[arg(long)]
        initrd: Option<PathBuf>,
        /// Root-volume file.
        #[arg(long)]
        root_volume: Option<PathBuf>,
        /// Kernel command line.
        #[arg(long)]
        boot_args: Option<String>,
        /// `user` or `kernel`.
        #[arg(long)]
        entry: Option<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List images.
    DescribeImages {
        /// Only these images.
        #[arg(long, num_args = 1..)]
        image_ids: Vec<String>,
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
    },
    /// Deregister an image.
    DeregisterImage {
        /// The image.
        #[arg(long)]
        image_id: String,
    },
    /// List instance types.
    DescribeInstanceTypes {
        /// Only these types.
        #[arg(long, num_args = 1..)]
        instance_types: Vec<String>,
    },
    /// Tag resources.
    CreateTags {
        /// Resource ids.
        #[arg(long, num_args = 1.., required = true)]
        resources: Vec<String>,
        /// Tags as `Key=K,Value=V` or `K=V`.
        #[arg(long, num_args = 1.., required = true)]
        tags: Vec<String>,
    },
    /// Remove tags.
    DeleteTags {
        /// Resource ids.
        #[arg(long, num_args = 1.., required = true)]
        resources: Vec<String>,
        /// Keys (`Key=K` or `K`); none removes every tag.
        #[arg(long, num_args = 1..)]
        tags: Vec<String>,
    },
    /// List tags.
    DescribeTags {
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
    },
    /// Wait for a condition.
    Wait {
        /// `instance-running`, `instance-stopped` or `instance-terminated`.
        condition: String,
        /// The instances.
        #[arg(long, num_args = 1.., required = true)]
        instance_ids: Vec<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Print `export AWS_ACCESS_KEY_ID=...` lines for the agent's credentials.
    Credentials,
    /// Networking: VPCs, subnets, security groups, addresses, interfaces.
    #[command(flatten)]
    Network(network::NetworkCommand),
    /// EBS: volumes, snapshots, images from instances.
    #[command(flatten)]
    Ebs(volumes::EbsCommand),
    /// Monitoring: detailed monitoring, CloudWatch statistics and alarms, SNS topics.
    #[command(flatten)]
    Monitoring(monitoring::MonitoringCommand),
    /// Auto Scaling: groups, their capacity and activities.
    #[command(flatten)]
    AutoScaling(autoscaling::AutoScalingCommand),
    /// Launch templates.
    #[command(flatten)]
    Templates(launch_templates::TemplateCommand),
    /// Load balancing: target groups, targets, load balancers, listeners.
    #[command(flatten)]
    Elb(load_balancing::ElbCommand),
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match commands::run(&cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_chain(&e));
            std::process::ExitCode::from(1)
        }
    }
}

/// An error and its chain of causes on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let chain: Vec<String> = std::iter::successors(Some(err), |e| e.source())
        .map(ToString::to_string)
        .collect();
    chain.join(": ")
}
