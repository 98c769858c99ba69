//! Where the server's calls run: in its own host, or on workers behind a queue
//! (`harness serve --nats`, the `accessgov-cluster` crate). Both run the same [`Operation`]s
//! through [`execute`] and answer the same [`Answer`]s, so every route behaves the same either
//! way.

use std::future::Future;
use std::pin::Pin;

use accessgov_host::Host;
use accessgov_host::call::{CallError, CallReport};
use accessgov_host::egress::EgressRecord;
use accessgov_host::types as contract;
use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::audit::AuditRecord;
use crate::error::ApiError;
use crate::jobs::JobSpec;
use crate::metrics::Metrics;
use crate::model::{Account, ErrorBody, Job, TenantSpec};

/// A boxed future, for the [`Queue`] trait's methods.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One call of the contract on one tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "operation")]
pub enum Operation {
    /// `info`.
    Info,
    /// `test-connection`.
    TestConnection,
    /// `list-accounts`.
    ListAccounts {
        /// The page.
        page: contract::PageRequest,
    },
    /// `get-account`.
    GetAccount {
        /// The account.
        account: contract::AccountRef,
    },
    /// `list-entitlements`.
    ListEntitlements {
        /// The page.
        page: contract::PageRequest,
    },
    /// `apply-batch`.
    ApplyBatch {
        /// The changes.
        changes: Vec<contract::Change>,
        /// Only plan.
        dry_run: bool,
    },
}

impl Operation {
    /// Whether it may change the service (and so needs its tenant's one writer).
    pub fn writes(&self) -> bool {
        matches!(self, Operation::ApplyBatch { dry_run: false, .. })
    }

    /// Its name in metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Info => "info",
            Operation::TestConnection => "test-connection",
            Operation::ListAccounts { .. } => "list-accounts",
            Operation::GetAccount { .. } => "get-account",
            Operation::ListEntitlements { .. } => "list-entitlements",
            Operation::ApplyBatch { .. } => "apply-batch",
        }
    }
}

/// The report of an [`Operation`]'s call, of the operation's own type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "answer", content = "report")]
pub enum Answer {
    /// Of `info`.
    Info(CallReport<contract::ConnectorInfo>),
    /// Of `test-connection`.
    TestConnection(CallReport<contract::ConnectionReport>),
    /// Of `list-accounts`.
    Accounts(CallReport<contract::AccountPage>),
    /// Of `get-account`.
    Account(CallReport<contract::Account>),
    /// Of `list-entitlements`.
    Entitlements(CallReport<contract::EntitlementPage>),
    /// Of `apply-batch`.
    Changes(CallReport<Vec<Result<contract::ChangeResult, contract::ConnectorError>>>),
}

impl Answer {
    /// How the call went: its error, if it failed; its duration; its requests.
    pub fn call_outcome(&self) -> (Option<&CallError>, u64, &[EgressRecord]) {
        fn parts<T>(r: &CallReport<T>) -> (Option<&CallError>, u64, &[EgressRecord]) {
            (r.result.as_ref().err(), r.duration_ms, &r.egress)
        }
        match self {
            Answer::Info(r) => parts(r),
            Answer::TestConnection(r) => parts(r),
            Answer::Accounts(r) => parts(r),
            Answer::Account(r) => parts(r),
            Answer::Entitlements(r) => parts(r),
            Answer::Changes(r) => parts(r),
        }
    }
}

/// Runs `operation` for `tenant` on `host`: what the server does itself, and what a worker does
/// for it.
pub async fn execute(host: &Host, tenant: &str, operation: Operation) -> Result<Answer, ApiError> {
    let host_error = |e: accessgov_host::error::HostError| ApiError::host(&e);
    Ok(match operation {
        Operation::Info => Answer::Info(host.info(tenant).await.map_err(host_error)?),
        Operation::TestConnection => {
            Answer::TestConnection(host.test_connection(tenant).await.map_err(host_error)?)
        }
        Operation::ListAccounts { page } => {
            Answer::Accounts(host.list_accounts(tenant, page).await.map_err(host_error)?)
        }
        Operation::GetAccount { account } => {
            Answer::Account(host.get_account(tenant, account).await.map_err(host_error)?)
        }
        Operation::ListEntitlements { page } => {
            Answer::Entitlements(host.list_entitlements(tenant, page).await.map_err(host_error)?)
        }
        Operation::ApplyBatch { changes, dry_run } => Answer::Changes(
            host.apply_batch(tenant, changes, contract::ChangeOptions { dry_run })
                .await
                .map_err(host_error)?,
        ),
    })
}

/// Every account of `tenant` on `host` from page `first` on, sent to `pages` as NDJSON a page at
/// a time; a failure, or `stop` answering an error before a page, ends it with one line
/// `{"error": ...}`. It ends early when the reader goes away. Each page's call is counted in
/// `metrics` as a `sync`.
pub async fn sync_pages(
    host: &Host,
    metrics: &Metrics,
    tenant: &str,
    first: contract::PageRequest,
    stop: impl Fn() -> Option<ApiError>,
    pages: mpsc::Sender<Bytes>,
) {
    let mut request = first;
    loop {
        if let Some(error) = stop() {
            let _ = pages.send(error_line(error)).await;
            return;
        }
        let report = match host.list_accounts(tenant, request.clone()).await {
            Ok(report) => report,
            Err(e) => {
                let _ = pages.send(error_line(ApiError::host(&e))).await;
                return;
            }
        };
        let error = report.result.as_ref().err();
        metrics.report(tenant, "sync", error, report.duration_ms, &report.egress);
        let page = match report.result {
            Ok(page) => page,
            Err(e) => {
                let _ = pages.send(error_line(ApiError::call(&e))).await;
                return;
            }
        };
        if pages.send(ndjson_lines(page.accounts)).await.is_err() {
            return; // the reader went away
        }
        match page.next_cursor {
            Some(next) => {
                request = contract::PageRequest { cursor: Some(next), size: request.size }
            }
            None => return,
        }
    }
}

/// `accounts` as NDJSON, one account a line.
fn ndjson_lines(accounts: Vec<contract::Account>) -> Bytes {
    let mut chunk = Vec::with_capacity(accounts.len() * 256);
    for account in accounts {
        if serde_json::to_writer(&mut chunk, &Account::from(account)).is_ok() {
            chunk.push(b'\n');
        }
    }
    Bytes::from(chunk)
}

/// The last line of a sync that failed.
fn error_line(error: ApiError) -> Bytes {
    let line = serde_json::json!({"error": error.body});
    Bytes::from(format!("{line}\n"))
}

/// A call answered with another operation's answer: a defect, never the service's.
pub fn wrong_answer() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "host",
        "the call was answered with another operation's answer",
    )
}

/// An [`ApiError`] as it crosses a queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: ErrorBody,
}

impl From<&ApiError> for WireError {
    fn from(error: &ApiError) -> Self {
        WireError { status: error.status.as_u16(), body: error.body.clone() }
    }
}

impl From<WireError> for ApiError {
    fn from(wire: WireError) -> Self {
        ApiError {
            status: StatusCode::from_u16(wire.status).unwrap_or(StatusCode::BAD_GATEWAY),
            body: wire.body,
        }
    }
}

/// Every account of a tenant as NDJSON chunks, ending with an error line if it failed.
pub type SyncStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Workers behind a queue, as the server sees them: it hands them calls, syncs and jobs, and
/// shares with them the connectors and tenants it has checked.
pub trait Queue: Send + Sync {
    /// Runs `operation` for `tenant` on a worker and waits for its answer.
    fn call<'a>(
        &'a self,
        tenant: &'a str,
        operation: Operation,
    ) -> Pending<'a, Result<Answer, ApiError>>;

    /// Syncs `tenant` on a worker from page `first` on; the accounts come back as NDJSON.
    fn sync<'a>(
        &'a self,
        tenant: &'a str,
        first: contract::PageRequest,
    ) -> Pending<'a, Result<SyncStream, ApiError>>;

    /// Queues a batch job; a job of the same id already queued is returned as it stands.
    fn start_job(&self, spec: JobSpec) -> Pending<'_, Result<Job, ApiError>>;

    /// Job `id` as it stands, with its items when `with_items`.
    fn job<'a>(
        &'a self,
        id: &'a str,
        with_items: bool,
    ) -> Pending<'a, Result<Option<Job>, ApiError>>;

    /// Asks job `id` to stop after its call under way.
    fn cancel_job<'a>(&'a self, id: &'a str) -> Pending<'a, Result<Option<Job>, ApiError>>;

    /// Stores connector `name` for every worker.
    fn share_connector<'a>(
        &'a self,
        name: &'a str,
        component: Vec<u8>,
    ) -> Pending<'a, Result<(), ApiError>>;

    /// Removes connector `name` from every worker.
    fn withdraw_connector<'a>(&'a self, name: &'a str) -> Pending<'a, Result<(), ApiError>>;

    /// Stores tenant `id` for every worker.
    fn share_tenant<'a>(
        &'a self,
        id: &'a str,
        spec: &'a TenantSpec,
    ) -> Pending<'a, Result<(), ApiError>>;

    /// Removes tenant `id` from every worker.
    fn withdraw_tenant<'a>(&'a self, id: &'a str) -> Pending<'a, Result<(), ApiError>>;

    /// The last `limit` audit records of the jobs workers ran that `keep` accepts, oldest
    /// first.
    fn audit_records<'a>(
        &'a self,
        limit: usize,
        keep: &'a (dyn Fn(&AuditRecord) -> bool + Send + Sync),
    ) -> Pending<'a, Result<Vec<AuditRecord>, ApiError>>;
}

/// The server's own host, or workers behind a queue.
pub enum Backend {
    /// Calls run in the server's host; jobs in its tasks.
    Local,
    /// Calls, syncs and jobs run on workers; the server's host holds the shared connectors and
    /// tenants to check requests against.
    Queue(Box<dyn Queue>),
}
