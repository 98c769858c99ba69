//! The JetStream buckets and streams every process of a deployment shares. Each is made by the
//! first process that needs it and found by the others; settings that only take effect when a
//! bucket or stream is made (the queue's redelivery time) are the first process's.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, kv, object_store, stream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use accessgov_server::audit::AuditRecord;
use accessgov_server::model::JobItem;

use crate::error::ClusterError;
use crate::records::{items_key, spec_object};
use accessgov_server::jobs::JobSpec;
use tokio::io::AsyncReadExt;

/// Tenants (a server's `TenantSpec`, secrets by reference only), by tenant id.
pub const TENANTS: &str = "accessgov_tenants";
/// Connectors (components), by name.
pub const CONNECTORS: &str = "accessgov_connectors";
/// Job records, by job id; `items.<job>.<first>` holds a batch's reported items of one call,
/// `cancel.<job>` asks a batch to stop.
pub const JOBS: &str = "accessgov_jobs";
/// Write leases, by tenant id.
pub const LEASES: &str = "accessgov_leases";
/// Results of calls and syncs, by job id.
pub const RESULTS: &str = "accessgov_results";
/// The audit records of the jobs workers run (the same records a server's audit log holds for
/// the jobs it runs itself), kept until the operator's retention removes them.
pub const AUDIT_STREAM: &str = "ACCESSGOV_AUDIT";
/// Its subject.
pub const AUDIT_SUBJECT: &str = "accessgov.audit";
/// The work queue.
pub const WORK_STREAM: &str = "ACCESSGOV_WORK";
/// Its subject.
pub const WORK_SUBJECT: &str = "accessgov.work";
/// The subject on which a job's end is announced, `accessgov.done.<job>`: a server waiting for
/// it learns at once, without watching the record.
pub fn done_subject(job: &str) -> String {
    format!("accessgov.done.{job}")
}
/// The durable consumer every worker pulls from.
pub const WORKERS: &str = "workers";

/// How a deployment's queue behaves.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// How long a job may go without a sign of life from its worker (a worker sends one every
    /// third of it) before it is given to another.
    pub ack_wait: Duration,
    /// How long a write lease lasts without its holder's heartbeat (sent every third of it).
    pub lease_ttl: Duration,
    /// How long job records and results are kept.
    pub keep_results: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            ack_wait: Duration::from_secs(30),
            lease_ttl: Duration::from_secs(15),
            keep_results: Duration::from_secs(24 * 3600),
        }
    }
}

/// A process's handles on the shared buckets and the work queue.
pub struct Store {
    /// The NATS connection.
    pub client: async_nats::Client,
    /// JetStream over it.
    pub jetstream: jetstream::Context,
    /// Tenants.
    pub tenants: kv::Store,
    /// Connectors.
    pub connectors: object_store::ObjectStore,
    /// Job records.
    pub jobs: kv::Store,
    /// Write leases.
    pub leases: kv::Store,
    /// Results.
    pub results: object_store::ObjectStore,
    /// The work queue.
    pub work: stream::Stream,
    /// The settings.
    pub settings: ClusterSettings,
}

impl Store {
    /// Connects to NATS at `url` and opens (making them if need be) the shared buckets and
    /// the work queue.
    pub async fn open(url: &str, settings: ClusterSettings) -> Result<Store, ClusterError> {
        let client =
            async_nats::ConnectOptions::new().name("accessgov").connect(url).await.map_err(
                |e| ClusterError::Connect { url: url.to_string(), message: e.to_string() },
            )?;
        let js = jetstream::new(client.clone());
        let keep = settings.keep_results;
        let tenants = key_value(&js, TENANTS, Duration::ZERO).await?;
        let jobs = key_value(&js, JOBS, keep).await?;
        let leases = key_value(&js, LEASES, Duration::ZERO).await?;
        let connectors =
            objects(&js, object_store::Config { bucket: CONNECTORS.into(), ..Default::default() })
                .await?;
        let results = objects(
            &js,
            object_store::Config { bucket: RESULTS.into(), max_age: keep, ..Default::default() },
        )
        .await?;
        let work = js
            .get_or_create_stream(stream::Config {
                name: WORK_STREAM.into(),
                subjects: vec![WORK_SUBJECT.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::jetstream("opening the work queue", e))?;
        js.get_or_create_stream(stream::Config {
            name: AUDIT_STREAM.into(),
            subjects: vec![AUDIT_SUBJECT.into()],
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::jetstream("opening the audit stream", e))?;
        Ok(Store {
            client,
            jetstream: js,
            tenants,
            connectors,
            jobs,
            leases,
            results,
            work,
            settings,
        })
    }

    /// The consumer every worker pulls jobs from.
    pub async fn consumer(&self) -> Result<PullConsumer, ClusterError> {
        self.work
            .get_or_create_consumer(
                WORKERS,
                pull::Config {
                    durable_name: Some(WORKERS.into()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
                    // A job is given out until it is done: a worker that cannot run it hands it
                    // back, and its record says how far it got.
                    max_deliver: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ClusterError::jetstream("opening the workers' consumer", e))
    }

    /// Appends `record` to the audit stream, and returns once JetStream has stored it.
    pub async fn audit(&self, record: &AuditRecord) -> Result<(), ClusterError> {
        let bytes =
            serde_json::to_vec(record).map_err(|e| ClusterError::record("an audit record", e))?;
        self.jetstream
            .publish(AUDIT_SUBJECT, bytes.into())
            .await
            .map_err(|e| ClusterError::jetstream("writing an audit record", e))?
            .await
            .map_err(|e| ClusterError::jetstream("writing an audit record", e))?;
        Ok(())
    }

    /// The last `limit` records of the audit stream that `keep` accepts, oldest first, read
    /// from the newest back.
    pub async fn audit_records(
        &self,
        limit: usize,
        keep: &(dyn Fn(&AuditRecord) -> bool + Send + Sync),
    ) -> Result<Vec<AuditRecord>, ClusterError> {
        let what = "reading the audit stream";
        let mut stream = self
            .jetstream
            .get_stream(AUDIT_STREAM)
            .await
            .map_err(|e| ClusterError::jetstream(what, e))?;
        let state =
            stream.info().await.map_err(|e| ClusterError::jetstream(what, e))?.state.clone();
        let mut records = Vec::new();
        let mut sequence = state.last_sequence;
        while sequence >= state.first_sequence.max(1) && records.len() < limit {
            match stream.get_raw_message(sequence).await {
                Ok(message) => {
                    if let Ok(record) = serde_json::from_slice::<AuditRecord>(&message.payload)
                        && keep(&record)
                    {
                        records.push(record);
                    }
                }
                // Removed by the stream's retention meanwhile.
                Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(ClusterError::jetstream(what, e)),
            }
            sequence -= 1;
        }
        records.reverse();
        Ok(records)
    }

    /// The changes of batch `job`, as its server stored them; `None` when they are gone
    /// (kept no longer than the results).
    pub async fn batch_spec(&self, job: &str) -> Result<Option<JobSpec>, ClusterError> {
        let what = format!("reading the changes of {job}");
        let mut object = match self.results.get(spec_object(job).as_str()).await {
            Ok(object) => object,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ClusterError::jetstream(&what, e)),
        };
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await.map_err(|e| ClusterError::jetstream(&what, e))?;
        let spec = serde_json::from_slice(&bytes)
            .map_err(|e| ClusterError::record(format!("changes of {job}"), e))?;
        Ok(Some(spec))
    }

    /// The stored items of batch `job`, in the groups `firsts` names, in order.
    pub async fn job_items(
        &self,
        job: &str,
        firsts: &[usize],
    ) -> Result<Vec<JobItem>, ClusterError> {
        let mut items: Vec<JobItem> = Vec::new();
        for first in firsts {
            if let Some((group, _)) =
                Self::read::<Vec<JobItem>>(&self.jobs, &items_key(job, *first)).await?
            {
                items.extend(group);
            }
        }
        items.sort_by_key(|i| i.index);
        Ok(items)
    }

    /// The JSON value at `key` of `bucket`, with its revision.
    pub async fn read<T: DeserializeOwned>(
        bucket: &kv::Store,
        key: &str,
    ) -> Result<Option<(T, u64)>, ClusterError> {
        let entry = bucket
            .entry(key)
            .await
            .map_err(|e| ClusterError::jetstream(format!("reading {key}"), e))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let value = serde_json::from_slice(&entry.value)
                    .map_err(|e| ClusterError::record(key, e))?;
                Ok(Some((value, entry.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Changes the JSON value at `key` of `bucket` by `change`, again on a concurrent change,
    /// and returns it as written; `None` when there is no such key.
    pub async fn modify<T: Serialize + DeserializeOwned>(
        bucket: &kv::Store,
        key: &str,
        mut change: impl FnMut(&mut T),
    ) -> Result<Option<T>, ClusterError> {
        loop {
            let Some((mut value, revision)) = Self::read::<T>(bucket, key).await? else {
                return Ok(None);
            };
            change(&mut value);
            let bytes = serde_json::to_vec(&value).map_err(|e| ClusterError::record(key, e))?;
            match bucket.update(key, bytes.into(), revision).await {
                Ok(_) => return Ok(Some(value)),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(ClusterError::jetstream(format!("updating {key}"), e)),
            }
        }
    }
}

/// The bucket `bucket`, made if need be. Its stream is made here as async-nats would make it,
/// because `create_key_value` first reads the account's JetStream info, whose shape changed
/// after NATS 2.9 (Debian's): async-nats cannot read 2.9's.
async fn key_value(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
) -> Result<kv::Store, ClusterError> {
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        max_message_size: -1,
        max_bytes: -1,
        max_messages: -1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| ClusterError::jetstream(format!("making bucket {bucket}"), e))?;
    js.get_key_value(bucket)
        .await
        .map_err(|e| ClusterError::jetstream(format!("opening bucket {bucket}"), e))
}

async fn objects(
    js: &jetstream::Context,
    config: object_store::Config,
) -> Result<object_store::ObjectStore, ClusterError> {
    let bucket = config.bucket.clone();
    match js.get_object_store(&bucket).await {
        Ok(store) => Ok(store),
        Err(_) => match js.create_object_store(config).await {
            Ok(store) => Ok(store),
            // Another process made it first.
            Err(made) => js.get_object_store(&bucket).await.map_err(|e| {
                ClusterError::jetstream(
                    format!("making object store {bucket}"),
                    format!("{made}; then {e}"),
                )
            }),
        },
    }
}
