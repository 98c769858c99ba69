//! Sizes the component's initial linear memory.
//!
//! A `list-accounts` call of 1,000 accounts (the largest page) uses about 1.7 MiB. Declaring
//! 2 MiB up front means such a call never executes `memory.grow`: in the host's pooled slots
//! every growth is an `mprotect`, and every page grown past what the slot keeps resident is
//! faulted in again by the next call. Pages the call never touches cost nothing.

/// 2 MiB, a whole number of 64 KiB wasm pages.
const INITIAL_MEMORY_BYTES: u32 = 2 << 20;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--initial-memory={INITIAL_MEMORY_BYTES}");
    }
}
