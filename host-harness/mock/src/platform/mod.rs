//! A mock of the OpenAI API Platform's Admin API (`../shared/openai-platform-api.md`) for one
//! organization, on the mock kit: users, invites, projects with their members and service
//! accounts, groups, roles and role assignments, with both paging styles, the service's error
//! shape, and its quirks (an invite without `projects` joins the default project, accepted
//! invites cannot be deleted, archived projects refuse membership changes, project members must
//! be organization members).
//!
//! What the reference leaves *assumed* is a switch ([`PlatformSwitches`]): reads that lag
//! writes, and throttling of the RBAC endpoints with `Retry-After`.

mod model;
mod routes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use accessgov_policy::{SettingValue, TenantConfig};
use serde::Serialize;

use crate::kit::{self, Served, Traffic};
pub use model::{
    EPOCH, OrgGroup, OrgInvite, OrgProject, OrgRole, OrgServiceAccount, OrgUser, Organization,
    PlatformSpec, generate,
};

/// Behaviours the reference leaves open, off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformSwitches {
    /// After each write, this many reads still see the organization as it was before it
    /// (eventually consistent reads).
    pub stale_reads_after_write: u32,
    /// Every this many requests to the RBAC endpoints (groups, roles) is throttled: 429 with
    /// `Retry-After: 1`.
    pub throttle_rbac_every: Option<u32>,
}

/// One write the mock applied, for tests to count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformChange {
    /// What was done: `invite`, `delete-invite`, `remove-user`, `set-role`, `add-project-user`,
    /// `set-project-role`, `remove-project-user`, `add-group-user`, `remove-group-user`,
    /// `assign-role`, `unassign-role`, `delete-service-account`, `create-project`,
    /// `archive-project`, `create-group`, `delete-group`.
    pub kind: String,
    /// Whom or what: an address, or ids joined by `/`.
    pub subject: String,
}

#[derive(Debug, Default)]
struct PlatformData {
    org: Organization,
    admin_key: String,
    switches: PlatformSwitches,
    /// The organization as reads still see it, and how many more reads see it so.
    stale: Option<(Organization, u32)>,
    rbac_requests: u64,
    changes: Vec<PlatformChange>,
}

/// The organization's state and traffic, shared with the server and the tests.
#[derive(Debug, Clone, Default)]
pub struct PlatformService {
    data: Arc<Mutex<PlatformData>>,
    traffic: Traffic,
}

impl PlatformService {
    /// A service for `org` accepting the Admin API key `admin_key`.
    pub fn new(org: Organization, admin_key: &str) -> Self {
        let service = PlatformService::default();
        {
            let mut data = service.lock();
            data.org = org;
            data.admin_key = admin_key.to_string();
        }
        service
    }

    fn lock(&self) -> MutexGuard<'_, PlatformData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its request log and fault plan.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// The organization as it is now.
    pub fn organization(&self) -> Organization {
        self.lock().org.clone()
    }

    /// Changes the organization directly, as someone in the dashboard would.
    pub fn update(&self, change: impl FnOnce(&mut Organization)) {
        change(&mut self.lock().org);
    }

    /// Every write applied, in order.
    pub fn changes(&self) -> Vec<PlatformChange> {
        self.lock().changes.clone()
    }

    /// Sets the switches.
    pub fn set_switches(&self, switches: PlatformSwitches) {
        self.lock().switches = switches;
    }
}

/// A running API Platform mock. Dropping it stops the server.
pub struct PlatformServer {
    served: Served,
    service: PlatformService,
}

impl PlatformServer {
    /// Serves `service` on a free loopback port.
    pub async fn start_local(service: PlatformService) -> std::io::Result<PlatformServer> {
        Self::start(service, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves `service` on `addr` (port 0 picks a free port).
    pub async fn start(service: PlatformService, addr: SocketAddr) -> std::io::Result<Self> {
        let served = Served::start(routes::router(service.clone()), addr).await?;
        Ok(PlatformServer { served, service })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    /// The Admin API base URL it serves, `http://<addr>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr())
    }

    /// The state it serves.
    pub fn service(&self) -> &PlatformService {
        &self.service
    }

    /// A tenant of `connector` (a name or a `.wasm` path) for this organization, holding
    /// `admin_key`: the origin allowed, the key injected, loopback allowed.
    pub fn tenant(&self, tenant_id: &str, connector: &str, admin_key: &str) -> TenantConfig {
        let settings =
            BTreeMap::from([("base-url".to_string(), SettingValue::Text(self.base_url()))]);
        kit::loopback_tenant(
            tenant_id,
            connector,
            self.addr(),
            settings,
            admin_key,
            BTreeMap::new(),
        )
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.served.stop().await;
    }
}
