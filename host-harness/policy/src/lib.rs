//! What a host is told to run, as plain data: tenants (their connector, settings, origins,
//! credentials and limits) as written in a tenants file or built in code, and capped reads of
//! such input files.
//!
//! Nothing here runs anything, so the mock services, the CLI and a platform's own configuration
//! code can produce tenants without linking the host's runtime.

pub mod bounded_read;
pub mod tenant;

pub use tenant::{
    CredentialConfig, LimitsConfig, SettingValue, TenantConfig, TenantsFile, TenantsFileError,
};
