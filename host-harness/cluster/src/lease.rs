//! One writer per tenant across every worker: a lease in the lease bucket, taken with
//! compare-and-set, kept by a heartbeat, and taken over only once it has lapsed. A holder whose
//! heartbeat fails (its lease was taken over, or NATS is gone) learns it through
//! [`Lease::lost`] and stops before its next call.
//!
//! A lease lapses when its holder's heartbeat stops for the lease's time to live, as measured
//! by the clocks of the holder and of the next taker: the deployment's clocks must agree to
//! well within that time (NTP does).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::error::ClusterError;
use crate::store::Store;

/// A lease as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held {
    /// The worker holding it.
    holder: String,
    /// The job it is held for.
    job: String,
    /// When it lapses without a heartbeat, in milliseconds since the Unix epoch.
    expires_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A tenant's write lease, held until [`Lease::release`].
pub struct Lease {
    leases: kv::Store,
    tenant: String,
    revision: Arc<std::sync::atomic::AtomicU64>,
    lost: Arc<AtomicBool>,
    heartbeat: JoinHandle<()>,
}

impl Lease {
    /// Takes `tenant`'s lease for `job` as `holder`, waiting while another holds it;
    /// `waiting` is called about once a second meanwhile (to tell the queue the job is alive).
    pub async fn acquire<F: std::future::Future<Output = ()>>(
        leases: &kv::Store,
        tenant: &str,
        holder: &str,
        job: &str,
        ttl: Duration,
        waiting: impl Fn() -> F,
    ) -> Result<Lease, ClusterError> {
        let ttl_ms = ttl.as_millis() as u64;
        let value = |expires_ms| {
            serde_json::to_vec(&Held { holder: holder.into(), job: job.into(), expires_ms })
                .map_err(|e| ClusterError::record("a lease", e))
        };
        let mut last_sign = tokio::time::Instant::now();
        loop {
            let taken = match leases.create(tenant, value(now_ms() + ttl_ms)?.into()).await {
                Ok(revision) => Some(revision),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    match Store::read::<Held>(leases, tenant).await? {
                        // Deleted between the two: try again at once.
                        None => continue,
                        Some((held, revision)) if held.expires_ms < now_ms() => {
                            tracing::warn!(
                                tenant,
                                lapsed_holder = held.holder.as_str(),
                                lapsed_job = held.job.as_str(),
                                "taking over a lapsed write lease"
                            );
                            match leases
                                .update(tenant, value(now_ms() + ttl_ms)?.into(), revision)
                                .await
                            {
                                Ok(revision) => Some(revision),
                                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                                    None
                                }
                                Err(e) => {
                                    return Err(ClusterError::jetstream(
                                        format!("taking the lease of {tenant}"),
                                        e,
                                    ));
                                }
                            }
                        }
                        Some(_) => None,
                    }
                }
                Err(e) => {
                    return Err(ClusterError::jetstream(
                        format!("taking the lease of {tenant}"),
                        e,
                    ));
                }
            };
            if let Some(revision) = taken {
                return Ok(Self::held(leases.clone(), tenant, holder, job, ttl, revision));
            }
            if last_sign.elapsed() >= Duration::from_secs(1) {
                waiting().await;
                last_sign = tokio::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn held(
        leases: kv::Store,
        tenant: &str,
        holder: &str,
        job: &str,
        ttl: Duration,
        revision: u64,
    ) -> Lease {
        let revision = Arc::new(std::sync::atomic::AtomicU64::new(revision));
        let lost = Arc::new(AtomicBool::new(false));
        let (r, l, store) = (revision.clone(), lost.clone(), leases.clone());
        let held = Held { holder: holder.into(), job: job.into(), expires_ms: 0 };
        let key = tenant.to_string();
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                let value = Held { expires_ms: now_ms() + ttl.as_millis() as u64, ..held.clone() };
                let Ok(bytes) = serde_json::to_vec(&value) else { break };
                match store.update(&key, bytes.into(), r.load(Ordering::SeqCst)).await {
                    Ok(next) => r.store(next, Ordering::SeqCst),
                    Err(e) => {
                        tracing::error!(tenant = key.as_str(), "write lease lost: {e}");
                        l.store(true, Ordering::SeqCst);
                        break;
                    }
                }
            }
        });
        Lease { leases, tenant: tenant.to_string(), revision, lost, heartbeat }
    }

    /// Set once the lease is no longer surely held: the holder must not start another write.
    pub fn lost(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Gives the lease up (unless it was lost, and so is another's now).
    pub async fn release(self) {
        self.heartbeat.abort();
        let _ = self.heartbeat.await;
        if self.lost.load(Ordering::SeqCst) {
            return;
        }
        let revision = self.revision.load(Ordering::SeqCst);
        if let Err(e) = self.leases.delete_expect_revision(&self.tenant, Some(revision)).await {
            tracing::warn!(
                tenant = self.tenant.as_str(),
                "releasing the write lease: {e}; it lapses on its own"
            );
        }
    }
}
