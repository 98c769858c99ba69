//! `harness apply --csv`: a 500-row file of new people, changes, no-ops, malformed lines and
//! refused domains, planned with `--dry-run` and then applied, through the real component.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use accessgov_mock::{GenerateSpec, MockServer, MockService, seed};
use serde_json::Value;

const WS: &str = "ws-csv";
const TOKEN: &str = "csv-owner-token";

fn console_role(csv: &str) -> &'static str {
    match csv {
        "admin" => "account-admin",
        "analytics_viewer" => "analytics-viewer",
        "owner" => "account-owner",
        _ => "standard-user",
    }
}

fn console_seat(csv: &str, default: &str) -> String {
    match csv {
        "Codex" => "usage_based".to_string(),
        "ChatGPT" => "default".to_string(),
        _ => default.to_string(),
    }
}

/// What a line should do.
#[derive(Debug, Clone)]
enum Intent {
    Invite {
        email: String,
        role: &'static str,
        seat: String,
    },
    Refused {
        email: String,
    },
    Change {
        email: String,
        role: String,
        seat: String,
    },
    NoOp {
        email: String,
    },
    Malformed,
    /// An address the connector refuses: the row fails with its reason, nothing is sent.
    NotAnAddress,
}

fn apply(tenants: &Path, csv: &Path, dry_run: bool) -> (bool, Vec<Value>, String) {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
    command.arg("--cache-dir").arg(cache).args(["apply", "--json", "--csv"]).arg(csv);
    command.arg("--tenants").arg(tenants);
    if dry_run {
        command.arg("--dry-run");
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // JSON lines: each row and each call as it is known, then a summary.
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.last().unwrap()["type"], "summary", "{stderr}");
    let rows = lines.into_iter().filter(|l| l["type"] == "row").collect();
    (output.status.success(), rows, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_row_csv_plans_then_applies_with_bulk_invites() {
    let service = MockService::new();
    service.put_workspace(seed::generate(
        WS,
        GenerateSpec { members: 200, invites: 10, seed: 5, join_requests: 0 },
    ));
    service.add_token(TOKEN, WS, "account-owner");
    // Seat changes of members are the console's here (the mock's switch; an Enterprise
    // workspace sends them to the account manager by default), and the tenant says so.
    if let Some(ws) = service.lock().workspaces.get_mut(WS) {
        ws.seat_changes = accessgov_mock::SeatChanges::SelfService;
    }
    let server = MockServer::start_local(service.clone()).await.unwrap();
    let ws = service.workspace(WS).unwrap();
    let default_seat = ws.default_seat_type.clone();

    // Build the file and what each line should do.
    let mut lines = vec!["email,role,seat type".to_string()];
    let mut intents: Vec<Intent> = vec![Intent::Malformed]; // the header, never reported
    let roles = ["admin", "member", "analytics_viewer", ""];
    let seats = ["ChatGPT", "Codex", ""];
    for i in 0..300 {
        let (role, seat) = (roles[i % 4], seats[i % 3]);
        let email = format!("new{i}@new.example.com");
        lines.push(format!("{},{role},{seat}", email.to_uppercase()));
        intents.push(Intent::Invite {
            email,
            role: console_role(role),
            seat: console_seat(seat, &default_seat),
        });
    }
    for i in 0..5 {
        let email = format!("bad{i}@nowhere.invalid");
        lines.push(format!("{email},member,"));
        intents.push(Intent::Refused { email });
    }
    let eligible: Vec<_> = ws
        .members
        .iter()
        .skip(1)
        .filter(|m| !m.is_scim_managed && m.deactivated_time.is_none())
        .collect();
    assert!(eligible.len() >= 185, "the seed gives enough plain members");
    for (i, m) in eligible.iter().take(90).enumerate() {
        let role = if m.role == "standard-user" { "admin" } else { "member" };
        let flip = i % 2 == 0;
        let seat = match (flip, m.seat_type.as_str()) {
            (true, "default") => "Codex",
            (true, _) => "ChatGPT",
            (false, "default") => "ChatGPT",
            (false, _) => "Codex",
        };
        lines.push(format!("{},{role},{seat}", m.email));
        intents.push(Intent::Change {
            email: m.email.clone(),
            role: console_role(role).to_string(),
            seat: console_seat(seat, &default_seat),
        });
    }
    for (i, m) in eligible.iter().skip(90).take(95).enumerate() {
        let role = match m.role.as_str() {
            "account-admin" => "Admin",
            "analytics-viewer" => "analytics_viewer",
            "account-owner" => "owner",
            _ => "MEMBER",
        };
        let seat = if m.seat_type == "default" { "chatgpt" } else { "CODEX" };
        // Some restate everything, some give the email only (workspace access, held).
        lines.push(if i % 5 == 0 { m.email.clone() } else { format!("{},{role},{seat}", m.email) });
        intents.push(Intent::NoOp { email: m.email.clone() });
    }
    for bad in [
        "not-an-email,member,ChatGPT",
        "@no-local.example.com,member,",
        "two@@at.example.com,admin,",
        "spaces in@x.example.com,member,",
    ] {
        lines.push(bad.to_string());
        intents.push(Intent::NotAnAddress);
    }
    for bad in [
        "plus1@new.example.com,member,Plus",
        "plus2@new.example.com,admin,Enterprise",
        "plus3@new.example.com,member,gpt-5",
        "extra@new.example.com,member,ChatGPT,surplus",
        "extra2@new.example.com,admin,Codex,a,b",
        "NEW0@new.example.com,owner,Codex",
        "semi@new.example.com;member;chatgpt",
    ] {
        lines.push(bad.to_string());
        intents.push(Intent::Malformed);
    }
    assert_eq!(lines.len() - 1, 501);

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("apply-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("people.csv");
    std::fs::write(&csv, lines.join("\n")).unwrap();
    let tenants = dir.join("tenants.toml");
    std::fs::write(
        &tenants,
        format!(
            "[[tenant]]\nid = \"csv\"\nconnector = \"chatgpt\"\nallow-private-addresses = true\nallowed-origins = [\"{o}\"]\n[tenant.settings]\nbase-url = \"{b}\"\naccount-id = \"{WS}\"\nseat-changes = \"self-service\"\n[[tenant.credentials]]\norigin = \"{o}\"\nbearer-token = \"{TOKEN}\"\nheaders = {{ chatgpt-account-id = \"{WS}\" }}\n",
            o = server.origin(),
            b = server.base_url()
        ),
    )
    .unwrap();

    // The dry run plans every row and writes nothing.
    let (ok, planned, _) = tokio::task::block_in_place(|| apply(&tenants, &csv, true));
    assert!(!ok, "malformed lines make the run fail overall");
    assert!(service.requests().iter().all(|r| !r.is_write()), "a dry run sends no write");
    assert_eq!(service.workspace(WS).unwrap(), ws, "nothing changed");
    assert_eq!(planned.len(), 501);

    // The real run.
    let (ok, applied, stderr) = tokio::task::block_in_place(|| apply(&tenants, &csv, false));
    assert!(!ok);
    assert!(stderr.contains("16 of 501 rows did not end as asked"), "{stderr}");
    assert_eq!(applied.len(), 501);
    // What the plan named and what was sent, without the answers the host saw.
    let sent = |row: &Value| -> Vec<(Value, Value, Value)> {
        let requests = row["requests"].as_array().unwrap();
        requests
            .iter()
            .map(|r| (r["method"].clone(), r["path"].clone(), r["body"].clone()))
            .collect()
    };
    let by_line = |rows: &[Value]| -> HashMap<u64, Value> {
        rows.iter().map(|r| (r["line"].as_u64().unwrap(), r.clone())).collect()
    };
    let (planned, applied) = (by_line(&planned), by_line(&applied));

    let after = service.workspace(WS).unwrap();
    for (index, intent) in intents.iter().enumerate().skip(1) {
        let line = index as u64 + 1;
        let (plan, real) = (&planned[&line], &applied[&line]);
        let outcome = |row: &Value| row["outcome"].as_str().unwrap().to_string();
        match intent {
            Intent::Invite { email, role, seat } => {
                assert_eq!(
                    (outcome(plan), outcome(real)),
                    ("planned".into(), "pending".into()),
                    "line {line}"
                );
                assert_eq!(sent(plan), sent(real), "line {line}: the plan is what ran");
                assert!(real["requests"].as_array().unwrap().iter().all(|r| r["status"] == 200));
                let invite =
                    after.invite_by_email(email).unwrap_or_else(|| panic!("{email} invited"));
                assert_eq!((invite.role.as_str(), &invite.seat_type), (*role, seat), "{email}");
            }
            Intent::Refused { email } => {
                assert_eq!(
                    (outcome(plan), outcome(real)),
                    ("planned".into(), "failed".into()),
                    "line {line}: {real}"
                );
                assert!(
                    real["detail"].as_str().unwrap().contains("Invalid email domain"),
                    "{real}"
                );
                assert!(after.invite_by_email(email).is_none());
            }
            Intent::Change { email, role, seat } => {
                assert_eq!(
                    (outcome(plan), outcome(real)),
                    ("planned".into(), "applied".into()),
                    "line {line}: {real}"
                );
                assert_eq!(sent(plan), sent(real), "line {line}");
                let m = after.member_by_email(email).unwrap();
                assert_eq!((&m.role, &m.seat_type), (role, seat), "{email}");
            }
            Intent::NoOp { email } => {
                assert_eq!(outcome(plan), "already-in-state", "line {line}: {plan}");
                assert_eq!(outcome(real), "already-in-state", "line {line}");
                assert_eq!(after.member_by_email(email), ws.member_by_email(email));
            }
            Intent::NotAnAddress => {
                assert_eq!((outcome(plan), outcome(real)), ("failed".into(), "failed".into()));
                let detail = real["detail"].as_str().unwrap();
                assert!(detail.contains("is not an email address"), "line {line}: {detail}");
                assert!(real["requests"].as_array().unwrap().is_empty());
            }
            Intent::Malformed => {
                assert_eq!(
                    (outcome(plan), outcome(real)),
                    ("skipped".into(), "skipped".into()),
                    "line {line}"
                );
                assert!(real["detail"].as_str().unwrap().starts_with("malformed line"));
            }
        }
    }
    assert!(after.member_by_email("extra@new.example.com").is_none());
    assert!(after.invite_by_email("plus1@new.example.com").is_none());

    // Bulk invites: at most ceil(n / 100) requests per (role, seat) pair.
    let mut wanted: HashMap<(String, String), usize> = HashMap::new();
    for intent in &intents {
        match intent {
            Intent::Invite { role, seat, .. } => {
                *wanted.entry((role.to_string(), seat.clone())).or_default() += 1
            }
            Intent::Refused { .. } => {
                *wanted.entry(("standard-user".into(), default_seat.clone())).or_default() += 1
            }
            _ => {}
        }
    }
    let mut sent: HashMap<(String, String), usize> = HashMap::new();
    for r in
        service.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/invites"))
    {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let key = (
            body["role"].as_str().unwrap().to_string(),
            body["seat_type"].as_str().unwrap().to_string(),
        );
        *sent.entry(key).or_default() += 1;
    }
    assert_eq!(sent.keys().collect::<std::collections::HashSet<_>>(), wanted.keys().collect());
    for (pair, n) in &wanted {
        assert!(sent[pair] <= n.div_ceil(100), "{pair:?}: {} requests for {n} people", sent[pair]);
    }
    println!("bulk invite requests per (role, seat): {sent:?} for {wanted:?}");
    server.stop().await;
}
