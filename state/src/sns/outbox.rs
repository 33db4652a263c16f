//! SNS's deliveries: the outbox (one row per message and subscription not yet delivered,
//! written in the transaction that publishes, so a restart loses none) and the delivery
//! log (one row per attempt, with its outcome).

use rusqlite::{Connection, OptionalExtension, Row, params};

/// One delivery to make: a message to one subscription's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Its place in the outbox (assigned on insert).
    pub seq: i64,
    /// `Notification` or `SubscriptionConfirmation`.
    pub kind: String,
    /// The message's id (a UUID).
    pub message_id: String,
    /// The topic's ARN.
    pub topic_arn: String,
    /// The subscription's ARN.
    pub subscription_arn: String,
    /// `http`, `https`, `email` or `email-json`.
    pub protocol: String,
    /// The URL or address.
    pub endpoint: String,
    /// What the endpoint's attempts are counted against (an HTTP origin, or the relay).
    pub origin: String,
    /// The subject, if any.
    pub subject: Option<String>,
    /// The message for this protocol.
    pub message: String,
    /// The confirmation token (confirmations only).
    pub token: Option<String>,
    /// Whether the message goes as is, without SNS's JSON around it.
    pub raw: bool,
    /// The message attributes as SNS's JSON shows them (`{"name": {"Type": .., "Value": ..}}`).
    pub message_attributes: String,
    /// When it was published, as SNS writes it (`2026-12-07T01:02:03.456Z`).
    pub timestamp: String,
    /// The retry policy in force when it was published (JSON, the control plane's).
    pub retry_policy: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due, in milliseconds since the epoch.
    pub next_attempt_ms: i64,
}

const COLUMNS: &str = "seq, kind, message_id, topic_arn, subscription_arn, protocol, endpoint, \
     origin, subject, message, token, raw, message_attributes, timestamp, retry_policy, \
     attempts, next_attempt_ms";

fn delivery(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        seq: r.get(0)?,
        kind: r.get(1)?,
        message_id: r.get(2)?,
        topic_arn: r.get(3)?,
        subscription_arn: r.get(4)?,
        protocol: r.get(5)?,
        endpoint: r.get(6)?,
        origin: r.get(7)?,
        subject: r.get(8)?,
        message: r.get(9)?,
        token: r.get(10)?,
        raw: r.get(11)?,
        message_attributes: r.get(12)?,
        timestamp: r.get(13)?,
        retry_policy: r.get(14)?,
        attempts: r.get(15)?,
        next_attempt_ms: r.get(16)?,
    })
}

/// Puts a delivery in the outbox; gives its `seq`.
pub fn insert(conn: &Connection, d: &DeliveryRow) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO sns_outbox (kind, message_id, topic_arn, subscription_arn, protocol, \
         endpoint, origin, subject, message, token, raw, message_attributes, timestamp, \
         retry_policy, attempts, next_attempt_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        d.kind,
        d.message_id,
        d.topic_arn,
        d.subscription_arn,
        d.protocol,
        d.endpoint,
        d.origin,
        d.subject,
        d.message,
        d.token,
        d.raw,
        d.message_attributes,
        d.timestamp,
        d.retry_policy,
        d.attempts,
        d.next_attempt_ms
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Up to `limit` deliveries due at `now_ms`, the longest waiting first, at most
/// `per_origin` of each origin (so that one origin's backlog never hides another's).
pub fn due(
    conn: &Connection,
    now_ms: i64,
    per_origin: usize,
    limit: usize,
) -> rusqlite::Result<Vec<DeliveryRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM (SELECT {COLUMNS}, ROW_NUMBER() OVER \
         (PARTITION BY origin ORDER BY next_attempt_ms, seq) AS n \
         FROM sns_outbox WHERE next_attempt_ms <= ?1) \
         WHERE n <= ?2 ORDER BY next_attempt_ms, seq LIMIT ?3"
    ))?;
    st.query_map(params![now_ms, per_origin as i64, limit as i64], delivery)?
        .collect()
}

/// When the next delivery is due, if any is waiting.
pub fn next_due_ms(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT MIN(next_attempt_ms) FROM sns_outbox", [], |r| {
        r.get(0)
    })
}

/// One delivery by `seq`.
pub fn by_seq(conn: &Connection, seq: i64) -> rusqlite::Result<Option<DeliveryRow>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM sns_outbox WHERE seq = ?1"))?
        .query_row([seq], delivery)
        .optional()
}

/// How many deliveries are waiting.
pub fn len(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("SELECT COUNT(*) FROM sns_outbox", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as usize)
}

/// Removes a delivery (made, or given up).
pub fn remove(conn: &Connection, seq: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM sns_outbox WHERE seq = ?1", [seq])?;
    Ok(())
}

/// Records a failed attempt: `attempts` made, the next one due at `next_ms`.
pub fn reschedule(
    conn: &Connection,
    seq: i64,
    attempts: i64,
    next_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE sns_outbox SET attempts = ?2, next_attempt_ms = ?3 WHERE seq = ?1",
        params![seq, attempts, next_ms],
    )?;
    Ok(())
}

/// One attempt to deliver, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// The message's id.
    pub message_id: String,
    /// The subscription's ARN.
    pub subscription_arn: String,
    /// The URL or address.
    pub endpoint: String,
    /// Which attempt, from 1.
    pub attempt: i64,
    /// When it ended, in milliseconds since the epoch.
    pub at_ms: i64,
    /// `delivered`, `retrying` or `failed` (given up).
    pub outcome: String,
    /// The endpoint's status or the error.
    pub detail: String,
}

/// Logs an attempt.
pub fn log(conn: &Connection, l: &LogRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sns_delivery_log \
         (message_id, subscription_arn, endpoint, attempt, at_ms, outcome, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        l.message_id,
        l.subscription_arn,
        l.endpoint,
        l.attempt,
        l.at_ms,
        l.outcome,
        l.detail
    ])?;
    Ok(())
}

/// The attempts logged for a message, in order.
pub fn log_of_message(conn: &Connection, message_id: &str) -> rusqlite::Result<Vec<LogRow>> {
    let mut st = conn.prepare_cached(
        "SELECT message_id, subscription_arn, endpoint, attempt, at_ms, outcome, detail \
         FROM sns_delivery_log WHERE message_id = ?1 ORDER BY seq",
    )?;
    st.query_map([message_id], |r| {
        Ok(LogRow {
            message_id: r.get(0)?,
            subscription_arn: r.get(1)?,
            endpoint: r.get(2)?,
            attempt: r.get(3)?,
            at_ms: r.get(4)?,
            outcome: r.get(5)?,
            detail: r.get(6)?,
        })
    })?
    .collect()
}

/// Drops the log's entries older than `before_ms`; gives how many.
pub fn prune_log(conn: &Connection, before_ms: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM sns_delivery_log WHERE at_ms < ?1", [before_ms])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: i64, due: i64) -> DeliveryRow {
        DeliveryRow {
            seq: 0,
            kind: "Notification".into(),
            message_id: format!("m{n}"),
            topic_arn: "arn:aws:sns:local-1:123456789012:t".into(),
            subscription_arn: "arn:aws:sns:local-1:123456789012:t:s".into(),
            protocol: "http".into(),
            endpoint: "http://127.0.0.1:1/".into(),
            origin: "http://127.0.0.1:1".into(),
            subject: None,
            message: "hello".into(),
            token: None,
            raw: false,
            message_attributes: "{}".into(),
            timestamp: "2026-12-07T00:00:00.000Z".into(),
            retry_policy: "{}".into(),
            attempts: 0,
            next_attempt_ms: due,
        }
    }

    #[test]
    fn a_busy_origin_does_not_hide_another_origins_deliveries() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::migrations::migrate(&mut c).unwrap();
        for n in 0..20 {
            insert(&c, &row(n, n)).unwrap();
        }
        let other = DeliveryRow {
            origin: "http://127.0.0.1:2".into(),
            ..row(99, 50)
        };
        insert(&c, &other).unwrap();
        let got = due(&c, 100, 4, 8).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got.last().unwrap().message_id, "m99");
    }

    #[test]
    fn due_deliveries_come_oldest_first_and_leave_when_removed() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::migrations::migrate(&mut c).unwrap();
        let late = insert(&c, &row(1, 50)).unwrap();
        let early = insert(&c, &row(2, 10)).unwrap();
        insert(&c, &row(3, 1_000)).unwrap();
        let due_now: Vec<i64> = due(&c, 100, 10, 10)
            .unwrap()
            .iter()
            .map(|d| d.seq)
            .collect();
        assert_eq!(due_now, vec![early, late]);
        let one_per_origin: Vec<i64> = due(&c, 100, 1, 10).unwrap().iter().map(|d| d.seq).collect();
        assert_eq!(one_per_origin, vec![early]);
        reschedule(&c, early, 1, 500).unwrap();
        assert_eq!(by_seq(&c, early).unwrap().unwrap().attempts, 1);
        assert_eq!(next_due_ms(&c).unwrap(), Some(50));
        remove(&c, late).unwrap();
        assert_eq!(len(&c).unwrap(), 2);
        log(
            &c,
            &LogRow {
                message_id: "m2".into(),
                subscription_arn: "s".into(),
                endpoint: "e".into(),
                attempt: 1,
                at_ms: 5,
                outcome: "retrying".into(),
                detail: "HTTP 500".into(),
            },
        )
        .unwrap();
        assert_eq!(log_of_message(&c, "m2").unwrap().len(), 1);
        assert_eq!(prune_log(&c, 6).unwrap(), 1);
    }
}
