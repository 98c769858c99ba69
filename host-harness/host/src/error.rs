//! Errors of setting up the host: engine, connectors, tenants.

use std::path::PathBuf;

/// What wasmtime said of bytes that are not a component, made fit for a message: its first line,
/// at most 300 characters (its later lines can be a hex dump of the bytes).
pub(crate) fn component_message(error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    let first = text.lines().next().unwrap_or_default();
    if first.chars().count() > 300 {
        format!("{}...", first.chars().take(300).collect::<String>())
    } else {
        first.to_string()
    }
}

/// Why the host, a connector or a tenant could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A [`HostConfig`](crate::HostConfig) field holds a value the host cannot run with.
    #[error("invalid host configuration: `{field}` {message}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with its value.
        message: String,
    },
    /// The wasmtime engine could not be created.
    #[error("could not create the WebAssembly engine: {0}")]
    Engine(String),
    /// A connector's bytes are not a valid component for this engine.
    #[error("connector `{connector}` is not a valid WebAssembly component: {message}")]
    InvalidComponent {
        /// Connector name.
        connector: String,
        /// What wasmtime said.
        message: String,
    },
    /// A connector imports an interface the sandbox does not provide.
    #[error(
        "connector `{connector}` imports `{import}`, which the sandbox does not provide (allowed: {allowed})"
    )]
    ForbiddenImport {
        /// Connector name.
        connector: String,
        /// The offending import.
        import: String,
        /// The allowed interface families.
        allowed: String,
    },
    /// A connector does not export the contract.
    #[error("connector `{connector}` does not export `{expected}` (it exports: {found})")]
    MissingExport {
        /// Connector name.
        connector: String,
        /// The interface expected.
        expected: String,
        /// What it exports.
        found: String,
    },
    /// Replacing a connector was refused: registered tenants of that name are capped below the
    /// new component's initial memory, so every one of their calls would fail. The connector
    /// they run is kept.
    #[error(
        "connector `{connector}` was not replaced: it declares {initial_memory_mib:.1} MiB of \
         initial memory, more than `limits.memory-mib` gives tenant(s) {}; raise their caps first",
        .tenants.join(", ")
    )]
    TenantsBelowInitialMemory {
        /// Connector name.
        connector: String,
        /// The new component's initial memory, in MiB.
        initial_memory_mib: f64,
        /// The tenants capped below it, sorted.
        tenants: Vec<String>,
    },
    /// A tenant's connector file could not be read.
    #[error("tenant `{tenant}`: could not read connector file {path}: {reason}")]
    ReadConnector {
        /// The tenant naming it.
        tenant: String,
        /// Path.
        path: PathBuf,
        /// What the system said (text, not a source error, so it is printed once).
        reason: String,
    },
    /// A tenant's configuration is invalid.
    #[error("tenant `{tenant}`: {message}")]
    InvalidTenant {
        /// Tenant id (or its position in the file).
        tenant: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// No tenant with that id is registered.
    #[error("no tenant `{0}` is registered")]
    UnknownTenant(String),
    /// A connector cannot be removed while tenants run it.
    #[error("connector `{connector}` is run by tenants {}; remove or move them first", tenants.join(", "))]
    ConnectorInUse {
        /// The connector.
        connector: String,
        /// The tenants running it.
        tenants: Vec<String>,
    },
    /// No registered tenant belongs to that customer.
    #[error("no registered tenant belongs to customer `{0}`")]
    UnknownCustomer(String),
    /// No connector with that name is registered.
    #[error("tenant `{tenant}` names connector `{connector}`, which is not registered")]
    UnknownConnector {
        /// Tenant id.
        tenant: String,
        /// Connector name.
        connector: String,
    },
}
