//! Benchmarks of the sandboxed ChatGPT connector against the same logic built natively.
//!
//! The library holds the pieces the benchmark binaries share and the tests check: a blocking
//! keep-alive HTTP/1.1 client ([`http`]), the connector's native transport and drivers
//! ([`native`]), tenant configurations for a mock in another process ([`tenants`]), summary
//! statistics ([`stats`]) and memory readings from `/proc` ([`memory`]).

pub mod http;
pub mod memory;
pub mod native;
pub mod stats;
pub mod tenants;
