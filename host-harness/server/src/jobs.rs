//! Batch jobs: a batch of any size run in calls of a bounded number of changes, with its
//! progress readable while it runs and a cancellation that takes effect between calls. Every
//! writing call's requests go to the audit log as soon as the call ends, and the job's final
//! record lists what became of every change, so a cancelled job, or a client that went away,
//! still leaves the record of what was sent and what was not.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use accessgov_host::Host;
use accessgov_host::batch::{self, BatchEvent, BatchOptions, CallPurpose, CallRecord};
use accessgov_host::types::Change;

use crate::audit::{AuditLog, AuditRecord, SentRequest};
use crate::model::{BatchChange, Job, JobItem, JobState};

struct Entry {
    job: Job,
    items: Vec<JobItem>,
    cancel: Arc<AtomicBool>,
    /// The key that started it.
    key: String,
}

/// The jobs of this server, kept for its lifetime.
#[derive(Default)]
pub struct Jobs {
    entries: Mutex<HashMap<String, Entry>>,
    next: AtomicU64,
}

/// The id of the job that key `key_id` starts for `tenant` with `Idempotency-Key`
/// `idempotency_key`: the same three always name the same job, so sending it again starts
/// nothing new.
pub fn job_id_for(key_id: &str, tenant: &str, idempotency_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in [key_id, tenant, idempotency_key] {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("job-{hex}")
}

/// What a job runs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobSpec {
    /// Its id, when its starter named it (`Idempotency-Key`); otherwise one is given.
    pub id: Option<String>,
    /// The tenant.
    pub tenant: String,
    /// The key starting it.
    pub key: String,
    /// The changes, each an item of its own.
    pub changes: Vec<BatchChange>,
    /// Their contract form, in the same order.
    pub contract: Vec<Change>,
    /// Only plan.
    pub dry_run: bool,
    /// Changes per call.
    pub per_call: usize,
}

impl JobSpec {
    /// The audit record of a call of job `id` that carried writes, or may have (none for a
    /// call that only read); `first` is the job's index of the call's first item.
    pub fn call_record(&self, id: &str, call: &CallRecord, first: usize) -> Option<AuditRecord> {
        if call.purpose != CallPurpose::Apply && call.writes.is_empty() {
            return None;
        }
        let mut record = self.audit_record(id, "job-call");
        record.changes =
            call.items.iter().filter_map(|&i| self.changes.get(first + i).cloned()).collect();
        record.sent = call.writes.iter().map(SentRequest::from).collect();
        record.calls = vec![call.call_id];
        record.error = call.error.clone();
        Some(record)
    }

    /// The last audit record of job `id`: every change, what became of it, every write sent.
    pub fn final_record(
        &self,
        id: &str,
        items: &[JobItem],
        stopped: Option<String>,
    ) -> AuditRecord {
        let mut record = self.audit_record(id, "job");
        record.changes = self.changes.clone();
        record.outcomes = items.iter().map(|i| i.outcome.clone()).collect();
        record.sent = items
            .iter()
            .flat_map(|i| &i.requests)
            .filter(|r| r.status.is_some() || !self.dry_run)
            .map(SentRequest::from)
            .collect();
        record.error = stopped;
        record
    }

    fn audit_record(&self, id: &str, operation: &str) -> AuditRecord {
        let mut record = AuditRecord::new(&self.key, &self.tenant, operation, self.dry_run);
        record.job = Some(id.to_string());
        record
    }
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `spec` on `host` in a task of its own, returning the job as it starts; a job of
    /// the same id is returned as it stands, and nothing new starts.
    pub fn start(self: &Arc<Self>, host: Arc<Host>, audit: Arc<AuditLog>, spec: JobSpec) -> Job {
        let id = match &spec.id {
            Some(id) => id.clone(),
            None => format!("job-{}", self.next.fetch_add(1, Ordering::SeqCst) + 1),
        };
        if let Some(existing) = self.get(&id, false) {
            return existing;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let job = Job::new(&id, &spec);
        self.lock().insert(
            id.clone(),
            Entry {
                job: job.clone(),
                items: Vec::new(),
                cancel: cancel.clone(),
                key: spec.key.clone(),
            },
        );
        let jobs = self.clone();
        tokio::spawn(async move { jobs.run(host, audit, id, spec, cancel).await });
        job
    }

    async fn run(
        &self,
        host: Arc<Host>,
        audit: Arc<AuditLog>,
        id: String,
        spec: JobSpec,
        cancel: Arc<AtomicBool>,
    ) {
        let items: Vec<Vec<Change>> = spec.contract.iter().cloned().map(|c| vec![c]).collect();
        let options = BatchOptions {
            dry_run: spec.dry_run,
            max_items_per_call: Some(spec.per_call),
            cancel: Some(cancel.clone()),
        };
        let outcome =
            batch::apply_with(&host, &spec.tenant, &items, &options, |event| match event {
                BatchEvent::Call(call) => {
                    if let Some(entry) = spec.call_record(&id, &call, 0)
                        && let Err(e) = audit.write(&entry)
                    {
                        tracing::error!("audit log: {e}");
                    }
                }
                BatchEvent::Item(report) => {
                    let mut entries = self.lock();
                    if let Some(entry) = entries.get_mut(&id) {
                        entry.job.count(report.outcome);
                        entry.items.push(JobItem::from(report));
                    }
                }
            })
            .await;
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(&id) else { return };
        entry.items.sort_by_key(|i| i.index);
        let stopped = match outcome {
            Ok(summary) => {
                entry.job.state = if cancel.load(Ordering::SeqCst) && summary.stopped.is_some() {
                    JobState::Cancelled
                } else {
                    JobState::Done
                };
                summary.stopped
            }
            Err(error) => {
                entry.job.state = JobState::Done;
                Some(error.to_string())
            }
        };
        entry.job.stopped = stopped.clone();
        let last = spec.final_record(&id, &entry.items, stopped);
        if let Err(e) = audit.write(&last) {
            tracing::error!("audit log: {e}");
        }
    }

    /// The job `id`, with its items when `with_items`; its tenant is returned for the caller to
    /// check the key's scope.
    pub fn get(&self, id: &str, with_items: bool) -> Option<Job> {
        let entries = self.lock();
        let entry = entries.get(id)?;
        let mut job = entry.job.clone();
        if with_items {
            let mut items = entry.items.clone();
            items.sort_by_key(|i| i.index);
            job.items = Some(items);
        }
        Some(job)
    }

    /// Jobs still running.
    pub fn running(&self) -> usize {
        self.lock().values().filter(|e| e.job.state == JobState::Running).count()
    }

    /// The running jobs, each described for a shutdown report.
    pub fn running_described(&self) -> Vec<String> {
        self.lock()
            .values()
            .filter(|e| e.job.state == JobState::Running)
            .map(|e| {
                format!(
                    "job {} of tenant {} ({} of {} changes reported)",
                    e.job.id, e.job.tenant, e.job.reported, e.job.total
                )
            })
            .collect()
    }

    /// Asks every running job to stop after its call under way (on shutdown).
    pub fn cancel_all(&self) {
        for entry in self.lock().values().filter(|e| e.job.state == JobState::Running) {
            entry.cancel.store(true, Ordering::SeqCst);
        }
    }

    /// Asks job `id` to stop; the key that asks is recorded in the log.
    pub fn cancel(&self, id: &str, key: &str) -> Option<Job> {
        let entries = self.lock();
        let entry = entries.get(id)?;
        entry.cancel.store(true, Ordering::SeqCst);
        tracing::info!(job = id, key, started_by = entry.key.as_str(), "job cancellation asked");
        Some(entry.job.clone())
    }
}
