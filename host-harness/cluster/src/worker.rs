//! The worker's side of the queue (`harness worker --nats URL`): it takes jobs, runs them in its
//! sandbox exactly as a local host does, stores their results and progress in the job's record,
//! and acknowledges a job only once its result is stored. A job whose worker dies is given to
//! another, which resumes a batch from its first unreported item; the connectors' read-back
//! before writing means a change the first attempt already made is found in state, not made
//! twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use accessgov_host::Host;
use accessgov_host::batch::{self, BatchEvent, BatchOptions, ItemOutcome};
use accessgov_host::types as contract;
use accessgov_server::audit::AuditRecord;
use accessgov_server::dispatch::{Answer, Operation, WireError, execute, sync_pages};
use accessgov_server::jobs::JobSpec;
use accessgov_server::metrics::Metrics;
use accessgov_server::model::{ItemChange, JobAttempt, JobItem, JobState};
use async_nats::jetstream::{self, AckKind};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::ClusterError;
use crate::lease::Lease;
use crate::mirror::Mirror;
use crate::records::{JobRecord, Progress, Work, cancel_key, items_key};
use crate::store::{Store, done_subject};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its name, in job records and logs.
    pub name: String,
    /// Jobs it runs at once.
    pub concurrency: usize,
    /// How long a shutdown waits for running jobs before leaving them to be given out again.
    pub drain: Duration,
    /// How long a job waits for this worker to receive the tenant or connector it was stamped
    /// with.
    pub catch_up: Duration,
}

/// How a worker's shutdown went.
#[derive(Debug, Clone, Default)]
pub struct DrainReport {
    /// Jobs running when it began.
    pub running_at_start: usize,
    /// Jobs still running when the drain's bound passed: they are given out again once the
    /// queue hears nothing more of them.
    pub left: Vec<String>,
}

/// A worker.
pub struct Worker {
    options: WorkerOptions,
    store: Arc<Store>,
    host: Arc<Host>,
    metrics: Metrics,
    draining: AtomicBool,
    mirror_failed: Mutex<Option<String>>,
    running: Mutex<HashMap<String, String>>,
    mirror: Arc<Mirror>,
}

/// How a job's turn on this worker ended.
enum Turn {
    /// Its result is stored (or there was nothing to do).
    Done,
    /// It stopped part-way (drain, a lost lease) and goes back to the queue.
    HandBack,
}

impl Worker {
    /// A worker over `store` running jobs on `host`; it starts following the shared connectors
    /// and tenants at once.
    pub fn start(store: Arc<Store>, host: Arc<Host>, options: WorkerOptions) -> Arc<Worker> {
        let mirror = Mirror::new(host.clone());
        let worker = Arc::new(Worker {
            options,
            store: store.clone(),
            host,
            metrics: Metrics::default(),
            draining: AtomicBool::new(false),
            mirror_failed: Mutex::new(None),
            running: Mutex::new(HashMap::new()),
            mirror: mirror.clone(),
        });
        let w = worker.clone();
        tokio::spawn(async move {
            if let Err(e) = mirror.follow(store).await {
                tracing::error!("following the shared connectors and tenants stopped: {e}");
                *w.mirror_failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }
        });
        worker
    }

    /// Health, readiness and metrics, as the server has them.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(ready))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }

    /// Takes and runs jobs until `shutdown` completes, then drains: no job is taken after it,
    /// calls and syncs under way finish, batches stop after their call under way and go back to
    /// the queue, all within the drain's bound.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<DrainReport, ClusterError> {
        let consumer = self.store.consumer().await?;
        let permits = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        'taking: loop {
            while tasks.try_join_next().is_some() {}
            let free = permits.available_permits();
            if free == 0 {
                tokio::select! {
                    () = &mut shutdown => break 'taking,
                    _ = tasks.join_next() => continue,
                }
            }
            let fetched =
                consumer.fetch().max_messages(free).expires(Duration::from_secs(1)).messages();
            let mut batch = tokio::select! {
                () = &mut shutdown => break 'taking,
                batch = fetched => match batch {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::warn!("fetching jobs: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                },
            };
            loop {
                let next = tokio::select! {
                    () = &mut shutdown => break 'taking,
                    next = batch.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            break 'taking;
                        };
                        let worker = self.clone();
                        tasks.spawn(async move {
                            worker.handle(message).await;
                            drop(permit);
                        });
                    }
                    Some(Err(e)) => {
                        tracing::warn!("fetching jobs: {e}");
                        break;
                    }
                    None => break,
                }
            }
        }
        self.draining.store(true, Ordering::SeqCst);
        let running_at_start = tasks.len();
        let drained = tokio::time::timeout(self.options.drain, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        let left = if drained.is_err() {
            tasks.abort_all();
            self.running.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
        } else {
            Vec::new()
        };
        Ok(DrainReport { running_at_start, left })
    }

    /// Runs the job of `message`, then acknowledges it, or hands it back.
    async fn handle(self: Arc<Self>, message: jetstream::Message) {
        let message = Arc::new(message);
        let id = String::from_utf8_lossy(&message.payload).into_owned();
        // A sign of life a few times per redelivery period, so a long job is not given out again.
        let alive = {
            let message = message.clone();
            let every = self.store.settings.ack_wait / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = message.ack_with(AckKind::Progress).await {
                        tracing::warn!("telling the queue a job is alive: {e}");
                    }
                }
            })
        };
        self.running_set(&id, Some(format!("job {id}")));
        let turn = self.run_job(&id, &message).await;
        alive.abort();
        self.running_set(&id, None);
        let acked = match turn {
            Ok(Turn::Done) => message.double_ack().await,
            Ok(Turn::HandBack) => message.ack_with(AckKind::Nak(None)).await,
            Err(e) => {
                tracing::error!(job = id.as_str(), "{e}; the job goes back to the queue");
                message.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await
            }
        };
        if let Err(e) = acked {
            tracing::warn!(
                job = id.as_str(),
                "answering the queue: {e}; it gives the job out again, and its record says what was done"
            );
        }
    }

    fn running_set(&self, id: &str, what: Option<String>) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match what {
            Some(what) => running.insert(id.to_string(), what),
            None => running.remove(id),
        };
    }

    async fn run_job(
        &self,
        id: &str,
        message: &Arc<jetstream::Message>,
    ) -> Result<Turn, ClusterError> {
        let Some((record, _)) = Store::read::<JobRecord>(&self.store.jobs, id).await? else {
            tracing::warn!(job = id, "no record of this job (expired?); dropped");
            return Ok(Turn::Done);
        };
        if record.progress == Progress::Done {
            return Ok(Turn::Done);
        }
        let tenant = record.work.tenant().to_string();
        if let Err(why) = self.mirror.caught_up(&tenant, &record.stamp, self.options.catch_up).await
        {
            return self.fail(id, &why).await;
        }
        let lease = if record.work.writes() {
            let lease = Lease::acquire(
                &self.store.leases,
                &tenant,
                &self.options.name,
                id,
                self.store.settings.lease_ttl,
                || {
                    let message = message.clone();
                    async move {
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                },
            )
            .await?;
            Some(lease)
        } else {
            None
        };
        let outcome = self.run_with_lease(id, lease.as_ref()).await;
        if let Some(lease) = lease {
            lease.release().await;
        }
        outcome
    }

    async fn run_with_lease(&self, id: &str, lease: Option<&Lease>) -> Result<Turn, ClusterError> {
        // Read again under the lease: an earlier holder may have gone on, or finished, while
        // this one waited for it.
        match Store::read::<JobRecord>(&self.store.jobs, id).await? {
            Some((record, _)) if record.progress != Progress::Done => {}
            _ => return Ok(Turn::Done),
        }
        let name = self.options.name.clone();
        let started = Store::modify::<JobRecord>(&self.store.jobs, id, |r| {
            r.attempts += 1;
            r.progress = Progress::Running;
            let number = r.attempts;
            if let Some(job) = &mut r.job {
                let from_item = job.reported;
                job.attempts.push(JobAttempt {
                    number,
                    worker: name.clone(),
                    from_item,
                    ended: false,
                });
            }
        })
        .await?
        .ok_or_else(|| ClusterError::record(id, "the record went away"))?;
        match started.work.clone() {
            Work::Call { tenant, operation } => self.run_call(id, &tenant, operation).await,
            Work::Sync { tenant, first } => self.run_sync(id, &tenant, first).await,
            Work::Batch { .. } => {
                let Some(spec) = self.store.batch_spec(id).await? else {
                    return self.fail(id, "the batch's changes are no longer stored").await;
                };
                let lost = lease.map(Lease::lost);
                self.run_batch(id, &spec, started, lost).await
            }
        }
    }

    /// Writes a batch's last audit record. One of many thousand changes can be larger than a
    /// NATS message: then it goes without the changes and the requests, which the records of
    /// its calls already hold, and if even that does not fit, it is logged, not retried (the
    /// job's record holds every item).
    async fn final_audit(&self, mut record: AuditRecord) {
        let limit = self.store.client.server_info().max_payload.saturating_sub(4 << 10);
        let size = |r: &AuditRecord| serde_json::to_vec(r).map_or(usize::MAX, |b| b.len());
        if size(&record) > limit {
            record.changes.clear();
            record.sent.clear();
        }
        if let Err(e) = self.store.audit(&record).await {
            let job = record.job.as_deref().unwrap_or_default();
            tracing::error!(job, "the job's last audit record was not stored: {e}");
        }
    }

    /// Ends job `id` without running it, for `why`.
    async fn fail(&self, id: &str, why: &str) -> Result<Turn, ClusterError> {
        self.finish(id, |r| {
            r.failure = Some(why.to_string());
            if let Some(job) = &mut r.job {
                job.stopped = Some(why.to_string());
                job.state = JobState::Done;
            }
        })
        .await?;
        Ok(Turn::Done)
    }

    /// Marks job `id` done after `change`.
    async fn finish(
        &self,
        id: &str,
        mut change: impl FnMut(&mut JobRecord),
    ) -> Result<(), ClusterError> {
        Store::modify::<JobRecord>(&self.store.jobs, id, |r| {
            change(r);
            r.progress = Progress::Done;
            r.sending = None;
        })
        .await?;
        // A server waiting for the job hears it now; one that misses this reads the record.
        if let Err(e) = self.store.client.publish(done_subject(id), bytes::Bytes::new()).await {
            tracing::warn!(job = id, "announcing the job's end: {e}");
        }
        Ok(())
    }

    async fn run_call(
        &self,
        id: &str,
        tenant: &str,
        operation: Operation,
    ) -> Result<Turn, ClusterError> {
        let name = operation.name();
        let answer = execute(&self.host, tenant, operation).await;
        if let Ok(answer) = &answer {
            self.count(tenant, name, answer);
        }
        let wire: Result<Answer, WireError> = answer.map_err(|e| WireError::from(&e));
        let bytes = serde_json::to_vec(&wire).map_err(|e| ClusterError::record(id, e))?;
        self.store
            .results
            .put(id, &mut bytes.as_slice())
            .await
            .map_err(|e| ClusterError::jetstream(format!("storing the result of {id}"), e))?;
        self.finish(id, |_| {}).await?;
        Ok(Turn::Done)
    }

    fn count(&self, tenant: &str, operation: &str, answer: &Answer) {
        let (error, duration_ms, egress) = answer.call_outcome();
        self.metrics.report(tenant, operation, error, duration_ms, egress);
    }

    /// Every account, page by page, written into the result store as it is read.
    async fn run_sync(
        &self,
        id: &str,
        tenant: &str,
        first: contract::PageRequest,
    ) -> Result<Turn, ClusterError> {
        let (sender, receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(2);
        let pages = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|page| (Ok::<_, std::io::Error>(page), receiver))
        });
        let mut reader = tokio_util::io::StreamReader::new(Box::pin(pages));
        let produce = sync_pages(&self.host, &self.metrics, tenant, first, || None, sender);
        let ((), stored) = tokio::join!(produce, self.store.results.put(id, &mut reader));
        stored.map_err(|e| ClusterError::jetstream(format!("storing the result of {id}"), e))?;
        self.finish(id, |_| {}).await?;
        Ok(Turn::Done)
    }

    /// The batch from its first unreported item, one call's items at a time: each call is noted
    /// before it is sent and its items stored once reported, so whoever runs the job next knows
    /// what was sent.
    async fn run_batch(
        &self,
        id: &str,
        spec: &JobSpec,
        record: JobRecord,
        lease_lost: Option<Arc<AtomicBool>>,
    ) -> Result<Turn, ClusterError> {
        let attempt = record.attempts;
        let interrupted = record.sending.clone();
        let total = spec.contract.len();
        let per_call = spec.per_call.max(1);
        let mut start = record.job.as_ref().map_or(0, |j| j.reported);
        let mut stopped: Option<String> = record.job.as_ref().and_then(|j| j.stopped.clone());
        let mut cancelled = false;
        while start < total {
            let end = (start + per_call).min(total);
            let range: Vec<usize> = (start..end).collect();
            if stopped.is_none()
                && self.store.jobs.get(cancel_key(id)).await.ok().flatten().is_some()
            {
                stopped = Some(batch::CANCELLED.to_string());
                cancelled = true;
            }
            let reported: Vec<(ItemOutcome, JobItem)> = if let Some(why) = &stopped {
                range.iter().map(|&i| not_attempted(spec, i, why, attempt)).collect()
            } else {
                if self.draining.load(Ordering::SeqCst)
                    || lease_lost.as_ref().is_some_and(|l| l.load(Ordering::SeqCst))
                {
                    self.end_attempt(id, attempt).await?;
                    return Ok(Turn::HandBack);
                }
                Store::modify::<JobRecord>(&self.store.jobs, id, |r| {
                    r.sending = Some(crate::records::Sending { attempt, items: range.clone() });
                })
                .await?;
                let changes: Vec<Vec<contract::Change>> =
                    spec.contract[start..end].iter().cloned().map(|c| vec![c]).collect();
                let options = BatchOptions {
                    dry_run: spec.dry_run,
                    max_items_per_call: Some(per_call),
                    cancel: None,
                };
                let mut reports = Vec::new();
                let mut calls = Vec::new();
                let summary =
                    batch::apply_with(&self.host, &spec.tenant, &changes, &options, |event| {
                        match event {
                            BatchEvent::Item(report) => reports.push(report),
                            BatchEvent::Call(call) => calls.push(call),
                        }
                    })
                    .await;
                // On the record before anything else is stored of it.
                for call in &calls {
                    if let Some(record) = spec.call_record(id, call, start) {
                        self.store.audit(&record).await?;
                    }
                }
                match summary {
                    Ok(summary) => stopped = summary.stopped,
                    Err(e) => stopped = Some(e.to_string()),
                }
                let mut reported: Vec<(ItemOutcome, JobItem)> = reports
                    .into_iter()
                    .map(|report| {
                        let outcome = report.outcome;
                        let mut item = JobItem::from(report);
                        item.index += start;
                        item.attempt = Some(attempt);
                        if let Some(sending) = &interrupted
                            && sending.items.contains(&item.index)
                        {
                            item.interrupted.push(sending.attempt);
                        }
                        (outcome, item)
                    })
                    .collect();
                // An item the batch could not report (the tenant went away) is not attempted.
                for &i in &range {
                    if !reported.iter().any(|(_, item)| item.index == i) {
                        let why = stopped.clone().unwrap_or_else(|| "not reported".to_string());
                        reported.push(not_attempted(spec, i, &why, attempt));
                    }
                }
                reported
            };
            let (outcomes, items): (Vec<ItemOutcome>, Vec<JobItem>) = reported.into_iter().unzip();
            self.store_items(id, start, &items).await?;
            let why = stopped.clone();
            Store::modify::<JobRecord>(&self.store.jobs, id, |r| {
                r.sending = None;
                if !r.item_groups.contains(&start) {
                    r.item_groups.push(start);
                    if let Some(job) = &mut r.job {
                        for outcome in &outcomes {
                            job.count(*outcome);
                        }
                        job.stopped = why.clone();
                    }
                }
            })
            .await?;
            start = end;
        }
        let groups = Store::read::<JobRecord>(&self.store.jobs, id)
            .await?
            .map(|(r, _)| r.item_groups)
            .unwrap_or_default();
        let items = self.store.job_items(id, &groups).await?;
        self.final_audit(spec.final_record(id, &items, stopped)).await;
        self.finish(id, |r| {
            if let Some(job) = &mut r.job {
                job.state = if cancelled { JobState::Cancelled } else { JobState::Done };
                if let Some(a) = job.attempts.iter_mut().find(|a| a.number == attempt) {
                    a.ended = true;
                }
            }
        })
        .await?;
        Ok(Turn::Done)
    }

    async fn store_items(
        &self,
        id: &str,
        first: usize,
        items: &[JobItem],
    ) -> Result<(), ClusterError> {
        let bytes = serde_json::to_vec(items).map_err(|e| ClusterError::record(id, e))?;
        self.store
            .jobs
            .put(items_key(id, first), bytes.into())
            .await
            .map_err(|e| ClusterError::jetstream(format!("storing items of {id}"), e))?;
        Ok(())
    }

    async fn end_attempt(&self, id: &str, attempt: u32) -> Result<(), ClusterError> {
        Store::modify::<JobRecord>(&self.store.jobs, id, |r| {
            r.progress = Progress::Queued;
            if let Some(job) = &mut r.job
                && let Some(a) = job.attempts.iter_mut().find(|a| a.number == attempt)
            {
                a.ended = true;
            }
        })
        .await?;
        Ok(())
    }
}

/// Item `index` of `spec`, reported not attempted because of `why`.
fn not_attempted(spec: &JobSpec, index: usize, why: &str, attempt: u32) -> (ItemOutcome, JobItem) {
    let changes = spec
        .changes
        .get(index)
        .map(|c| {
            vec![ItemChange {
                action: serde_json::to_value(c.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                entitlement: c.entitlement.clone(),
                status: "not-applied".to_string(),
                detail: format!("not attempted: {why}"),
            }]
        })
        .unwrap_or_default();
    let item = JobItem {
        index,
        outcome: ItemOutcome::NotAttempted.as_str().to_string(),
        changes,
        requests: Vec::new(),
        attempt: Some(attempt),
        interrupted: Vec::new(),
    };
    (ItemOutcome::NotAttempted, item)
}

async fn ready(State(worker): State<Arc<Worker>>) -> axum::response::Response {
    if worker.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    if let Some(why) = worker.mirror_failed.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    }
    "ready".into_response()
}

async fn metrics(State(worker): State<Arc<Worker>>) -> axum::response::Response {
    let running = worker.running.lock().unwrap_or_else(|p| p.into_inner()).len();
    let text = worker.metrics.render(running, worker.host.idle_connections());
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}
