//! Links the probe binary as a static, non-PIE executable at 0x200000 (see `link.ld`).
//!
//! The arguments go to the binary only (`rustc-link-arg-bins`), never through RUSTFLAGS, so
//! build scripts and the host unit tests of the library link normally.

use std::env;
use std::path::Path;

fn main() {
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = Path::new(&dir).join("link.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    for arg in [
        "-nostartfiles".to_owned(),
        "-nostdlib".to_owned(),
        "-static".to_owned(),
        "-no-pie".to_owned(),
        format!("-Wl,-T,{}", script.display()),
        "-Wl,--build-id=none".to_owned(),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
