//! The audit log: one JSON line per write the server runs or plans — who (the API key), which
//! tenant, which changes, dry run or not, and the outcome with the requests the host saw go
//! out — appended and flushed before the answer is sent. Secrets never appear: requests are
//! logged by method, path and status.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::model::BatchChange;

/// A write request as the host saw it go out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentRequest {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Status answered; none when no answer came.
    pub status: Option<u16>,
}

/// One record.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// Unix milliseconds.
    pub at_ms: u128,
    /// The API key's id.
    pub key: String,
    /// The tenant.
    pub tenant: String,
    /// `grant`, `revoke`, `set`, `batch`, `job`, or a management operation (`put-tenant`...).
    pub operation: String,
    /// The job, for records of a job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Whether it only planned.
    pub dry_run: bool,
    /// The changes asked for.
    pub changes: Vec<BatchChange>,
    /// Per change, what became of it (`applied`, `not-attempted`, an error...), in order.
    pub outcomes: Vec<String>,
    /// Write requests that may have reached the service.
    pub sent: Vec<SentRequest>,
    /// The host's call ids.
    pub calls: Vec<u64>,
    /// An error of the whole operation, or how it was cut off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AuditRecord {
    /// A record of `operation` by `key` for `tenant`, stamped now.
    pub fn new(key: &str, tenant: &str, operation: &str, dry_run: bool) -> Self {
        AuditRecord {
            at_ms: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()),
            key: key.to_string(),
            tenant: tenant.to_string(),
            operation: operation.to_string(),
            job: None,
            dry_run,
            changes: Vec::new(),
            outcomes: Vec::new(),
            sent: Vec::new(),
            calls: Vec::new(),
            error: None,
        }
    }
}

/// The log file.
pub struct AuditLog {
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens `path` for appending, creating it.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog { file: Mutex::new(file) })
    }

    /// Appends `record` as one line and flushes it.
    pub fn write(&self, record: &AuditRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)?;
        file.flush()
    }
}
