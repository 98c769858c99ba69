//! Hosts as workers of NATS JetStream: `harness worker --nats URL` takes jobs from a work queue
//! and runs them in its sandbox exactly as a local host does; `harness serve --nats URL` queues
//! instead of running, with the same API.
//!
//! - [`store`]: the JetStream buckets and streams every process shares, made on first use.
//! - [`records`]: what a queued job is and how it stands, as stored.
//! - [`mirror`]: each process's copy of the shared connectors and tenants, kept current by
//!   watching the store, and how far it has caught up.
//! - [`lease`]: one writer per tenant, across every worker.
//! - [`queue`]: the server's side: it queues work and reads results.
//! - [`worker`]: the worker's side: it runs work, records progress and results, and drains.

pub mod error;
pub mod lease;
pub mod mirror;
pub mod queue;
pub mod records;
pub mod store;
pub mod worker;

pub use error::ClusterError;
pub use queue::NatsQueue;
pub use store::{ClusterSettings, Store};
pub use worker::{Worker, WorkerOptions};
