//! The conformance kit passes the ChatGPT connector and fails two deliberately broken builds of
//! it, naming the broken check, through the library and through `harness conformance`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use accessgov_conformance::{self as conformance, CheckResult, ConformanceOptions, Verdict};

use crate::common::{OWNER_TOKEN, host, mock};

async fn suite(connector: Option<&str>, ws: &str) -> Vec<CheckResult> {
    let server = mock(ws, 35, 5).await;
    let host = host();
    let mut tenant = server.chatgpt_tenant(ws, ws, OWNER_TOKEN);
    if let Some(path) = connector {
        tenant.connector = path.to_string();
    }
    let before = server.service().workspace(ws).unwrap();
    let results = conformance::run(&host, &tenant, Path::new("."), &ConformanceOptions::default())
        .await
        .unwrap();
    for r in &results {
        println!("{ws}: {} {:?} {}", r.check, r.verdict, r.detail);
    }
    // The suite leaves the workspace as it found it: the same people, roles and seats.
    let after = server.service().workspace(ws).unwrap();
    let people = |w: &accessgov_mock::Workspace| {
        let members =
            w.members.iter().map(|m| (m.email.clone(), m.role.clone(), m.seat_type.clone()));
        let invites = w
            .invites
            .iter()
            .map(|i| (i.email_address.clone(), i.role.clone(), i.seat_type.clone()));
        members.chain(invites).collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(people(&after), people(&before));
    results
}

fn failed(results: &[CheckResult]) -> Vec<&str> {
    results.iter().filter(|r| r.verdict == Verdict::Fail).map(|r| r.check.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chatgpt_connector_passes_every_check() {
    let results = suite(None, "ws-conf-ok").await;
    assert_eq!(failed(&results), Vec::<&str>::new());
    assert!(results.iter().all(|r| r.verdict == Verdict::Pass), "nothing skipped: {results:?}");
    for check in [
        "paging-complete-no-repeats",
        "dry-run-writes-nothing",
        "grant-revoke-cycle:role",
        "bad-credentials-unauthenticated",
    ] {
        assert!(results.iter().any(|r| r.check == check), "{check} ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_repeats_a_cursor_fails_the_paging_check() {
    let results = suite(Some(env!("BROKEN_REPEAT_CURSOR_WASM")), "ws-conf-cursor").await;
    assert_eq!(failed(&results), ["paging-complete-no-repeats"]);
    let paging = results.iter().find(|r| r.check == "paging-complete-no-repeats").unwrap();
    assert!(paging.detail.contains("cursor repeated"), "{}", paging.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_writes_during_dry_run_fails_the_dry_run_check() {
    let results = suite(Some(env!("BROKEN_DRY_RUN_WRITES_WASM")), "ws-conf-dry").await;
    assert_eq!(failed(&results), ["dry-run-writes-nothing"]);
    let dry = results.iter().find(|r| r.check == "dry-run-writes-nothing").unwrap();
    assert!(dry.detail.contains("a dry run sent POST"), "{}", dry.detail);
}

/// The `harness` binary that `cargo test --workspace` built beside this test.
pub(crate) fn harness() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let harness = dir.join(format!("harness{}", std::env::consts::EXE_SUFFIX));
    assert!(harness.is_file(), "{} is missing: run `cargo test --workspace`", harness.display());
    harness
}

#[test]
fn harness_conformance_exits_non_zero_naming_the_failed_check() {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    let run = |connector: Option<&str>| {
        let mut command = Command::new(harness());
        command.arg("--cache-dir").arg(&cache).arg("conformance");
        if let Some(path) = connector {
            command.args(["--connector", path]);
        }
        command.output().unwrap()
    };
    let good = run(None);
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let bad = run(Some(env!("BROKEN_DRY_RUN_WRITES_WASM")));
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("1 of 14 checks failed: dry-run-writes-nothing"), "{stderr}");
    assert!(String::from_utf8_lossy(&bad.stdout).contains("FAIL"));
}

/// The suite against an API Platform organization, checking it is left as it was found.
async fn platform_suite(connector: Option<&str>) -> Vec<CheckResult> {
    use accessgov_mock::platform::{PlatformServer, PlatformService, PlatformSpec, generate};
    let spec = PlatformSpec { users: 31, projects: 3, groups: 2, ..PlatformSpec::default() };
    let org = generate("conformance.example.com", spec);
    let server =
        PlatformServer::start_local(PlatformService::new(org.clone(), "conf-key")).await.unwrap();
    let host = host();
    let tenant = server.tenant("platform-conf", connector.unwrap_or("openai-platform"), "conf-key");
    let results = conformance::run(&host, &tenant, Path::new("."), &ConformanceOptions::default())
        .await
        .unwrap();
    for r in &results {
        println!("platform: {} {:?} {}", r.check, r.verdict, r.detail);
    }
    let after = server.service().organization();
    assert_eq!(after.users, org.users);
    let pending = |o: &accessgov_mock::platform::Organization| {
        o.invites
            .iter()
            .map(|i| (i.email.clone(), i.status.clone(), i.role.clone(), i.projects.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(pending(&after), pending(&org), "the suite's invites are gone again");
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_connector_passes_and_its_broken_builds_fail_by_name() {
    let results = platform_suite(None).await;
    assert_eq!(failed(&results), Vec::<&str>::new());
    for check in [
        "grant-revoke-cycle:access",
        "grant-revoke-cycle:org-role",
        "grant-revoke-cycle:project-role",
        "exclusive-grant-reports-replaced:org-role",
    ] {
        let found = results.iter().find(|r| r.check == check);
        assert_eq!(found.map(|r| r.verdict), Some(Verdict::Pass), "{check}");
    }
    // Groups and custom roles hold members only, and the suite's subject is only invited: the
    // connector's refusal is what the suite sees, and it says so rather than fail or pass.
    for check in ["grant-revoke-cycle:group", "grant-revoke-cycle:custom-role"] {
        let found = results.iter().find(|r| r.check == check).unwrap();
        assert_eq!(found.verdict, Verdict::Skip, "{check}");
        assert!(found.detail.contains("hold members only"), "{}", found.detail);
    }
    let cursor = platform_suite(Some(env!("PLATFORM_BROKEN_REPEAT_CURSOR_WASM"))).await;
    assert_eq!(failed(&cursor), ["paging-complete-no-repeats"]);
    let dry = platform_suite(Some(env!("PLATFORM_BROKEN_DRY_RUN_WRITES_WASM"))).await;
    assert_eq!(failed(&dry), ["dry-run-writes-nothing"]);
}

#[test]
fn harness_conformance_checks_the_platform_connector_against_its_mock() {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    let run = |connector: Option<&str>| {
        let mut command = Command::new(harness());
        command.arg("--cache-dir").arg(&cache).args(["conformance", "--mock", "platform"]);
        if let Some(path) = connector {
            command.args(["--connector", path]);
        }
        command.output().unwrap()
    };
    let good = run(None);
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let bad = run(Some(env!("PLATFORM_BROKEN_REPEAT_CURSOR_WASM")));
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("checks failed: paging-complete-no-repeats"), "{stderr}");
}
