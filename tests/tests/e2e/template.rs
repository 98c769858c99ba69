//! The template connector, built from `connector/template` over the SDK, passes the conformance
//! suite in the real host against the directory mock, and each deliberately broken build of it
//! fails the check its defect breaks.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use accessgov_conformance::{self as conformance, CheckResult, ConformanceOptions, Verdict};
use accessgov_host::types::{AccountRef, ChangeOptions, ChangeOutcome, PageRequest};
use accessgov_mock::directory::{DirectoryServer, DirectoryService};

use crate::common::host;

const TOKEN: &str = "directory-token-5e1d";

async fn suite(connector: &str, tenant: &str) -> Vec<CheckResult> {
    let server = DirectoryServer::start_local(DirectoryService::seeded(TOKEN, 23)).await.unwrap();
    let host = host();
    let before = server.service().users();
    let results = conformance::run(
        &host,
        &server.tenant(tenant, connector, TOKEN),
        Path::new("."),
        &ConformanceOptions::default(),
    )
    .await
    .unwrap();
    for r in &results {
        println!("{tenant}: {} {:?} {}", r.check, r.verdict, r.detail);
    }
    // The suite leaves the directory as it found it.
    assert_eq!(server.service().users(), before);
    results
}

fn failed(results: &[CheckResult]) -> Vec<&str> {
    results.iter().filter(|r| r.verdict == Verdict::Fail).map(|r| r.check.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_connector_passes_every_check() {
    let results = suite(env!("TEMPLATE_WASM"), "directory-ok").await;
    assert_eq!(failed(&results), Vec::<&str>::new());
    for check in [
        "paging-complete-no-repeats",
        "get-account-agrees",
        "tampered-cursor-refused",
        "dry-run-writes-nothing",
        "grant-revoke-cycle:access",
        "grant-revoke-cycle:role",
        "bad-credentials-unauthenticated",
        "clean-up-restores-what-it-found",
    ] {
        let result = results.iter().find(|r| r.check == check);
        assert_eq!(result.map(|r| r.verdict), Some(Verdict::Pass), "{check}: {result:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_build_of_the_template_fails_the_check_it_breaks() {
    let cursor = suite(env!("TEMPLATE_BROKEN_REPEAT_CURSOR_WASM"), "directory-cursor").await;
    assert_eq!(failed(&cursor), ["paging-complete-no-repeats"]);
    let dry = suite(env!("TEMPLATE_BROKEN_DRY_RUN_WRITES_WASM"), "directory-dry").await;
    assert_eq!(failed(&dry), ["dry-run-writes-nothing"]);
    let detail = &dry.iter().find(|r| r.check == "dry-run-writes-nothing").unwrap().detail;
    assert!(detail.contains("a dry run sent POST /users"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_grants_a_role_to_a_new_person_in_two_writes() {
    let server = DirectoryServer::start_local(DirectoryService::seeded(TOKEN, 3)).await.unwrap();
    let host = host();
    host.add_tenant(
        &server.tenant("directory-roles", env!("TEMPLATE_WASM"), TOKEN),
        Path::new("."),
    )
    .unwrap();
    let who = AccountRef::Email("new.person@directory.example.com".to_string());
    let report = host
        .grant(
            "directory-roles",
            who.clone(),
            "role:viewer".into(),
            ChangeOptions { dry_run: false },
        )
        .await
        .unwrap();
    let result = report.result.unwrap();
    assert_eq!(result.outcome, ChangeOutcome::Applied);
    let account = result.account.unwrap();
    assert_eq!(account.entitlements, ["access", "role:viewer"]);
    let writes: Vec<String> = report
        .egress
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        writes,
        ["POST /users".to_string(), format!("PUT /users/{}/roles/viewer", account.id)]
    );
    assert_eq!(server.service().writes(), 2);
    let listed =
        host.list_accounts("directory-roles", PageRequest { cursor: None, size: None }).await;
    assert_eq!(listed.unwrap().result.unwrap().accounts.len(), 4);
}

#[test]
fn harness_conformance_checks_the_template_against_the_embedded_directory() {
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    let run = |connector: Option<&str>| {
        let mut command = std::process::Command::new(crate::conformance::harness());
        command.arg("--cache-dir").arg(&cache).args(["conformance", "--mock", "directory"]);
        if let Some(path) = connector {
            command.args(["--connector", path]);
        }
        command.output().unwrap()
    };
    let good = run(Some(env!("TEMPLATE_WASM")));
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    assert!(String::from_utf8_lossy(&good.stdout).contains("grant-revoke-cycle:role"));
    let bad = run(Some(env!("TEMPLATE_BROKEN_REPEAT_CURSOR_WASM")));
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("checks failed: paging-complete-no-repeats"), "{stderr}");
    let without = run(None);
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("give --connector"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_retries_through_throttling_and_never_repeats_a_write_of_unknown_outcome() {
    use accessgov_mock::{Fault, FaultPlan, FaultScript};
    let server = DirectoryServer::start_local(DirectoryService::seeded(TOKEN, 3)).await.unwrap();
    let script = |method: &str, path_suffix: &str, attempts| FaultScript {
        method: method.to_string(),
        path_suffix: path_suffix.to_string(),
        attempts,
        seen: 0,
    };
    server.service().traffic().set_faults(FaultPlan {
        scripts: vec![
            // The first listing is throttled: the SDK's client waits and reads again.
            script("GET", "/users", vec![Some(Fault::TooManyRequests { retry_after: Some(0) })]),
            // The first creation is applied but its answer is lost.
            script("POST", "/users", vec![Some(Fault::AppliedButLost)]),
        ],
        ..FaultPlan::default()
    });
    let host = host();
    let mut tenant = server.tenant("directory-faults", env!("TEMPLATE_WASM"), TOKEN);
    tenant
        .settings
        .insert("retry-base-ms".into(), accessgov_host::tenant::SettingValue::Integer(1));
    host.add_tenant(&tenant, Path::new(".")).unwrap();
    let page =
        host.list_accounts("directory-faults", PageRequest { cursor: None, size: None }).await;
    assert_eq!(page.unwrap().result.unwrap().accounts.len(), 3);

    let who = AccountRef::Email("lost.answer@directory.example.com".to_string());
    let apply = ChangeOptions { dry_run: false };
    let report = host.grant("directory-faults", who.clone(), "access".into(), apply).await.unwrap();
    let message = format!("{:?}", report.result.unwrap_err());
    assert!(message.contains("may or may not have been applied"), "{message}");
    let posts = server.service().traffic().requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1, "a write whose answer was lost is not sent again");
    // It was applied: the next grant finds the person and sends nothing.
    let again = host.grant("directory-faults", who, "access".into(), apply).await.unwrap();
    assert_eq!(again.result.unwrap().outcome, ChangeOutcome::AlreadyInState);
    assert_eq!(server.service().users().len(), 4);
}

#[test]
fn the_tenants_file_harness_mock_prints_for_the_directory_works_under_its_faults() {
    use std::io::{BufRead, BufReader};
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("directory-mock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The first four listings are throttled: the first call spends its four attempts on them,
    // the next one goes through.
    let plan = dir.join("faults.toml");
    let throttled = ["{ kind = \"too-many-requests\", retry_after = 0 }"; 4].join(", ");
    let script = format!(
        "[[script]]\nmethod = \"GET\"\npath_suffix = \"/users\"\nattempts = [{throttled}]\n"
    );
    std::fs::write(&plan, script).unwrap();
    let harness = crate::conformance::harness();
    let mut mock = std::process::Command::new(&harness)
        .args(["mock", "--service", "directory", "--port", "0", "--members", "4", "--faults"])
        .arg(&plan)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let mut in_file = false;
    for line in BufReader::new(mock.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("press Ctrl-C") {
            break;
        }
        if line.starts_with("tenants file") {
            in_file = true;
        } else if in_file {
            printed.push_str(&line);
            printed.push('\n');
        }
    }
    let printed = printed
        .replace("target/wasm32-wasip2/release/template_connector.wasm", env!("TEMPLATE_WASM"));
    let tenants = dir.join("tenants.toml");
    std::fs::write(&tenants, &printed).unwrap();
    let list = || {
        std::process::Command::new(&harness)
            .arg("--cache-dir")
            .arg(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache"))
            .args(["accounts", "--json", "--tenants"])
            .arg(&tenants)
            .output()
            .unwrap()
    };
    let throttled = list();
    let accounts = list();
    let _ = mock.kill();
    let _ = mock.wait();
    let stderr = String::from_utf8_lossy(&throttled.stderr);
    assert!(!throttled.status.success() && stderr.contains("throttled"), "{stderr}");
    assert!(accounts.status.success(), "{}", String::from_utf8_lossy(&accounts.stderr));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&accounts.stdout).unwrap();
    assert_eq!(listed.len(), 4);

    let seeded = std::process::Command::new(&harness)
        .args(["mock", "--service", "directory", "--port", "0", "--seed", "fixture.json"])
        .output()
        .unwrap();
    assert!(!seeded.status.success());
    let stderr = String::from_utf8_lossy(&seeded.stderr);
    assert!(stderr.contains("--seed loads ChatGPT workspaces"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
