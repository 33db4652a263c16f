//! The metadata versions EC2 serves: `GET /` lists them, one a line, and each of them (and
//! `latest`) is the root of the same tree here: `/2021-03-23/meta-data/instance-id` answers as
//! `/latest/meta-data/instance-id` does. cloud-init asks dated versions only (2021-03-23,
//! 2018-09-24, 2016-09-02, then 2009-04-04).
//!
//! The list is EC2's answer to `curl http://169.254.169.254/` as AWS's documentation and public
//! IMDS stand-ins print it (through 2022-09-24, then `latest`).

/// Every dated version, oldest first.
pub const VERSIONS: [&str; 29] = [
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "2011-01-01",
    "2011-05-01",
    "2012-01-12",
    "2014-02-25",
    "2014-11-05",
    "2015-10-20",
    "2016-04-19",
    "2016-06-30",
    "2016-09-02",
    "2018-03-28",
    "2018-08-17",
    "2018-09-24",
    "2019-10-01",
    "2020-10-27",
    "2021-01-03",
    "2021-03-23",
    "2021-07-15",
    "2022-07-09",
    "2022-09-24",
    "latest",
];

/// Whether `name` is a version the service answers under (`latest` included).
pub fn is_version(name: &str) -> bool {
    VERSIONS.contains(&name)
}

/// The body of `GET /`: the versions, one a line, `latest` last.
pub fn listing() -> String {
    VERSIONS.join("\n")
}

/// A request path split at its version: `/2021-03-23/meta-data/x` is
/// `Versioned("2021-03-23", "meta-data/x")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/`: the version list.
    Versions,
    /// Under a known version: the rest of the path (may be empty: the version's root).
    Versioned(&'a str, &'a str),
    /// Anything else.
    Unknown,
}

/// Where `path` (starting with `/`) leads.
pub fn route(path: &str) -> Route<'_> {
    let Some(rest) = path.strip_prefix('/') else {
        return Route::Unknown;
    };
    if rest.is_empty() {
        return Route::Versions;
    }
    let (version, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if is_version(version) {
        Route::Versioned(version, tail)
    } else {
        Route::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_ecs_one_a_line_latest_last() {
        let list = listing();
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.first(), Some(&"1.0"));
        assert_eq!(lines.last(), Some(&"latest"));
        assert_eq!(lines.len(), 29);
        for v in ["2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23"] {
            assert!(lines.contains(&v), "cloud-init asks {v}");
        }
        let mut sorted = lines[..28].to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, lines[..28], "oldest first");
        assert!(!list.ends_with('\n'));
    }

    #[test]
    fn paths_split_at_their_version() {
        assert_eq!(route("/"), Route::Versions);
        assert_eq!(route("/latest"), Route::Versioned("latest", ""));
        assert_eq!(route("/latest/"), Route::Versioned("latest", ""));
        assert_eq!(
            route("/2021-03-23/meta-data/instance-id"),
            Route::Versioned("2021-03-23", "meta-data/instance-id")
        );
        assert_eq!(
            route("/1.0/user-data"),
            Route::Versioned("1.0", "user-data")
        );
        for unknown in [
            "/2021-03-24/meta-data/",
            "/LATEST/",
            "//latest/",
            "/x",
            "latest",
        ] {
            assert_eq!(route(unknown), Route::Unknown, "{unknown}");
        }
    }
}
