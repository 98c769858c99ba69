//! Each process's copy of the shared connectors and tenants: it watches both stores and applies
//! every change to its host, without a restart, checked as the host checks anything it is
//! given. It also knows how far it has caught up, so a worker given a job stamped with the
//! server's view waits until its own view is at least as new.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use accessgov_host::Host;
use accessgov_host::error::HostError;
use accessgov_server::model::TenantSpec;
use accessgov_server::routes::tenant_config;
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::error::ClusterError;
use crate::records::Stamp;
use crate::store::Store;

/// What the process has applied.
#[derive(Default)]
struct View {
    /// Tenant id: the revision applied, and its connector.
    tenants: HashMap<String, (u64, String)>,
    /// Connector name: the id of the component applied.
    connectors: HashMap<String, String>,
    /// Every component id applied (a job stamped with an older one may run on a newer one).
    seen_components: HashSet<String>,
    /// Tenants waiting for their connector: id to spec and revision.
    waiting: BTreeMap<String, (TenantSpec, u64)>,
    /// Tenants the host refused, by id, with why; a job for them fails with it at once.
    refused: HashMap<String, (u64, String)>,
}

/// A process's copy of the shared connectors and tenants.
pub struct Mirror {
    host: Arc<Host>,
    view: Mutex<View>,
    changed: watch::Sender<u64>,
}

impl Mirror {
    /// A mirror applying changes to `host`.
    pub fn new(host: Arc<Host>) -> Arc<Self> {
        Arc::new(Mirror { host, view: Mutex::new(View::default()), changed: watch::channel(0).0 })
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// Follows both stores for ever: everything they hold first, then every change.
    pub async fn follow(self: Arc<Self>, store: Arc<Store>) -> Result<(), ClusterError> {
        let mut components = store
            .connectors
            .watch_with_history()
            .await
            .map_err(|e| ClusterError::jetstream("watching the connectors", e))?;
        let mut tenants = store
            .tenants
            .watch_with_history(">")
            .await
            .map_err(|e| ClusterError::jetstream("watching the tenants", e))?;
        loop {
            tokio::select! {
                info = components.next() => match info {
                    Some(Ok(info)) => self.apply_component(&store, info).await,
                    Some(Err(e)) => return Err(ClusterError::jetstream("watching the connectors", e)),
                    None => return Err(ClusterError::jetstream("watching the connectors", "the watch ended")),
                },
                entry = tenants.next() => match entry {
                    Some(Ok(entry)) => self.apply_tenant(entry).await,
                    Some(Err(e)) => return Err(ClusterError::jetstream("watching the tenants", e)),
                    None => return Err(ClusterError::jetstream("watching the tenants", "the watch ended")),
                },
            }
        }
    }

    async fn apply_component(
        &self,
        store: &Store,
        info: async_nats::jetstream::object_store::ObjectInfo,
    ) {
        let name = info.name.clone();
        if info.deleted {
            match self.host.remove_connector(&name) {
                Ok(_) => {
                    self.view().connectors.remove(&name);
                }
                Err(e) => tracing::warn!(connector = name.as_str(), "kept: {e}"),
            }
            self.bump();
            return;
        }
        let bytes = match read_component(store, &name).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(connector = name.as_str(), "could not be read: {e}");
                return;
            }
        };
        let host = self.host.clone();
        let n = name.clone();
        let added = tokio::task::spawn_blocking(move || host.add_connector(&n, &bytes)).await;
        match added {
            Ok(Ok(_)) => {
                let mut view = self.view();
                view.connectors.insert(name.clone(), info.nuid.clone());
                view.seen_components.insert(info.nuid);
            }
            Ok(Err(e)) => tracing::error!(connector = name.as_str(), "refused: {e}"),
            Err(e) => tracing::error!(connector = name.as_str(), "compiling failed: {e}"),
        }
        let waiting: Vec<(String, (TenantSpec, u64))> = {
            let mut view = self.view();
            let ids: Vec<String> = view
                .waiting
                .iter()
                .filter(|(_, (spec, _))| spec.connector == name)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter().filter_map(|id| view.waiting.remove(&id).map(|w| (id, w))).collect()
        };
        for (id, (spec, revision)) in waiting {
            self.register(&id, spec, revision).await;
        }
        self.bump();
    }

    async fn apply_tenant(&self, entry: kv::Entry) {
        let id = entry.key.clone();
        if entry.operation != kv::Operation::Put {
            self.host.remove_tenant(&id);
            let mut view = self.view();
            view.tenants.remove(&id);
            view.waiting.remove(&id);
            view.refused.remove(&id);
            drop(view);
            self.bump();
            return;
        }
        match serde_json::from_slice::<TenantSpec>(&entry.value) {
            Ok(spec) => self.register(&id, spec, entry.revision).await,
            Err(e) => {
                let why = format!("its stored record is not a tenant: {e}");
                tracing::error!(tenant = id.as_str(), "{why}");
                self.view().refused.insert(id, (entry.revision, why));
            }
        }
        self.bump();
    }

    /// Registers tenant `id` of `spec` at `revision`, or keeps it waiting for its connector.
    async fn register(&self, id: &str, spec: TenantSpec, revision: u64) {
        let connector = spec.connector.clone();
        let config = match tenant_config(id, spec.clone()) {
            Ok(config) => config,
            Err(e) => {
                self.view().refused.insert(id.to_string(), (revision, e.body.message));
                return;
            }
        };
        match self.host.add_tenant_checked(&config, Path::new(".")).await {
            Ok(()) => {
                let mut view = self.view();
                view.tenants.insert(id.to_string(), (revision, connector));
                view.refused.remove(id);
            }
            Err(HostError::UnknownConnector { .. }) => {
                self.view().waiting.insert(id.to_string(), (spec, revision));
            }
            Err(e) => {
                tracing::error!(tenant = id, "refused: {e}");
                self.view().refused.insert(id.to_string(), (revision, e.to_string()));
            }
        }
    }

    /// What a job for `tenant` must run against: this process's view of it.
    pub fn stamp(&self, tenant: &str) -> Stamp {
        let view = self.view();
        let Some((revision, connector)) = view.tenants.get(tenant) else {
            return Stamp::default();
        };
        Stamp {
            tenant_revision: *revision,
            connector: view.connectors.get(connector).map(|id| (connector.clone(), id.clone())),
        }
    }

    /// Notes a tenant this process stored itself (its own watch brings it later).
    pub fn note_tenant(&self, id: &str, revision: u64, connector: &str) {
        let mut view = self.view();
        let newer = view.tenants.get(id).is_none_or(|(r, _)| *r < revision);
        if newer {
            view.tenants.insert(id.to_string(), (revision, connector.to_string()));
        }
    }

    /// Notes a component this process stored itself.
    pub fn note_connector(&self, name: &str, component: &str) {
        let mut view = self.view();
        view.connectors.insert(name.to_string(), component.to_string());
        view.seen_components.insert(component.to_string());
    }

    /// Waits, up to `within`, until this process has applied what `stamp` names for `tenant`.
    pub async fn caught_up(
        &self,
        tenant: &str,
        stamp: &Stamp,
        within: Duration,
    ) -> Result<(), String> {
        let mut changed = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            {
                let view = self.view();
                if let Some((revision, why)) = view.refused.get(tenant)
                    && *revision >= stamp.tenant_revision
                {
                    return Err(format!("tenant {tenant} was refused by this worker: {why}"));
                }
                let tenant_ready = stamp.tenant_revision == 0
                    || view.tenants.get(tenant).is_some_and(|(r, _)| *r >= stamp.tenant_revision);
                let connector_ready = stamp
                    .connector
                    .as_ref()
                    .is_none_or(|(_, component)| view.seen_components.contains(component));
                if tenant_ready && connector_ready {
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                return Err(format!(
                    "this worker has not received tenant {tenant} (revision {}) or its connector \
                     within {within:?}",
                    stamp.tenant_revision
                ));
            }
        }
    }
}

/// The component stored under `name`.
async fn read_component(store: &Store, name: &str) -> Result<Vec<u8>, ClusterError> {
    let mut object = store
        .connectors
        .get(name)
        .await
        .map_err(|e| ClusterError::jetstream(format!("reading connector {name}"), e))?;
    let mut bytes = Vec::new();
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| ClusterError::jetstream(format!("reading connector {name}"), e))?;
    Ok(bytes)
}
