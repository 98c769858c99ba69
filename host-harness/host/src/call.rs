//! One call's sandbox state, and how a call's outcome is reported.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::types::ConnectorError;
use crate::egress::{ConnectionPool, Denial, EgressHooks, EgressLog, EgressRecord};
use crate::logs::LogCapture;
use crate::tenant::Tenant;

/// Largest set of HTTP header fields a guest may build or receive (in-memory size).
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// Most random bytes a guest may ask for in one call to `wasi:random`.
pub const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// The `T` of a call's `Store`: everything the guest can reach, and nothing else.
pub struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: EgressHooks,
    pub(crate) config: WasiConfigVariables,
    pub(crate) limiter: MemoryLimiter,
}

impl CallState {
    /// Fresh state for one call of `tenant`: no files, no environment, no sockets, no arguments,
    /// output captured into `logs`, requests sent over the tenant's idle `connections`.
    pub fn new(
        tenant: &Arc<Tenant>,
        call_id: u64,
        logs: &LogCapture,
        egress: EgressLog,
        connections: &Arc<ConnectionPool>,
    ) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(logs.clone())
            .stderr(logs.clone())
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_HEADER_BYTES);
        CallState {
            wasi,
            table: ResourceTable::new(),
            http,
            hooks: EgressHooks::new(Arc::clone(tenant), call_id, egress, Arc::clone(connections)),
            config: tenant.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            limiter: MemoryLimiter {
                max_bytes: tenant.limits.memory_bytes,
                exceeded: false,
                held_bytes: 0,
            },
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Caps a guest's memory and remembers whether it tried to go beyond, to classify the failure.
pub struct MemoryLimiter {
    max_bytes: usize,
    pub(crate) exceeded: bool,
    /// Linear memory of all the instance's memories, from their creation on; memories never
    /// shrink, so this is also the call's peak.
    pub(crate) held_bytes: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes;
        self.exceeded |= !allowed;
        if allowed {
            self.held_bytes = self.held_bytes.saturating_add(desired.saturating_sub(current));
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Why a call did not produce the connector's answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum CallError {
    /// The connector answered with one of the contract's errors.
    #[error("connector error: {}", describe(.0))]
    Connector(ConnectorError),
    /// The connector's request was refused by the tenant's egress policy.
    #[error("egress denied: {0}")]
    EgressDenied(Denial),
    /// The call ran past its wall-clock budget and was stopped.
    #[error("the call exceeded its time budget of {0:?} and was stopped")]
    Deadline(Duration),
    /// The guest tried to grow its memory past the tenant's cap.
    #[error("the connector exceeded its memory cap of {limit_bytes} bytes: {message}")]
    MemoryLimit {
        /// The cap.
        limit_bytes: usize,
        /// What the guest reported.
        message: String,
    },
    /// The guest recursed past its stack.
    #[error("the connector overflowed its stack (runaway recursion) and was stopped")]
    StackOverflow,
    /// A response body went past the tenant's cap; the connector was cut off from it.
    #[error("a response was larger than the tenant's cap of {limit_bytes} bytes and was cut off")]
    ResponseTooLarge {
        /// The cap.
        limit_bytes: u64,
    },
    /// The guest trapped (a panic, an abort, a defect).
    #[error("the connector crashed: {}{}", .trap, .panic.as_ref().map(|p| format!(" ({p})")).unwrap_or_default())]
    Trap {
        /// What wasmtime reported.
        trap: String,
        /// The guest's panic message from its stderr, if it printed one.
        panic: Option<String>,
    },
    /// The call could not be started (instantiation failed).
    #[error("the connector could not be started: {0}")]
    Instantiate(String),
}

fn describe(error: &ConnectorError) -> String {
    match error {
        ConnectorError::InvalidConfig(m) => format!("invalid-config: {m}"),
        ConnectorError::Unauthenticated(m) => format!("unauthenticated: {m}"),
        ConnectorError::PermissionDenied(m) => format!("permission-denied: {m}"),
        ConnectorError::NotFound(m) => format!("not-found: {m}"),
        ConnectorError::InvalidArgument(m) => format!("invalid-argument: {m}"),
        ConnectorError::Conflict(m) => format!("conflict: {m}"),
        ConnectorError::ManagedExternally(m) => format!("managed-externally: {m}"),
        ConnectorError::RateLimited(r) => format!(
            "rate-limited: {}{}",
            r.message,
            r.retry_after_ms.map(|ms| format!(" (retry after {ms} ms)")).unwrap_or_default()
        ),
        ConnectorError::Unavailable(m) => format!("unavailable: {m}"),
        ConnectorError::Timeout(m) => format!("timeout: {m}"),
        ConnectorError::Unsupported(m) => format!("unsupported: {m}"),
        ConnectorError::Internal(m) => format!("internal: {m}"),
    }
}

/// Everything a caller learns from one call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallReport<T> {
    /// The call's id, also on its egress records and host logs.
    pub call_id: u64,
    /// Tenant id.
    pub tenant: String,
    /// The answer, or why there is none.
    pub result: Result<T, CallError>,
    /// The guest's captured stdout and stderr.
    pub logs: String,
    /// The requests the guest sent, or tried to.
    pub egress: Vec<EgressRecord>,
    /// Wall-clock duration of the call.
    pub duration_ms: u64,
    /// Linear memory the guest's instance held at its peak, in bytes (all its memories).
    pub memory_bytes: u64,
}
