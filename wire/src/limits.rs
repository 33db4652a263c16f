//! Bounds on everything a caller controls.

/// The bounds the decoders enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest body, in bytes.
    pub max_body: usize,
    /// The deepest nesting of structures, lists and maps.
    pub max_depth: usize,
    /// The most form parameters (query string and body together), or the most
    /// values (JSON and CBOR) one request may carry.
    pub max_params: usize,
    /// The longest form parameter name.
    pub max_name_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1 << 20,
            max_depth: 32,
            max_params: 20_000,
            max_name_len: 512,
        }
    }
}
