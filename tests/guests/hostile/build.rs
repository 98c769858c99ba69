//! Declares 3 MiB of initial linear memory, more than the bundled connector's 2 MiB, so the
//! tests have a component that tenants capped at 2 MiB cannot run (the host refuses to swap it
//! in under them).

/// 3 MiB, a whole number of 64 KiB wasm pages.
const INITIAL_MEMORY_BYTES: u32 = 3 << 20;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--initial-memory={INITIAL_MEMORY_BYTES}");
    }
}
