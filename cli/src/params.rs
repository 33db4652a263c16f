//! Request parameters from command-line values.

use super::error::CliError;

/// `file://PATH` contents, or the value itself.
pub fn value_or_file(v: &str) -> Result<Vec<u8>, CliError> {
    match v.strip_prefix("file://") {
        Some(path) => std::fs::read(path).map_err(|source| CliError::Io {
            path: path.into(),
            source,
        }),
        None => Ok(v.as_bytes().to_vec()),
    }
}

/// `Name.1=a&Name.2=b` parameters.
pub fn list_params(out: &mut Vec<(String, String)>, name: &str, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        out.push((format!("{name}.{}", i + 1), v.clone()));
    }
}

/// `Name=NAME,Values=V1,V2` filters as `Filter.N.*` parameters.
pub fn filter_params(out: &mut Vec<(String, String)>, filters: &[String]) -> Result<(), CliError> {
    for (i, f) in filters.iter().enumerate() {
        let bad = || CliError::Input(format!("filter '{f}' is not Name=NAME,Values=V1,V2"));
        let rest = f.strip_prefix("Name=").ok_or_else(bad)?;
        let (name, values) = rest.split_once(",Values=").ok_or_else(bad)?;
        out.push((format!("Filter.{}.Name", i + 1), name.to_string()));
        for (j, v) in values.split(',').enumerate() {
            out.push((format!("Filter.{}.Value.{}", i + 1, j + 1), v.to_string()));
        }
    }
    Ok(())
}
