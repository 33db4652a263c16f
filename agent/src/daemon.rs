//! The agent's start-up: state dir, database, credentials, reconciliation, then the API.

use std::sync::Arc;
use std::time::Duration;

use crate::config::AgentConfig;
use api::{ApiState, server};
use control::monitoring::sampler::{self, Sampler};
use host::compute::capacity::Capacity;
use host::compute::cgroups::Cgroups;
use host::compute::{Compute, ComputeConfig};
use host::imds::server::Imds;
use host::imds::source::IdentityKey;
use host::netns::{NetNs, NetNsError};
use host::network::{Network, NetworkConfig};
use host::tasks::{self, Backoff, Unit};
use state::Db;
use state::db::OpenError;
use state::metrics::MetricsStore;
use wire::credentials::{self, CredentialsError};

/// Errors that stop the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state directory could not be made.
    #[error("cannot create the state directory {path}")]
    StateDir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The vmm binary is missing.
    #[error("the vmm binary {0} does not exist (use --vmm PATH)")]
    NoVmm(String),
    /// The database could not be opened.
    #[error("cannot open the state")]
    Db(#[from] OpenError),
    /// The metrics store could not be opened.
    #[error("cannot open the metrics store")]
    Metrics(#[from] state::metrics::OpenError),
    /// Effects recorded before a crash could not be applied.
    #[error("cannot apply the effects an earlier agent recorded")]
    Effects(#[source] control::effects::ApplyError),
    /// The credentials could not be read or made.
    #[error("cannot set up API credentials")]
    Credentials(#[from] CredentialsError),
    /// The identity key could not be read or made.
    #[error("cannot set up the instance identity key")]
    IdentityKey(#[from] host::imds::source::IdentityKeyError),
    /// The network namespace is not usable.
    #[error("cannot use the network namespace")]
    NetNs(#[from] NetNsError),
    /// The network could not be set up.
    #[error("cannot set up instance networking")]
    Network(#[from] host::network::NetworkError),
    /// The cgroup hierarchies VMMs are confined in cannot be found.
    #[error("cannot find the cgroup controllers that confine VMMs")]
    Cgroups(#[source] host::compute::cgroups::DetectError),
    /// Reconciliation failed.
    #[error("cannot reconcile instances with their VMMs")]
    Reconcile(#[source] rusqlite::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the endpoint file failed.
    #[error("cannot write {path}")]
    Endpoint {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server failed.
    #[error("the API server failed")]
    Serve(#[source] std::io::Error),
    /// SNS's signing key could not be read or made.
    #[error("cannot set up SNS's signing key")]
    SnsSigner(#[from] host::sns::SignerError),
    /// The storage service could not start.
    #[error("cannot start the storage service")]
    Storage(#[from] host::ebs::StorageError),
}

/// Runs the agent until it is killed.
pub async fn run(cfg: AgentConfig) -> Result<(), StartError> {
    let dir = &cfg.state_dir;
    // Private: the database holds user data and the console logs may hold secrets.
    std::fs::create_dir_all(dir.join("instances"))
        .and_then(|()| {
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        })
        .map_err(|source| StartError::StateDir {
            path: dir.display().to_string(),
            source,
        })?;
    let vmm = cfg.vmm_path();
    if !vmm.is_file() {
        return Err(StartError::NoVmm(vmm.display().to_string()));
    }
    let db = Arc::new(Db::open(&dir.join("state.db"))?);
    let creds = credentials::load_or_create(dir)?;
    tracing::info!(file = %credentials::path(dir).display(), "API credentials");
    let account_id = db
        .meta_or_init("account_id", || {
            use rand::Rng;
            format!(
                "{:012}",
                rand::thread_rng().gen_range(100_000_000_000u64..999_999_999_999)
            )
        })
        .map_err(StartError::Reconcile)?;
    let capacity = Capacity::from_host(
        cfg.max_vcpus,
        cfg.max_memory_mib,
        cfg.cpu_overcommit,
        cfg.mem_overcommit,
    );
    tracing::info!(
        vcpus = capacity.vcpus,
        memory_mib = capacity.memory_mib,
        "host capacity"
    );
    let key = IdentityKey::load_or_create(dir)?;
    let imds = Imds::new(db.clone(), account_id.clone(), key);
    let network = Network::new(
        db.clone(),
        NetworkConfig {
            public_pool: cfg.public_pool,
            outbound_nat: cfg.outbound_nat,
            dns: cfg.dns_servers(),
            netns: match &cfg.netns {
                Some(name) => NetNs::named(name)?,
                None => NetNs::current(),
            },
        },
        imds,
    );
    let compute = Compute::new(
        db.clone(),
        ComputeConfig {
            state_dir: dir.clone(),
            vmm,
            capacity,
            stop_timeout: Duration::from_secs(cfg.stop_timeout),
            terminated_retention: Duration::from_secs(cfg.terminated_retention),
            seccomp: !cfg.no_seccomp,
            jail: !cfg.no_jail,
        },
        network.clone(),
        Cgroups::detect().map_err(StartError::Cgroups)?,
    );
    network.prepare()?;
    compute.reconcile().await.map_err(StartError::Reconcile)?;
    compute
        .remove_stale_cgroups()
        .map_err(StartError::Reconcile)?;
    let live: Vec<String> = state::instances::live(&db.lock())
        .map_err(StartError::Reconcile)?
        .into_iter()
        .filter(|r| r.pid.is_some())
        .map(|r| r.id)
        .collect();
    network.resume(&live).await?;
    let purger = compute.clone();
    tasks::spawn_restarting(Unit::new("purge loop"), Backoff::SERVER, move || {
        purger.clone().purge_loop()
    });
    // EBS: the start-up sweep, then the reaper (DeleteOnTermination, instance stores).
    let storage = host::ebs::Storage::open(db.clone(), compute.clone())?;
    let reaper = storage.clone();
    tasks::spawn_restarting(Unit::new("storage reaper"), Backoff::SERVER, move || {
        reaper.clone().reaper()
    });
    // CloudWatch's metrics and dashboards: a database of their own, rolled up and pruned
    // now and every five minutes.
    let metrics = Arc::new(MetricsStore::open(&dir.join("metrics.db"))?);
    let rollups = metrics.clone();
    tasks::spawn_restarting(Unit::new("metrics rollup"), Backoff::SERVER, move || {
        metrics_rollup_loop(rollups.clone())
    });
    // SNS: the key its messages are signed with, made once; the delivery loop starts once
    // the endpoint's URL (which messages link to) is known.
    let sns_signer = host::sns::Signer::load_or_create(dir)?;
    let sns_notifier = Arc::new(control::sns::Notifier::default());
    // Load balancers: one HAProxy each, in the instances' network namespace.
    let balancers = Arc::new(host::elb::Balancers::new(dir, network.config.netns.clone()));
    let plane = Arc::new_cyclic(|me| control::Plane {
        db: db.clone(),
        compute,
        network,
        storage,
        account_id: account_id.clone(),
        metrics,
        health: Default::default(),
        sns: sns_notifier.clone(),
        autoscaling: Arc::new(control::autoscaling::Scaling::new(cfg.scaling_alarm_period)),
        elb: balancers,
        elb_health: Default::default(),
        me: me.clone(),
        scaling_alarm_action: Some(control::autoscaling::alarm_actions::on_alarm),
    });
    // What an earlier agent recorded but had not applied when it stopped.
    plane.replay().await.map_err(StartError::Effects)?;
    // Load balancers: HAProxies started again, draining ended, dead ones restarted.
    let supervised = plane.clone();
    tasks::spawn_restarting(Unit::new("load balancers"), Backoff::SERVER, move || {
        control::elbv2::supervisor::run(supervised.clone())
    });
    // CloudWatch's instance metrics and EC2's status checks, sampled from outside the guests.
    let interval = Duration::from_secs(cfg.metrics_interval);
    // The load balancers' metrics, from their HAProxies' counters.
    let measured = plane.clone();
    tasks::spawn_restarting(
        Unit::new("load balancer metrics"),
        Backoff::SERVER,
        move || control::elbv2::metrics::run(measured.clone(), interval),
    );
    let sampled = plane.clone();
    tasks::spawn_restarting(Unit::new("metrics sampler"), Backoff::SERVER, move || {
        sampler_loop(Sampler::new(sampled.clone(), interval))
    });
    // CloudWatch's alarms: a round of evaluation every ten seconds (each alarm is due
    // every 10 s or every minute by its period), the changes' actions run.
    let evaluator = plane.clone();
    tasks::spawn_restarting(Unit::new("alarm evaluator"), Backoff::SERVER, move || {
        alarm_evaluator_loop(evaluator.clone())
    });
    // Auto Scaling: the reconciler keeps every group at its desired capacity, a round every
    // few seconds and whenever a command wakes it.
    let scaler = plane.clone();
    tasks::spawn_restarting(Unit::new("auto scaling"), Backoff::SERVER, move || {
        control::autoscaling::reconciler::run(scaler.clone(), AUTO_SCALING_ROUND_EVERY)
    });
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: cfg.listen.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(StartError::Serve)?;
    let endpoint_file = dir.join("endpoint");
    let tmp = dir.join("endpoint.tmp");
    std::fs::write(&tmp, format!("http://{local}\n"))
        .and_then(|()| std::fs::rename(&tmp, &endpoint_file))
        .map_err(|source| StartError::Endpoint {
            path: endpoint_file.display().to_string(),
            source,
        })?;
    tracing::info!(endpoint = %format!("http://{local}"), "EC2 API listening");
    let deliverer = Arc::new(control::sns::delivery::Deliverer {
        db: db.clone(),
        signer: sns_signer.clone(),
        http: host::sns::HttpClient::default(),
        smtp: host::sns::Smtp {
            relay: cfg.smtp.clone(),
            from: cfg.smtp_from.clone(),
        },
        urls: control::sns::message::Urls {
            base: format!("http://{local}"),
        },
        notifier: sns_notifier,
    });
    tasks::spawn_restarting(Unit::new("sns deliveries"), Backoff::SERVER, move || {
        deliverer.clone().run()
    });
    let state = Arc::new(ApiState {
        db,
        credentials: creds,
        account_id,
        plane,
        sns_certificate: sns_signer.cert_pem().to_string(),
    });
    server::serve(listener, state)
        .await
        .map_err(StartError::Serve)
}

/// Samples running instances at every multiple of the sampler's interval.
async fn sampler_loop(mut sampler: Sampler) {
    loop {
        let now = sampler::next_tick(sampler.interval()).await;
        let started = std::time::Instant::now();
        match sampler.tick(now).await {
            Ok(report) => tracing::debug!(
                instances = report.instances,
                observations = report.observations,
                took_ms = started.elapsed().as_secs_f64() * 1e3,
                "instances sampled"
            ),
            Err(e) => tracing::warn!(error = %host::error_chain(&e), "sampling failed"),
        }
    }
}

/// How often the metrics store is rolled up and pruned.
const METRICS_ROLLUP_EVERY: Duration = Duration::from_secs(300);

/// How often the Auto Scaling reconciler runs a round when nothing wakes it.
const AUTO_SCALING_ROUND_EVERY: Duration = Duration::from_secs(3);

/// How often the alarm evaluator runs a round.
const ALARM_ROUND_EVERY: Duration = Duration::from_secs(10);

/// Evaluates the alarms that are due every [`ALARM_ROUND_EVERY`] and runs the actions of
/// the changes (`control::monitoring::alarms::evaluator`).
async fn alarm_evaluator_loop(plane: Arc<control::Plane>) {
    let mut every = tokio::time::interval(ALARM_ROUND_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match control::monitoring::alarms::evaluator::run_round(&plane).await {
            Ok(0) => {}
            Ok(changes) => tracing::info!(changes, "alarms changed state"),
            Err(e) => tracing::warn!(error = %host::error_chain(&e), "alarm evaluation failed"),
        }
    }
}

/// Rolls up and prunes the metrics store (and the alarm history) now and then every [`METRICS_ROLLUP_EVERY`], off
/// the async threads (a roll-up after a long stop reads many points).
async fn metrics_rollup_loop(store: Arc<MetricsStore>) {
    let mut every = tokio::time::interval(METRICS_ROLLUP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let store = store.clone();
        let now = chrono::Utc::now().timestamp();
        let work = move || {
            let report = store.prune_and_roll_up(now)?;
            let history = store.prune_alarm_history(now * 1000)?;
            Ok::<_, state::metrics::StoreError>((report, history))
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(Ok(report)) => tracing::debug!(
                pruned_history = report.1,
                rolled_up = report.0.rolled_up,
                pruned_points = report.0.pruned_points,
                pruned_metrics = report.0.pruned_metrics,
                "metrics rolled up and pruned"
            ),
            Ok(Err(e)) => {
                tracing::warn!(error = %host::error_chain(&e), "metrics roll-up failed");
            }
            // A panic in the roll-up: the unit's restart takes it up again.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down.
            Err(_) => return,
        }
    }
}
