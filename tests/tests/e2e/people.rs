//! One view of a person across a customer's tenants: a ChatGPT workspace and an API Platform
//! organization sharing 200 people, through the host library and through `harness people`,
//! with one tenant's service going down part-way.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use accessgov_host::people::PeopleEvent;
use accessgov_host::tenant::SettingValue;
use accessgov_mock::MockServer;
use accessgov_mock::platform::{PlatformServer, PlatformSpec};

use crate::common::{OWNER_TOKEN, add, harness, host, mock, scratch};
use crate::platform::{ADMIN_KEY, platform, platform_tenant};

const WORKSPACE: &str = "ws-acme";

/// A workspace of 250 members and an organization of 220 users, 200 of whom are members of the
/// workspace too (their addresses written in another case).
async fn customer() -> (MockServer, PlatformServer, Vec<String>) {
    let chatgpt = mock(WORKSPACE, 250, 3).await;
    let spec = PlatformSpec { users: 220, projects: 3, groups: 2, ..PlatformSpec::default() };
    let platform = platform("platform-only.example.com", spec).await;
    let members = chatgpt.service().workspace(WORKSPACE).unwrap().members;
    let shared: Vec<String> = members.iter().take(200).map(|m| m.email.to_lowercase()).collect();
    platform.service().update(|org| {
        for (user, email) in org.users.iter_mut().zip(&shared) {
            user.email = email.to_uppercase();
        }
    });
    (chatgpt, platform, shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_people_are_shown_in_each_tenant_and_a_failing_tenant_is_reported() {
    let (chatgpt, platform_server, shared) = customer().await;
    let host = host();
    let mut workspace = chatgpt.chatgpt_tenant("acme-chatgpt", WORKSPACE, OWNER_TOKEN);
    workspace.customer = Some("acme".into());
    workspace.settings.insert("retry-base-ms".into(), SettingValue::Integer(5));
    let mut organization = platform_tenant(&platform_server, "acme-platform");
    organization.customer = Some("acme".into());
    let mut other = platform_tenant(&platform_server, "globex-platform");
    other.customer = Some("globex".into());
    for tenant in [&workspace, &organization, &other] {
        add(&host, tenant);
    }
    assert_eq!(host.customer_tenants("acme"), ["acme-chatgpt", "acme-platform"]);

    // The workspace's service goes down once its first page has been shown.
    let mut events = Vec::new();
    let outcomes = host
        .people("acme", None, Some(50), |event| {
            if matches!(&event, PeopleEvent::Account(a) if a.tenant == "acme-chatgpt") {
                chatgpt.service().set_down(true);
            }
            events.push(event);
        })
        .await
        .unwrap();
    let failed = &outcomes[0];
    assert_eq!(failed.tenant, "acme-chatgpt");
    assert_eq!(failed.accounts, 50, "the page before the failure was shown");
    assert!(failed.error.as_deref().is_some_and(|e| e.contains("unavailable")), "{failed:?}");
    let listed = &outcomes[1];
    assert_eq!((listed.tenant.as_str(), listed.error.as_deref()), ("acme-platform", None));
    let held: BTreeMap<String, BTreeSet<String>> =
        events.iter().fold(BTreeMap::new(), |mut held, event| {
            if let PeopleEvent::Account(a) = event {
                held.entry(a.email.clone()).or_default().insert(a.tenant.clone());
            }
            held
        });
    for email in &shared {
        assert!(held[email].contains("acme-platform"), "{email}");
    }
    // The first page's people are shown in both, matched whatever the case of their address.
    let both = held.values().filter(|t| t.len() == 2).count();
    assert_eq!(both, 50);
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, PeopleEvent::Account(a) if a.tenant == "globex-platform"))
    );
    assert!(matches!(
        host.people("initech", None, None, |_| {}).await,
        Err(accessgov_host::HostError::UnknownCustomer(_))
    ));
}

/// A tenants file of both tenants of customer `acme`.
fn tenants_file(dir: &Path, chatgpt: &MockServer, platform: &PlatformServer) -> PathBuf {
    let origin = chatgpt.origin();
    let platform_origin = format!("http://{}", platform.addr());
    let text = format!(
        r#"[[tenant]]
id = "acme-chatgpt"
customer = "acme"
connector = "chatgpt"
allow-private-addresses = true
allowed-origins = ["{origin}"]
[tenant.settings]
base-url = "{origin}/backend-api"
account-id = "{WORKSPACE}"
retry-base-ms = 5
[[tenant.credentials]]
origin = "{origin}"
bearer-token = "{OWNER_TOKEN}"
headers = {{ chatgpt-account-id = "{WORKSPACE}" }}

[[tenant]]
id = "acme-platform"
customer = "acme"
connector = "openai-platform"
allow-private-addresses = true
allowed-origins = ["{platform_origin}"]
[tenant.settings]
base-url = "{}"
retry-base-ms = 5
[[tenant.credentials]]
origin = "{platform_origin}"
bearer-token = "{ADMIN_KEY}"
"#,
        platform.base_url()
    );
    let path = dir.join("tenants.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_people_lists_each_person_everywhere_and_names_a_tenant_it_could_not_read() {
    let (chatgpt, platform_server, shared) = customer().await;
    let dir = scratch("people");
    let file = tenants_file(&dir, &chatgpt, &platform_server);

    let (ok, stdout, stderr) = harness(&["people", "--customer", "acme", "--json"], &file);
    assert!(ok, "{stderr}");
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut tenants = Vec::new();
    for line in stdout.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        match event["event"].as_str() {
            Some("account") => {
                let email = event["email"].as_str().unwrap().to_string();
                held.entry(email).or_default().insert(event["tenant"].as_str().unwrap().into());
                assert!(event["account"]["entitlements"].is_array());
            }
            Some("tenant") => tenants.push(event),
            other => panic!("unexpected line {other:?}: {line}"),
        }
    }
    for email in &shared {
        assert_eq!(held[email].len(), 2, "{email} in both: {:?}", held[email]);
    }
    assert_eq!(tenants.len(), 2);
    assert!(tenants.iter().all(|t| t["error"].is_null()), "{tenants:?}");

    // One person, asked for in another case: one line per tenant holding them.
    let person = shared[7].to_uppercase();
    let (ok, stdout, stderr) =
        harness(&["people", "--customer", "acme", "--email", &person], &file);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines.iter().all(|l| l.starts_with(&shared[7])), "{stdout}");
    assert!(lines[1].contains("acme-platform") && lines[1].contains("org-role:"), "{stdout}");

    // The organization's service is gone: it is reported, and the workspace still listed.
    platform_server.stop().await;
    let (ok, stdout, stderr) = harness(&["people", "--customer", "acme"], &file);
    assert!(!ok);
    assert!(
        stderr.contains("1 of 2 tenants of customer acme could not be read whole: acme-platform"),
        "{stderr}"
    );
    assert!(stdout.contains("# acme-platform: FAILED after 0 accounts"), "{stdout}");
    let workspace_lines = stdout.lines().filter(|l| l.contains("\tacme-chatgpt\t")).count();
    assert_eq!(workspace_lines, 253, "every member and invite of the workspace");
}
