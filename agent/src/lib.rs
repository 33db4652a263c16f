//! kec2's host agent: wires the state, the host data planes and the API endpoint together,
//! reconciles what was running, and runs the background loops.

pub mod config;
pub mod daemon;
