//! Versioned schema migrations, tracked in SQLite's `user_version`.

use rusqlite::Connection;

/// Each entry moves the schema from version `i` to `i + 1`; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: instances, images, key pairs, tags, metadata.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE instances (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        reservation_id TEXT NOT NULL,
        launch_index INTEGER NOT NULL,
        image_id TEXT NOT NULL,
        instance_type TEXT NOT NULL,
        key_name TEXT,
        state TEXT NOT NULL,
        state_reason_code TEXT,
        state_reason_message TEXT,
        transition_reason TEXT NOT NULL DEFAULT '',
        launch_time TEXT NOT NULL,
        user_data TEXT,
        shutdown_behavior TEXT NOT NULL,
        client_token TEXT,
        vcpus INTEGER NOT NULL,
        memory_mib INTEGER NOT NULL,
        kernel TEXT NOT NULL,
        initrd TEXT,
        boot_args TEXT NOT NULL,
        entry TEXT NOT NULL,
        architecture TEXT NOT NULL,
        pid INTEGER,
        pid_start INTEGER,
        rebooting INTEGER NOT NULL DEFAULT 0,
        terminated_at INTEGER
    );
    CREATE INDEX instances_state ON instances(state);
    CREATE INDEX instances_client_token ON instances(client_token);
    CREATE INDEX instances_reservation ON instances(reservation_id);
    CREATE TABLE images (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL DEFAULT '',
        kernel TEXT NOT NULL,
        initrd TEXT,
        root_volume TEXT,
        boot_args TEXT NOT NULL,
        entry TEXT NOT NULL,
        architecture TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE key_pairs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        key_type TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        public_key TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE tags (
        resource_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (resource_id, key)
    );
    CREATE INDEX tags_key ON tags(key, value);
    "#,
    // Networking: VPCs, subnets, security groups and their rules, ENIs, Elastic IPs, and each
    // instance's metadata options.
    r#"
    CREATE TABLE vpcs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        cidr TEXT NOT NULL,
        is_default INTEGER NOT NULL DEFAULT 0,
        created TEXT NOT NULL
    );
    CREATE TABLE subnets (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        vpc_id TEXT NOT NULL,
        cidr TEXT NOT NULL,
        availability_zone TEXT NOT NULL,
        map_public_ip INTEGER NOT NULL DEFAULT 0,
        is_default INTEGER NOT NULL DEFAULT 0,
        created TEXT NOT NULL
    );
    CREATE INDEX subnets_vpc ON subnets(vpc_id);
    CREATE TABLE security_groups (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        vpc_id TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        UNIQUE (vpc_id, name)
    );
    CREATE TABLE security_group_rules (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        group_id TEXT NOT NULL,
        egress INTEGER NOT NULL,
        protocol TEXT NOT NULL,
        from_port INTEGER,
        to_port INTEGER,
        cidr TEXT,
        peer_group_id TEXT,
        description TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX security_group_rules_group ON security_group_rules(group_id);
    CREATE TABLE network_interfaces (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        subnet_id TEXT NOT NULL,
        vpc_id TEXT NOT NULL,
        mac TEXT NOT NULL UNIQUE,
        private_ip TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        instance_id TEXT,
        device_index INTEGER,
        attachment_id TEXT,
        delete_on_termination INTEGER NOT NULL DEFAULT 0,
        wants_public_ip INTEGER NOT NULL DEFAULT 0,
        public_ip TEXT,
        created TEXT NOT NULL,
        UNIQUE (vpc_id, private_ip)
    );
    CREATE INDEX network_interfaces_instance ON network_interfaces(instance_id);
    CREATE TABLE network_interface_groups (
        eni_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (eni_id, group_id)
    );
    CREATE INDEX network_interface_groups_group ON network_interface_groups(group_id);
    CREATE TABLE addresses (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        allocation_id TEXT NOT NULL UNIQUE,
        public_ip TEXT NOT NULL UNIQUE,
        eni_id TEXT,
        association_id TEXT
    );
    CREATE TABLE metadata_options (
        instance_id TEXT PRIMARY KEY,
        http_tokens TEXT NOT NULL DEFAULT 'optional',
        http_endpoint TEXT NOT NULL DEFAULT 'enabled',
        hop_limit INTEGER NOT NULL DEFAULT 1
    );
    "#,
    // Hibernation: whether an instance may hibernate, and the saved state it resumes from.
    r#"
    CREATE TABLE hibernation (
        instance_id TEXT PRIMARY KEY,
        configured INTEGER NOT NULL DEFAULT 0,
        state_file TEXT
    );
    "#,
    // EBS: volumes, attachments, snapshots, chunks.
    r#"
    CREATE TABLE volumes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        volume_type TEXT NOT NULL,
        size_gib INTEGER NOT NULL,
        iops INTEGER NOT NULL,
        throughput INTEGER NOT NULL,
        snapshot_id TEXT,
        source_image TEXT,
        state TEXT NOT NULL,
        created TEXT NOT NULL,
        instance_id TEXT,
        device TEXT,
        attach_time TEXT,
        delete_on_termination INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX volumes_instance ON volumes(instance_id);
    CREATE TABLE snapshots (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        volume_id TEXT NOT NULL,
        volume_size_gib INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL,
        state TEXT NOT NULL,
        progress INTEGER NOT NULL DEFAULT 0,
        start_time TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        new_bytes INTEGER NOT NULL DEFAULT 0,
        pause_micros INTEGER,
        state_message TEXT
    );
    CREATE TABLE snapshot_chunks (
        snapshot_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, idx)
    );
    CREATE TABLE chunks (
        hash TEXT PRIMARY KEY,
        refs INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    );
    ALTER TABLE images ADD COLUMN root_snapshot_id TEXT;
    "#,
    // EBS: every block device of an image (CreateImage, RegisterImage), root included.
    r#"
    CREATE TABLE image_block_devices (
        image_id TEXT NOT NULL,
        device TEXT NOT NULL,
        snapshot_id TEXT,
        volume_size_gib INTEGER NOT NULL,
        volume_type TEXT NOT NULL,
        iops INTEGER,
        throughput INTEGER,
        delete_on_termination INTEGER NOT NULL,
        PRIMARY KEY (image_id, device)
    );
    CREATE INDEX image_block_devices_snapshot ON image_block_devices(snapshot_id);
    "#,
    // The control plane's journal: effects recorded with a change of state, removed once the
    // host side applied them; those left at a crash are applied at the next start.
    r#"
    CREATE TABLE effects (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        recorded TEXT NOT NULL
    );
    "#,
    // CloudWatch: detailed (1-minute) monitoring per instance (MonitorInstances, launch
    // `Monitoring.Enabled`); basic (5-minute) otherwise.
    r#"
    ALTER TABLE instances ADD COLUMN detailed_monitoring INTEGER NOT NULL DEFAULT 0;
    "#,
    // SNS: topics, subscriptions (pending ones with their token), their tags, the outbox of
    // deliveries not yet made (kept across restarts) and the log of every attempt.
    r#"
    CREATE TABLE sns_topics (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        arn TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        attributes TEXT NOT NULL DEFAULT '{}',
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE sns_subscriptions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        arn TEXT NOT NULL UNIQUE,
        topic_arn TEXT NOT NULL,
        protocol TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        token TEXT NOT NULL,
        confirmed INTEGER NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}',
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX sns_subscriptions_topic ON sns_subscriptions(topic_arn);
    CREATE TABLE sns_tags (
        resource_arn TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (resource_arn, key)
    );
    CREATE TABLE sns_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        message_id TEXT NOT NULL,
        topic_arn TEXT NOT NULL,
        subscription_arn TEXT NOT NULL,
        protocol TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        origin TEXT NOT NULL,
        subject TEXT,
        message TEXT NOT NULL,
        token TEXT,
        raw INTEGER NOT NULL,
        message_attributes TEXT NOT NULL DEFAULT '{}',
        timestamp TEXT NOT NULL,
        retry_policy TEXT NOT NULL DEFAULT '{}',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL
    );
    CREATE INDEX sns_outbox_due ON sns_outbox(next_attempt_ms);
    CREATE INDEX sns_outbox_origin_due ON sns_outbox(origin, next_attempt_ms);
    CREATE INDEX sns_outbox_subscription ON sns_outbox(subscription_arn);
    CREATE TABLE sns_delivery_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id TEXT NOT NULL,
        subscription_arn TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX sns_delivery_log_message ON sns_delivery_log(message_id);
    "#,
    // EC2 launch templates and their versions (each version's data as JSON of
    // `control::ec2::launch_templates::LaunchData`); a template's tags are in `tags`.
    r#"
    CREATE TABLE launch_templates (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        default_version INTEGER NOT NULL,
        latest_version INTEGER NOT NULL,
        client_token TEXT UNIQUE
    );
    CREATE TABLE launch_template_versions (
        template_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        description TEXT,
        created_at TEXT NOT NULL,
        data TEXT NOT NULL,
        client_token TEXT,
        PRIMARY KEY (template_id, version)
    );
    CREATE INDEX launch_template_versions_token ON launch_template_versions(client_token);
    "#,
    // Elastic Load Balancing v2: load balancers with their interfaces (ENIs) and groups,
    // target groups (health check and attributes as JSON objects), registered targets
    // (draining ones with their deadline), listeners, rules (conditions and actions as JSON),
    // which target groups each listener and rule forwards to, and tags.
    r#"
    CREATE TABLE elb_load_balancers (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        arn TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        scheme TEXT NOT NULL,
        vpc_id TEXT NOT NULL,
        public_ip TEXT,
        dns_name TEXT NOT NULL,
        state TEXT NOT NULL,
        attributes TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE elb_interfaces (
        lb_arn TEXT NOT NULL,
        subnet_id TEXT NOT NULL,
        eni_id TEXT NOT NULL UNIQUE,
        PRIMARY KEY (lb_arn, subnet_id)
    );
    CREATE TABLE elb_lb_groups (
        lb_arn TEXT NOT NULL,
        group_id TEXT NOT NULL,
        PRIMARY KEY (lb_arn, group_id)
    );
    CREATE TABLE elb_target_groups (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        arn TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        protocol TEXT NOT NULL,
        port INTEGER NOT NULL,
        vpc_id TEXT NOT NULL,
        target_type TEXT NOT NULL,
        health_check TEXT NOT NULL,
        attributes TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE elb_targets (
        tg_arn TEXT NOT NULL,
        target_id TEXT NOT NULL,
        port INTEGER NOT NULL,
        registered_ms INTEGER NOT NULL,
        drain_until_ms INTEGER,
        PRIMARY KEY (tg_arn, target_id, port)
    );
    CREATE TABLE elb_listeners (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        arn TEXT NOT NULL UNIQUE,
        lb_arn TEXT NOT NULL,
        protocol TEXT NOT NULL,
        port INTEGER NOT NULL,
        certificates TEXT NOT NULL,
        default_actions TEXT NOT NULL,
        UNIQUE (lb_arn, port)
    );
    CREATE TABLE elb_rules (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        arn TEXT NOT NULL UNIQUE,
        listener_arn TEXT NOT NULL,
        priority INTEGER NOT NULL,
        conditions TEXT NOT NULL,
        actions TEXT NOT NULL,
        UNIQUE (listener_arn, priority)
    );
    CREATE TABLE elb_forwards (
        owner_arn TEXT NOT NULL,
        lb_arn TEXT NOT NULL,
        tg_arn TEXT NOT NULL,
        PRIMARY KEY (owner_arn, tg_arn)
    );
    CREATE INDEX elb_forwards_tg ON elb_forwards(tg_arn);
    CREATE TABLE elb_tags (
        arn TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (arn, key)
    );
    "#,
    // Auto Scaling: groups (their settings as JSON), the instances in them, scaling
    // activities (the reconciler's journal: an activity in progress is resumed after a
    // restart), scaling policies and scheduled actions (settings as JSON).
    r#"
    CREATE TABLE asg_groups (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        arn TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE asg_instances (
        instance_id TEXT PRIMARY KEY,
        group_name TEXT NOT NULL,
        lifecycle TEXT NOT NULL,
        health TEXT NOT NULL,
        protected INTEGER NOT NULL,
        subnet_id TEXT NOT NULL,
        instance_type TEXT NOT NULL,
        template TEXT NOT NULL,
        launched_ms INTEGER NOT NULL
    );
    CREATE INDEX asg_instances_group ON asg_instances(group_name);
    CREATE TABLE asg_activities (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        group_name TEXT NOT NULL,
        kind TEXT NOT NULL,
        instance_id TEXT,
        subnet_id TEXT,
        description TEXT NOT NULL,
        cause TEXT NOT NULL,
        status TEXT NOT NULL,
        status_message TEXT,
        progress INTEGER NOT NULL,
        details TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER
    );
    CREATE INDEX asg_activities_group ON asg_activities(group_name, seq);
    CREATE INDEX asg_activities_open ON asg_activities(end_ms);
    CREATE TABLE asg_policies (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        arn TEXT NOT NULL UNIQUE,
        group_name TEXT NOT NULL,
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        UNIQUE (group_name, name)
    );
    CREATE TABLE asg_scheduled (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        arn TEXT NOT NULL UNIQUE,
        group_name TEXT NOT NULL,
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        next_ms INTEGER,
        UNIQUE (group_name, name)
    );
    "#,
];

/// Errors while migrating the schema.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database is newer than this agent.
    #[error("the database schema is version {found}, newer than this agent's {known}")]
    TooNew {
        /// Version found on disk.
        found: usize,
        /// Newest version this agent knows.
        known: usize,
    },
    /// A migration step failed.
    #[error("migration to schema version {version} failed")]
    Step {
        /// The version being migrated to.
        version: usize,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
}

/// Brings the schema up to date, each step in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    apply(conn, MIGRATIONS)
}

/// Brings a database whose schema is `steps` up to date (the state database's, or another
/// file's with a list of its own, such as the metrics store's).
pub(crate) fn apply(conn: &mut Connection, steps: &[&str]) -> Result<(), MigrateError> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(|source| MigrateError::Step { version: 0, source })? as usize;
    if current > steps.len() {
        return Err(MigrateError::TooNew {
            found: current,
            known: steps.len(),
        });
    }
    for (i, sql) in steps.iter().enumerate().skip(current) {
        let version = i + 1;
        let step = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version as i64)?;
            tx.commit()
        };
        step(conn).map_err(|source| MigrateError::Step { version, source })?;
        tracing::info!(version, "database schema migrated");
    }
    Ok(())
}
