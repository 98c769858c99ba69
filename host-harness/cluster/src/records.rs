//! What a queued job is and how it stands, as the job bucket stores it. The work queue's message
//! carries only the job's id: the record is the one place its state lives, so a redelivered
//! message, or a resubmitted job, finds what was already done.

use accessgov_host::types as contract;
use accessgov_server::dispatch::Operation;
use accessgov_server::model::Job;
use serde::{Deserialize, Serialize};

/// What a job runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Work {
    /// One call; its answer is the job's result.
    Call {
        /// The tenant.
        tenant: String,
        /// The call.
        operation: Operation,
    },
    /// Every account of a tenant, as NDJSON, from page `first` on.
    Sync {
        /// The tenant.
        tenant: String,
        /// The first page.
        first: contract::PageRequest,
    },
    /// A batch of changes, in calls of a bounded number of items. Its changes, of any number,
    /// are in the result store under [`spec_object`], not in the record.
    Batch {
        /// The tenant.
        tenant: String,
        /// Only plan.
        dry_run: bool,
    },
}

impl Work {
    /// Its tenant.
    pub fn tenant(&self) -> &str {
        match self {
            Work::Call { tenant, .. } | Work::Sync { tenant, .. } | Work::Batch { tenant, .. } => {
                tenant
            }
        }
    }

    /// Whether it may change the service, and so must be its tenant's only writer.
    pub fn writes(&self) -> bool {
        match self {
            Work::Call { operation, .. } => operation.writes(),
            Work::Sync { .. } => false,
            Work::Batch { dry_run, .. } => !dry_run,
        }
    }
}

/// The shared state a job must run against: the server's view when it queued it, so a worker
/// never runs a tenant or connector older than the one the server was told of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The tenant's revision in the tenant bucket (0: not stored there).
    pub tenant_revision: u64,
    /// The tenant's connector, and the id of its component in the connector store (none:
    /// a connector every worker has built in).
    pub connector: Option<(String, String)>,
}

/// How far a job has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Progress {
    /// Waiting for a worker.
    Queued,
    /// A worker runs it.
    Running,
    /// Its result is stored.
    Done,
}

/// A write-ahead note of a batch's call about to be sent: if its worker dies before reporting
/// the call, the next attempt knows which items may have been sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sending {
    /// The attempt sending it.
    pub attempt: u32,
    /// The items it carries.
    pub items: Vec<usize>,
}

/// A job, as stored under its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id.
    pub id: String,
    /// What it runs.
    pub work: Work,
    /// The state it must run against.
    pub stamp: Stamp,
    /// How far it has got.
    pub progress: Progress,
    /// Attempts started.
    pub attempts: u32,
    /// A batch's progress: counts, attempts, and the first item of every call whose items are
    /// stored (items themselves live under `items.<job>.<first>`).
    pub job: Option<Job>,
    /// The firsts of the stored item groups, in order.
    pub item_groups: Vec<usize>,
    /// A batch's call being sent, if one is.
    pub sending: Option<Sending>,
    /// Why the job failed as a whole (a call or sync that could not run), if it did; its
    /// answer is otherwise in the result store.
    pub failure: Option<String>,
}

impl JobRecord {
    /// A job as queued; `job` is a batch's progress.
    pub fn queued(id: &str, work: Work, stamp: Stamp, job: Option<Job>) -> Self {
        JobRecord {
            id: id.to_string(),
            work,
            stamp,
            progress: Progress::Queued,
            attempts: 0,
            job,
            item_groups: Vec::new(),
            sending: None,
            failure: None,
        }
    }
}

/// The name of batch `job`'s spec in the result store.
pub fn spec_object(job: &str) -> String {
    format!("spec.{job}")
}

/// The key of a batch's stored items of one call.
pub fn items_key(job: &str, first: usize) -> String {
    format!("items.{job}.{first}")
}

/// The key asking batch `job` to stop.
pub fn cancel_key(job: &str) -> String {
    format!("cancel.{job}")
}
