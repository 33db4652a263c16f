//! Scheduled actions' recurrences (pure): a Unix cron expression of five fields
//! (`minute hour day-of-month month day-of-week`, as Auto Scaling takes it) evaluated in an
//! IANA time zone (`TimeZone`, UTC when absent), through the `croner` and `chrono-tz` crates.

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

/// Why a recurrence or a time zone is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not a five-field cron expression.
    #[error("Given recurrence string {0} is invalid.")]
    Recurrence(String),
    /// Not an IANA time zone name.
    #[error("Invalid time zone: {0}")]
    TimeZone(String),
}

/// The zone named `name` (UTC when `None`).
pub fn zone(name: Option<&str>) -> Result<Tz, CronError> {
    match name {
        None | Some("") => Ok(Tz::UTC),
        Some(n) => n
            .parse::<Tz>()
            .map_err(|_| CronError::TimeZone(n.to_string())),
    }
}

fn parse(recurrence: &str) -> Result<croner::Cron, CronError> {
    let bad = || CronError::Recurrence(recurrence.to_string());
    if recurrence.split_whitespace().count() != 5 {
        return Err(bad());
    }
    croner::Cron::new(recurrence).parse().map_err(|_| bad())
}

/// Checks a recurrence and a time zone.
pub fn check(recurrence: &str, time_zone: Option<&str>) -> Result<(), CronError> {
    parse(recurrence)?;
    zone(time_zone)?;
    Ok(())
}

/// The first time `recurrence` fires in `time_zone` strictly after `after_ms`, in
/// milliseconds since the epoch (`None`: never again).
pub fn next_after(
    recurrence: &str,
    time_zone: Option<&str>,
    after_ms: i64,
) -> Result<Option<i64>, CronError> {
    let cron = parse(recurrence)?;
    let tz = zone(time_zone)?;
    let Some(after) = Utc.timestamp_millis_opt(after_ms).single() else {
        return Ok(None);
    };
    let local = after.with_timezone(&tz);
    Ok(cron
        .find_next_occurrence(&local, false)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn every_five_minutes_in_utc() {
        let next = next_after("*/5 * * * *", None, ms("2026-12-07T18:41:10Z")).unwrap();
        assert_eq!(next, Some(ms("2026-12-07T18:45:00Z")));
    }

    #[test]
    fn nine_in_the_morning_follows_the_zone_and_its_daylight_saving() {
        // New York is UTC-5 in December and UTC-4 in July.
        let winter = next_after(
            "0 9 * * *",
            Some("America/New_York"),
            ms("2026-12-07T18:00:00Z"),
        );
        assert_eq!(winter.unwrap(), Some(ms("2026-12-08T14:00:00Z")));
        let summer = next_after(
            "0 9 * * *",
            Some("America/New_York"),
            ms("2026-07-07T12:00:00Z"),
        );
        assert_eq!(summer.unwrap(), Some(ms("2026-07-07T13:00:00Z")));
        let weekdays = next_after(
            "30 8 * * 1-5",
            Some("Europe/Paris"),
            ms("2026-12-05T00:00:00Z"),
        );
        // Saturday the 5th: the next weekday is Monday the 7th, 08:30 in Paris (UTC+1).
        assert_eq!(weekdays.unwrap(), Some(ms("2026-12-07T07:30:00Z")));
    }

    #[test]
    fn bad_recurrences_and_zones_are_refused() {
        assert!(check("* * * *", None).is_err());
        assert!(check("61 * * * *", None).is_err());
        assert!(check("0 0 * * * *", None).is_err());
        assert_eq!(
            check("0 9 * * *", Some("Mars/Olympus")),
            Err(CronError::TimeZone("Mars/Olympus".into()))
        );
        assert!(check("0 9 * * MON-FRI", Some("Asia/Tokyo")).is_ok());
    }
}
