//! No write without a record: batches through `accessgov_host::batch` (what `harness apply` runs)
//! against a mock that fails, slows down and dies, checked against the mock's own log of the
//! changes it applied. In every run, what the report says was made is what the mock made:
//! nothing applied goes unreported, nothing reported applied was not, and a re-run finishes the
//! rest without repeating a write.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use accessgov_host::batch::{self, BatchEvent, CallRecord, ChangeStatus, ItemOutcome, ItemReport};
use accessgov_host::tenant::SettingValue;
use accessgov_host::types::{AccountRef, Change, EntitlementChange};
use accessgov_host::{Host, TenantConfig};
use accessgov_mock::{
    AppliedChangeKind, Fault, FaultPlan, FaultScript, GenerateSpec, MockServer, MockService,
    RandomFaults, seed,
};

use crate::common::{OWNER_TOKEN, add, host};

/// How the service misbehaves during a run.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// 30% of requests get a random fault of every kind the mock knows.
    RandomFaults,
    /// Every `PATCH` is answered 200 ms late.
    SlowPatch,
    /// The service dies after a number of writes drawn from the seed.
    Dies,
}

/// The changes asked for one person, and what the workspace should hold after them.
struct Intent {
    email: String,
    changes: Vec<Change>,
}

fn grant(email: &str, entitlement: &str) -> Change {
    Change::Grant(EntitlementChange {
        account: AccountRef::Email(email.to_string()),
        entitlement: entitlement.to_string(),
    })
}

fn revoke(email: &str, entitlement: &str) -> Change {
    Change::Revoke(EntitlementChange {
        account: AccountRef::Email(email.to_string()),
        entitlement: entitlement.to_string(),
    })
}

/// 2,000 mixed rows: new people invited with assorted roles and seats, members changing role
/// or seat or both, pending invites changed (cancel and re-invite), members removed, and rows
/// that restate what a member already holds.
fn intents(service: &MockService, ws: &str, rows: usize) -> Vec<Intent> {
    let workspace = service.workspace(ws).unwrap();
    let plain: Vec<_> = workspace
        .members
        .iter()
        .skip(1)
        .filter(|m| !m.is_scim_managed && m.deactivated_time.is_none())
        .collect();
    let roles = ["role:admin", "role:member", "role:analytics-viewer"];
    let seats = ["seat:chatgpt", "seat:codex"];
    let mut out = Vec::new();
    let (changing, removing, restating) = (rows / 10, rows / 40, rows / 5);
    for (i, m) in plain.iter().take(changing).enumerate() {
        let role = if m.role == "standard-user" { "role:admin" } else { "role:member" };
        let seat = if m.seat_type == "default" { "seat:codex" } else { "seat:chatgpt" };
        let changes = match i % 3 {
            0 => vec![grant(&m.email, role)],
            1 => vec![grant(&m.email, seat)],
            _ => vec![grant(&m.email, role), grant(&m.email, seat)],
        };
        out.push(Intent { email: m.email.clone(), changes });
    }
    for m in plain.iter().skip(changing).take(removing) {
        out.push(Intent { email: m.email.clone(), changes: vec![revoke(&m.email, "workspace")] });
    }
    for m in plain.iter().skip(changing + removing).take(restating) {
        out.push(Intent { email: m.email.clone(), changes: vec![grant(&m.email, "workspace")] });
    }
    for invite in workspace.invites.iter().filter(|i| !i.is_scim_managed).take(rows / 100) {
        let role = if invite.role == "account-admin" { "role:member" } else { "role:admin" };
        out.push(Intent {
            email: invite.email_address.clone(),
            changes: vec![grant(&invite.email_address, role)],
        });
    }
    let mut n = 0;
    while out.len() < rows {
        let email = format!("new{n}@campaign.example.com");
        let changes = match n % 4 {
            0 => vec![grant(&email, "workspace")],
            1 => vec![grant(&email, roles[n % 3])],
            2 => vec![grant(&email, seats[n % 2])],
            _ => vec![grant(&email, roles[n % 3]), grant(&email, seats[(n / 4) % 2])],
        };
        out.push(Intent { email, changes });
        n += 1;
    }
    out
}

/// After the first `on_time` `PATCH`es, the next `slow` answered `millis` late (the rest on time).
fn slow_patches(on_time: usize, slow: usize, millis: u64) -> FaultPlan {
    let mut attempts = vec![None; on_time];
    attempts.extend(vec![Some(Fault::Slow { millis }); slow]);
    FaultPlan {
        scripts: vec![FaultScript {
            method: "PATCH".into(),
            path_suffix: String::new(),
            attempts,
            seen: 0,
        }],
        ..FaultPlan::default()
    }
}

/// `n` plain members of `ws` who are not Admins, each to be made one.
fn promotions(service: &MockService, ws: &str, n: usize) -> Vec<Intent> {
    let members = service.workspace(ws).unwrap().members;
    let intents: Vec<Intent> = members
        .iter()
        .skip(1)
        .filter(|m| !m.is_scim_managed && m.role != "account-admin" && m.deactivated_time.is_none())
        .take(n)
        .map(|m| Intent { email: m.email.clone(), changes: vec![grant(&m.email, "role:admin")] })
        .collect();
    assert_eq!(intents.len(), n, "the seed has {n} members to promote");
    intents
}

/// What a run reported, by email: the item's outcome and whether any change was made.
fn reported(intents: &[Intent], reports: &[ItemReport]) -> BTreeMap<String, ItemReport> {
    assert_eq!(reports.len(), intents.len(), "every item is reported exactly once");
    let mut by_email = BTreeMap::new();
    for report in reports {
        let email = intents[report.item].email.clone();
        assert!(by_email.insert(email, report.clone()).is_none(), "item {} twice", report.item);
    }
    by_email
}

fn made(report: &ItemReport) -> bool {
    matches!(report.outcome, ItemOutcome::Applied | ItemOutcome::Pending | ItemOutcome::Partial)
}

/// Runs the batch; returns the items' reports and the calls' records.
async fn run(
    host: &Host,
    tenant: &str,
    intents: &[Intent],
) -> (Vec<ItemReport>, Vec<CallRecord>, Option<String>) {
    let items: Vec<Vec<Change>> = intents.iter().map(|i| i.changes.clone()).collect();
    let (mut reports, mut calls) = (Vec::new(), Vec::new());
    let summary = batch::apply(host, tenant, &items, false, |event| match event {
        BatchEvent::Item(report) => reports.push(report),
        BatchEvent::Call(call) => calls.push(call),
    })
    .await
    .unwrap();
    assert_eq!(summary.items, intents.len());
    (reports, calls, summary.stopped)
}

/// The emails the mock's change log names, from entry `from` on.
fn logged(service: &MockService, ws: &str, from: usize) -> BTreeSet<String> {
    let log = service.workspace(ws).unwrap().change_log;
    log[from.min(log.len())..].iter().map(|c| c.email.clone()).collect()
}

fn tenant(server: &MockServer, id: &str, ws: &str, call_timeout_ms: u64) -> TenantConfig {
    let mut tenant = server.chatgpt_tenant(id, ws, OWNER_TOKEN);
    for (key, value) in [("retry-base-ms", "5"), ("retry-budget-ms", "3000"), ("max-attempts", "4")]
    {
        tenant.settings.insert(key.to_string(), SettingValue::Text(value.to_string()));
    }
    tenant.limits.call_timeout_ms = Some(call_timeout_ms);
    tenant
}

/// One run of the campaign: the batch under `scenario`, the report checked against the mock's
/// log, then (the service well again) a re-run that must finish the rest and repeat nothing.
async fn campaign(host: Arc<Host>, scenario: Scenario, seed: u64) {
    let ws = format!("ws-campaign-{scenario:?}-{seed}").to_lowercase();
    let service = MockService::new();
    service.put_workspace(seed::generate(
        &ws,
        GenerateSpec { members: 700, invites: 60, seed, join_requests: 0 },
    ));
    service.add_token(OWNER_TOKEN, &ws, "account-owner");
    let server = MockServer::start_local(service.clone()).await.unwrap();
    let intents = intents(&service, &ws, 2000);
    let id = format!("{ws}-tenant");
    let mut tenant = tenant(&server, &id, &ws, 8_000);
    crate::common::self_service_seats(&service, &ws, &mut tenant);
    if matches!(scenario, Scenario::RandomFaults) {
        // "Nothing unknown with the service up" holds only while some read-back call finds every
        // read it needs answered. With 30% faults and 4 attempts, a read fails once in 123 and
        // a read-back call of a few dozen reads often did; which request draws which fault
        // depends on the order of concurrent requests, so the suite's load made it fail now and
        // then. At 7 attempts a read fails once in 4,500. The call's retry budget counts the
        // time of its repeated attempts as well as its waits, and the suite's load stretches the
        // attempts: in a run of the full suite a read-back call gave up on a 429's one-second
        // wait with its 3-second budget spent (2026-12-05), where 72 campaigns run alone never
        // did. 6 seconds leaves room under that load, inside the 8-second call deadline.
        tenant.settings.insert("max-attempts".into(), SettingValue::Text("7".into()));
        tenant.settings.insert("retry-budget-ms".into(), SettingValue::Text("6000".into()));
    }
    add(&host, &tenant);

    let watcher = match scenario {
        Scenario::RandomFaults => {
            service.set_faults(FaultPlan {
                random: Some(RandomFaults {
                    rate: 0.3,
                    seed,
                    kinds: Vec::new(),
                    methods: Vec::new(),
                }),
                ..FaultPlan::default()
            });
            None
        }
        Scenario::SlowPatch => {
            service.set_faults(slow_patches(0, 100_000, 200));
            None
        }
        Scenario::Dies => {
            // Dies after 5 to 200 writes (of about 370), the count drawn from the seed.
            let after = 5 + (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize % 196;
            let service = service.clone();
            Some(tokio::spawn(async move {
                loop {
                    let writes = service.requests().iter().filter(|r| r.is_write()).count();
                    if writes >= after {
                        service.set_down(true);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }))
        }
    };
    let (reports, calls, stopped) = run(&host, &id, &intents).await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    let first = reported(&intents, &reports);
    let log = logged(&service, &ws, 0);
    let made_set: BTreeSet<String> =
        first.iter().filter(|(_, r)| made(r)).map(|(e, _)| e.clone()).collect();
    let unknown: BTreeSet<String> = first
        .iter()
        .filter(|(_, r)| r.outcome == ItemOutcome::Unknown)
        .map(|(e, _)| e.clone())
        .collect();
    let label = format!("{scenario:?} seed {seed}");
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for r in first.values() {
        *histogram.entry(r.outcome.as_str()).or_default() += 1;
    }
    eprintln!(
        "{label}: {histogram:?}; {} changes logged; {} of {} calls failed; stopped: {stopped:?}",
        service.workspace(&ws).unwrap().change_log.len(),
        calls.iter().filter(|c| c.error.is_some()).count(),
        calls.len()
    );
    // Nothing reported made that the service did not make...
    let phantom: Vec<_> = made_set.difference(&log).collect();
    assert!(
        phantom.is_empty(),
        "{label}: reported made, not in the mock's log: {:?}",
        phantom.iter().map(|e| &first[*e]).collect::<Vec<_>>()
    );
    // ... and nothing the service made that the report does not own up to.
    let hidden: Vec<_> =
        log.iter().filter(|e| !made_set.contains(*e) && !unknown.contains(*e)).collect();
    assert!(
        hidden.is_empty(),
        "{label}: applied but reported {:?}",
        hidden.iter().map(|e| (e, first.get(*e).map(|r| r.outcome))).collect::<Vec<_>>()
    );
    // A change reported made holds in the workspace.
    let workspace = service.workspace(&ws).unwrap();
    for (email, report) in first.iter().filter(|(_, r)| r.outcome == ItemOutcome::Applied) {
        for change in &report.changes {
            let member = workspace.member_by_email(email);
            let invite = workspace.invite_by_email(email);
            let holds = match (change.action, change.entitlement.as_str()) {
                ("revoke", "workspace") => member.is_none() && invite.is_none(),
                (_, "role:admin") => member.is_some_and(|m| m.role == "account-admin"),
                (_, "role:member") => member.is_some_and(|m| m.role == "standard-user"),
                (_, "seat:codex") => member.is_some_and(|m| m.seat_type == "usage_based"),
                (_, "seat:chatgpt") => member.is_some_and(|m| m.seat_type == "default"),
                _ => true,
            };
            assert!(holds, "{label}: {email} reported {change:?}, the mock disagrees");
        }
    }
    // Every write a failed call may have made is on the record of that call.
    for call in calls.iter().filter(|c| c.error.is_some()) {
        for write in &call.writes {
            assert!(write.may_have_written(), "{label}: {write:?}");
        }
    }
    match scenario {
        Scenario::Dies => assert!(stopped.is_some(), "{label}: the batch noticed the service died"),
        // With the service up, every outcome was read back: none is left unknown.
        _ => assert!(unknown.is_empty(), "{label}: unknown with the service up: {unknown:?}"),
    }
    if let Scenario::SlowPatch = scenario {
        let cut_off = calls.iter().filter(|c| c.error.is_some()).count();
        assert_eq!(cut_off, 0, "{label}: calls sized to their budget are not cut off");
        assert!(first.values().all(|r| r.outcome.is_success()), "{label}: every row ends as asked");
    }

    // The service well again, a re-run finishes the rest and repeats nothing.
    service.set_down(false);
    service.set_faults(FaultPlan::default());
    let log_length = service.workspace(&ws).unwrap().change_log.len();
    let (reports, _, stopped) = run(&host, &id, &intents).await;
    assert_eq!(stopped, None, "{label}: the re-run ran to its end");
    let second = reported(&intents, &reports);
    let bad: Vec<_> = second.iter().filter(|(_, r)| !r.outcome.is_success()).collect();
    assert!(bad.is_empty(), "{label}: after the re-run: {bad:?}");
    let again = logged(&service, &ws, log_length);
    for email in &again {
        assert!(
            !matches!(
                first[email].outcome,
                ItemOutcome::Applied | ItemOutcome::Pending | ItemOutcome::AlreadyInState
            ),
            "{label}: {email} was done in the first run and written again"
        );
    }
    // A third run finds everything in place and sends no write at all.
    let writes_before = service.requests().iter().filter(|r| r.is_write()).count();
    let (reports, _, _) = run(&host, &id, &intents).await;
    assert!(reports.iter().all(|r| r.outcome == ItemOutcome::AlreadyInState), "{label}");
    assert_eq!(service.requests().iter().filter(|r| r.is_write()).count(), writes_before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_campaign_of_2000_rows_reports_exactly_what_the_service_applied() {
    let host = host();
    let mut runs = Vec::new();
    for scenario in [Scenario::RandomFaults, Scenario::SlowPatch, Scenario::Dies] {
        for seed in [1, 2, 3] {
            runs.push(tokio::spawn(campaign(Arc::clone(&host), scenario, seed)));
        }
    }
    for run in runs {
        run.await.unwrap();
    }
}

/// A workspace of `members`, its tenant registered with a call budget of `call_timeout_ms`.
async fn workspace(
    host: &Host,
    ws: &str,
    members: usize,
    call_timeout_ms: u64,
) -> (MockServer, MockService) {
    let service = MockService::new();
    service.put_workspace(seed::generate(
        ws,
        GenerateSpec { members, invites: 0, seed: 3, join_requests: 0 },
    ));
    service.add_token(OWNER_TOKEN, ws, "account-owner");
    let server = MockServer::start_local(service.clone()).await.unwrap();
    let mut tenant = tenant(&server, ws, ws, call_timeout_ms);
    crate::common::self_service_seats(&service, ws, &mut tenant);
    add(host, &tenant);
    (server, service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_one_calls_budget_is_sized_into_calls_that_fit_it() {
    // 120 role changes at 200 ms a PATCH is 24 s of writes; the budget of a call is 4 s. One
    // call for all of them was cut off and its report lost.
    let host = host();
    let (server, service) = workspace(&host, "ws-batch-sized", 160, 4_000).await;
    service.set_faults(slow_patches(0, 100_000, 200));
    let intents = promotions(&service, "ws-batch-sized", 120);
    let (reports, calls, stopped) = run(&host, "ws-batch-sized", &intents).await;
    assert_eq!(stopped, None);
    assert!(reports.iter().all(|r| r.outcome == ItemOutcome::Applied), "{reports:?}");
    let applies: Vec<&CallRecord> =
        calls.iter().filter(|c| c.purpose == batch::CallPurpose::Apply).collect();
    assert!(applies.len() >= 6, "{} apply calls", applies.len());
    assert!(calls.iter().all(|c| c.error.is_none()), "no call was cut off");
    let log = service.workspace("ws-batch-sized").unwrap().change_log;
    assert_eq!(log.len(), 120);
    assert!(
        log.iter().all(
            |c| matches!(&c.kind, AppliedChangeKind::Role { to, .. } if to == "account-admin")
        )
    );
    // Each row names the request sent for it and the answer the host saw.
    for report in &reports {
        assert_eq!(report.requests.len(), 1, "{report:?}");
        assert_eq!(report.requests[0].status, Some(200));
        assert!(report.call_id.is_some());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_off_mid_write_is_read_back_and_its_writes_are_on_the_record() {
    // The fourth PATCH hangs past the call's budget: the call is cut off. What it had made is
    // read back and reported made; the hung write is on the call's record, unanswered.
    let host = host();
    let (server, service) = workspace(&host, "ws-batch-cut", 30, 3_000).await;
    service.set_faults(slow_patches(3, 1, 20_000));
    let intents = promotions(&service, "ws-batch-cut", 6);
    let (reports, calls, _) = run(&host, "ws-batch-cut", &intents).await;
    let cut = calls.iter().find(|c| c.error.is_some()).expect("a call was cut off");
    assert!(cut.error.as_deref().unwrap().contains("time budget"), "{cut:?}");
    let hung: Vec<_> = cut.writes.iter().filter(|w| w.status.is_none()).collect();
    assert_eq!(hung.len(), 1, "the hung PATCH is on the record: {:?}", cut.writes);
    assert_eq!(hung[0].request_body.as_deref(), Some(r#"{"role":"account-admin"}"#));
    let by = reported(&intents, &reports);
    let log = logged(&service, "ws-batch-cut", 0);
    for (email, report) in &by {
        assert_eq!(made(report), log.contains(email), "{email}: {report:?}");
        if report.call_id == Some(cut.call_id) && !made(report) {
            assert_eq!(report.outcome, ItemOutcome::Failed, "{report:?}");
            assert!(report.changes[0].detail.contains("reading back"), "{report:?}");
            assert_eq!(report.changes[0].status, ChangeStatus::NotApplied);
        }
    }
    assert!(by.values().filter(|r| made(r)).count() >= 3, "{by:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_later_call_fails_the_earlier_calls_rows_are_reported_and_the_rest_not_attempted() {
    // 1,200 new people: the first plan's 1,000 are invited; then the service dies before the
    // second plan. Before, the second call's failure hid the 1,000 invites.
    let host = host();
    let (server, service) = workspace(&host, "ws-batch-later", 5, 20_000).await;
    let intents: Vec<Intent> = (0..1200)
        .map(|n| {
            let email = format!("later{n}@later.example.com");
            Intent { changes: vec![grant(&email, "workspace")], email }
        })
        .collect();
    let watcher = {
        let service = service.clone();
        tokio::spawn(async move {
            loop {
                let invites = service.requests().iter().filter(|r| r.method == "POST").count();
                if invites >= 10 {
                    service.set_down(true);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let (reports, _, stopped) = run(&host, "ws-batch-later", &intents).await;
    watcher.abort();
    assert!(stopped.is_some());
    let by = reported(&intents, &reports);
    let workspace = service.workspace("ws-batch-later").unwrap();
    assert!(workspace.invites.len() >= 900, "{}", workspace.invites.len());
    // Every invite made is reported: pending where it was read back, unknown with its answered
    // request where the service died before it could be.
    for (email, report) in &by {
        let invited = workspace.invite_by_email(email).is_some();
        match report.outcome {
            ItemOutcome::Pending => assert!(invited, "{email}"),
            ItemOutcome::Unknown => assert!(
                report.requests.iter().any(|r| r.method == "POST" && r.status.is_some()),
                "{email}: {report:?}"
            ),
            _ => assert!(!invited, "{email} was invited but reported {:?}", report.outcome),
        }
    }
    let not_attempted = by.values().filter(|r| r.outcome == ItemOutcome::NotAttempted).count();
    assert_eq!(not_attempted, 200, "the second plan's rows were never reached");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_the_service_would_refuse_fail_with_their_reason_and_send_nothing() {
    let host = host();
    let (server, service) = workspace(&host, "ws-batch-addresses", 5, 20_000).await;
    let long = format!("{}@example.com", "a".repeat(403));
    let bad = [
        "a@qa..com",
        "a@.com",
        "x<script>@example.com",
        "hv3@qa.example.com;member;chatgpt",
        &long,
    ];
    let intents: Vec<Intent> = bad
        .iter()
        .map(|email| Intent { email: email.to_string(), changes: vec![grant(email, "workspace")] })
        .collect();
    let (reports, _, stopped) = run(&host, "ws-batch-addresses", &intents).await;
    assert_eq!(stopped, None);
    for report in &reports {
        assert_eq!(report.outcome, ItemOutcome::Failed, "{report:?}");
        let detail = &report.changes[0].detail;
        assert!(detail.contains("is not an email address"), "{detail}");
        assert!(detail.len() < 400, "the long address is not echoed whole: {detail}");
    }
    assert!(reports[4].changes[0].detail.contains("415 characters long"));
    assert!(service.requests().iter().all(|r| !r.is_write()), "no invite was sent");
    server.stop().await;
}
