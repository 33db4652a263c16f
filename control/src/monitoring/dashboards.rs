//! Dashboards: PutDashboard (the body checked by `dashboard_body`), GetDashboard,
//! ListDashboards and DeleteDashboards (all or nothing).

use state::metrics::{DashboardRow, MetricsStore, StoreError};

use super::dashboard_body::{self, ValidationMessage};
use crate::Refusal;

/// The most dashboards the store keeps.
pub const MAX_DASHBOARDS: usize = 10_000;
/// Dashboards per ListDashboards page.
pub const PAGE: usize = 1000;
/// The most names one DeleteDashboards takes.
pub const MAX_DELETE: usize = 1000;

/// A dashboard's ARN in `account`.
pub fn arn(account: &str, name: &str) -> String {
    format!("arn:aws:cloudwatch::{account}:dashboard/{name}")
}

/// Whether `name` is 1 to 255 letters, digits, `-` and `_`.
pub fn well_formed_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why PutDashboard is refused.
#[derive(Debug, thiserror::Error)]
pub enum PutDashboardError {
    /// The name has other characters or lengths.
    #[error(
        "The value for field DashboardName is invalid: it is 1 to 255 characters, only alphanumerics, dash (-) and underscore (_)."
    )]
    Name,
    /// The body is not a dashboard.
    #[error("The dashboard body is invalid, there are {} validation errors.", .0.len())]
    Body(Vec<ValidationMessage>),
    /// The store holds as many dashboards as it may.
    #[error("The account has {0} dashboards, the most this endpoint keeps.")]
    TooMany(usize),
    /// The store failed.
    #[error("cannot store the dashboard")]
    Store(#[from] StoreError),
}

impl PutDashboardError {
    /// The body's problems, for `DashboardValidationMessages`.
    pub fn messages(&self) -> &[ValidationMessage] {
        match self {
            Self::Body(m) => m,
            _ => &[],
        }
    }
}

impl Refusal for PutDashboardError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Name | Self::Body(_) => "InvalidParameterInput",
            Self::TooMany(_) => "LimitExceeded",
            Self::Store(_) => return None,
        })
    }
}

/// Checks and stores dashboard `name` at `now_ms` (milliseconds since the epoch).
pub fn put_dashboard(
    store: &MetricsStore,
    name: &str,
    body: &str,
    now_ms: i64,
) -> Result<(), PutDashboardError> {
    if !well_formed_name(name) {
        return Err(PutDashboardError::Name);
    }
    let problems = dashboard_body::check(body);
    if !problems.is_empty() {
        return Err(PutDashboardError::Body(problems));
    }
    if !store.put_dashboard(name, body, now_ms, MAX_DASHBOARDS)? {
        return Err(PutDashboardError::TooMany(MAX_DASHBOARDS));
    }
    Ok(())
}

/// Why GetDashboard is refused.
#[derive(Debug, thiserror::Error)]
pub enum GetDashboardError {
    /// The name is not one a dashboard can have.
    #[error(
        "The value for parameter DashboardName is invalid: it is 1 to 255 characters, only alphanumerics, dash (-) and underscore (_)."
    )]
    Name,
    /// No such dashboard.
    #[error("Dashboard {0} does not exist")]
    NotFound(String),
    /// The store failed.
    #[error("cannot read the dashboard")]
    Store(#[from] StoreError),
}

impl Refusal for GetDashboardError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Name => "InvalidParameterValue",
            Self::NotFound(_) => "ResourceNotFound",
            Self::Store(_) => return None,
        })
    }
}

/// Dashboard `name`.
pub fn get_dashboard(store: &MetricsStore, name: &str) -> Result<DashboardRow, GetDashboardError> {
    if !well_formed_name(name) {
        return Err(GetDashboardError::Name);
    }
    store
        .dashboard(name)?
        .ok_or_else(|| GetDashboardError::NotFound(name.into()))
}

/// Why ListDashboards is refused.
#[derive(Debug, thiserror::Error)]
pub enum ListDashboardsError {
    /// The prefix has characters no name has.
    #[error(
        "The value for parameter DashboardNamePrefix is invalid: only alphanumerics, dash (-) and underscore (_)."
    )]
    Prefix,
    /// The token is not one a page gave.
    #[error(
        "The value for parameter NextToken is invalid: it does not come from an earlier ListDashboards answer."
    )]
    NextToken,
    /// The store failed.
    #[error("cannot list the dashboards")]
    Store(#[from] StoreError),
}

impl Refusal for ListDashboardsError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Prefix | Self::NextToken => "InvalidParameterValue",
            Self::Store(_) => return None,
        })
    }
}

/// A page of dashboards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardList {
    /// The dashboards (their bodies too, for their sizes), by name.
    pub dashboards: Vec<DashboardRow>,
    /// Where the next page starts, when there is one.
    pub next_token: Option<String>,
}

/// The dashboards whose names start with `prefix`, a page after `next_token`.
pub fn list_dashboards(
    store: &MetricsStore,
    prefix: Option<&str>,
    next_token: Option<&str>,
) -> Result<DashboardList, ListDashboardsError> {
    let prefix = prefix.unwrap_or("");
    if !prefix.is_empty() && !well_formed_name(prefix) {
        return Err(ListDashboardsError::Prefix);
    }
    let after = match next_token {
        None => None,
        Some(t) => Some(
            t.strip_prefix("ld1-")
                .filter(|n| well_formed_name(n))
                .ok_or(ListDashboardsError::NextToken)?,
        ),
    };
    let page = store.dashboards(prefix, after, PAGE)?;
    Ok(DashboardList {
        dashboards: page.dashboards,
        next_token: page.next.map(|n| format!("ld1-{n}")),
    })
}

/// Why DeleteDashboards is refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteDashboardsError {
    /// No name, or too many.
    #[error("The parameter DashboardNames must hold 1 to {MAX_DELETE} names, not {0}.")]
    Count(usize),
    /// Some do not exist; none was deleted.
    #[error("The specified dashboards do not exist: [{}]. No dashboard was deleted.", .0.join(", "))]
    NotFound(Vec<String>),
    /// The store failed.
    #[error("cannot delete the dashboards")]
    Store(#[from] StoreError),
}

impl Refusal for DeleteDashboardsError {
    fn code(&self) -> Option<&'static str> {
        Some(match self {
            Self::Count(_) => "InvalidParameterValue",
            Self::NotFound(_) => "ResourceNotFound",
            Self::Store(_) => return None,
        })
    }
}

/// Deletes every dashboard named, or none when one does not exist.
pub fn delete_dashboards(
    store: &MetricsStore,
    names: &[String],
) -> Result<(), DeleteDashboardsError> {
    if names.is_empty() || names.len() > MAX_DELETE {
        return Err(DeleteDashboardsError::Count(names.len()));
    }
    let missing = store.delete_dashboards(names)?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DeleteDashboardsError::NotFound(missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::test_store;

    const BODY: &str = r#"{"widgets": [{"type": "text", "properties": {"markdown": "hi"}}]}"#;

    #[test]
    fn put_checks_the_name_and_body_with_cloudwatch_code() {
        let (_d, s) = test_store();
        let e = put_dashboard(&s, "bad name!", BODY, 1).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterInput"));
        let e = put_dashboard(&s, &"a".repeat(256), BODY, 1).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterInput"));
        let e = put_dashboard(&s, "ops", r#"{"widgets": [{"type": "text"}]}"#, 1).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterInput"));
        assert_eq!(e.messages()[0].data_path, "/widgets/0");
        put_dashboard(&s, "ops_1-a", BODY, 1).unwrap();
        assert_eq!(get_dashboard(&s, "ops_1-a").unwrap().body, BODY);
    }

    #[test]
    fn get_and_delete_of_a_missing_dashboard_are_resource_not_found() {
        let (_d, s) = test_store();
        put_dashboard(&s, "kept", BODY, 1).unwrap();
        let e = get_dashboard(&s, "ghost").unwrap_err();
        assert_eq!(e.code(), Some("ResourceNotFound"));
        assert_eq!(
            get_dashboard(&s, "bad/name").unwrap_err().code(),
            Some("InvalidParameterValue")
        );
        let e = delete_dashboards(&s, &["kept".into(), "ghost".into()]).unwrap_err();
        assert_eq!(e.code(), Some("ResourceNotFound"));
        assert!(get_dashboard(&s, "kept").is_ok(), "nothing deleted");
        assert_eq!(
            delete_dashboards(&s, &[]).unwrap_err().code(),
            Some("InvalidParameterValue")
        );
        delete_dashboards(&s, &["kept".into()]).unwrap();
        assert_eq!(
            get_dashboard(&s, "kept").unwrap_err().code(),
            Some("ResourceNotFound")
        );
    }

    #[test]
    fn list_filters_by_prefix_and_refuses_forged_tokens() {
        let (_d, s) = test_store();
        for name in ["web-a", "web-b", "db"] {
            put_dashboard(&s, name, BODY, 1).unwrap();
        }
        let page = list_dashboards(&s, Some("web-"), None).unwrap();
        let names: Vec<_> = page.dashboards.iter().map(|d| d.name.as_str()).collect();
        assert_eq!((names, page.next_token), (vec!["web-a", "web-b"], None));
        let e = list_dashboards(&s, None, Some("forged")).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterValue"));
        let e = list_dashboards(&s, Some("we b"), None).unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterValue"));
    }
}
