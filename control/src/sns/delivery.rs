//! The delivery loop: takes due deliveries from the outbox, makes each attempt off the
//! async threads (an HTTP(S) POST or a mail), logs its outcome, and removes the delivery
//! once made or given up, or puts it back with the delay its retry policy gives. At most
//! [`PER_ENDPOINT`] attempts run at once per endpoint (an HTTP origin, or the SMTP relay)
//! and [`IN_FLIGHT`] in all, each bounded by the transport's timeout, so an endpoint that
//! keeps failing or hangs never holds up the others. Deliveries live in the database: after
//! a restart the loop takes up every one not yet made.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use host::sns::{HttpClient, Signer, Smtp};
use state::Db;
use state::sns::outbox::{self, DeliveryRow, LogRow};
use tokio::task::JoinSet;

use super::Notifier;
use super::message::{self, Urls};
use super::policy::RetryPolicy;

/// Attempts at once to one endpoint.
pub const PER_ENDPOINT: usize = 4;
/// Attempts at once in all.
pub const IN_FLIGHT: usize = 64;
/// How long the delivery log keeps an attempt.
pub const LOG_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long the loop sleeps at most when nothing is due.
const IDLE: Duration = Duration::from_secs(5);
/// How long it waits for a slot while deliveries are due but their endpoints are busy.
const BUSY: Duration = Duration::from_millis(250);

/// What the loop delivers with.
#[derive(Debug, Clone)]
pub struct Deliverer {
    /// The state database, which holds the outbox and the log.
    pub db: Arc<Db>,
    /// The signing key.
    pub signer: Signer,
    /// The HTTP(S) client.
    pub http: HttpClient,
    /// The SMTP relay.
    pub smtp: Smtp,
    /// The agent's URLs (SubscribeURL, UnsubscribeURL, SigningCertURL).
    pub urls: Urls,
    /// Woken when a delivery is put in the outbox.
    pub notifier: Arc<Notifier>,
}

/// What attempts to `endpoint` count against: its HTTP origin, or the SMTP relay.
pub fn origin(protocol: &str, endpoint: &str) -> String {
    if protocol.starts_with("email") {
        return "smtp".into();
    }
    let after_scheme = endpoint.split_once("://").map_or("", |(_, r)| r);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    format!("{protocol}://{}", authority.to_ascii_lowercase())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Deliverer {
    /// Runs until the runtime stops.
    pub async fn run(self: Arc<Self>) {
        let mut running: JoinSet<(i64, String)> = JoinSet::new();
        let mut in_flight: HashSet<i64> = HashSet::new();
        let mut per_endpoint: HashMap<String, usize> = HashMap::new();
        let mut last_prune = 0i64;
        loop {
            while let Some(done) = running.try_join_next() {
                settle(done, &mut in_flight, &mut per_endpoint);
            }
            let now = now_ms();
            let prune = now - last_prune > 3_600_000;
            if prune {
                last_prune = now;
            }
            // Off the async threads: the database's lock may be held by a long request.
            let db = self.db.clone();
            let read = tokio::task::spawn_blocking(move || {
                let conn = db.lock();
                if prune && let Err(e) = outbox::prune_log(&conn, now - LOG_RETENTION_MS) {
                    tracing::warn!(error = %e, "cannot prune the SNS delivery log");
                }
                let due = outbox::due(&conn, now, PER_ENDPOINT * 2, IN_FLIGHT * 4);
                (due, outbox::next_due_ms(&conn))
            })
            .await;
            let (due, next) = match read {
                Ok(r) => r,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // The runtime is shutting down.
                Err(_) => return,
            };
            let due = due.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the SNS outbox");
                Vec::new()
            });
            for d in due {
                if in_flight.len() >= IN_FLIGHT {
                    break;
                }
                let key = d.origin.clone();
                let busy = per_endpoint.get(&key).copied().unwrap_or(0);
                if in_flight.contains(&d.seq) || busy >= PER_ENDPOINT {
                    continue;
                }
                in_flight.insert(d.seq);
                *per_endpoint.entry(key.clone()).or_default() += 1;
                let me = self.clone();
                running.spawn(async move {
                    let seq = d.seq;
                    let me2 = me.clone();
                    let attempt = tokio::task::spawn_blocking(move || me2.attempt(&d)).await;
                    if let Err(e) = attempt
                        && e.is_panic()
                    {
                        tracing::error!(seq, "an SNS delivery attempt panicked");
                    }
                    (seq, key)
                });
            }
            let wait = match next.ok().flatten() {
                Some(t) if t <= now => BUSY,
                Some(t) => Duration::from_millis((t - now) as u64).min(IDLE),
                None => IDLE,
            };
            tokio::select! {
                () = self.notifier.notified() => {}
                Some(done) = running.join_next(), if !running.is_empty() => {
                    settle(done, &mut in_flight, &mut per_endpoint);
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One attempt at `d`, its outcome logged and the outbox updated (blocking).
    fn attempt(&self, d: &DeliveryRow) {
        let sign = |text: &str| self.signer.sign_base64(text);
        let rendered = message::render(d, &self.urls, &sign);
        let result = if d.protocol.starts_with("email") {
            self.smtp
                .send(&d.endpoint, &rendered.mail_subject, &rendered.body)
                .map(|()| "accepted by the SMTP relay".to_string())
        } else {
            let headers: Vec<(&str, &str)> = rendered
                .headers
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect();
            self.http
                .post(&d.endpoint, &headers, &rendered.body)
                .map(|status| format!("HTTP {status}"))
        };
        let policy: RetryPolicy = serde_json::from_str(&d.retry_policy).unwrap_or_default();
        let attempt = d.attempts + 1;
        let now = now_ms();
        let (outcome, detail) = match &result {
            Ok(detail) => ("delivered", detail.clone()),
            Err(e) if attempt > policy.num_retries => ("failed", host::error_chain(e)),
            Err(e) => ("retrying", host::error_chain(e)),
        };
        match outcome {
            "delivered" => {
                tracing::debug!(message_id = %d.message_id, endpoint = %d.endpoint, "SNS delivery made")
            }
            _ => {
                tracing::info!(message_id = %d.message_id, endpoint = %d.endpoint, attempt, outcome, %detail, "SNS delivery failed")
            }
        }
        let mut conn = self.db.lock();
        let write = || -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            if outcome == "retrying" {
                let delay = policy.delay_before(attempt);
                outbox::reschedule(&tx, d.seq, attempt, now + delay * 1000)?;
            } else {
                outbox::remove(&tx, d.seq)?;
            }
            outbox::log(
                &tx,
                &LogRow {
                    message_id: d.message_id.clone(),
                    subscription_arn: d.subscription_arn.clone(),
                    endpoint: d.endpoint.clone(),
                    attempt,
                    at_ms: now,
                    outcome: outcome.into(),
                    detail,
                },
            )?;
            tx.commit()
        };
        if let Err(e) = write() {
            tracing::warn!(error = %e, seq = d.seq, "cannot record an SNS delivery attempt");
        }
    }
}

fn settle(
    done: Result<(i64, String), tokio::task::JoinError>,
    in_flight: &mut HashSet<i64>,
    per_endpoint: &mut HashMap<String, usize>,
) {
    match done {
        Ok((seq, key)) => {
            in_flight.remove(&seq);
            if let Some(n) = per_endpoint.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per_endpoint.remove(&key);
                }
            }
        }
        // Only a panic outside the attempt itself, which the restart of the loop recovers.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_count_against_their_origin_or_the_relay() {
        assert_eq!(
            origin("http", "http://127.0.0.1:9000/a/b?c"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            origin("https", "https://Example.COM/x"),
            "https://example.com"
        );
        assert_eq!(origin("email", "ops@example.com"), "smtp");
        assert_eq!(origin("email-json", "ops@example.com"), "smtp");
    }
}
