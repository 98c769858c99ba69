//! Upstream faults: every read and write operation against every kind of fault the real service
//! shows, with the final state checked and every change applied exactly once.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use accessgov_host::tenant::SettingValue;
use accessgov_host::types::{
    AccountRef, ChangeOptions, ChangeOutcome, ConnectorError, PageRequest,
};
use accessgov_host::{CallError, Host};
use accessgov_mock::{Fault, FaultPlan, FaultScript, MockServer, RecordedRequest, Workspace};

use crate::common::{OWNER_TOKEN, add, host, list_all, mock};

const APPLY: ChangeOptions = ChangeOptions { dry_run: false };

/// The operations of the matrix: what they send, and how to check the outcome.
#[derive(Debug, Clone, Copy)]
enum Op {
    ListAccounts,
    GetAccount,
    ChangeRole,
    RemoveMember,
    Invite,
    CancelInvite,
}

impl Op {
    const ALL: [Op; 6] = [
        Op::ListAccounts,
        Op::GetAccount,
        Op::ChangeRole,
        Op::RemoveMember,
        Op::Invite,
        Op::CancelInvite,
    ];

    /// The method and path suffix the fault is injected on.
    fn route(self, member_id: &str) -> (&'static str, String) {
        match self {
            Op::ListAccounts | Op::GetAccount => ("GET", "/users".to_string()),
            Op::ChangeRole => ("PATCH", format!("/users/{member_id}")),
            Op::RemoveMember => ("DELETE", format!("/users/{member_id}")),
            Op::Invite | Op::CancelInvite => {
                (if matches!(self, Op::Invite) { "POST" } else { "DELETE" }, "/invites".to_string())
            }
        }
    }
}

/// A plain member of the workspace (not SCIM-managed, active, role Member).
fn plain(ws: &Workspace) -> accessgov_mock::Member {
    ws.members
        .iter()
        .find(|m| !m.is_scim_managed && m.deactivated_time.is_none() && m.role == "standard-user")
        .cloned()
        .unwrap()
}

/// Requests of `method` on `suffix` that changed state: the handler answered 2xx (whatever
/// happened to the answer afterwards), and it was not a challenge page served instead.
fn applied(requests: &[RecordedRequest], method: &str, suffix: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .filter(|r| (200..300).contains(&r.status) && r.fault != Some(Fault::HtmlOk))
        .count()
}

async fn cell(host: &Arc<Host>, op: Op, fault: Fault, n: usize) {
    let ws_id = format!("ws-f{n}");
    let server: MockServer = mock(&ws_id, 30, 3).await;
    let mut tenant = server.chatgpt_tenant(&format!("f{n}"), &ws_id, OWNER_TOKEN);
    tenant.settings.insert("retry-base-ms".into(), SettingValue::Integer(5));
    tenant.settings.insert("page-size".into(), SettingValue::Integer(100));
    // A slow answer goes past the first-byte timeout.
    tenant.limits.first_byte_timeout_ms = Some(150);
    add(host, &tenant);
    let tenant = format!("f{n}");
    let before = server.service().workspace(&ws_id).unwrap();
    let member = plain(&before);
    let invite = before.invites[0].clone();
    let (method, suffix) = op.route(&member.id);
    server.service().set_faults(FaultPlan {
        scripts: vec![FaultScript {
            method: method.into(),
            path_suffix: suffix.clone(),
            attempts: vec![Some(fault)],
            seen: 0,
        }],
        ..FaultPlan::default()
    });
    let label = format!("{op:?} × {fault:?}");
    let after = |server: &MockServer| server.service().workspace(&ws_id).unwrap();
    match op {
        Op::ListAccounts => {
            let (accounts, _) =
                list_all(host, &tenant, None).await.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(accounts.len(), 33, "{label}");
        }
        Op::GetAccount => {
            let report =
                host.get_account(&tenant, AccountRef::Email(member.email.clone())).await.unwrap();
            assert_eq!(
                report.result.unwrap_or_else(|e| panic!("{label}: {e}")).id,
                member.id,
                "{label}"
            );
        }
        Op::ChangeRole => {
            let r = host
                .grant(&tenant, AccountRef::Id(member.id.clone()), "role:admin".into(), APPLY)
                .await
                .unwrap();
            assert_eq!(
                r.result.unwrap_or_else(|e| panic!("{label}: {e}")).outcome,
                ChangeOutcome::Applied,
                "{label}"
            );
            let now = after(&server);
            assert_eq!(
                now.members.iter().find(|m| m.id == member.id).unwrap().role,
                "account-admin",
                "{label}"
            );
            assert_eq!(
                applied(&server.service().requests(), "PATCH", &suffix),
                1,
                "{label}: one role change"
            );
        }
        Op::RemoveMember => {
            let r = host
                .revoke(&tenant, AccountRef::Email(member.email.clone()), "workspace".into(), APPLY)
                .await
                .unwrap();
            assert_eq!(
                r.result.unwrap_or_else(|e| panic!("{label}: {e}")).outcome,
                ChangeOutcome::Applied,
                "{label}"
            );
            assert!(after(&server).member_by_email(&member.email).is_none(), "{label}");
            assert_eq!(
                after(&server).members.len(),
                before.members.len() - 1,
                "{label}: only that member"
            );
        }
        Op::Invite => {
            let email = "new.hire@acme.example.com";
            let r = host
                .grant(&tenant, AccountRef::Email(email.into()), "role:admin".into(), APPLY)
                .await
                .unwrap();
            assert_eq!(
                r.result.unwrap_or_else(|e| panic!("{label}: {e}")).outcome,
                ChangeOutcome::Pending,
                "{label}"
            );
            let now = after(&server);
            let invites: Vec<_> = now.invites.iter().filter(|i| i.email_address == email).collect();
            assert_eq!(invites.len(), 1, "{label}: exactly one invite");
            assert_eq!(invites[0].role, "account-admin", "{label}");
            assert_eq!(
                applied(&server.service().requests(), "POST", "/invites"),
                1,
                "{label}: invited once"
            );
        }
        Op::CancelInvite => {
            let r = host
                .revoke(
                    &tenant,
                    AccountRef::Email(invite.email_address.clone()),
                    "workspace".into(),
                    APPLY,
                )
                .await
                .unwrap();
            assert_eq!(
                r.result.unwrap_or_else(|e| panic!("{label}: {e}")).outcome,
                ChangeOutcome::Applied,
                "{label}"
            );
            assert!(after(&server).invite_by_email(&invite.email_address).is_none(), "{label}");
            assert_eq!(
                after(&server).invites.len(),
                before.invites.len() - 1,
                "{label}: only that invite"
            );
        }
    }
    // The fault really happened.
    assert!(
        server.service().requests().iter().any(|r| r.fault == Some(fault)),
        "{label}: fault injected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_survives_every_fault() {
    let host = host();
    let mut n = 0;
    for op in Op::ALL {
        for fault in Fault::ALL {
            cell(&host, op, fault, n).await;
            n += 1;
        }
    }
    println!(
        "fault matrix: {} operations × {} faults = {n} cases, all passed",
        Op::ALL.len(),
        Fault::ALL.len()
    );
    assert_eq!(n, 72);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_say_what_was_tried() {
    let host = host();
    let server = mock("ws-exhaust", 5, 0).await;
    let mut tenant = server.chatgpt_tenant("exhaust", "ws-exhaust", OWNER_TOKEN);
    tenant.settings.insert("retry-base-ms".into(), SettingValue::Integer(1));
    add(&host, &tenant);
    let always = |method: &str, suffix: &str, fault: Fault| FaultScript {
        method: method.into(),
        path_suffix: suffix.into(),
        attempts: vec![Some(fault); 10],
        seen: 0,
    };
    server.service().set_faults(FaultPlan {
        scripts: vec![always("POST", "/invites", Fault::TooManyRequests { retry_after: None })],
        ..FaultPlan::default()
    });
    let report = host
        .grant("exhaust", AccountRef::Email("x@acme.example.com".into()), "workspace".into(), APPLY)
        .await
        .unwrap();
    match report.result {
        Err(CallError::Connector(ConnectorError::RateLimited(r))) => {
            assert!(r.message.contains("gave up after 4 attempts"), "{}", r.message)
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }
    assert_eq!(server.service().requests().iter().filter(|r| r.method == "POST").count(), 4);

    server.service().set_faults(FaultPlan {
        scripts: vec![always("GET", "/users", Fault::ServerError { status: 503 })],
        ..FaultPlan::default()
    });
    match host
        .list_accounts("exhaust", PageRequest { cursor: None, size: None })
        .await
        .unwrap()
        .result
    {
        Err(CallError::Connector(ConnectorError::Unavailable(m))) => {
            assert!(m.contains("gave up after 4 attempts"), "{m}");
            assert!(!m.contains("budget"), "the attempts ran out, not the budget: {m}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }

    // A first wait (0.5 to 1.5 s) longer than the whole retry budget: the budget stops the
    // request at its first attempt, and the error says so, naming the setting to change.
    let mut tenant = server.chatgpt_tenant("no-room", "ws-exhaust", OWNER_TOKEN);
    tenant.settings.insert("retry-base-ms".into(), SettingValue::Integer(1_000));
    tenant.settings.insert("retry-budget-ms".into(), SettingValue::Integer(200));
    add(&host, &tenant);
    let before = server.service().requests().len();
    match host
        .list_accounts("no-room", PageRequest { cursor: None, size: None })
        .await
        .unwrap()
        .result
    {
        Err(CallError::Connector(ConnectorError::Unavailable(m))) => assert!(
            m.contains("gave up after 1 attempt ")
                && m.contains("retry budget (retry-budget-ms) leaving no room"),
            "{m}"
        ),
        other => panic!("expected unavailable, got {other:?}"),
    }
    let sent = &server.service().requests()[before..];
    assert_eq!(sent.iter().filter(|r| r.path.ends_with("/users")).count(), 1, "{sent:?}");

    // Throttled with a Retry-After of an hour: the header reaches the connector through
    // `wasi:http`, the wait does not fit the retry budget, and the error carries the service's
    // ask to the platform instead of waiting or asking again.
    server.service().set_faults(FaultPlan {
        scripts: vec![always("GET", "/users", Fault::TooManyRequests { retry_after: Some(3_600) })],
        ..FaultPlan::default()
    });
    let before = server.service().requests().len();
    match host
        .list_accounts("exhaust", PageRequest { cursor: None, size: None })
        .await
        .unwrap()
        .result
    {
        Err(CallError::Connector(ConnectorError::RateLimited(r))) => {
            assert_eq!(r.retry_after_ms, Some(3_600_000), "{}", r.message)
        }
        other => panic!("expected rate-limited, got {other:?}"),
    }
    let sent = &server.service().requests()[before..];
    assert_eq!(sent.iter().filter(|r| r.path.ends_with("/users")).count(), 1, "{sent:?}");
}

/// What the test expects of one person: member or invite, role and seat (console values).
type Expected = Option<(bool, String, String)>;

fn expected_of(ws: &Workspace, email: &str) -> Expected {
    if let Some(m) = ws.member_by_email(email) {
        return Some((true, m.role.clone(), m.seat_type.clone()));
    }
    ws.invite_by_email(email).map(|i| (false, i.role.clone(), i.seat_type.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_operations_at_a_twenty_percent_fault_rate_end_in_the_right_state() {
    use accessgov_mock::RandomFaults;
    use std::collections::{BTreeMap, BTreeSet};

    let host = host();
    let server = mock("ws-random", 40, 10).await;
    let mut tenant = server.chatgpt_tenant("random", "ws-random", OWNER_TOKEN);
    tenant.settings.insert("retry-base-ms".into(), SettingValue::Integer(2));
    tenant.settings.insert("max-attempts".into(), SettingValue::Integer(8));
    tenant.limits.first_byte_timeout_ms = Some(150);
    crate::common::self_service_seats(server.service(), "ws-random", &mut tenant);
    add(&host, &tenant);
    let start = server.service().workspace("ws-random").unwrap();
    let mut people: Vec<String> = start
        .members
        .iter()
        .filter(|m| !m.is_scim_managed && m.deactivated_time.is_none() && m.role != "account-owner")
        .map(|m| m.email.clone())
        .collect();
    people.extend(start.invites.iter().map(|i| i.email_address.clone()));
    people.extend((0..30).map(|k| format!("new{k}@acme.example.com")));
    let mut model: BTreeMap<String, Expected> =
        people.iter().map(|p| (p.clone(), expected_of(&start, p))).collect();
    let default_seat = start.default_seat_type.clone();

    server.service().set_faults(FaultPlan {
        // Every kind but a one-second Retry-After (honoured, so it would only make the run slow;
        // the fault matrix covers it).
        random: Some(RandomFaults {
            rate: 0.2,
            seed: 20261122,
            kinds: Fault::ALL
                .into_iter()
                .filter(|f| *f != Fault::TooManyRequests { retry_after: Some(1) })
                .collect(),
            methods: Vec::new(),
        }),
        ..FaultPlan::default()
    });
    let roles = [
        ("role:admin", "account-admin"),
        ("role:member", "standard-user"),
        ("role:analytics-viewer", "analytics-viewer"),
    ];
    let seats = [("seat:chatgpt", "default"), ("seat:codex", "usage_based")];
    let mut rng: u64 = 0x5eed;
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let (mut ok, mut failed) = (0, 0);
    let mut uncertain: BTreeSet<String> = BTreeSet::new();
    for _ in 0..1000 {
        let person = people[next(people.len())].clone();
        let who = AccountRef::Email(person.clone());
        let current = model[&person].clone();
        let (report, wanted): (Result<(), CallError>, Expected) = match next(5) {
            0 => {
                let (id, console) = roles[next(roles.len())];
                let r =
                    host.grant("random", who, id.into(), APPLY).await.unwrap().result.map(|_| ());
                let want = match &current {
                    Some((member, _, seat)) => Some((*member, console.to_string(), seat.clone())),
                    None => Some((false, console.to_string(), default_seat.clone())),
                };
                (r, want)
            }
            1 => {
                let (id, console) = seats[next(seats.len())];
                let r =
                    host.grant("random", who, id.into(), APPLY).await.unwrap().result.map(|_| ());
                let want = match &current {
                    Some((member, role, _)) => Some((*member, role.clone(), console.to_string())),
                    None => Some((false, "standard-user".to_string(), console.to_string())),
                };
                (r, want)
            }
            2 => {
                let r = host
                    .grant("random", who, "workspace".into(), APPLY)
                    .await
                    .unwrap()
                    .result
                    .map(|_| ());
                let want = current.clone().or(Some((
                    false,
                    "standard-user".to_string(),
                    default_seat.clone(),
                )));
                (r, want)
            }
            3 => {
                let r = host
                    .revoke("random", who, "workspace".into(), APPLY)
                    .await
                    .unwrap()
                    .result
                    .map(|_| ());
                (r, None)
            }
            _ => {
                let r = host
                    .list_accounts("random", PageRequest { cursor: None, size: Some(20) })
                    .await
                    .unwrap()
                    .result;
                (r.map(|_| ()), current.clone())
            }
        };
        match report {
            Ok(()) => {
                ok += 1;
                model.insert(person, wanted);
            }
            Err(error) => {
                failed += 1;
                // Only a write whose outcome the connector could not confirm may have changed state;
                // it says so, and that person is left out of the comparison.
                if error.to_string().contains("could not be read back") {
                    uncertain.insert(person);
                }
            }
        }
    }
    let faults = server.service().requests().iter().filter(|r| r.fault.is_some()).count();
    let total = server.service().requests().len();
    println!(
        "1000 operations: {ok} succeeded, {failed} failed ({} uncertain); {faults} of {total} requests faulted",
        uncertain.len()
    );
    assert!(faults * 100 / total >= 15, "the fault rate was real");
    assert!(failed <= 5, "retries absorb nearly every fault");
    let end = server.service().workspace("ws-random").unwrap();
    for (person, want) in &model {
        if !uncertain.contains(person) {
            assert_eq!(&expected_of(&end, person), want, "{person}");
        }
    }
    // No duplicates: one member or invite per address.
    let mut addresses: Vec<&str> = end.members.iter().map(|m| m.email.as_str()).collect();
    addresses.extend(end.invites.iter().map(|i| i.email_address.as_str()));
    let distinct: BTreeSet<&str> = addresses.iter().copied().collect();
    assert_eq!(distinct.len(), addresses.len());
}
