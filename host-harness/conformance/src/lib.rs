//! The conformance kit: a contract-level suite that any connector, with its upstream, must pass.
//!
//! It needs nothing from the connector beyond the contract: writes are judged from the host's
//! own egress records (a dry run must send nothing but reads), state is read back through
//! `get-account`, and bad credentials are tried by registering a copy of the tenant whose tokens
//! are wrong. Grant cycles run on subject addresses that must not be accounts yet (the suite
//! refuses to start otherwise, so it can never change or remove a real person) and are undone
//! at the end: the clean-up returns them to absent, which is where they were found, and checks
//! that it did.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Serialize;

use accessgov_host::bindings::types::{
    Account, AccountRef, AccountStatus, ChangeOptions, ChangeOutcome, ChangeResult, ConnectorError,
    Entitlement, PageRequest,
};
use accessgov_host::call::{CallError, CallReport};
use accessgov_host::error::HostError;
use accessgov_host::host::Host;
use accessgov_host::tenant::TenantConfig;

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct ConformanceOptions {
    /// An address the suite may invite, change and remove (it should not be a real person).
    pub subject: String,
    /// Another such address, used only for the dry-run check.
    pub dry_run_subject: String,
    /// Page size of the paging check (small, to see many pages).
    pub page_size: u32,
}

impl Default for ConformanceOptions {
    /// Fresh subject addresses (a new random tag each time), so a run never meets an account
    /// left by another.
    fn default() -> Self {
        let tag = fresh_tag();
        ConformanceOptions {
            subject: format!("conformance-{tag}@conformance.example.com"),
            dry_run_subject: format!("conformance-dry-run-{tag}@conformance.example.com"),
            page_size: 7,
        }
    }
}

/// A tag unlikely to repeat: the time and the process, hashed.
fn fresh_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// Why the suite did not run.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// Registering the tenant failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A subject address is an account already: the suite would change or remove it.
    #[error(
        "subject {subject} is already an account ({account_id}, {status}) of the tenant's application; the suite invites, changes and removes its subjects, so it refuses one that exists (leave --subject out for a fresh address)"
    )]
    SubjectExists {
        /// The address.
        subject: String,
        /// The account found.
        account_id: String,
        /// Its status.
        status: String,
    },
    /// The connector refused a subject address as malformed.
    #[error("subject {subject:?} is not usable: {message}")]
    InvalidSubject {
        /// The address.
        subject: String,
        /// What the connector said.
        message: String,
    },
    /// Whether a subject exists could not be told, so the suite did not risk writing.
    #[error(
        "could not tell whether subject {subject} is an account, so nothing was written: {message}"
    )]
    SubjectUnknown {
        /// The address.
        subject: String,
        /// Why.
        message: String,
    },
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Met.
    Pass,
    /// Not met.
    Fail,
    /// Could not be checked (for example, a listing of one page has no cursor to tamper with).
    Skip,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The check's name.
    pub check: String,
    /// Met, not met, or not checkable.
    pub verdict: Verdict,
    /// What was seen.
    pub detail: String,
}

struct Suite<'a> {
    host: &'a Host,
    tenant: String,
    results: Vec<CheckResult>,
}

impl Suite<'_> {
    fn record(&mut self, check: &str, verdict: Verdict, detail: impl Into<String>) {
        self.results.push(CheckResult { check: check.to_string(), verdict, detail: detail.into() });
    }

    fn check(&mut self, check: &str, ok: Result<String, String>) {
        match ok {
            Ok(detail) => self.record(check, Verdict::Pass, detail),
            Err(detail) => self.record(check, Verdict::Fail, detail),
        }
    }
}

fn answer<T>(report: Result<CallReport<T>, HostError>) -> Result<T, String> {
    match report {
        Ok(report) => report.result.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn writes<T>(report: &CallReport<T>) -> Vec<String> {
    report
        .egress
        .iter()
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Registers `tenant` (and a copy with wrong credentials) on `host` and runs every check.
pub async fn run(
    host: &Host,
    tenant: &TenantConfig,
    base_dir: &Path,
    options: &ConformanceOptions,
) -> Result<Vec<CheckResult>, ConformanceError> {
    host.add_tenant(tenant, base_dir)?;
    for subject in [&options.subject, &options.dry_run_subject] {
        refuse_existing(host, &tenant.id, subject).await?;
    }
    let mut bad = tenant.clone();
    bad.id = format!("{}-bad-credentials", tenant.id);
    for credential in &mut bad.credentials {
        credential.bearer_token = Some("conformance-invalid-token".to_string());
        credential.bearer_token_env = None;
    }
    host.add_tenant(&bad, base_dir)?;
    let mut suite = Suite { host, tenant: tenant.id.clone(), results: Vec::new() };

    check_info(&mut suite).await;
    let (accounts, cursor) = check_paging(&mut suite, options.page_size).await;
    check_get_account(&mut suite, &accounts).await;
    check_tampered_cursor(&mut suite, cursor).await;
    let entitlements = answer(
        host.list_entitlements(&suite.tenant, PageRequest { cursor: None, size: None }).await,
    )
    .map(|page| page.entitlements)
    .unwrap_or_default();
    check_unknown_entitlement(&mut suite, &options.subject).await;
    check_dry_run(&mut suite, &entitlements, &options.dry_run_subject).await;
    check_cycles(&mut suite, &entitlements, &options.subject).await;
    check_bad_credentials(&mut suite, &bad.id).await;
    check_clean_up(&mut suite, &entitlements, options).await;
    Ok(suite.results)
}

/// Refuses a subject that is an account already, or whose existence cannot be told.
async fn refuse_existing(host: &Host, tenant: &str, subject: &str) -> Result<(), ConformanceError> {
    let report = host.get_account(tenant, AccountRef::Email(subject.to_string())).await?;
    match report.result {
        Ok(account) => Err(ConformanceError::SubjectExists {
            subject: subject.to_string(),
            account_id: account.id,
            status: format!("{:?}", account.status).to_lowercase(),
        }),
        Err(CallError::Connector(ConnectorError::NotFound(_))) => Ok(()),
        Err(CallError::Connector(ConnectorError::InvalidArgument(message))) => {
            Err(ConformanceError::InvalidSubject { subject: subject.to_string(), message })
        }
        Err(error) => Err(ConformanceError::SubjectUnknown {
            subject: subject.to_string(),
            message: error.to_string(),
        }),
    }
}

/// Returns the subjects to absent, where they were found, and checks that they are.
async fn check_clean_up(
    suite: &mut Suite<'_>,
    entitlements: &[Entitlement],
    options: &ConformanceOptions,
) {
    let mut left = Vec::new();
    for subject in [&options.subject, &options.dry_run_subject] {
        let who = || AccountRef::Email(subject.clone());
        if let Some(access) = entitlements.iter().find(|e| e.kind == "access") {
            let apply = ChangeOptions { dry_run: false };
            let _ = suite.host.revoke(&suite.tenant, who(), access.id.clone(), apply).await;
        }
        match answer(suite.host.get_account(&suite.tenant, who()).await) {
            Err(message) if message.contains("not-found") => {}
            Err(message) => left.push(format!("{subject}: could not be read back ({message})")),
            Ok(account) => left.push(format!("{subject} is still account {}", account.id)),
        }
    }
    let verdict = if left.is_empty() {
        Ok("both subjects are absent again, as they were found".to_string())
    } else {
        Err(left.join("; "))
    };
    suite.check("clean-up-restores-what-it-found", verdict);
}

async fn check_info(suite: &mut Suite<'_>) {
    let info = answer(suite.host.info(&suite.tenant).await);
    let verdict = info.as_ref().map_err(Clone::clone).and_then(|info| {
        let mut problems = Vec::new();
        if info.name.trim().is_empty() {
            problems.push("name is empty".to_string());
        }
        let semver = info
            .version
            .split(['-', '+'])
            .next()
            .unwrap_or_default()
            .split('.')
            .collect::<Vec<_>>();
        if semver.len() != 3 || semver.iter().any(|p| p.parse::<u64>().is_err()) {
            problems.push(format!("version {:?} is not semver", info.version));
        }
        if info.entitlement_kinds.is_empty() {
            problems.push("no entitlement kinds".to_string());
        }
        if problems.is_empty() {
            Ok(format!("{} {}", info.name, info.version))
        } else {
            Err(problems.join("; "))
        }
    });
    suite.check("info-well-formed", verdict);
    let schema = info.and_then(|info| schema_problems(&info.config_schema));
    suite.check("config-schema-valid", schema);
}

/// Checks the structure a JSON Schema for settings must have.
fn schema_problems(text: &str) -> Result<String, String> {
    let schema: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let object = schema.as_object().ok_or("the schema is not a JSON object")?;
    const TYPES: [&str; 7] = ["object", "string", "number", "integer", "boolean", "array", "null"];
    if object.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err("the top-level `type` must be \"object\"".to_string());
    }
    let properties = object
        .get("properties")
        .and_then(|p| p.as_object())
        .ok_or("`properties` must be an object")?;
    for (name, property) in properties {
        let kind = property.get("type").and_then(|t| t.as_str());
        if !property.is_object() || kind.is_some_and(|k| !TYPES.contains(&k)) {
            return Err(format!("property `{name}` is not a schema with a valid `type`"));
        }
    }
    if let Some(required) = object.get("required") {
        let names = required.as_array().ok_or("`required` must be an array")?;
        for name in names {
            let name = name.as_str().ok_or("`required` must hold strings")?;
            if !properties.contains_key(name) {
                return Err(format!("required setting `{name}` is not among the properties"));
            }
        }
    }
    Ok(format!("{} settings described", properties.len()))
}

async fn check_paging(suite: &mut Suite<'_>, size: u32) -> (Vec<Account>, Option<String>) {
    let mut accounts = Vec::new();
    let mut cursors = HashSet::new();
    let mut first_cursor = None;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let failure = loop {
        let page = match answer(
            suite
                .host
                .list_accounts(
                    &suite.tenant,
                    PageRequest { cursor: cursor.clone(), size: Some(size) },
                )
                .await,
        ) {
            Ok(page) => page,
            Err(e) => break Some(format!("page {}: {e}", pages + 1)),
        };
        pages += 1;
        if page.accounts.len() > size as usize {
            break Some(format!(
                "page {pages} holds {} accounts, more than the {size} asked",
                page.accounts.len()
            ));
        }
        accounts.extend(page.accounts);
        match page.next_cursor {
            None => break None,
            Some(next) if !cursors.insert(next.clone()) => {
                break Some(format!("cursor repeated after {pages} pages: {next:?}"));
            }
            Some(next) => {
                first_cursor.get_or_insert_with(|| next.clone());
                cursor = Some(next);
            }
        }
    };
    let mut seen = HashSet::new();
    let duplicate = accounts.iter().find(|a| !seen.insert(a.id.clone())).map(|a| a.id.clone());
    let verdict = match (failure, duplicate) {
        (Some(f), _) => Err(f),
        (None, Some(id)) => Err(format!("account {id} listed twice")),
        (None, None) => Ok(format!("{} accounts in {pages} pages, each once", accounts.len())),
    };
    suite.check("paging-complete-no-repeats", verdict);
    (accounts, first_cursor)
}

async fn check_get_account(suite: &mut Suite<'_>, accounts: &[Account]) {
    if accounts.is_empty() {
        suite.record("get-account-agrees", Verdict::Skip, "the listing is empty");
        return;
    }
    let step = (accounts.len() / 5).max(1);
    for listed in accounts.iter().step_by(step).take(5) {
        let mut refs = vec![AccountRef::Id(listed.id.clone())];
        refs.extend(listed.email.clone().map(AccountRef::Email));
        for reference in refs {
            match answer(suite.host.get_account(&suite.tenant, reference.clone()).await) {
                Ok(found) if &found == listed => {}
                Ok(found) => {
                    let detail =
                        format!("{reference:?} gave {found:?}, the listing has {listed:?}");
                    suite.record("get-account-agrees", Verdict::Fail, detail);
                    return;
                }
                Err(e) => {
                    return suite.record(
                        "get-account-agrees",
                        Verdict::Fail,
                        format!("{reference:?}: {e}"),
                    );
                }
            }
        }
    }
    suite.record("get-account-agrees", Verdict::Pass, "sampled accounts match by id and email");
}

async fn check_tampered_cursor(suite: &mut Suite<'_>, cursor: Option<String>) {
    let Some(cursor) = cursor else {
        return suite.record("tampered-cursor-refused", Verdict::Skip, "the listing fits one page");
    };
    let mut bytes = cursor.into_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8_lossy(&bytes).into_owned();
    let report = suite
        .host
        .list_accounts(&suite.tenant, PageRequest { cursor: Some(tampered), size: None })
        .await;
    let verdict = match report.map(|r| r.result) {
        Ok(Err(CallError::Connector(ConnectorError::InvalidArgument(m)))) => Ok(m),
        Ok(other) => Err(format!("expected invalid-argument, got {other:?}")),
        Err(e) => Err(e.to_string()),
    };
    suite.check("tampered-cursor-refused", verdict);
}

async fn check_unknown_entitlement(suite: &mut Suite<'_>, subject: &str) {
    let who = AccountRef::Email(subject.to_string());
    let report = suite
        .host
        .grant(
            &suite.tenant,
            who,
            "conformance:no-such-entitlement".into(),
            ChangeOptions { dry_run: false },
        )
        .await;
    let verdict = match report {
        Ok(report) => match (&report.result, writes(&report)) {
            (_, sent) if !sent.is_empty() => Err(format!("sent writes: {}", sent.join(", "))),
            (
                Err(CallError::Connector(
                    ConnectorError::NotFound(m) | ConnectorError::InvalidArgument(m),
                )),
                _,
            ) => Ok(m.clone()),
            (other, _) => Err(format!("expected not-found or invalid-argument, got {other:?}")),
        },
        Err(e) => Err(e.to_string()),
    };
    suite.check("unknown-entitlement-refused", verdict);
}

async fn check_dry_run(suite: &mut Suite<'_>, entitlements: &[Entitlement], subject: &str) {
    let Some(entitlement) = entitlements.iter().find(|e| e.grantable) else {
        return suite.record("dry-run-writes-nothing", Verdict::Skip, "no grantable entitlement");
    };
    let who = AccountRef::Email(subject.to_string());
    let report = suite
        .host
        .grant(&suite.tenant, who, entitlement.id.clone(), ChangeOptions { dry_run: true })
        .await;
    let verdict = match report {
        Ok(report) => match (writes(&report), &report.result) {
            (sent, _) if !sent.is_empty() => Err(format!("a dry run sent {}", sent.join(", "))),
            (_, Ok(result))
                if matches!(
                    result.outcome,
                    ChangeOutcome::Planned | ChangeOutcome::AlreadyInState
                ) =>
            {
                Ok(format!("planned {} request(s), sent none", result.requests.len()))
            }
            (_, other) => Err(format!("expected planned, got {other:?}")),
        },
        Err(e) => Err(e.to_string()),
    };
    suite.check("dry-run-writes-nothing", verdict);
}

/// The entitlements `subject` holds now (none if it is not an account).
async fn held(suite: &Suite<'_>, subject: &str) -> Result<Vec<String>, String> {
    match suite.host.get_account(&suite.tenant, AccountRef::Email(subject.to_string())).await {
        Ok(report) => match report.result {
            Ok(account) => Ok(account.entitlements),
            Err(CallError::Connector(ConnectorError::NotFound(_))) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Whether `subject` is an invited account (not a member).
async fn invited(suite: &Suite<'_>, subject: &str) -> bool {
    let report =
        suite.host.get_account(&suite.tenant, AccountRef::Email(subject.to_string())).await;
    matches!(report.map(|r| r.result), Ok(Ok(account)) if account.status == AccountStatus::Invited)
}

/// grant, grant, revoke, revoke, grant of `entitlement` to `subject`, state read back each time.
async fn cycle(
    suite: &mut Suite<'_>,
    entitlements: &[Entitlement],
    e: &Entitlement,
    subject: &str,
) -> Result<String, String> {
    let apply = ChangeOptions { dry_run: false };
    let who = || AccountRef::Email(subject.to_string());
    let before = held(suite, subject).await?;
    let displaced: Vec<String> = e
        .exclusion_group
        .as_ref()
        .map(|group| {
            entitlements
                .iter()
                .filter(|o| o.exclusion_group.as_ref() == Some(group) && before.contains(&o.id))
                .map(|o| o.id.clone())
                .collect()
        })
        .unwrap_or_default();
    let step = |name: &str,
                report: Result<CallReport<ChangeResult>, HostError>,
                want: &[ChangeOutcome]| {
        let report = report.map_err(|e| format!("{name}: {e}"))?;
        let sent = writes(&report);
        let result = report.result.map_err(|e| format!("{name}: {e}"))?;
        if !want.contains(&result.outcome) {
            return Err(format!("{name}: outcome {:?}, expected {want:?}", result.outcome));
        }
        if result.outcome == ChangeOutcome::AlreadyInState && !sent.is_empty() {
            return Err(format!("{name}: already-in-state but sent {}", sent.join(", ")));
        }
        Ok(result)
    };
    use ChangeOutcome::{AlreadyInState, Applied, Pending};
    let first = step(
        "grant",
        suite.host.grant(&suite.tenant, who(), e.id.clone(), apply).await,
        &[Applied, Pending],
    )?;
    if !held(suite, subject).await?.contains(&e.id) {
        return Err("after grant, the account does not hold it".to_string());
    }
    if !displaced.is_empty() {
        let reported = displaced.iter().all(|d| first.replaced.contains(d));
        let verdict = if reported {
            Ok(format!("{} replaced {}", e.id, displaced.join(", ")))
        } else {
            Err(format!(
                "{} displaced {} but reported replaced = {:?}",
                e.id,
                displaced.join(", "),
                first.replaced
            ))
        };
        let group = e.exclusion_group.clone().unwrap_or_default();
        suite.check(&format!("exclusive-grant-reports-replaced:{group}"), verdict);
    }
    step(
        "grant again",
        suite.host.grant(&suite.tenant, who(), e.id.clone(), apply).await,
        &[AlreadyInState],
    )?;
    step(
        "revoke",
        suite.host.revoke(&suite.tenant, who(), e.id.clone(), apply).await,
        &[Applied, Pending],
    )?;
    if held(suite, subject).await?.contains(&e.id) {
        return Err("after revoke, the account still holds it".to_string());
    }
    step(
        "revoke again",
        suite.host.revoke(&suite.tenant, who(), e.id.clone(), apply).await,
        &[AlreadyInState],
    )?;
    step(
        "grant once more",
        suite.host.grant(&suite.tenant, who(), e.id.clone(), apply).await,
        &[Applied, Pending],
    )?;
    if !held(suite, subject).await?.contains(&e.id) {
        return Err("after the last grant, the account does not hold it".to_string());
    }
    Ok(format!("{}: grant, grant, revoke, revoke, grant", e.id))
}

async fn check_cycles(suite: &mut Suite<'_>, entitlements: &[Entitlement], subject: &str) {
    let mut kinds: BTreeMap<(bool, String), Vec<&Entitlement>> = BTreeMap::new();
    for e in entitlements.iter().filter(|e| e.grantable) {
        // Access first: the other kinds then work on an account that exists.
        kinds.entry((e.kind != "access", e.kind.clone())).or_default().push(e);
    }
    for ((_, kind), candidates) in kinds {
        let name = format!("grant-revoke-cycle:{kind}");
        let current = match held(suite, subject).await {
            Ok(current) => current,
            Err(e) => return suite.record(&name, Verdict::Fail, e),
        };
        // An entitlement not held yet; a required group's base entitlement cannot be revoked,
        // so if the first candidate refuses its revoke, the next is tried.
        let mut last = Err(format!("no {kind} entitlement the subject does not already hold"));
        for e in candidates.iter().filter(|e| !current.contains(&e.id)) {
            last = cycle(suite, entitlements, e, subject).await;
            if last.is_ok() || !last.as_ref().is_err_and(|m| m.starts_with("revoke: ")) {
                break;
            }
        }
        // The suite's subject is only ever invited (it never accepts an invitation), so a kind
        // only members hold cannot be cycled on it: the connector's refusal, with `conflict`, is
        // what it should say, and the check cannot be made here.
        if let Err(message) = &last
            && message.starts_with("grant: connector error: conflict")
            && invited(suite, subject).await
        {
            let detail = format!("the subject is invited, not a member, and {message}");
            suite.record(&name, Verdict::Skip, detail);
            continue;
        }
        suite.check(&name, last);
    }
}

async fn check_bad_credentials(suite: &mut Suite<'_>, bad_tenant: &str) {
    let report =
        suite.host.list_accounts(bad_tenant, PageRequest { cursor: None, size: None }).await;
    let verdict = match report.map(|r| r.result) {
        Ok(Err(CallError::Connector(ConnectorError::Unauthenticated(m)))) => Ok(m),
        Ok(other) => Err(format!("expected unauthenticated, got {other:?}")),
        Err(e) => Err(e.to_string()),
    };
    suite.check("bad-credentials-unauthenticated", verdict);
}
