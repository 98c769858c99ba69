//! Benchmarks of the sandboxed ChatGPT connector against the same logic built natively.
//!
//! The library holds the pieces the benchmark binaries share and the tests check: a blocking
//! keep-alive HTTP/1.1 client ([`http`]), the connector's native transport and drivers
//! ([`native`]), tenant configurations for a mock in another process ([`tenants`]), summary
//! statistics ([`stats`]), memory readings from `/proc` ([`memory`]), and [`say`] for every
//! line the binaries print.

pub mod http;
pub mod memory;
pub mod native;
pub mod stats;
pub mod tenants;

/// Writes `line` to standard output. A reader that has gone (`| head -1`, a driver that ended)
/// ends the run with an error, where `println!` would panic.
pub fn say(line: impl std::fmt::Display) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}")
        .map_err(|e| std::io::Error::new(e.kind(), format!("writing to standard output: {e}")))
}
