//! SNS's tables: topics, subscriptions and their tags (this file), and the outbox of
//! deliveries with the log of every attempt (`outbox.rs`). Attributes are kept as a JSON
//! object of strings, as SNS hands them over.

pub mod outbox;

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRow {
    /// Creation order, which pages follow.
    pub seq: i64,
    /// `arn:aws:sns:REGION:ACCOUNT:NAME`.
    pub arn: String,
    /// The name, unique.
    pub name: String,
    /// The attributes set by the caller (`DisplayName`, `Policy`, `DeliveryPolicy`, ...).
    pub attributes: BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRow {
    /// Creation order, which pages follow.
    pub seq: i64,
    /// `TOPIC_ARN:UUID`.
    pub arn: String,
    /// The topic's ARN.
    pub topic_arn: String,
    /// `http`, `https`, `email` or `email-json`.
    pub protocol: String,
    /// The URL or address.
    pub endpoint: String,
    /// The confirmation token sent to the endpoint.
    pub token: String,
    /// Whether the endpoint confirmed it.
    pub confirmed: bool,
    /// The attributes set by the caller (`RawMessageDelivery`, `DeliveryPolicy`).
    pub attributes: BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
}

fn attributes_text(a: &BTreeMap<String, String>) -> String {
    serde_json::to_string(a).unwrap_or_else(|_| "{}".into())
}

/// The attributes column; a value this code did not write reads as none.
fn attributes_of(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

const TOPIC_COLUMNS: &str = "seq, arn, name, attributes, created_ms";

fn topic(r: &Row<'_>) -> rusqlite::Result<TopicRow> {
    Ok(TopicRow {
        seq: r.get(0)?,
        arn: r.get(1)?,
        name: r.get(2)?,
        attributes: attributes_of(&r.get::<_, String>(3)?),
        created_ms: r.get(4)?,
    })
}

/// Inserts a topic (its `seq` is assigned); gives the stored row.
pub fn insert_topic(conn: &Connection, t: &TopicRow) -> rusqlite::Result<TopicRow> {
    conn.execute(
        "INSERT INTO sns_topics (arn, name, attributes, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![t.arn, t.name, attributes_text(&t.attributes), t.created_ms],
    )?;
    Ok(TopicRow {
        seq: conn.last_insert_rowid(),
        ..t.clone()
    })
}

/// A topic by ARN.
pub fn topic_by_arn(conn: &Connection, arn: &str) -> rusqlite::Result<Option<TopicRow>> {
    conn.prepare_cached(&format!(
        "SELECT {TOPIC_COLUMNS} FROM sns_topics WHERE arn = ?1"
    ))?
    .query_row([arn], topic)
    .optional()
}

/// Up to `limit` topics after `after` (a `seq`), in creation order.
pub fn topics_page(conn: &Connection, after: i64, limit: usize) -> rusqlite::Result<Vec<TopicRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {TOPIC_COLUMNS} FROM sns_topics WHERE seq > ?1 ORDER BY seq LIMIT ?2"
    ))?;
    st.query_map(params![after, limit as i64], topic)?.collect()
}

/// How many topics there are.
pub fn topic_count(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("SELECT COUNT(*) FROM sns_topics", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as usize)
}

/// Replaces a topic's attributes.
pub fn set_topic_attributes(
    conn: &Connection,
    arn: &str,
    attributes: &BTreeMap<String, String>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE sns_topics SET attributes = ?2 WHERE arn = ?1",
        params![arn, attributes_text(attributes)],
    )?;
    Ok(())
}

/// Deletes a topic with its subscriptions, its tags and every delivery not yet made to
/// them.
pub fn delete_topic(conn: &Connection, arn: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM sns_outbox WHERE topic_arn = ?1", [arn])?;
    conn.execute("DELETE FROM sns_subscriptions WHERE topic_arn = ?1", [arn])?;
    conn.execute("DELETE FROM sns_tags WHERE resource_arn = ?1", [arn])?;
    conn.execute("DELETE FROM sns_topics WHERE arn = ?1", [arn])?;
    Ok(())
}

const SUBSCRIPTION_COLUMNS: &str =
    "seq, arn, topic_arn, protocol, endpoint, token, confirmed, attributes, created_ms";

fn subscription(r: &Row<'_>) -> rusqlite::Result<SubscriptionRow> {
    Ok(SubscriptionRow {
        seq: r.get(0)?,
        arn: r.get(1)?,
        topic_arn: r.get(2)?,
        protocol: r.get(3)?,
        endpoint: r.get(4)?,
        token: r.get(5)?,
        confirmed: r.get(6)?,
        attributes: attributes_of(&r.get::<_, String>(7)?),
        created_ms: r.get(8)?,
    })
}

/// Inserts a subscription (its `seq` is assigned); gives the stored row.
pub fn insert_subscription(
    conn: &Connection,
    s: &SubscriptionRow,
) -> rusqlite::Result<SubscriptionRow> {
    conn.execute(
        "INSERT INTO sns_subscriptions \
         (arn, topic_arn, protocol, endpoint, token, confirmed, attributes, created_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            s.arn,
            s.topic_arn,
            s.protocol,
            s.endpoint,
            s.token,
            s.confirmed,
            attributes_text(&s.attributes),
            s.created_ms
        ],
    )?;
    Ok(SubscriptionRow {
        seq: conn.last_insert_rowid(),
        ..s.clone()
    })
}

/// A subscription by ARN.
pub fn subscription_by_arn(
    conn: &Connection,
    arn: &str,
) -> rusqlite::Result<Option<SubscriptionRow>> {
    conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM sns_subscriptions WHERE arn = ?1"
    ))?
    .query_row([arn], subscription)
    .optional()
}

/// The subscription of `topic_arn` to `endpoint` over `protocol`, if there is one.
pub fn subscription_to(
    conn: &Connection,
    topic_arn: &str,
    protocol: &str,
    endpoint: &str,
) -> rusqlite::Result<Option<SubscriptionRow>> {
    conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM sns_subscriptions \
         WHERE topic_arn = ?1 AND protocol = ?2 AND endpoint = ?3"
    ))?
    .query_row(params![topic_arn, protocol, endpoint], subscription)
    .optional()
}

/// The subscription of `topic_arn` whose confirmation token is `token`.
pub fn subscription_by_token(
    conn: &Connection,
    topic_arn: &str,
    token: &str,
) -> rusqlite::Result<Option<SubscriptionRow>> {
    conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM sns_subscriptions WHERE topic_arn = ?1 AND token = ?2"
    ))?
    .query_row(params![topic_arn, token], subscription)
    .optional()
}

/// Up to `limit` subscriptions after `after` (a `seq`), of one topic or of all, in creation
/// order.
pub fn subscriptions_page(
    conn: &Connection,
    topic_arn: Option<&str>,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<SubscriptionRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM sns_subscriptions \
         WHERE seq > ?1 AND (?2 IS NULL OR topic_arn = ?2) ORDER BY seq LIMIT ?3"
    ))?;
    st.query_map(params![after, topic_arn, limit as i64], subscription)?
        .collect()
}

/// Every confirmed subscription of a topic, in creation order.
pub fn confirmed_subscriptions(
    conn: &Connection,
    topic_arn: &str,
) -> rusqlite::Result<Vec<SubscriptionRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM sns_subscriptions \
         WHERE topic_arn = ?1 AND confirmed = 1 ORDER BY seq"
    ))?;
    st.query_map([topic_arn], subscription)?.collect()
}

/// A topic's subscriptions counted: (confirmed, pending).
pub fn subscription_counts(conn: &Connection, topic_arn: &str) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(
        "SELECT COALESCE(SUM(confirmed = 1), 0), COALESCE(SUM(confirmed = 0), 0) \
         FROM sns_subscriptions WHERE topic_arn = ?1",
        [topic_arn],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Marks a subscription confirmed.
pub fn confirm_subscription(conn: &Connection, arn: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE sns_subscriptions SET confirmed = 1 WHERE arn = ?1",
        [arn],
    )?;
    Ok(())
}

/// Replaces a subscription's attributes.
pub fn set_subscription_attributes(
    conn: &Connection,
    arn: &str,
    attributes: &BTreeMap<String, String>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE sns_subscriptions SET attributes = ?2 WHERE arn = ?1",
        params![arn, attributes_text(attributes)],
    )?;
    Ok(())
}

/// Deletes a subscription and every delivery not yet made to it.
pub fn delete_subscription(conn: &Connection, arn: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM sns_outbox WHERE subscription_arn = ?1", [arn])?;
    conn.execute("DELETE FROM sns_subscriptions WHERE arn = ?1", [arn])?;
    Ok(())
}

/// A resource's tags, by key.
pub fn tags(conn: &Connection, arn: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = conn
        .prepare_cached("SELECT key, value FROM sns_tags WHERE resource_arn = ?1 ORDER BY key")?;
    st.query_map([arn], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Adds or replaces tags on a resource.
pub fn put_tags(conn: &Connection, arn: &str, tags: &[(String, String)]) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO sns_tags (resource_arn, key, value) VALUES (?1, ?2, ?3) \
         ON CONFLICT (resource_arn, key) DO UPDATE SET value = excluded.value",
    )?;
    for (k, v) in tags {
        st.execute(params![arn, k, v])?;
    }
    Ok(())
}

/// Removes tags from a resource (keys it lacks are ignored).
pub fn delete_tags(conn: &Connection, arn: &str, keys: &[String]) -> rusqlite::Result<()> {
    let mut st =
        conn.prepare_cached("DELETE FROM sns_tags WHERE resource_arn = ?1 AND key = ?2")?;
    for k in keys {
        st.execute(params![arn, k])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::migrations::migrate(&mut c).unwrap();
        c
    }

    fn topic_row(name: &str) -> TopicRow {
        TopicRow {
            seq: 0,
            arn: format!("arn:aws:sns:local-1:123456789012:{name}"),
            name: name.into(),
            attributes: BTreeMap::from([("DisplayName".into(), "d".into())]),
            created_ms: 1,
        }
    }

    fn sub_row(topic: &TopicRow, n: u32) -> SubscriptionRow {
        SubscriptionRow {
            seq: 0,
            arn: format!("{}:{n}", topic.arn),
            topic_arn: topic.arn.clone(),
            protocol: "http".into(),
            endpoint: format!("http://127.0.0.1:1/{n}"),
            token: format!("t{n}"),
            confirmed: false,
            attributes: BTreeMap::new(),
            created_ms: 1,
        }
    }

    #[test]
    fn topics_and_subscriptions_page_in_order_and_delete_together() {
        let c = conn();
        let a = insert_topic(&c, &topic_row("a")).unwrap();
        let b = insert_topic(&c, &topic_row("b")).unwrap();
        assert_eq!(topic_by_arn(&c, &a.arn).unwrap().unwrap(), a);
        let page = topics_page(&c, a.seq, 10).unwrap();
        assert_eq!(page, vec![b.clone()]);
        let s1 = insert_subscription(&c, &sub_row(&a, 1)).unwrap();
        insert_subscription(&c, &sub_row(&b, 2)).unwrap();
        assert_eq!(subscription_counts(&c, &a.arn).unwrap(), (0, 1));
        confirm_subscription(&c, &s1.arn).unwrap();
        assert_eq!(subscription_counts(&c, &a.arn).unwrap(), (1, 0));
        assert_eq!(confirmed_subscriptions(&c, &a.arn).unwrap().len(), 1);
        assert_eq!(
            subscription_by_token(&c, &a.arn, "t1")
                .unwrap()
                .unwrap()
                .arn,
            s1.arn
        );
        assert_eq!(subscriptions_page(&c, None, 0, 10).unwrap().len(), 2);
        assert_eq!(
            subscriptions_page(&c, Some(&b.arn), 0, 10).unwrap().len(),
            1
        );
        put_tags(&c, &a.arn, &[("k".into(), "v".into())]).unwrap();
        delete_topic(&c, &a.arn).unwrap();
        assert!(topic_by_arn(&c, &a.arn).unwrap().is_none());
        assert!(subscription_by_arn(&c, &s1.arn).unwrap().is_none());
        assert!(tags(&c, &a.arn).unwrap().is_empty());
        assert_eq!(topic_count(&c).unwrap(), 1);
    }

    #[test]
    fn tags_are_replaced_by_key_and_deleted_by_key() {
        let c = conn();
        let arn = "arn:aws:sns:local-1:123456789012:t";
        put_tags(
            &c,
            arn,
            &[("a".into(), "1".into()), ("b".into(), "2".into())],
        )
        .unwrap();
        put_tags(&c, arn, &[("a".into(), "3".into())]).unwrap();
        delete_tags(&c, arn, &["b".into(), "missing".into()]).unwrap();
        assert_eq!(tags(&c, arn).unwrap(), vec![("a".into(), "3".into())]);
    }
}
