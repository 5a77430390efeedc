//! Puts memory.x and device.x where the linker finds them (link.x from
//! cortex-m-rt INCLUDEs both; .cargo/config.toml passes link.x and defmt.x),
//! and rebuilds when they change.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    for script in ["memory.x", "device.x"] {
        fs::copy(script, out.join(script)).unwrap();
        println!("cargo:rerun-if-changed={script}");
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
}
