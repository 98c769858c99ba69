//! The embedding API: one engine, registered connectors and tenants, sandboxed calls.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Linker, Lower,
};
use wasmtime::{Engine, Store};

use crate::bindings::types::{
    Account, AccountPage, AccountRef, Change, ChangeOptions, ChangeResult, ConnectionReport,
    ConnectorError, ConnectorInfo, EntitlementPage, PageRequest,
};
use crate::bindings::v0_1::types as v0_1;
use crate::cache::{CacheOutcome, ComponentCache};
use crate::call::{CallError, CallReport, CallState};
use crate::contract::{Adapt, ContractVersion};
use crate::egress::ConnectionPool;
use crate::engine::{EpochTicker, PoolSizing, create_engine};
use crate::error::HostError;
use crate::imports;
use crate::lift::LiftedAccountPage;
use crate::logs::LogCapture;
use crate::tenant::{Limits, Tenant, TenantConfig};

/// How to build a [`Host`].
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Directory of the compile cache; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// The most bytes of compiled components the cache directory keeps; storing a new one
    /// evicts the least recently used others beyond it.
    pub cache_max_bytes: u64,
    /// Limits for tenants that set none.
    pub default_limits: Limits,
    /// Calls running at once, across tenants; further calls wait their turn. Sizes the pool.
    pub max_concurrent_calls: usize,
    /// The most memory any tenant may be given (the size of a pool slot).
    pub max_memory_bytes: usize,
    /// Preallocate instances with the pooling allocator (on by default).
    pub pooling: bool,
    /// Idle keep-alive connections kept for reuse, across all tenants (each reused only by the
    /// tenant that opened it); beyond this the one idle longest is closed. Zero disables reuse.
    pub max_idle_connections: usize,
    /// Tell `perf` the names of the guests' compiled functions (wasmtime's perf map, written to
    /// `/tmp/perf-<pid>.map`), so a profile of the host attributes the guest's time to its
    /// functions instead of to anonymous addresses; a component from the compile cache is then
    /// read onto the heap rather than mapped, where `perf` would not look. Off by default: it
    /// is for profiling.
    pub perf_map: bool,
    /// Components that tenants may name without a path (the `harness` binary passes the ones it
    /// bundles), each compiled the first time a tenant names it. Empty by default: a platform
    /// registers its connectors itself, or names `.wasm` files.
    pub named_connectors: BTreeMap<String, NamedComponent>,
}

/// A component a host loads when a tenant first names it: its bytes, and their SHA-256 when it
/// was computed as they were built.
#[derive(Debug, Clone)]
pub struct NamedComponent {
    /// The component's bytes.
    pub bytes: bytes::Bytes,
    /// The SHA-256 of `bytes`. With it, a component found in the compile cache is loaded without
    /// reading `bytes` at all (a component embedded in a binary is then never paged in); without
    /// it, they are hashed on first load. The cache trusts it: the digest of other bytes would
    /// load another component's compiled code.
    pub sha256: Option<[u8; 32]>,
}

impl NamedComponent {
    /// A component whose bytes are hashed when it is first loaded.
    pub fn new(bytes: bytes::Bytes) -> Self {
        NamedComponent { bytes, sha256: None }
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            cache_dir: None,
            cache_max_bytes: crate::cache::DEFAULT_MAX_BYTES,
            default_limits: Limits::default(),
            max_concurrent_calls: 32,
            max_memory_bytes: 256 << 20,
            pooling: true,
            max_idle_connections: 64,
            perf_map: false,
            named_connectors: BTreeMap::new(),
        }
    }
}

/// A loaded connector, ready to instantiate: its imports resolved against the sandbox's linker
/// once, and where each of the contract's functions is among its exports.
struct LoadedConnector {
    pre: InstancePre<CallState>,
    exports: Exports,
    /// The largest initial size of its memories, in bytes: a tenant capped below it could run no
    /// call. Zero when it cannot be known before instantiation (a component importing modules).
    initial_memory_bytes: u64,
}

/// The contract's functions among a component's exports, looked up once when it is loaded.
///
/// A call looks up and type-checks only the function it calls, instead of every export of the
/// contract on every instantiation (as the generated `AppConnectorPre::instantiate_async` does),
/// which was a sixth of the cost of a fresh instance and an `info` call.
struct Exports {
    /// The contract version the component exports.
    version: ContractVersion,
    info: ComponentExportIndex,
    test_connection: ComponentExportIndex,
    list_accounts: ComponentExportIndex,
    get_account: ComponentExportIndex,
    list_entitlements: ComponentExportIndex,
    grant: ComponentExportIndex,
    revoke: ComponentExportIndex,
    set_entitlement: ComponentExportIndex,
    apply_batch: ComponentExportIndex,
}

impl Exports {
    /// Finds the newest version of the contract the component exports, and its functions.
    fn find(component: &Component) -> Result<Self, String> {
        let (version, interface) = ContractVersion::ALL
            .into_iter()
            .find_map(|v| Some((v, component.get_export_index(None, v.export_name())?)))
            .ok_or_else(|| {
                let names: Vec<&str> =
                    ContractVersion::ALL.iter().map(|v| v.export_name()).collect();
                format!("no export of the contract (one of `{}`)", names.join("`, `"))
            })?;
        let contract = version.export_name();
        let func = |name: &str| {
            component
                .get_export_index(Some(&interface), name)
                .ok_or_else(|| format!("no function `{name}` in `{contract}`"))
        };
        Ok(Exports {
            version,
            info: func("info")?,
            test_connection: func("test-connection")?,
            list_accounts: func("list-accounts")?,
            get_account: func("get-account")?,
            list_entitlements: func("list-entitlements")?,
            grant: func("grant")?,
            revoke: func("revoke")?,
            set_entitlement: func("set-entitlement")?,
            apply_batch: func("apply-batch")?,
        })
    }
}

/// Calls the export `func` of a fresh `instance` with `params`: looks it up, checks its type
/// against `Params` and `Ret`, and runs it on the call's fiber.
async fn invoke<Params, Ret>(
    instance: Instance,
    store: &mut Store<CallState>,
    func: &ComponentExportIndex,
    params: Params,
) -> wasmtime::Result<Ret>
where
    Params: ComponentNamedList + Lower + Send + Sync,
    (Ret,): ComponentNamedList + Lift + Send + Sync + 'static,
{
    let typed = instance.get_typed_func::<Params, (Ret,)>(&mut *store, func)?;
    Ok(typed.call_async(store, params).await?.0)
}

/// [`invoke`] for a component of an earlier contract version: `params` are already in its
/// types, and its answer (`Old`) is lifted into the current version's.
async fn invoke_adapted<Params, Old, New>(
    instance: Instance,
    store: &mut Store<CallState>,
    func: &ComponentExportIndex,
    params: Params,
) -> wasmtime::Result<New>
where
    Params: ComponentNamedList + Lower + Send + Sync,
    (Old,): ComponentNamedList + Lift + Send + Sync + 'static,
    Old: Adapt<New>,
{
    Ok(invoke::<Params, Old>(instance, store, func, params).await?.adapt())
}

/// `grant` or `revoke` (`func`) of one entitlement, in the component's contract `version`.
async fn change_of_one(
    instance: Instance,
    store: &mut Store<CallState>,
    version: ContractVersion,
    func: &ComponentExportIndex,
    account: AccountRef,
    entitlement: &str,
    options: ChangeOptions,
) -> wasmtime::Result<Result<ChangeResult, ConnectorError>> {
    match version {
        ContractVersion::V0_2 => {
            invoke(instance, store, func, (&account, entitlement, options)).await
        }
        ContractVersion::V0_1 => {
            type Old = Result<v0_1::ChangeResult, v0_1::ConnectorError>;
            let account: v0_1::AccountRef = account.adapt();
            let options: v0_1::ChangeOptions = options.adapt();
            let params = (&account, entitlement, options);
            invoke_adapted::<_, Old, _>(instance, store, func, params).await
        }
    }
}

/// Runs connectors for tenants. Create once; share by reference (`Arc<Host>`) across tasks.
pub struct Host {
    engine: Engine,
    linker: Linker<CallState>,
    cache: ComponentCache,
    default_limits: Limits,
    connectors: RwLock<HashMap<String, Arc<LoadedConnector>>>,
    tenants: RwLock<HashMap<String, Arc<Tenant>>>,
    next_call: AtomicU64,
    call_slots: Arc<tokio::sync::Semaphore>,
    max_memory_bytes: usize,
    connections: Arc<ConnectionPool>,
    _ticker: EpochTicker,
    load_lock: Mutex<()>,
    named_connectors: BTreeMap<String, NamedComponent>,
}

type GuestFuture<'a, T> = Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + 'a>>;

impl Host {
    /// Creates the engine, the linker of the sandbox's interfaces and the epoch ticker.
    /// Refuses a configuration it cannot honour rather than running with another one.
    pub fn new(config: HostConfig) -> Result<Self, HostError> {
        let concurrency = config.max_concurrent_calls;
        let instances =
            u32::try_from(concurrency).ok().and_then(NonZeroU32::new).ok_or_else(|| {
                HostError::InvalidConfig {
                    field: "max_concurrent_calls",
                    message: format!("is {concurrency}; it must be 1 to {}", u32::MAX),
                }
            })?;
        if config.cache_max_bytes == 0 {
            return Err(HostError::InvalidConfig {
                field: "cache_max_bytes",
                message: "is 0, which would evict every other entry on each store; set \
                          `cache_dir` to `None` to compile without a cache"
                    .to_string(),
            });
        }
        if let Some(key) = config.default_limits.zero_limit() {
            return Err(HostError::InvalidConfig {
                field: "default_limits",
                message: format!("sets `{key}` to 0, which would fail every call"),
            });
        }
        if let Some((key, ceiling)) = config.default_limits.over_limit() {
            return Err(HostError::InvalidConfig {
                field: "default_limits",
                message: format!("sets `{key}` beyond its ceiling of {ceiling}"),
            });
        }
        if config.default_limits.memory_bytes > config.max_memory_bytes {
            return Err(HostError::InvalidConfig {
                field: "default_limits.memory_bytes",
                message: format!(
                    "is {} bytes, more than `max_memory_bytes` ({} bytes), the most any tenant \
                     may be given",
                    config.default_limits.memory_bytes, config.max_memory_bytes
                ),
            });
        }
        let pool = config
            .pooling
            .then_some(PoolSizing { instances, max_memory_bytes: config.max_memory_bytes });
        let engine = create_engine(pool, config.perf_map)?;
        let linker = sandbox_linker(&engine)?;
        let ticker = EpochTicker::start(&engine)?;
        let cache = ComponentCache::new(config.cache_dir, config.cache_max_bytes);
        Ok(Host {
            engine,
            linker,
            cache: match config.perf_map {
                true => cache.reading_entries(),
                false => cache,
            },
            default_limits: config.default_limits,
            connectors: RwLock::new(HashMap::new()),
            tenants: RwLock::new(HashMap::new()),
            next_call: AtomicU64::new(1),
            call_slots: Arc::new(tokio::sync::Semaphore::new(concurrency)),
            max_memory_bytes: config.max_memory_bytes,
            connections: Arc::new(ConnectionPool::new(config.max_idle_connections)),
            named_connectors: config.named_connectors,
            _ticker: ticker,
            load_lock: Mutex::new(()),
        })
    }

    /// Idle keep-alive connections held for reuse, across tenants.
    pub fn idle_connections(&self) -> usize {
        self.connections.idle_connections()
    }

    /// The engine, for inspecting components.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or loads from the cache) and checks a connector component, and registers it
    /// under `name`. A component importing anything the sandbox does not provide is refused, and
    /// so is one replacing a connector whose registered tenants are capped below its initial
    /// memory (the connector they run is kept).
    pub fn add_connector(&self, name: &str, bytes: &[u8]) -> Result<CacheOutcome, HostError> {
        // Held while checking the tenants and replacing, so that a tenant registered meanwhile
        // is checked against the connector it will run.
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.load_connector(name, bytes, None)
    }

    /// [`Host::add_connector`] for a component carrying its digest, which a load from the
    /// compile cache uses instead of hashing its bytes.
    pub fn add_named_connector(
        &self,
        name: &str,
        component: &NamedComponent,
    ) -> Result<CacheOutcome, HostError> {
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.load_connector(name, &component.bytes, component.sha256.as_ref())
    }

    /// [`Host::add_connector`], with the load lock held.
    fn load_connector(
        &self,
        name: &str,
        bytes: &[u8],
        sha256: Option<&[u8; 32]>,
    ) -> Result<CacheOutcome, HostError> {
        let (component, outcome) = self.cache.load(&self.engine, name, bytes, sha256)?;
        imports::check(&self.engine, name, &component)?;
        let invalid = |e: wasmtime::Error| HostError::InvalidComponent {
            connector: name.to_string(),
            message: crate::error::component_message(&e),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(invalid)?;
        let exports = Exports::find(&component).map_err(|message| HostError::InvalidComponent {
            connector: name.to_string(),
            message,
        })?;
        // The generated bindings of its version check every function's type.
        match exports.version {
            ContractVersion::V0_2 => {
                crate::bindings::AppConnectorPre::new(pre.clone()).map_err(invalid)?;
            }
            ContractVersion::V0_1 => {
                crate::bindings::v0_1::AppConnectorPre::new(pre.clone()).map_err(invalid)?;
            }
        }
        // Pages of 64 KiB: the engine does not enable custom page sizes.
        let initial_memory_bytes = component
            .resources_required()
            .and_then(|r| r.max_initial_memory_size)
            .unwrap_or(0)
            .saturating_mul(64 << 10);
        let mut capped_below: Vec<String> = self
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|t| t.connector == name && !t.limits.holds_initial_memory(initial_memory_bytes))
            .map(|t| t.id.clone())
            .collect();
        if !capped_below.is_empty() {
            capped_below.sort_unstable();
            return Err(HostError::TenantsBelowInitialMemory {
                connector: name.to_string(),
                initial_memory_mib: mib(initial_memory_bytes),
                tenants: capped_below,
            });
        }
        self.connectors.write().unwrap_or_else(|p| p.into_inner()).insert(
            name.to_string(),
            Arc::new(LoadedConnector { pre, exports, initial_memory_bytes }),
        );
        Ok(outcome)
    }

    /// The names of the registered connectors, sorted (bundled ones appear once a tenant has
    /// loaded them).
    pub fn connector_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.connectors.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        names.sort();
        names
    }

    /// Removes a connector. Refused while a registered tenant runs it, naming them; false when
    /// no connector has that name.
    pub fn remove_connector(&self, name: &str) -> Result<bool, HostError> {
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut users: Vec<String> = self
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|t| t.connector == name)
            .map(|t| t.id.clone())
            .collect();
        if !users.is_empty() {
            users.sort();
            return Err(HostError::ConnectorInUse { connector: name.to_string(), tenants: users });
        }
        Ok(self.connectors.write().unwrap_or_else(|p| p.into_inner()).remove(name).is_some())
    }

    /// The ids of the registered tenants, sorted.
    pub fn tenant_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            self.tenants.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// A registered tenant's connector and customer.
    pub fn tenant_summary(&self, tenant: &str) -> Option<(String, Option<String>)> {
        let tenants = self.tenants.read().unwrap_or_else(|p| p.into_inner());
        tenants.get(tenant).map(|t| (t.connector.clone(), t.customer.clone()))
    }

    /// Removes a tenant; calls already running finish under the policy they started with.
    /// False when no tenant has that id.
    pub fn remove_tenant(&self, tenant: &str) -> bool {
        let removed = self.tenants.write().unwrap_or_else(|p| p.into_inner()).remove(tenant);
        if let Some(removed) = &removed {
            self.connections.forget(&removed.connection_owner);
        }
        removed.is_some()
    }

    /// Compiles or loads a component without registering it, for inspection.
    pub fn compile(&self, name: &str, bytes: &[u8]) -> Result<Component, HostError> {
        Ok(self.cache.load(&self.engine, name, bytes, None)?.0)
    }

    /// Registers a tenant. Its connector is resolved by name (one registered, or one of
    /// [`HostConfig::named_connectors`]) or, if the name ends in `.wasm`, loaded from that path
    /// relative to `base_dir`.
    pub fn add_tenant(&self, config: &TenantConfig, base_dir: &Path) -> Result<(), HostError> {
        let mut tenant = Tenant::validate(config, self.default_limits)?;
        if tenant.limits.memory_bytes > self.max_memory_bytes {
            return Err(HostError::InvalidTenant {
                tenant: tenant.id.clone(),
                message: format!(
                    "`limits.memory-mib` asks for {} MiB; this host allows at most {} MiB",
                    tenant.limits.memory_bytes >> 20,
                    self.max_memory_bytes >> 20
                ),
            });
        }
        let _guard = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        if tenant.connector.ends_with(".wasm") {
            let path = base_dir.join(&tenant.connector);
            let key = path.display().to_string();
            if !self.has_connector(&key) {
                let bytes = std::fs::read(&path).map_err(|e| HostError::ReadConnector {
                    tenant: tenant.id.clone(),
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                self.load_connector(&key, &bytes, None)?;
            }
            tenant.connector = key;
        } else if !self.has_connector(&tenant.connector) {
            match self.named_connectors.get(&tenant.connector) {
                Some(named) => {
                    self.load_connector(&tenant.connector, &named.bytes, named.sha256.as_ref())?;
                }
                None => {
                    return Err(HostError::UnknownConnector {
                        tenant: tenant.id.clone(),
                        connector: tenant.connector.clone(),
                    });
                }
            }
        }
        let initial = self
            .connectors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant.connector)
            .map_or(0, |c| c.initial_memory_bytes);
        if !tenant.limits.holds_initial_memory(initial) {
            return Err(HostError::InvalidTenant {
                tenant: tenant.id.clone(),
                message: format!(
                    "`limits.memory-mib` gives {:.1} MiB, less than the {:.1} MiB of initial \
                     memory connector `{}` declares: every call would fail",
                    mib(tenant.limits.memory_bytes as u64),
                    mib(initial),
                    tenant.connector
                ),
            });
        }
        let replaced = self
            .tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.id.clone(), Arc::new(tenant));
        if let Some(replaced) = replaced {
            self.connections.forget(&replaced.connection_owner);
        }
        Ok(())
    }

    /// [`Host::add_tenant`], then checks the tenant's settings against the settings schema its
    /// connector publishes (`info`): an unknown or misspelt key, or a missing required one, is
    /// refused by name and the tenant is not left registered.
    pub async fn add_tenant_checked(
        &self,
        config: &TenantConfig,
        base_dir: &Path,
    ) -> Result<(), HostError> {
        self.add_tenant(config, base_dir)?;
        let refuse = |message: String| {
            self.tenants.write().unwrap_or_else(|p| p.into_inner()).remove(&config.id);
            HostError::InvalidTenant { tenant: config.id.clone(), message }
        };
        let info = match self.info(&config.id).await?.result {
            Ok(info) => info,
            Err(error) => return Err(refuse(format!("its connector's `info` failed: {error}"))),
        };
        let settings: Vec<(String, String)> =
            config.settings.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
        crate::settings_schema::problems(&info.config_schema, &settings).map_err(refuse)
    }

    /// The ids of the registered tenants of `customer`, sorted.
    pub fn customer_tenants(&self, customer: &str) -> Vec<String> {
        let tenants = self.tenants.read().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<String> = tenants
            .values()
            .filter(|t| t.customer.as_deref() == Some(customer))
            .map(|t| t.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The limits a registered tenant's calls run under.
    pub fn tenant_limits(&self, tenant: &str) -> Result<Limits, HostError> {
        let tenants = self.tenants.read().unwrap_or_else(|p| p.into_inner());
        let found = tenants.get(tenant).ok_or_else(|| HostError::UnknownTenant(tenant.to_string()));
        found.map(|t| t.limits)
    }

    fn has_connector(&self, name: &str) -> bool {
        self.connectors.read().unwrap_or_else(|p| p.into_inner()).contains_key(name)
    }

    /// `info` of the tenant's connector.
    pub async fn info(&self, tenant: &str) -> Result<CallReport<ConnectorInfo>, HostError> {
        self.call(tenant, |i, e, s| {
            Box::pin(async move {
                Ok(Ok(match e.version {
                    ContractVersion::V0_2 => invoke(i, s, &e.info, ()).await?,
                    ContractVersion::V0_1 => {
                        invoke_adapted::<_, v0_1::ConnectorInfo, _>(i, s, &e.info, ()).await?
                    }
                }))
            })
        })
        .await
    }

    /// `test-connection`.
    pub async fn test_connection(
        &self,
        tenant: &str,
    ) -> Result<CallReport<ConnectionReport>, HostError> {
        self.call(tenant, |i, e, s| {
            Box::pin(async move {
                match e.version {
                    ContractVersion::V0_2 => invoke(i, s, &e.test_connection, ()).await,
                    ContractVersion::V0_1 => {
                        type Old = Result<(), v0_1::ConnectorError>;
                        invoke_adapted::<_, Old, _>(i, s, &e.test_connection, ()).await
                    }
                }
            })
        })
        .await
    }

    /// `list-accounts`.
    pub async fn list_accounts(
        &self,
        tenant: &str,
        page: PageRequest,
    ) -> Result<CallReport<AccountPage>, HostError> {
        self.call(tenant, move |i, e, s| {
            Box::pin(async move {
                match e.version {
                    ContractVersion::V0_2 => {
                        type Lifted = Result<LiftedAccountPage, ConnectorError>;
                        let lifted: Lifted = invoke(i, s, &e.list_accounts, (&page,)).await?;
                        Ok(lifted.map(|page| page.0))
                    }
                    ContractVersion::V0_1 => {
                        type Old = Result<v0_1::AccountPage, v0_1::ConnectorError>;
                        let page: v0_1::PageRequest = page.adapt();
                        invoke_adapted::<_, Old, _>(i, s, &e.list_accounts, (&page,)).await
                    }
                }
            })
        })
        .await
    }

    /// `get-account`.
    pub async fn get_account(
        &self,
        tenant: &str,
        account: AccountRef,
    ) -> Result<CallReport<Account>, HostError> {
        self.call(tenant, move |i, e, s| {
            Box::pin(async move {
                match e.version {
                    ContractVersion::V0_2 => invoke(i, s, &e.get_account, (&account,)).await,
                    ContractVersion::V0_1 => {
                        type Old = Result<v0_1::Account, v0_1::ConnectorError>;
                        let account: v0_1::AccountRef = account.adapt();
                        invoke_adapted::<_, Old, _>(i, s, &e.get_account, (&account,)).await
                    }
                }
            })
        })
        .await
    }

    /// `list-entitlements`.
    pub async fn list_entitlements(
        &self,
        tenant: &str,
        page: PageRequest,
    ) -> Result<CallReport<EntitlementPage>, HostError> {
        self.call(tenant, move |i, e, s| {
            Box::pin(async move {
                match e.version {
                    ContractVersion::V0_2 => invoke(i, s, &e.list_entitlements, (&page,)).await,
                    ContractVersion::V0_1 => {
                        type Old = Result<v0_1::EntitlementPage, v0_1::ConnectorError>;
                        let page: v0_1::PageRequest = page.adapt();
                        invoke_adapted::<_, Old, _>(i, s, &e.list_entitlements, (&page,)).await
                    }
                }
            })
        })
        .await
    }

    /// `grant`.
    pub async fn grant(
        &self,
        tenant: &str,
        account: AccountRef,
        entitlement: String,
        options: ChangeOptions,
    ) -> Result<CallReport<ChangeResult>, HostError> {
        self.call(tenant, move |i, e, s| {
            Box::pin(async move {
                change_of_one(i, s, e.version, &e.grant, account, &entitlement, options).await
            })
        })
        .await
    }

    /// `revoke`.
    pub async fn revoke(
        &self,
        tenant: &str,
        account: AccountRef,
        entitlement: String,
        options: ChangeOptions,
    ) -> Result<CallReport<ChangeResult>, HostError> {
        self.call(tenant, move |i, e, s| {
            Box::pin(async move {
                change_of_one(i, s, e.version, &e.revoke, account, &entitlement, options).await
            })
        })
        .await
    }

    /// `set-entitlement`.
    pub async fn set_entitlement(
        &self,
        tenant: &str,
        account: AccountRef,
        exclusion_group: String,
        entitlement: String,
        options: ChangeOptions,
    ) -> Result<CallReport<ChangeResult>, HostError> {
        self.call(tenant, move |i, e, s| {
            Box::pin(async move {
                let func = &e.set_entitlement;
                let (group, entitlement) = (exclusion_group.as_str(), entitlement.as_str());
                match e.version {
                    ContractVersion::V0_2 => {
                        invoke(i, s, func, (&account, group, entitlement, options)).await
                    }
                    ContractVersion::V0_1 => {
                        type Old = Result<v0_1::ChangeResult, v0_1::ConnectorError>;
                        let account: v0_1::AccountRef = account.adapt();
                        let options: v0_1::ChangeOptions = options.adapt();
                        let params = (&account, group, entitlement, options);
                        invoke_adapted::<_, Old, _>(i, s, func, params).await
                    }
                }
            })
        })
        .await
    }

    /// `apply-batch`: one result per change.
    pub async fn apply_batch(
        &self,
        tenant: &str,
        changes: Vec<Change>,
        options: ChangeOptions,
    ) -> Result<CallReport<Vec<Result<ChangeResult, ConnectorError>>>, HostError> {
        self.call(tenant, move |i, e, s| {
            Box::pin(async move {
                match e.version {
                    ContractVersion::V0_2 => {
                        invoke(i, s, &e.apply_batch, (changes.as_slice(), options)).await
                    }
                    ContractVersion::V0_1 => {
                        type Old = Result<
                            Vec<Result<v0_1::ChangeResult, v0_1::ConnectorError>>,
                            v0_1::ConnectorError,
                        >;
                        let changes: Vec<v0_1::Change> = changes.adapt();
                        let options: v0_1::ChangeOptions = options.adapt();
                        let params = (changes.as_slice(), options);
                        invoke_adapted::<_, Old, _>(i, s, &e.apply_batch, params).await
                    }
                }
            })
        })
        .await
    }

    /// Runs one call in a fresh store: instantiate, invoke, classify, collect logs and egress.
    async fn call<T, F>(&self, tenant_id: &str, invoke: F) -> Result<CallReport<T>, HostError>
    where
        F: for<'a> FnOnce(
                Instance,
                &'a Exports,
                &'a mut Store<CallState>,
            ) -> GuestFuture<'a, Result<T, ConnectorError>>
            + Send,
        T: Send,
    {
        let tenant = self
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant_id)
            .cloned()
            .ok_or_else(|| HostError::UnknownTenant(tenant_id.to_string()))?;
        let connector = self
            .connectors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant.connector)
            .cloned()
            .ok_or_else(|| HostError::UnknownConnector {
                tenant: tenant.id.clone(),
                connector: tenant.connector.clone(),
            })?;
        let call_id = self.next_call.fetch_add(1, Ordering::Relaxed);
        // Wait for a pool slot: beyond the configured concurrency, calls queue instead of failing.
        let _slot = Arc::clone(&self.call_slots)
            .acquire_owned()
            .await
            .map_err(|_| HostError::Engine("the host is shutting down".to_string()))?;
        let started = Instant::now();
        let logs = LogCapture::new(tenant.limits.max_log_bytes);
        let egress = Arc::new(Mutex::new(Vec::new()));
        let mut store = Store::new(
            &self.engine,
            CallState::new(&tenant, call_id, &logs, Arc::clone(&egress), &self.connections),
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);

        let budget = tenant.limits.call_timeout;
        let run = async {
            let instance = connector
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
            match invoke(instance, &connector.exports, &mut store).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(CallError::Connector(error)),
                Err(trap) if is_stack_overflow(&trap) => Err(CallError::StackOverflow),
                Err(trap) => Err(CallError::Trap { trap: format!("{trap:#}"), panic: None }),
            }
        };
        let result = match tokio::time::timeout(budget, run).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Deadline(budget)),
        };
        let egress = std::mem::take(&mut *egress.lock().unwrap_or_else(|p| p.into_inner()));
        let logs = logs.text();
        let result = classify(result, store.data().limiter.exceeded, &tenant, &egress, &logs);
        let duration_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(_) => tracing::debug!(tenant = %tenant.id, call_id, duration_ms, "call ok"),
            Err(error) => {
                tracing::info!(tenant = %tenant.id, call_id, duration_ms, %error, "call failed")
            }
        }
        let memory_bytes = store.data().limiter.held_bytes as u64;
        Ok(CallReport {
            call_id,
            tenant: tenant.id.clone(),
            result,
            logs,
            egress,
            duration_ms,
            memory_bytes,
        })
    }
}

/// `bytes` in MiB, for messages.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// Names the root cause of a failed call: a memory cap, a refused request or an oversized
/// response explains whatever the guest then reported or crashed with.
fn classify<T>(
    result: Result<T, CallError>,
    memory_exceeded: bool,
    tenant: &Tenant,
    egress: &[crate::egress::EgressRecord],
    logs: &str,
) -> Result<T, CallError> {
    let error = match result {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let explainable = matches!(error, CallError::Connector(_) | CallError::Trap { .. });
    if memory_exceeded && !matches!(error, CallError::Deadline(_)) {
        let message = match &error {
            CallError::Trap { trap, .. } => trap.clone(),
            other => other.to_string(),
        };
        return Err(CallError::MemoryLimit { limit_bytes: tenant.limits.memory_bytes, message });
    }
    if explainable {
        if let Some(denial) = egress.iter().find_map(|r| r.denied.clone()) {
            return Err(CallError::EgressDenied(denial));
        }
        if egress.iter().any(|r| r.body_limit_exceeded) {
            return Err(CallError::ResponseTooLarge {
                limit_bytes: tenant.limits.max_response_bytes,
            });
        }
    }
    Err(match error {
        CallError::Trap { trap, .. } => CallError::Trap { trap, panic: panic_message(logs) },
        other => other,
    })
}

/// Whether a trap is runaway recursion: wasm's own call stack exhausted, or (as with Rust guests,
/// whose data stack lives in linear memory) a memory fault at the end of a deep run of one
/// function, where the stack pointer wrapped below zero.
fn is_stack_overflow(trap: &wasmtime::Error) -> bool {
    const RUN: usize = 16;
    match trap.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => true,
        Some(wasmtime::Trap::MemoryOutOfBounds) => {
            trap.downcast_ref::<wasmtime::WasmBacktrace>().is_some_and(|backtrace| {
                let frames = backtrace.frames();
                frames.len() >= RUN
                    && frames[..RUN].iter().all(|f| f.func_index() == frames[0].func_index())
            })
        }
        _ => false,
    }
}

/// The panic message a Rust guest printed to stderr, if any.
fn panic_message(logs: &str) -> Option<String> {
    let start = logs.find("panicked at")?;
    let text: Vec<&str> = logs[start..].lines().take(2).collect();
    Some(text.join(" ").trim().to_string())
}

/// The linker of everything a connector may import, and nothing more: no filesystem, no sockets.
fn sandbox_linker(engine: &Engine) -> Result<Linker<CallState>, HostError> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::p2::bindings::{cli, random};
    use wasmtime_wasi::random::WasiRandom;
    let fail = |e: wasmtime::Error| HostError::Engine(format!("linking the sandbox: {e:#}"));
    let mut linker = Linker::new(engine);
    wasmtime_wasi_http::p2::add_to_linker_async(&mut linker).map_err(fail)?;
    cli::exit::add_to_linker::<CallState, WasiCli>(&mut linker, CallState::cli).map_err(fail)?;
    cli::environment::add_to_linker::<CallState, WasiCli>(&mut linker, CallState::cli)
        .map_err(fail)?;
    cli::terminal_input::add_to_linker::<CallState, WasiCli>(&mut linker, CallState::cli)
        .map_err(fail)?;
    cli::terminal_output::add_to_linker::<CallState, WasiCli>(&mut linker, CallState::cli)
        .map_err(fail)?;
    cli::terminal_stdin::add_to_linker::<CallState, WasiCli>(&mut linker, CallState::cli)
        .map_err(fail)?;
    cli::terminal_stdout::add_to_linker::<CallState, WasiCli>(&mut linker, CallState::cli)
        .map_err(fail)?;
    cli::terminal_stderr::add_to_linker::<CallState, WasiCli>(&mut linker, CallState::cli)
        .map_err(fail)?;
    random::insecure::add_to_linker::<CallState, WasiRandom>(&mut linker, |s| s.wasi.random())
        .map_err(fail)?;
    random::insecure_seed::add_to_linker::<CallState, WasiRandom>(&mut linker, |s| s.wasi.random())
        .map_err(fail)?;
    wasmtime_wasi_config::add_to_linker(&mut linker, |s| {
        wasmtime_wasi_config::WasiConfig::from(&s.config)
    })
    .map_err(fail)?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(config: HostConfig) -> String {
        match Host::new(config) {
            Err(e @ HostError::InvalidConfig { .. }) => e.to_string(),
            Err(other) => panic!("refused, but not as a configuration error: {other}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_configuration_the_host_cannot_honour_is_refused_by_name() {
        let err = refusal(HostConfig { max_concurrent_calls: 0, ..HostConfig::default() });
        assert!(err.contains("`max_concurrent_calls` is 0"), "{err}");
        let err = refusal(HostConfig { max_memory_bytes: 64 << 20, ..HostConfig::default() });
        assert!(err.contains("`default_limits.memory_bytes`"), "{err}");
        let zero_timeout = Limits { call_timeout: std::time::Duration::ZERO, ..Limits::default() };
        let err = refusal(HostConfig { default_limits: zero_timeout, ..HostConfig::default() });
        assert!(err.contains("`default_limits` sets `call-timeout-ms` to 0"), "{err}");
        let err = refusal(HostConfig { cache_max_bytes: 0, ..HostConfig::default() });
        assert!(err.contains("`cache_max_bytes` is 0"), "{err}");
    }
}
