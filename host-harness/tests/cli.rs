//! The `harness` binary, run as a user would.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use host_harness::mock::{GenerateSpec, MockServer, MockService, seed};

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
    assert!(stdout.contains("15 accounts"), "{stdout}");
    assert!(
        stdout.contains("ann.lee0@acme.example.com") && stdout.contains("role:owner"),
        "{stdout}"
    );
    assert!(stdout.contains("invited"), "{stdout}");
    assert!(stdout.contains("seat:codex") || stdout.contains("seat:chatgpt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_commands_work_against_a_running_mock() {
    let service = MockService::new();
    service
        .put_workspace(seed::generate("ws-cli", GenerateSpec { members: 30, invites: 4, seed: 3 }));
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
    use std::io::{BufRead, BufReader};
    let mut mock = harness()
        .args(["mock", "--port", "0", "--members", "12", "--invites", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(mock.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let mut in_file = false;
    for line in lines.by_ref() {
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
    assert!(printed.contains("scim-base-url") && printed.contains("path-prefix"), "{printed}");
    let dir = tempdir("printed-tenants");
    let tenants = dir.join("tenants.toml");
    std::fs::write(&tenants, &printed).unwrap();
    // Listing entitlements reads the SCIM groups: it fails unless the SCIM token reaches the
    // directory and the console token the console.
    let (ok, stdout, stderr) = run(&mut tenant_cmd(&tenants, &["entitlements", "--json"]));
    let (accounts_ok, accounts, _) = run(&mut tenant_cmd(&tenants, &["accounts", "--json"]));
    let _ = mock.kill();
    let _ = mock.wait();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("role:admin"), "{stdout}");
    assert!(accounts_ok);
    let accounts: Vec<serde_json::Value> = serde_json::from_str(&accounts).unwrap();
    assert_eq!(accounts.len(), 13);
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
