//! Reading the agent's answers and printing them.

use super::error::CliError;
use super::xmltree::to_json;

/// Parses the response document.
pub fn parse(xml: &str) -> Result<roxmltree::Document<'_>, CliError> {
    roxmltree::Document::parse(xml).map_err(|e| CliError::Parse(e.to_string()))
}

/// Prints the response as JSON.
pub fn print_json(xml: &str) -> Result<(), CliError> {
    let doc = parse(xml)?;
    let v = to_json(doc.root_element());
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(())
}
