//! The `harness` binary, run as a user would.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use accessgov_mock::{GenerateSpec, MockServer, MockService, seed};

fn harness() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
    command.arg("--cache-dir").arg(cache);
    command
}

fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn demo_exits_zero_and_prints_the_accounts() {
    let (ok, stdout, stderr) = run(harness().arg("demo"));
    assert!(ok, "stderr: {stderr}");
    // 12 members, 3 invites and 2 join requests.
    assert!(stdout.contains("17 accounts"), "{stdout}");
    assert!(stdout.contains("requested") && stdout.contains("console-group"), "{stdout}");
    assert!(
        stdout.contains("ann.lee0@acme.example.com") && stdout.contains("role:owner"),
        "{stdout}"
    );
    assert!(stdout.contains("invited"), "{stdout}");
    assert!(stdout.contains("seat:codex") || stdout.contains("seat:chatgpt"));
    // The API Platform organization, and one person seen in both.
    assert!(
        stdout.contains("API Platform organization") && stdout.contains("project:"),
        "{stdout}"
    );
    let everywhere = stdout.split("One person across customer").nth(1).unwrap_or_default();
    assert!(everywhere.contains("  demo  ") && everywhere.contains("demo-platform"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_commands_work_against_a_running_mock() {
    let service = MockService::new();
    service.put_workspace(seed::generate(
        "ws-cli",
        GenerateSpec { members: 30, invites: 4, seed: 3, join_requests: 0 },
    ));
    service.add_token("cli-token", "ws-cli", "account-owner");
    let server = MockServer::start_local(service.clone()).await.unwrap();
    let dir = tempdir("tenant-commands");
    let tenants = dir.join("tenants.toml");
    std::fs::write(
        &tenants,
        format!(
            r#"
[[tenant]]
id = "cli"
connector = "chatgpt"
allow-private-addresses = true
allowed-origins = ["{origin}"]
[tenant.settings]
base-url = "{base}"
account-id = "ws-cli"
page-size = 7
[[tenant.credentials]]
origin = "{origin}"
bearer-token-env = "CLI_TEST_TOKEN"
headers = {{ chatgpt-account-id = "ws-cli" }}
"#,
            origin = server.origin(),
            base = server.base_url()
        ),
    )
    .unwrap();
    // The mock serves from the runtime's other worker while this one waits on the process.
    let (ok, stdout, stderr) = run(&mut tenant_cmd(&tenants, &["accounts", "--json"]));
    assert!(ok, "{stderr}");
    let accounts: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(accounts.len(), 34);
    assert_eq!(accounts[0]["status"], "active", "contract names, streamed page by page");
    assert!(accounts.iter().any(|a| a["status"] == "invited"));

    let member = service.workspace("ws-cli").unwrap().members[17].clone();
    let (ok, stdout, stderr) =
        run(&mut tenant_cmd(&tenants, &["account", &member.email, "--json"]));
    assert!(ok, "{stderr}");
    let account: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(account["id"], member.id);

    let (ok, _, stderr) = run(&mut tenant_cmd(&tenants, &["account", "nobody@example.com"]));
    assert!(!ok);
    assert!(stderr.contains("not-found"), "{stderr}");

    // grant / set / revoke, planned first, then applied.
    let email = "cli.newcomer@acme.example.com";
    let (ok, stdout, stderr) =
        run(&mut tenant_cmd(&tenants, &["grant", email, "role:admin", "--dry-run", "--json"]));
    assert!(ok, "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["outcome"], "planned");
    assert!(
        service.workspace("ws-cli").unwrap().invite_by_email(email).is_none(),
        "a dry run writes nothing"
    );
    let (ok, stdout, stderr) = run(&mut tenant_cmd(&tenants, &["grant", email, "role:admin"]));
    assert!(ok && stdout.starts_with("pending:"), "{stdout}{stderr}");
    let (ok, stdout, stderr) =
        run(&mut tenant_cmd(&tenants, &["set", email, "seat", "seat:codex", "--json"]));
    assert!(ok, "{stderr}");
    let set: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(set["replaced"], serde_json::json!(["seat:chatgpt"]));
    let invite = service.workspace("ws-cli").unwrap().invite_by_email(email).cloned().unwrap();
    assert_eq!((invite.role.as_str(), invite.seat_type.as_str()), ("account-admin", "usage_based"));
    let (ok, stdout, _) = run(&mut tenant_cmd(&tenants, &["revoke", email, "workspace"]));
    assert!(ok && stdout.starts_with("applied:"), "{stdout}");
    assert!(service.workspace("ws-cli").unwrap().invite_by_email(email).is_none());
    let (ok, _, stderr) = run(&mut tenant_cmd(&tenants, &["grant", email, "role:king"]));
    assert!(!ok && stderr.contains("not-found"), "{stderr}");

    // Without the token's environment variable the tenant is refused, naming the variable.
    let (ok, _, stderr) = run(tenant_cmd(&tenants, &["info"]).env_remove("CLI_TEST_TOKEN"));
    assert!(!ok);
    assert!(stderr.contains("CLI_TEST_TOKEN"), "{stderr}");
    server.stop().await;
}

#[test]
fn the_tenants_file_harness_mock_prints_works_for_console_and_scim() {
    let (mut mock, printed) = served_mock(&["--port", "0", "--members", "12", "--invites", "1"]);
    assert!(printed.contains("scim-base-url") && printed.contains("path-prefix"), "{printed}");
    let dir = tempdir("printed-tenants");
    let tenants = dir.join("tenants.toml");
    std::fs::write(&tenants, &printed).unwrap();
    // Listing entitlements reads the SCIM groups: it fails unless the SCIM token reaches the
    // directory and the console token the console.
    let owner = ["--tenant", "acct-mock-account-owner"];
    let (ok, stdout, stderr) =
        run(&mut tenant_cmd(&tenants, &[&["entitlements", "--json"][..], &owner].concat()));
    let (accounts_ok, accounts, _) =
        run(&mut tenant_cmd(&tenants, &[&["accounts", "--json"][..], &owner].concat()));
    // The read-only review tenant it prints for the Admin API key lists the active members.
    let review = ["--tenant", "acct-mock-review"];
    let (review_ok, reviewed, review_err) =
        run(&mut tenant_cmd(&tenants, &[&["accounts", "--json"][..], &review].concat()));
    let (tested_ok, tested, _) =
        run(&mut tenant_cmd(&tenants, &[&["test-connection"][..], &review].concat()));
    let _ = mock.kill();
    let _ = mock.wait();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("role:admin") && stdout.contains("console-group"), "{stdout}");
    assert!(accounts_ok);
    let accounts: Vec<serde_json::Value> = serde_json::from_str(&accounts).unwrap();
    // 12 members, an invite and the two join requests it generates by default.
    assert_eq!(accounts.len(), 15);
    assert!(review_ok, "{review_err}");
    let reviewed: Vec<serde_json::Value> = serde_json::from_str(&reviewed).unwrap();
    let active = accounts.iter().filter(|a| a["status"] == "active").count();
    assert_eq!(reviewed.len(), active);
    assert!(
        tested_ok && tested.contains("limitation: pending invites are not visible"),
        "{tested}"
    );
}

#[test]
fn a_malformed_tenants_file_is_reported_with_its_path() {
    let dir = tempdir("malformed");
    let tenants = dir.join("tenants.toml");
    std::fs::write(&tenants, "[[tenant]]\nid = \"x\"\nconector = \"chatgpt\"\n").unwrap();
    let (ok, _, stderr) = run(harness().args(["entitlements", "--tenants"]).arg(&tenants));
    assert!(!ok);
    assert!(stderr.contains("tenants.toml") && stderr.contains("conector"), "{stderr}");
}

fn tenant_cmd(tenants: &std::path::Path, args: &[&str]) -> Command {
    let mut command = harness();
    command.args(args).arg("--tenants").arg(tenants).env("CLI_TEST_TOKEN", "cli-token");
    command
}

fn tempdir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tenants file for workspace `ws` of `server`, holding `token`.
fn tenants_file(dir: &std::path::Path, server: &MockServer, ws: &str, token: &str) -> PathBuf {
    let tenants = dir.join("tenants.toml");
    std::fs::write(
        &tenants,
        format!(
            "[[tenant]]\nid = \"t\"\nconnector = \"chatgpt\"\nallow-private-addresses = true\nallowed-origins = [\"{o}\"]\n[tenant.settings]\nbase-url = \"{b}\"\naccount-id = \"{ws}\"\npage-size = 5\nretry-base-ms = 5\n[[tenant.credentials]]\norigin = \"{o}\"\nbearer-token = \"{token}\"\nheaders = {{ chatgpt-account-id = \"{ws}\" }}\n",
            o = server.origin(),
            b = server.base_url()
        ),
    )
    .unwrap();
    tenants
}

/// Runs `command` with its stdout read by `head -1`, which leaves after one line.
fn into_head(command: &mut Command) -> (Option<i32>, String) {
    use std::process::Stdio;
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let head = Command::new("head").arg("-1").stdin(stdout).output().unwrap();
    assert!(!head.stdout.is_empty());
    let output = child.wait_with_output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_to_a_reader_that_left_ends_quietly() {
    let service = MockService::new();
    service.put_workspace(seed::generate(
        "ws-pipe",
        GenerateSpec { members: 400, invites: 3, seed: 4, join_requests: 0 },
    ));
    service.add_token("pipe-token", "ws-pipe", "account-owner");
    let server = MockServer::start_local(service).await.unwrap();
    let tenants = tenants_file(&tempdir("pipe"), &server, "ws-pipe", "pipe-token");
    for args in [&["accounts"][..], &["accounts", "--json"], &["entitlements"]] {
        let (code, stderr) = tokio::task::block_in_place(|| {
            into_head(harness().args(args).arg("--tenants").arg(&tenants))
        });
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
    }
    // The mock prints its tenants file, then keeps serving whoever reads it.
    let mut mock = harness();
    mock.args(["mock", "--port", "0", "--members", "3"]);
    let mut child = mock
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let head = Command::new("head").arg("-1").stdin(stdout).output().unwrap();
    assert!(String::from_utf8_lossy(&head.stdout).contains("mock ChatGPT service at"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(child.try_wait().unwrap().is_none(), "the mock is still serving");
    child.kill().unwrap();
    let stderr = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_fails_partway_prints_no_truncated_json() {
    let service = MockService::new();
    service.put_workspace(seed::generate(
        "ws-part",
        GenerateSpec { members: 40, invites: 0, seed: 4, join_requests: 0 },
    ));
    service.add_token("part-token", "ws-part", "account-owner");
    // Pages of 5: the third page's read fails every attempt.
    service.set_faults(accessgov_mock::FaultPlan {
        scripts: vec![accessgov_mock::FaultScript {
            method: "GET".into(),
            path_suffix: "/users".into(),
            attempts: [
                vec![None; 2],
                vec![Some(accessgov_mock::Fault::ServerError { status: 503 }); 50],
            ]
            .concat(),
            seen: 0,
        }],
        ..Default::default()
    });
    let server = MockServer::start_local(service).await.unwrap();
    let tenants = tenants_file(&tempdir("part"), &server, "ws-part", "part-token");
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        run(harness().args(["accounts", "--json", "--tenants"]).arg(&tenants))
    });
    assert!(!ok);
    assert_eq!(stdout, "", "nothing half-printed");
    assert!(
        stderr.contains("listing accounts stopped after") && stderr.contains("nothing was printed"),
        "{stderr}"
    );
}

#[test]
fn endless_or_oversized_inputs_are_refused_with_their_cap() {
    let dir = tempdir("endless");
    let tenants = dir.join("tenants.toml");
    std::fs::write(&tenants, "[[tenant]]\nid = \"x\"\nconnector = \"chatgpt\"\n").unwrap();
    let (ok, _, stderr) =
        run(harness().args(["apply", "--csv", "/dev/zero", "--tenants"]).arg(&tenants));
    assert!(!ok);
    assert!(stderr.contains("/dev/zero is larger than 16384 KiB"), "{stderr}");
    let (ok, _, stderr) = run(harness().args(["accounts", "--tenants", "/dev/zero"]));
    assert!(!ok);
    assert!(stderr.contains("/dev/zero") && stderr.contains("larger than"), "{stderr}");
    let (ok, _, stderr) = run(harness().args(["mock", "--port", "0", "--members", "100000000"]));
    assert!(!ok);
    assert!(
        stderr.contains("`members` is 100000000; a generated workspace has at most"),
        "{stderr}"
    );
    let faults = dir.join("faults.toml");
    std::fs::write(&faults, "[random]\nrate = 7.5\nseed = 1\n").unwrap();
    let (ok, _, stderr) = run(harness().args(["mock", "--port", "0", "--faults"]).arg(&faults));
    assert!(!ok);
    assert!(stderr.contains("rate 7.5 is not a probability"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_refuses_a_subject_that_is_an_account_and_changes_nothing() {
    let service = MockService::new();
    service.put_workspace(seed::generate(
        "ws-subject",
        GenerateSpec { members: 12, invites: 2, seed: 4, join_requests: 0 },
    ));
    service.add_token("subject-token", "ws-subject", "account-owner");
    let server = MockServer::start_local(service.clone()).await.unwrap();
    let before = service.workspace("ws-subject").unwrap();
    let owner = before.members[0].email.clone();
    assert_eq!(before.members[0].role, "account-owner");
    let tenants = tenants_file(&tempdir("subject"), &server, "ws-subject", "subject-token");
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        run(harness().args(["conformance", "--subject", &owner, "--tenants"]).arg(&tenants))
    });
    assert!(!ok);
    assert!(stderr.contains("is already an account") && stderr.contains(&owner), "{stderr}");
    assert_eq!(service.workspace("ws-subject").unwrap(), before, "the Owner is untouched");
    assert!(service.requests().iter().all(|r| !r.is_write()), "nothing was written");
    // Not an address at all is a usage error, before anything runs.
    let (ok, _, stderr) = run(harness()
        .args(["conformance", "--subject", "not an email", "--tenants"])
        .arg(&tenants));
    assert!(!ok);
    assert!(stderr.contains("invalid value 'not an email' for '--subject"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_connector_files_that_are_wrong_are_named_once_and_plainly() {
    let service = MockService::new();
    service.put_workspace(seed::generate(
        "ws-set",
        GenerateSpec { members: 3, invites: 0, seed: 4, join_requests: 0 },
    ));
    service.add_token("set-token", "ws-set", "account-owner");
    let server = MockServer::start_local(service.clone()).await.unwrap();
    let dir = tempdir("settings");
    let good = std::fs::read_to_string(tenants_file(&dir, &server, "ws-set", "set-token")).unwrap();
    let write = |text: String| {
        let path = dir.join("variant.toml");
        std::fs::write(&path, text).unwrap();
        path
    };
    // A misspelt key is refused, naming it and the key meant; nothing is sent.
    let misspelt = write(good.replace("page-size = 5", "page_size = 5\nbogus-setting = 1"));
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        run(harness().args(["accounts", "--tenants"]).arg(&misspelt))
    });
    assert!(!ok);
    assert!(
        stderr
            .contains("`page_size` is not a setting of this connector (did you mean `page-size`?)"),
        "{stderr}"
    );
    assert!(stderr.contains("`bogus-setting` is not a setting"), "{stderr}");
    assert!(service.requests().iter().all(|r| r.method != "GET" || !r.path.contains("/users")));
    // A base URL carrying credentials is refused without echoing them.
    let with_password =
        write(good.replace("base-url = \"http://", "base-url = \"http://admin:hunter2@"));
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        run(harness().args(["test-connection", "--tenants"]).arg(&with_password))
    });
    assert!(!ok);
    assert!(
        stderr.contains("must not carry credentials") && !stderr.contains("hunter2"),
        "{stderr}"
    );
    // A missing connector file: one plain reason, naming the tenant.
    let missing = write(good.replace("connector = \"chatgpt\"", "connector = \"nowhere.wasm\""));
    let (ok, _, stderr) = run(harness().args(["info", "--tenants"]).arg(&missing));
    assert!(!ok);
    assert!(stderr.contains("tenant `t`: could not read connector file"), "{stderr}");
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
    // Random bytes as a connector: what is wrong, not a hex dump.
    std::fs::write(
        dir.join("random.wasm"),
        (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let random = write(good.replace("connector = \"chatgpt\"", "connector = \"random.wasm\""));
    let (ok, _, stderr) = run(harness().args(["--no-cache", "info", "--tenants"]).arg(&random));
    assert!(!ok);
    assert!(stderr.contains("is not a valid WebAssembly component"), "{stderr}");
    assert!(stderr.len() < 1000, "{} bytes: {stderr}", stderr.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_change_cut_off_by_its_budget_prints_the_writes_it_may_have_made() {
    let service = MockService::new();
    service.put_workspace(seed::generate(
        "ws-single",
        GenerateSpec { members: 6, invites: 0, seed: 4, join_requests: 0 },
    ));
    service.add_token("single-token", "ws-single", "account-owner");
    service.set_faults(accessgov_mock::FaultPlan {
        scripts: vec![accessgov_mock::FaultScript {
            method: "PATCH".into(),
            path_suffix: String::new(),
            attempts: vec![Some(accessgov_mock::Fault::Slow { millis: 5_000 })],
            seen: 0,
        }],
        ..Default::default()
    });
    let member = service
        .workspace("ws-single")
        .unwrap()
        .members
        .into_iter()
        .find(|m| m.role == "standard-user" && !m.is_scim_managed && m.deactivated_time.is_none())
        .unwrap();
    let server = MockServer::start_local(service).await.unwrap();
    let dir = tempdir("single");
    let tenants = tenants_file(&dir, &server, "ws-single", "single-token");
    let text =
        std::fs::read_to_string(&tenants).unwrap() + "[tenant.limits]\ncall-timeout-ms = 1500\n";
    std::fs::write(&tenants, text).unwrap();
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        run(harness().args(["grant", &member.email, "role:admin", "--tenants"]).arg(&tenants))
    });
    assert!(!ok);
    assert!(stderr.contains("time budget"), "{stderr}");
    assert!(stdout.contains("the writes the host saw it send"), "{stdout}");
    assert!(
        stdout.contains(r#"PATCH /backend-api/accounts/ws-single/users/"#)
            && stdout.contains(r#"{"role":"account-admin"}: no answer (it may have been applied)"#),
        "{stdout}"
    );
}

/// Serves `harness mock` with `args` and returns it with the tenants file it printed.
fn served_mock(args: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut mock =
        harness().arg("mock").args(args).stdout(std::process::Stdio::piped()).spawn().unwrap();
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
    (mock, printed)
}

#[test]
fn harness_mock_serves_an_api_platform_organization_generated_or_from_a_fixture() {
    let dir = tempdir("platform-mock");
    let (mut mock, printed) =
        served_mock(&["--service", "platform", "--port", "0", "--users", "30", "--projects", "3"]);
    let tenants = dir.join("generated.toml");
    std::fs::write(&tenants, &printed).unwrap();
    let (ok, stdout, stderr) = run(&mut tenant_cmd(&tenants, &["accounts", "--json"]));
    mock.kill().unwrap();
    let _ = mock.wait();
    assert!(ok, "{stderr}");
    let accounts: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let users = accounts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["id"].as_str().unwrap().starts_with("user-"));
    assert_eq!(users.count(), 30);

    // A fixture: an organization as the mock serializes it.
    let spec =
        accessgov_mock::platform::PlatformSpec { users: 4, projects: 2, ..Default::default() };
    let org = accessgov_mock::platform::generate("fixture.example.com", spec);
    let fixture = dir.join("organization.json");
    std::fs::write(&fixture, serde_json::to_string(&org).unwrap()).unwrap();
    let path = fixture.to_str().unwrap();
    let (mut mock, printed) = served_mock(&[
        "--service",
        "platform",
        "--port",
        "0",
        "--seed",
        path,
        "--admin-key",
        "k-1",
    ]);
    let tenants = dir.join("fixture.toml");
    std::fs::write(&tenants, &printed).unwrap();
    let (ok, stdout, stderr) =
        run(&mut tenant_cmd(&tenants, &["account", "user2@fixture.example.com"]));
    mock.kill().unwrap();
    let _ = mock.wait();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("organization") && stdout.contains("org-role:reader"), "{stdout}");

    // Bad arguments are refused saying which.
    let (ok, _, stderr) =
        run(harness().args(["mock", "--service", "platform", "--users", "100001"]));
    assert!(!ok && stderr.contains("--users 100001"), "{stderr}");
    std::fs::write(&fixture, "{\"users\": 3}").unwrap();
    let (ok, _, stderr) = run(harness().args(["mock", "--service", "platform", "--seed", path]));
    assert!(!ok && stderr.contains("not an API Platform organization"), "{stderr}");
}
