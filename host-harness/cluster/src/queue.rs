//! The server's side of the queue (`harness serve --nats`): each call, sync and batch becomes a
//! job record and a message on the work queue; the server waits for the record to say the
//! result is stored, and answers its client from it exactly as it would have itself.

use std::sync::Arc;
use std::time::Duration;

use accessgov_host::types as contract;
use accessgov_server::audit::AuditRecord;
use accessgov_server::dispatch::{Answer, Operation, Pending, Queue, SyncStream, WireError};
use accessgov_server::error::ApiError;
use accessgov_server::jobs::JobSpec;
use accessgov_server::model::{Job, TenantSpec};
use async_nats::jetstream::kv;
use axum::http::StatusCode;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use crate::error::ClusterError;
use crate::mirror::Mirror;
use crate::records::{JobRecord, Progress, Work, cancel_key, spec_object};
use crate::store::{Store, WORK_SUBJECT, done_subject};

/// The queue of a deployment, as its servers use it.
pub struct NatsQueue {
    store: Arc<Store>,
    mirror: Arc<Mirror>,
    wait: Duration,
}

impl NatsQueue {
    /// A queue over `store`, stamping jobs with `mirror`'s view; a call waits at most `wait`
    /// for a worker's answer.
    pub fn new(store: Arc<Store>, mirror: Arc<Mirror>, wait: Duration) -> Self {
        NatsQueue { store, mirror, wait }
    }

    /// Stores the record of job `id` running `work` (and a batch's `spec`) and queues it; a
    /// record already there (a resubmission) is returned as it stands, and nothing is queued.
    async fn submit(
        &self,
        id: &str,
        work: Work,
        spec: Option<&JobSpec>,
    ) -> Result<JobRecord, ClusterError> {
        let stamp = self.mirror.stamp(work.tenant());
        let record = JobRecord::queued(id, work, stamp, spec.map(|s| Job::new(id, s)));
        let bytes = serde_json::to_vec(&record).map_err(|e| ClusterError::record(id, e))?;
        match self.store.jobs.create(id, bytes.into()).await {
            Ok(_) => {}
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                if let Some((existing, _)) = Store::read::<JobRecord>(&self.store.jobs, id).await? {
                    return Ok(existing);
                }
            }
            Err(e) => return Err(ClusterError::jetstream(format!("recording job {id}"), e)),
        }
        // Stored before the job is queued, so whichever worker takes it finds it.
        if let Some(spec) = spec {
            let bytes = serde_json::to_vec(spec).map_err(|e| ClusterError::record(id, e))?;
            self.store
                .results
                .put(spec_object(id).as_str(), &mut bytes.as_slice())
                .await
                .map_err(|e| ClusterError::jetstream(format!("storing the changes of {id}"), e))?;
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        self.store
            .jetstream
            .publish_with_headers(WORK_SUBJECT, headers, id.to_string().into())
            .await
            .map_err(|e| ClusterError::jetstream(format!("queueing job {id}"), e))?
            .await
            .map_err(|e| ClusterError::jetstream(format!("queueing job {id}"), e))?;
        Ok(record)
    }

    /// Queues `work` as job `id` and waits for its record to say it is done: told by the
    /// worker's announcement, or, should that be lost, by reading the record every second.
    async fn run(&self, id: &str, work: Work) -> Result<JobRecord, ApiError> {
        let mut announced = self
            .store
            .client
            .subscribe(done_subject(id))
            .await
            .map_err(|e| ClusterError::jetstream(format!("waiting for job {id}"), e))?;
        self.submit(id, work, None).await?;
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            if let Some((record, _)) = Store::read::<JobRecord>(&self.store.jobs, id).await?
                && record.progress == Progress::Done
            {
                return Ok(record);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "queue",
                    format!(
                        "no worker finished job {id} within {:?}; it stays queued, and its record \
                         tells what it did",
                        self.wait
                    ),
                ));
            }
            let _ = tokio::time::timeout_at(
                (now + Duration::from_secs(1)).min(deadline),
                announced.next(),
            )
            .await;
        }
    }

    /// The stored result of job `id`.
    async fn result(
        &self,
        id: &str,
    ) -> Result<async_nats::jetstream::object_store::Object, ApiError> {
        Ok(self
            .store
            .results
            .get(id)
            .await
            .map_err(|e| ClusterError::jetstream(format!("reading the result of job {id}"), e))?)
    }

    /// A batch's record as a job, with its stored items when `with_items`.
    async fn job_of(&self, record: JobRecord, with_items: bool) -> Result<Option<Job>, ApiError> {
        let Some(mut job) = record.job else { return Ok(None) };
        if with_items {
            job.items = Some(self.store.job_items(&record.id, &record.item_groups).await?);
        }
        Ok(Some(job))
    }
}

fn failed(record: &JobRecord) -> Option<ApiError> {
    record.failure.as_ref().map(|why| ApiError::new(StatusCode::BAD_GATEWAY, "host", why.clone()))
}

impl Queue for NatsQueue {
    fn call<'a>(
        &'a self,
        tenant: &'a str,
        operation: Operation,
    ) -> Pending<'a, Result<Answer, ApiError>> {
        Box::pin(async move {
            let id = format!("call-{}", nuid::next());
            let record =
                self.run(&id, Work::Call { tenant: tenant.to_string(), operation }).await?;
            if let Some(error) = failed(&record) {
                return Err(error);
            }
            let mut bytes = Vec::new();
            self.result(&id).await?.read_to_end(&mut bytes).await.map_err(|e| {
                ClusterError::jetstream(format!("reading the result of job {id}"), e)
            })?;
            let answer: Result<Answer, WireError> = serde_json::from_slice(&bytes)
                .map_err(|e| ClusterError::record(format!("result of {id}"), e))?;
            answer.map_err(ApiError::from)
        })
    }

    fn sync<'a>(
        &'a self,
        tenant: &'a str,
        first: contract::PageRequest,
    ) -> Pending<'a, Result<SyncStream, ApiError>> {
        Box::pin(async move {
            let id = format!("sync-{}", nuid::next());
            let record = self.run(&id, Work::Sync { tenant: tenant.to_string(), first }).await?;
            if let Some(error) = failed(&record) {
                return Err(error);
            }
            let object = self.result(&id).await?;
            Ok(tokio_util::io::ReaderStream::new(object).boxed())
        })
    }

    fn start_job(&self, mut spec: JobSpec) -> Pending<'_, Result<Job, ApiError>> {
        Box::pin(async move {
            let id = spec.id.clone().unwrap_or_else(|| format!("job-{}", nuid::next()));
            spec.id = Some(id.clone());
            let work = Work::Batch { tenant: spec.tenant.clone(), dry_run: spec.dry_run };
            let record = self.submit(&id, work, Some(&spec)).await?;
            self.job_of(record, false).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("{id} names a job that is not a batch"),
                )
            })
        })
    }

    fn job<'a>(
        &'a self,
        id: &'a str,
        with_items: bool,
    ) -> Pending<'a, Result<Option<Job>, ApiError>> {
        Box::pin(async move {
            match Store::read::<JobRecord>(&self.store.jobs, id).await? {
                Some((record, _)) => self.job_of(record, with_items).await,
                None => Ok(None),
            }
        })
    }

    fn cancel_job<'a>(&'a self, id: &'a str) -> Pending<'a, Result<Option<Job>, ApiError>> {
        Box::pin(async move {
            let Some((record, _)) = Store::read::<JobRecord>(&self.store.jobs, id).await? else {
                return Ok(None);
            };
            if record.job.is_none() {
                return Ok(None);
            }
            self.store
                .jobs
                .put(cancel_key(id), "cancel".into())
                .await
                .map_err(|e| ClusterError::jetstream(format!("cancelling job {id}"), e))?;
            self.job_of(record, false).await
        })
    }

    fn share_connector<'a>(
        &'a self,
        name: &'a str,
        component: Vec<u8>,
    ) -> Pending<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let info = self
                .store
                .connectors
                .put(name, &mut component.as_slice())
                .await
                .map_err(|e| ClusterError::jetstream(format!("storing connector {name}"), e))?;
            self.mirror.note_connector(name, &info.nuid);
            Ok(())
        })
    }

    fn withdraw_connector<'a>(&'a self, name: &'a str) -> Pending<'a, Result<(), ApiError>> {
        Box::pin(async move {
            match self.store.connectors.delete(name).await {
                Ok(()) => Ok(()),
                // Built in, never stored: each worker keeps its own.
                Err(e)
                    if e.kind()
                        == async_nats::jetstream::object_store::DeleteErrorKind::NotFound =>
                {
                    Ok(())
                }
                Err(e) => {
                    Err(ClusterError::jetstream(format!("removing connector {name}"), e).into())
                }
            }
        })
    }

    fn share_tenant<'a>(
        &'a self,
        id: &'a str,
        spec: &'a TenantSpec,
    ) -> Pending<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let bytes = serde_json::to_vec(spec).map_err(|e| ClusterError::record(id, e))?;
            let revision = self
                .store
                .tenants
                .put(id, bytes.into())
                .await
                .map_err(|e| ClusterError::jetstream(format!("storing tenant {id}"), e))?;
            self.mirror.note_tenant(id, revision, &spec.connector);
            Ok(())
        })
    }

    fn audit_records<'a>(
        &'a self,
        limit: usize,
        keep: &'a (dyn Fn(&AuditRecord) -> bool + Send + Sync),
    ) -> Pending<'a, Result<Vec<AuditRecord>, ApiError>> {
        Box::pin(async move { Ok(self.store.audit_records(limit, keep).await?) })
    }

    fn withdraw_tenant<'a>(&'a self, id: &'a str) -> Pending<'a, Result<(), ApiError>> {
        Box::pin(async move {
            self.store
                .tenants
                .delete(id)
                .await
                .map_err(|e| ClusterError::jetstream(format!("removing tenant {id}"), e))?;
            Ok(())
        })
    }
}
