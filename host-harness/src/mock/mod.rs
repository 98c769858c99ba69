//! A faithful mock of the ChatGPT admin console API (`../shared/chatgpt-api.md`), served on
//! loopback by axum, standalone (`harness mock`) or inside tests.
//!
//! The state is in memory and shared with the caller through [`MockService`], so tests can seed
//! and inspect it directly and read the log of every request the mock received.

mod auth;
mod console;
pub mod faults;
pub mod model;
pub mod seed;
mod server;
mod writes;

pub use faults::{Fault, FaultPlan, FaultScript, RandomFaults};
pub use model::{
    ErroredEmailShape, Invite, Member, MockService, RecordedRequest, TokenInfo, Workspace,
};
pub use seed::{GenerateSpec, MockFixture};
pub use server::MockServer;
pub use writes::MAX_INVITE_BATCH;
