//! The crate's tests, in one binary: a release build links (and, with the workspace's thin
//! LTO, optimizes) the generated code once rather than once per test file.

mod codecs;
mod models;
mod values;
