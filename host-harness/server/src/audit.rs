//! The audit log: one JSON line per write the server runs or plans — who (the API key), which
//! tenant, which changes, dry run or not, and the outcome with the requests the host saw go
//! out — appended and flushed before the answer is sent. Secrets never appear: requests are
//! logged by method, path and status.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::BatchChange;

/// A write request as the host saw it go out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SentRequest {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Status answered; none when no answer came.
    pub status: Option<u16>,
}

impl From<&accessgov_host::egress::EgressRecord> for SentRequest {
    fn from(record: &accessgov_host::egress::EgressRecord) -> Self {
        SentRequest {
            method: record.method.clone(),
            path: record.path.clone(),
            status: record.status,
        }
    }
}

impl From<&crate::model::ItemWrite> for SentRequest {
    fn from(write: &crate::model::ItemWrite) -> Self {
        SentRequest { method: write.method.clone(), path: write.path.clone(), status: write.status }
    }
}

/// One record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    path: std::path::PathBuf,
}

impl AuditLog {
    /// Opens `path` for appending, creating it.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog { file: Mutex::new(file), path: path.to_path_buf() })
    }

    /// The last `limit` records that `keep` accepts, oldest first, read from the file a line at
    /// a time (a record that does not parse is skipped: the file is append-only, and a line
    /// being written is incomplete).
    pub fn read_last(
        &self,
        limit: usize,
        keep: impl Fn(&AuditRecord) -> bool,
    ) -> std::io::Result<Vec<AuditRecord>> {
        use std::io::BufRead;
        let _held = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let reader = std::io::BufReader::new(File::open(&self.path)?);
        let mut last = std::collections::VecDeque::with_capacity(limit.min(1024));
        for line in reader.lines() {
            let Ok(record) = serde_json::from_str::<AuditRecord>(&line?) else { continue };
            if keep(&record) {
                if last.len() == limit {
                    last.pop_front();
                }
                last.push_back(record);
            }
        }
        Ok(last.into())
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
