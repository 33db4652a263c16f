//! Auto Scaling's domain.
//!
//! - `forecast.rs`: predictive scaling's load and capacity forecast.

pub mod forecast;
