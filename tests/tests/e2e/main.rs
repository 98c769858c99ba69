//! End-to-end tests: the real ChatGPT component (and a hostile one) in the real host, against the
//! mock over loopback. One test binary, not one per file: each binary links all of wasmtime, and
//! nine of them cost CI minutes and disk.

mod common;

mod admin_api;
mod batch;
mod cluster;
mod component_interface;
mod conformance;
mod console_groups;
mod groups;
mod join_requests;
mod mock_console;
mod mock_scim;
mod people;
mod platform;
mod platform_faults;
mod provisioning;
mod read_path;
mod resilience;
mod rules;
mod sandbox;
mod server;
mod template;
