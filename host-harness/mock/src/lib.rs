//! Mock services on loopback, for tests and demos, standalone (`harness mock`) or inside tests:
//! a faithful mock of the ChatGPT admin console API and its SCIM 2.0 surface
//! (`../shared/chatgpt-api.md`), a mock of the OpenAI API Platform's Admin API ([`platform`],
//! `../shared/openai-platform-api.md`), and [`directory`], the small service the template connector
//! manages. [`kit`] is what they share.
//!
//! The state is in memory and shared with the caller through [`MockService`], so tests can seed
//! and inspect it directly and read the log of every request the mock received.

pub mod admin_api;
mod auth;
mod console;
pub mod console_groups;
pub mod directory;
pub mod faults;
pub mod kit;
pub mod model;
pub mod platform;
mod scim;
pub mod seed;
mod server;
mod writes;

pub use faults::{Fault, FaultPlan, FaultPlanError, FaultScript, RandomFaults};
pub use model::{
    AdminKey, AppliedChange, AppliedChangeKind, ConsoleGroup, ErroredEmailShape, Group, Invite,
    JoinRequest, Member, MockService, Plan, RecordedRequest, ScimEmail, ScimUser, SeatChanges,
    TokenInfo, Workspace,
};
pub use scim::{MAX_PAYLOAD_BYTES as SCIM_MAX_PAYLOAD_BYTES, MAX_RESULTS as SCIM_MAX_RESULTS};
pub use seed::{GenerateSpec, MockFixture};
pub use server::{MockServer, chatgpt_tenant_at, console_base_url};
pub use writes::MAX_INVITE_BATCH;
