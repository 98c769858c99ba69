//! `harness serve` end to end: the real server over HTTP, the real host, the mocks on loopback.
//! Every endpoint and every error status, each answer checked against the OpenAPI document the
//! server serves; keys that see only their own tenants; a cancelled job that says what it sent;
//! a large sync in bounded memory; SIGTERM under load; and the Python client.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use accessgov_mock::platform::PlatformServer;
use accessgov_mock::{Fault, FaultPlan, FaultScript, MockServer};
use accessgov_server::config::key_hash;
use accessgov_server::{Server, ServerConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::common::{OWNER_TOKEN, host, mock, scratch};
use crate::platform::{ADMIN_KEY, platform};

/// An answer of the server.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    bytes: Bytes,
}

impl Answer {
    /// An answer of `status` with `bytes`.
    pub(crate) fn new(status: u16, bytes: Bytes) -> Answer {
        Answer { status, content_type: String::new(), headers: Vec::new(), bytes }
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// One HTTP/1.1 request.
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request =
        hyper::Request::builder().method(method).uri(path).header("host", addr.to_string());
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let payload = match body {
        Some((content_type, bytes)) => {
            request = request.header("content-type", content_type);
            bytes
        }
        None => Vec::new(),
    };
    let response =
        sender.send_request(request.body(Full::new(Bytes::from(payload))).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let content_type = headers
        .iter()
        .find(|(n, _)| n == "content-type")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, content_type, headers, bytes }
}

pub(crate) fn json_body(value: &Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", value.to_string().into_bytes()))
}

/// The server's OpenAPI document, and every answer seen, to be checked against it.
struct Contract {
    doc: Value,
    seen: Mutex<Vec<(String, String, u16, Answer)>>,
}

impl Contract {
    /// Checks every answer seen against the document, and that every documented operation
    /// was exercised.
    fn verify(&self) {
        let exercised = self.verify_answers();
        for (template, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                assert!(
                    exercised.contains(&(template.clone(), method.clone())),
                    "{method} {template} never exercised"
                );
            }
        }
    }

    /// Checks every answer seen against the document; returns the operations exercised.
    fn verify_answers(&self) -> BTreeSet<(String, String)> {
        let components = self.doc["components"].clone();
        let mut exercised = BTreeSet::new();
        for (template, method, status, answer) in self.seen.lock().unwrap().iter() {
            let operation = &self.doc["paths"][template][method.to_lowercase()];
            assert!(operation.is_object(), "{method} {template} is not in the document");
            exercised.insert((template.clone(), method.to_lowercase()));
            let response = &operation["responses"][status.to_string()];
            assert!(
                response.is_object(),
                "{method} {template}: status {status} is not documented: {}",
                answer.text()
            );
            let content = &response["content"];
            let Some((media, described)) = content.as_object().and_then(|c| c.iter().next()) else {
                assert!(
                    answer.bytes.is_empty(),
                    "{method} {template} {status}: a body where none is documented"
                );
                continue;
            };
            if media != "application/json" {
                assert!(
                    answer.content_type.starts_with(media.split(';').next().unwrap()),
                    "{method} {template}: {} is not {media}",
                    answer.content_type
                );
                continue;
            }
            let mut schema = described["schema"].clone();
            schema.as_object_mut().unwrap().insert("components".into(), components.clone());
            let validator = jsonschema::validator_for(&schema).unwrap();
            let body = answer.json();
            let errors: Vec<String> = validator.iter_errors(&body).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{method} {template} {status}: {errors:?} in {body}");
        }
        exercised
    }
}

/// A server running in this process.
struct Running {
    addr: SocketAddr,
    audit: PathBuf,
    contract: Arc<Contract>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// Sends a request as `key`; `template` names the documented path it is checked against.
    async fn send(
        &self,
        method: &str,
        template: &str,
        path: &str,
        key: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Answer {
        let answer = call(self.addr, method, path, key, body).await;
        let copy = Answer {
            status: answer.status,
            content_type: answer.content_type.clone(),
            headers: answer.headers.clone(),
            bytes: answer.bytes.clone(),
        };
        self.contract.seen.lock().unwrap().push((
            template.into(),
            method.into(),
            answer.status,
            copy,
        ));
        answer
    }

    fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The keys of the tests, by secret: `ops` (an operator of customer acme), `reader` (read-only,
/// acme), `other` (tenant globex only), `slow` (two requests a minute).
const KEYS: &str = r#"
[[key]]
id = "ops"
sha256 = "OPS"
customers = ["acme"]
access = "read-write"
operator = true
[[key]]
id = "reader"
sha256 = "READER"
customers = ["acme"]
access = "read-only"
[[key]]
id = "other"
sha256 = "OTHER"
tenants = ["globex"]
access = "read-write"
[[key]]
id = "slow"
sha256 = "SLOW"
customers = ["acme"]
access = "read-only"
requests-per-minute = 2
"#;

async fn start(name: &str, limits: &str) -> Running {
    let dir = scratch(&format!("server-{name}"));
    let keys = KEYS
        .replace("\"OPS\"", &format!("\"{}\"", key_hash("ops-key")))
        .replace("\"READER\"", &format!("\"{}\"", key_hash("reader-key")))
        .replace("\"OTHER\"", &format!("\"{}\"", key_hash("other-key")))
        .replace("\"SLOW\"", &format!("\"{}\"", key_hash("slow-key")));
    let text = format!("audit-log = \"audit.jsonl\"\n{limits}\n{keys}");
    std::fs::write(dir.join("server.toml"), &text).unwrap();
    let config = ServerConfig::read(&dir.join("server.toml")).unwrap();
    let host = host();
    for (name, named) in bundled_connectors::named() {
        host.add_named_connector(&name, &named).unwrap();
    }
    let server =
        Server::new(&config, host, accessgov_server::dispatch::Backend::Local).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    let doc: Value = call(addr, "GET", "/openapi.json", None, None).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let contract = Arc::new(Contract { doc, seen: Mutex::new(Vec::new()) });
    Running { addr, audit: config.audit_log.clone(), contract, stop: Some(stop) }
}

/// The JSON to register a tenant of the ChatGPT mock.
fn chatgpt_spec(server: &MockServer, workspace: &str, customer: &str) -> Value {
    json!({
        "connector": "chatgpt",
        "customer": customer,
        "allowed_origins": [server.origin()],
        "allow_private_addresses": true,
        "settings": {"base-url": server.base_url(), "account-id": workspace, "retry-base-ms": 5},
        "credentials": [{"origin": server.origin(), "bearer_token": OWNER_TOKEN, "headers": {"chatgpt-account-id": workspace}}]
    })
}

/// Registers workspace `ws` of `workspace` as tenant `tenant` of customer acme, as the `ops` key,
/// through the API at `addr`.
async fn register_workspace(addr: SocketAddr, tenant: &str, workspace: &MockServer, ws: &str) {
    let spec = json_body(&chatgpt_spec(workspace, ws, "acme"));
    let put = call(addr, "PUT", &format!("/v1/tenants/{tenant}"), Some("ops-key"), spec).await;
    assert_eq!(put.status, 200, "{}", put.text());
}

/// The JSON to register a tenant of the API Platform mock, its key in a file.
fn platform_spec(server: &PlatformServer, key_file: &Path) -> Value {
    let origin = format!("http://{}", server.addr());
    json!({
        "connector": "openai-platform",
        "customer": "acme",
        "allowed_origins": [origin],
        "allow_private_addresses": true,
        "settings": {"base-url": server.base_url(), "retry-base-ms": 5},
        "credentials": [{"origin": origin, "bearer_token_file": key_file.display().to_string()}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_as_its_openapi_document_says() {
    let api =
        start("endpoints", "[limits]\nmax-body-bytes = 65536\nmax-upload-bytes = 4194304").await;
    let ops = Some("ops-key");
    let workspace = mock("ws-api", 30, 3).await;
    let org = platform("api.example.com", Default::default()).await;
    let dir = scratch("server-endpoints-files");
    let key_file = dir.join("platform.key");
    std::fs::write(&key_file, ADMIN_KEY).unwrap();

    // Health, readiness, the document itself.
    assert_eq!(api.send("GET", "/healthz", "/healthz", None, None).await.status, 200);
    assert_eq!(api.send("GET", "/readyz", "/readyz", None, None).await.status, 200);

    // Connectors: listed, uploaded (checked as the host checks any), removed.
    let listed = api.send("GET", "/v1/connectors", "/v1/connectors", ops, None).await;
    assert_eq!(listed.status, 200);
    assert!(listed.json().as_array().unwrap().iter().any(|c| c["name"] == "openai-platform"));
    let template = std::fs::read(env!("TEMPLATE_WASM")).unwrap();
    let path = "/v1/connectors/{name}";
    let up = api
        .send(
            "PUT",
            path,
            "/v1/connectors/directory",
            ops,
            Some(("application/wasm", template.clone())),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.text());
    let refused = api
        .send(
            "PUT",
            path,
            "/v1/connectors/junk",
            ops,
            Some(("application/wasm", b"\0asm junk".to_vec())),
        )
        .await;
    assert_eq!(
        (refused.status, refused.json()["type"].as_str()),
        (422, Some("invalid")),
        "{}",
        refused.text()
    );
    let big = api
        .send(
            "PUT",
            path,
            "/v1/connectors/big",
            ops,
            Some(("application/wasm", vec![0u8; 5 << 20])),
        )
        .await;
    assert_eq!(big.status, 413);
    let not_operator = api
        .send(
            "PUT",
            path,
            "/v1/connectors/directory",
            Some("reader-key"),
            Some(("application/wasm", template)),
        )
        .await;
    assert_eq!(not_operator.status, 403);
    assert_eq!(api.send("DELETE", path, "/v1/connectors/directory", ops, None).await.status, 204);
    assert_eq!(api.send("DELETE", path, "/v1/connectors/directory", ops, None).await.status, 404);

    // Tenants: registered (a secret inline, one from a file), refused by name, listed.
    let tenant_path = "/v1/tenants/{tenant}";
    let put = api
        .send(
            "PUT",
            tenant_path,
            "/v1/tenants/acme-ws",
            ops,
            json_body(&chatgpt_spec(&workspace, "ws-api", "acme")),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let put = api
        .send(
            "PUT",
            tenant_path,
            "/v1/tenants/acme-org",
            ops,
            json_body(&platform_spec(&org, &key_file)),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let mut misspelt = chatgpt_spec(&workspace, "ws-api", "acme");
    misspelt["settings"]["acount-id"] = json!("x");
    let bad = api.send("PUT", tenant_path, "/v1/tenants/acme-bad", ops, json_body(&misspelt)).await;
    assert_eq!(bad.status, 422, "{}", bad.text());
    assert!(bad.json()["message"].as_str().unwrap().contains("acount-id"));
    let malformed = api
        .send(
            "PUT",
            tenant_path,
            "/v1/tenants/acme-bad",
            ops,
            Some(("application/json", b"{\"connector\": 3}".to_vec())),
        )
        .await;
    assert_eq!((malformed.status, malformed.json()["type"].as_str()), (400, Some("bad-request")));
    let listed = api.send("GET", "/v1/tenants", "/v1/tenants", ops, None).await;
    let listed_json = listed.json();
    let ids: Vec<&str> =
        listed_json.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["acme-org", "acme-ws"]);
    assert!(
        !listed.text().contains(OWNER_TOKEN) && !listed.text().contains(ADMIN_KEY),
        "no secret is returned"
    );
    let in_use = api.send("DELETE", path, "/v1/connectors/chatgpt", ops, None).await;
    assert_eq!(in_use.status, 409);

    // Reads.
    let t = |suffix: &str| format!("/v1/tenants/acme-ws{suffix}");
    assert_eq!(
        api.send("GET", "/v1/tenants/{tenant}/info", &t("/info"), ops, None).await.json()["name"],
        "chatgpt"
    );
    let tested = api
        .send("POST", "/v1/tenants/{tenant}/test-connection", &t("/test-connection"), ops, None)
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text());
    let page = api
        .send("GET", "/v1/tenants/{tenant}/accounts", &t("/accounts?size=5"), ops, None)
        .await
        .json();
    assert_eq!(page["accounts"].as_array().unwrap().len(), 5);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let next = api
        .send(
            "GET",
            "/v1/tenants/{tenant}/accounts",
            &t(&format!("/accounts?size=5&cursor={cursor}")),
            ops,
            None,
        )
        .await;
    assert_eq!(next.status, 200);
    let tampered = api
        .send("GET", "/v1/tenants/{tenant}/accounts", &t("/accounts?cursor=nonsense"), ops, None)
        .await;
    assert_eq!(
        (tampered.status, tampered.json()["error"].as_str()),
        (422, Some("invalid-argument"))
    );
    let zero =
        api.send("GET", "/v1/tenants/{tenant}/accounts", &t("/accounts?size=0"), ops, None).await;
    assert_eq!(zero.status, 400);
    let email = page["accounts"][1]["email"].as_str().unwrap().to_string();
    let one = api
        .send(
            "GET",
            "/v1/tenants/{tenant}/accounts/{account}",
            &t(&format!("/accounts/{email}")),
            ops,
            None,
        )
        .await;
    assert_eq!(one.json()["email"], email.as_str());
    let none = api
        .send(
            "GET",
            "/v1/tenants/{tenant}/accounts/{account}",
            &t("/accounts/nobody@nowhere.example.com"),
            ops,
            None,
        )
        .await;
    assert_eq!((none.status, none.json()["error"].as_str()), (404, Some("not-found")));
    let ents =
        api.send("GET", "/v1/tenants/{tenant}/entitlements", &t("/entitlements"), ops, None).await;
    assert!(ents.json()["entitlements"].as_array().unwrap().len() > 4);

    // Writes, dry run first.
    let who = json!({"email": "new.hire@acme.example.com"});
    let planned = api
        .send(
            "POST",
            "/v1/tenants/{tenant}/grant",
            &t("/grant"),
            ops,
            json_body(&json!({"account": who, "entitlement": "role:admin", "dry_run": true})),
        )
        .await;
    assert_eq!(planned.json()["outcome"], "planned", "{}", planned.text());
    let granted = api
        .send(
            "POST",
            "/v1/tenants/{tenant}/grant",
            &t("/grant"),
            ops,
            json_body(&json!({"account": who, "entitlement": "role:admin"})),
        )
        .await;
    assert_eq!(granted.json()["outcome"], "pending", "{}", granted.text());
    let set = api
        .send(
            "POST",
            "/v1/tenants/{tenant}/set",
            &t("/set"),
            ops,
            json_body(
                &json!({"account": who, "exclusion_group": "role", "entitlement": "role:member"}),
            ),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
    let revoked = api
        .send(
            "POST",
            "/v1/tenants/{tenant}/revoke",
            &t("/revoke"),
            ops,
            json_body(&json!({"account": who, "entitlement": "workspace"})),
        )
        .await;
    assert_eq!(revoked.json()["outcome"], "applied", "{}", revoked.text());
    let batch = json!({"changes": [
        {"action": "grant", "account": {"email": "b1@acme.example.com"}, "entitlement": "workspace"},
        {"action": "grant", "account": {"email": "b2@acme.example.com"}, "entitlement": "no-such-thing"}
    ]});
    let answered = api
        .send("POST", "/v1/tenants/{tenant}/batch", &t("/batch"), ops, json_body(&batch))
        .await
        .json();
    assert_eq!(answered["results"][0]["result"]["outcome"], "pending");
    assert_eq!(answered["results"][1]["error"]["error"], "not-found");
    let unknown = api
        .send(
            "POST",
            "/v1/tenants/{tenant}/grant",
            &t("/grant"),
            ops,
            json_body(&json!({"account": who, "entitlement": "role:nonsense"})),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let bad_set =
        json!({"changes": [{"action": "set", "account": who, "entitlement": "role:admin"}]});
    assert_eq!(
        api.send("POST", "/v1/tenants/{tenant}/batch", &t("/batch"), ops, json_body(&bad_set))
            .await
            .status,
        400
    );
    let huge = json!({"changes": vec![json!({"action": "grant", "account": who, "entitlement": "workspace"}); 2000]});
    assert_eq!(
        api.send("POST", "/v1/tenants/{tenant}/batch", &t("/batch"), ops, json_body(&huge))
            .await
            .status,
        413
    );

    // The connector's own refusals (422) and conflicts (409), on the organization.
    let o = |suffix: &str| format!("/v1/tenants/acme-org{suffix}");
    let org_state = org.service().organization();
    let bot = org_state.projects[0].service_accounts[0].id.clone();
    let refused = api
        .send(
            "POST",
            "/v1/tenants/{tenant}/grant",
            &o("/grant"),
            ops,
            json_body(&json!({"account": {"id": bot}, "entitlement": "org-role:owner"})),
        )
        .await;
    assert_eq!((refused.status, refused.json()["error"].as_str()), (422, Some("unsupported")));
    let archived = org_state.projects.iter().find(|p| p.is_archived()).unwrap().id.clone();
    let reader = org_state.users.iter().find(|u| u.role == "reader").unwrap().email.clone();
    let conflict = api.send("POST", "/v1/tenants/{tenant}/grant", &o("/grant"), ops, json_body(&json!({"account": {"email": reader}, "entitlement": format!("project:{archived}:member")}))).await;
    assert_eq!((conflict.status, conflict.json()["error"].as_str()), (409, Some("conflict")));

    // Upstream failures: the service failing (502) and too slow for the call's budget (504).
    workspace.service().set_faults(FaultPlan {
        scripts: vec![FaultScript {
            method: "GET".into(),
            path_suffix: "/users".into(),
            attempts: vec![Some(Fault::ServerError { status: 503 }); 20],
            seen: 0,
        }],
        ..FaultPlan::default()
    });
    let failing =
        api.send("GET", "/v1/tenants/{tenant}/accounts", &t("/accounts"), ops, None).await;
    assert_eq!(
        (failing.status, failing.json()["error"].as_str()),
        (502, Some("unavailable")),
        "{}",
        failing.text()
    );
    workspace.service().set_faults(FaultPlan::default());
    let mut slow = chatgpt_spec(&workspace, "ws-api", "acme");
    slow["limits"] = json!({"call_timeout_ms": 300});
    assert_eq!(
        api.send("PUT", tenant_path, "/v1/tenants/acme-slow", ops, json_body(&slow)).await.status,
        200
    );
    workspace.service().set_faults(FaultPlan {
        scripts: vec![FaultScript {
            method: "GET".into(),
            path_suffix: "/users".into(),
            attempts: vec![Some(Fault::Slow { millis: 2000 }); 4],
            seen: 0,
        }],
        ..FaultPlan::default()
    });
    let late = api
        .send("GET", "/v1/tenants/{tenant}/accounts", "/v1/tenants/acme-slow/accounts", ops, None)
        .await;
    assert_eq!(
        (late.status, late.json()["error"].as_str()),
        (504, Some("deadline")),
        "{}",
        late.text()
    );
    workspace.service().set_faults(FaultPlan::default());

    // Keys: none (401), read-only writing (403), over its rate (429), a tenant out of scope (404).
    assert_eq!(api.send("GET", "/v1/tenants", "/v1/tenants", None, None).await.status, 401);
    assert_eq!(
        api.send("GET", "/v1/tenants", "/v1/tenants", Some("wrong-key"), None).await.status,
        401
    );
    let read_only = api
        .send(
            "POST",
            "/v1/tenants/{tenant}/grant",
            &t("/grant"),
            Some("reader-key"),
            json_body(&json!({"account": who, "entitlement": "workspace"})),
        )
        .await;
    assert_eq!(read_only.status, 403);
    for _ in 0..2 {
        assert_eq!(
            api.send("GET", "/v1/tenants", "/v1/tenants", Some("slow-key"), None).await.status,
            200
        );
    }
    let throttled = api.send("GET", "/v1/tenants", "/v1/tenants", Some("slow-key"), None).await;
    assert_eq!(throttled.status, 429);
    assert!(
        throttled.headers.iter().any(|(n, v)| n == "retry-after" && v.parse::<u64>().unwrap() >= 1)
    );
    let hidden = api
        .send(
            "GET",
            "/v1/tenants/{tenant}/info",
            "/v1/tenants/acme-ws/info",
            Some("other-key"),
            None,
        )
        .await;
    assert_eq!(hidden.status, 404);

    // Jobs, metrics, removal.
    let job = api.send("POST", "/v1/tenants/{tenant}/jobs", &t("/jobs"), ops, json_body(&json!({"changes": [{"action": "grant", "account": {"email": "j1@acme.example.com"}, "entitlement": "workspace"}]}))).await;
    assert_eq!(job.status, 202, "{}", job.text());
    let id = job.json()["id"].as_str().unwrap().to_string();
    let done = loop {
        let polled = api
            .send("GET", "/v1/jobs/{job}", &format!("/v1/jobs/{id}?items=true"), ops, None)
            .await
            .json();
        if polled["state"] != "running" {
            break polled;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(done["items"][0]["outcome"], "pending", "{done}");
    assert_eq!(
        api.send("DELETE", "/v1/jobs/{job}", &format!("/v1/jobs/{id}"), ops, None).await.status,
        202
    );
    assert_eq!(api.send("GET", "/v1/jobs/{job}", "/v1/jobs/job-999", ops, None).await.status, 404);
    let metrics = api.send("GET", "/metrics", "/metrics", ops, None).await;
    assert!(
        metrics.text().contains(
            "accessgov_calls_total{tenant=\"acme-ws\",operation=\"list-accounts\",outcome=\"ok\"}"
        ),
        "{}",
        metrics.text()
    );
    assert!(metrics.text().contains("accessgov_egress_requests_total"));
    assert_eq!(api.send("GET", "/metrics", "/metrics", Some("reader-key"), None).await.status, 403);
    let synced = api.send("GET", "/v1/tenants/{tenant}/sync", &t("/sync?size=7"), ops, None).await;
    assert_eq!(synced.content_type, "application/x-ndjson");
    let accounts = workspace.service().workspace("ws-api").unwrap();
    assert!(synced.text().lines().count() >= accounts.members.len());
    assert_eq!(
        api.send("DELETE", tenant_path, "/v1/tenants/acme-slow", ops, None).await.status,
        204
    );
    assert_eq!(
        api.send("DELETE", tenant_path, "/v1/tenants/acme-slow", ops, None).await.status,
        404
    );

    // Every write is on the audit log, with who, which tenant, which change and its outcome.
    let records = api.audit_records();
    let grant = records
        .iter()
        .find(|r| {
            r["operation"] == "grant"
                && !r["dry_run"].as_bool().unwrap()
                && r["tenant"] == "acme-ws"
        })
        .unwrap();
    assert_eq!(grant["key"], "ops");
    assert_eq!(grant["changes"][0]["entitlement"], "role:admin");
    assert_eq!(grant["outcomes"][0], "pending");
    assert!(grant["sent"].as_array().unwrap().iter().any(|s| s["method"] == "POST"));
    assert!(records.iter().any(|r| r["operation"] == "grant"
        && r["dry_run"] == true
        && r["sent"].as_array().unwrap().is_empty()));
    let text = std::fs::read_to_string(&api.audit).unwrap();
    assert!(!text.contains(OWNER_TOKEN) && !text.contains(ADMIN_KEY), "no secret is logged");

    let read = api.send("GET", "/v1/audit", "/v1/audit?tenant=acme-ws&limit=50", ops, None).await;
    assert_eq!(read.status, 200);
    let read = read.json();
    assert!(read.as_array().unwrap().iter().all(|r| r["tenant"] == "acme-ws"));
    assert!(read.as_array().unwrap().iter().any(|r| r["operation"] == "grant"));
    assert_eq!(api.send("GET", "/v1/audit", "/v1/audit?limit=0", ops, None).await.status, 400);
    let foreign =
        api.send("GET", "/v1/audit", "/v1/audit?tenant=acme-ws", Some("other-key"), None).await;
    assert_eq!(foreign.status, 404);
    let own = api.send("GET", "/v1/audit", "/v1/audit", Some("other-key"), None).await;
    assert_eq!(own.json(), json!([]), "a key reads no other key's tenants' records");

    api.contract.verify();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_never_sees_another_keys_tenants_and_a_read_only_key_writes_nothing() {
    let api = start("scopes", "").await;
    let acme = mock("ws-acme-scope", 12, 1).await;
    let globex = mock("ws-globex-scope", 12, 1).await;
    let tenant_path = "/v1/tenants/{tenant}";
    register_workspace(api.addr, "acme-ws", &acme, "ws-acme-scope").await;
    let mut spec = chatgpt_spec(&globex, "ws-globex-scope", "globex");
    spec["customer"] = Value::Null;
    let put = api
        .send("PUT", tenant_path, "/v1/tenants/globex", Some("other-key"), json_body(&spec))
        .await;
    assert_eq!(put.status, 200, "{}", put.text());

    // Neither lists, reads, writes or learns of the other's tenant: it answers as no tenant.
    for (key, mine, theirs) in
        [("ops-key", "acme-ws", "globex"), ("other-key", "globex", "acme-ws")]
    {
        let listed = api.send("GET", "/v1/tenants", "/v1/tenants", Some(key), None).await.json();
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed[0]["id"], mine);
        let absent = api
            .send(
                "GET",
                "/v1/tenants/{tenant}/info",
                "/v1/tenants/no-such-tenant/info",
                Some(key),
                None,
            )
            .await;
        for (method, template, suffix, body) in [
            ("GET", "/v1/tenants/{tenant}/info", "/info", None),
            ("GET", "/v1/tenants/{tenant}/accounts", "/accounts", None),
            (
                "POST",
                "/v1/tenants/{tenant}/grant",
                "/grant",
                json_body(
                    &json!({"account": {"email": "x@y.example.com"}, "entitlement": "workspace"}),
                ),
            ),
            ("DELETE", tenant_path, "", None),
        ] {
            let answer = api
                .send(method, template, &format!("/v1/tenants/{theirs}{suffix}"), Some(key), body)
                .await;
            assert_eq!(answer.status, 404, "{key} {method} {theirs}{suffix}");
            assert_eq!(
                answer.json(),
                absent.json(),
                "the same answer as a tenant that does not exist"
            );
        }
        // Nor can it take the other's tenant over by registering one with its id.
        let taken = api
            .send(
                "PUT",
                tenant_path,
                &format!("/v1/tenants/{theirs}"),
                Some(key),
                json_body(&chatgpt_spec(&acme, "ws-acme-scope", "acme")),
            )
            .await;
        assert_eq!(taken.status, 403, "{key}: {}", taken.text());
    }
    assert_eq!(globex.service().workspace("ws-globex-scope").unwrap().invites.len(), 1);

    // A read-only key's write is refused, dry run or not, and nothing reaches the service.
    acme.service().traffic().clear_requests();
    for dry_run in [false, true] {
        let answer = api.send("POST", "/v1/tenants/{tenant}/grant", "/v1/tenants/acme-ws/grant", Some("reader-key"), json_body(&json!({"account": {"email": "x@acme.example.com"}, "entitlement": "workspace", "dry_run": dry_run}))).await;
        assert_eq!((answer.status, answer.json()["type"].as_str()), (403, Some("forbidden")));
    }
    let job = api.send("POST", "/v1/tenants/{tenant}/jobs", "/v1/tenants/acme-ws/jobs", Some("reader-key"), json_body(&json!({"changes": [{"action": "revoke", "account": {"email": "x@acme.example.com"}, "entitlement": "workspace"}]}))).await;
    assert_eq!(job.status, 403);
    assert!(acme.service().requests().is_empty(), "nothing reached the mock");
    // It still reads.
    assert_eq!(
        api.send(
            "GET",
            "/v1/tenants/{tenant}/accounts",
            "/v1/tenants/acme-ws/accounts",
            Some("reader-key"),
            None
        )
        .await
        .status,
        200
    );
    api.contract.verify_answers();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_says_which_changes_were_sent_and_the_mock_agrees() {
    let api = start("job", "[limits]\njob-items-per-call = 100").await;
    let workspace = mock("ws-job", 6000, 0).await;
    register_workspace(api.addr, "acme-job", &workspace, "ws-job").await;
    let members = workspace.service().workspace("ws-job").unwrap().members;
    let targets: Vec<_> = members
        .iter()
        .filter(|m| m.role == "standard-user" && !m.is_scim_managed && m.deactivated_time.is_none())
        .take(5000)
        .collect();
    assert_eq!(targets.len(), 5000);
    let changes: Vec<Value> = targets
        .iter()
        .map(|m| json!({"action": "grant", "account": {"id": m.id}, "entitlement": "role:admin"}))
        .collect();
    let total = changes.len();
    let started = api
        .send(
            "POST",
            "/v1/tenants/{tenant}/jobs",
            "/v1/tenants/acme-job/jobs",
            Some("ops-key"),
            json_body(&json!({"changes": changes})),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.text());
    let id = started.json()["id"].as_str().unwrap().to_string();
    // Progress grows; halfway, the job is cancelled.
    let mut seen_progress = Vec::new();
    loop {
        let job = api
            .send("GET", "/v1/jobs/{job}", &format!("/v1/jobs/{id}"), Some("ops-key"), None)
            .await
            .json();
        let reported = job["reported"].as_u64().unwrap();
        seen_progress.push(reported);
        if reported >= total as u64 / 2 {
            break;
        }
        assert_eq!(job["state"], "running", "{job}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let cancel = api
        .send("DELETE", "/v1/jobs/{job}", &format!("/v1/jobs/{id}"), Some("ops-key"), None)
        .await;
    assert_eq!(cancel.status, 202);
    let job = loop {
        let job = api
            .send(
                "GET",
                "/v1/jobs/{job}",
                &format!("/v1/jobs/{id}?items=true"),
                Some("ops-key"),
                None,
            )
            .await
            .json();
        if job["state"] != "running" {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(job["state"], "cancelled", "{}", job["stopped"]);
    assert!(
        seen_progress.windows(2).any(|w| w[1] > w[0]),
        "progress was reported as it went: {seen_progress:?}"
    );
    let items = job["items"].as_array().unwrap();
    assert_eq!(items.len(), total, "every change reported");
    let applied: Vec<usize> = items
        .iter()
        .filter(|i| i["outcome"] == "applied")
        .map(|i| i["index"].as_u64().unwrap() as usize)
        .collect();
    let not_sent: Vec<usize> = items
        .iter()
        .filter(|i| i["outcome"] == "not-attempted")
        .map(|i| i["index"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(
        applied.len() + not_sent.len(),
        total,
        "each change applied or not sent: {}",
        job["failed"]
    );
    assert!(
        applied.len() >= total / 2 && !not_sent.is_empty(),
        "{} applied, {} not sent",
        applied.len(),
        not_sent.len()
    );
    assert_eq!(job["applied"].as_u64().unwrap() as usize, applied.len());
    assert_eq!(job["not_attempted"].as_u64().unwrap() as usize, not_sent.len());
    // The mock's state is exactly that.
    let after = workspace.service().workspace("ws-job").unwrap();
    let role = |id: &str| after.members.iter().find(|m| m.id == id).unwrap().role.clone();
    for &i in &applied {
        assert_eq!(role(&targets[i].id), "account-admin", "change {i} applied");
    }
    for &i in &not_sent {
        assert_eq!(role(&targets[i].id), "standard-user", "change {i} not sent");
    }
    let patches = workspace
        .service()
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && (200..300).contains(&r.status))
        .count();
    assert_eq!(patches, applied.len(), "one write per applied change");
    // The audit log says the same: every call's writes as it ended, then every change's outcome.
    let records = api.audit_records();
    let last =
        records.iter().rev().find(|r| r["operation"] == "job" && r["job"] == id.as_str()).unwrap();
    let outcomes = last["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), total);
    assert_eq!(outcomes.iter().filter(|o| *o == "applied").count(), applied.len());
    assert_eq!(last["sent"].as_array().unwrap().len(), applied.len());
    assert_eq!(last["error"], "the batch was cancelled");
    let call_writes: usize = records
        .iter()
        .filter(|r| r["operation"] == "job-call" && r["job"] == id.as_str())
        .map(|r| r["sent"].as_array().unwrap().len())
        .sum();
    assert_eq!(call_writes, applied.len());
    api.contract.verify_answers();
}

/// `harness serve` as a process of its own.
/// A `harness` process, and the address it printed first.
pub(crate) struct Process {
    pub(crate) child: std::process::Child,
    pub(crate) addr: SocketAddr,
    pub(crate) stderr: std::sync::mpsc::Receiver<String>,
}

impl Process {
    fn start(dir: &Path, config: &str) -> Process {
        std::fs::write(dir.join("server.toml"), config).unwrap();
        let config = dir.join("server.toml").display().to_string();
        Process::spawn(&["serve", "--listen", "127.0.0.1:0", "--config", &config], &[])
    }

    /// `harness args`, with `env` added to its environment; waits for the first address it
    /// prints on stderr (`http://ADDR`).
    pub(crate) fn spawn(args: &[&str], env: &[(String, String)]) -> Process {
        use std::io::{BufRead, BufReader};
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache");
        let mut child = std::process::Command::new(crate::conformance::harness())
            .arg("--cache-dir")
            .arg(cache)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (lines, stderr) = std::sync::mpsc::channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let first = stderr.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
        let after =
            first.split_once("://").map(|(_, rest)| rest).unwrap_or_else(|| panic!("{first}"));
        let addr = after.split(|c: char| c.is_whitespace() || c == ';').next().unwrap();
        Process { child, addr: addr.parse().unwrap(), stderr }
    }

    /// The peak resident memory of the process so far, in bytes.
    fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn process_config(drain_ms: u64) -> String {
    format!(
        "audit-log = \"audit.jsonl\"\n[limits]\ndrain-timeout-ms = {drain_ms}\n[[key]]\nid = \"ops\"\nsha256 = \"{}\"\ncustomers = [\"acme\"]\naccess = \"read-write\"\n",
        key_hash("ops-key")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_of_100000_members_streams_in_memory_that_does_not_grow_with_the_workspace() {
    let dir = scratch("server-memory");
    let server = Process::start(&dir, &process_config(5000));
    let mut peaks = Vec::new();
    for (members, ws) in [(10_000, "ws-mem-10k"), (100_000, "ws-mem-100k")] {
        let workspace = mock(ws, members, 0).await;
        register_workspace(server.addr, ws, &workspace, ws).await;
        let tenant = format!("/v1/tenants/{ws}");
        let synced =
            call(server.addr, "GET", &format!("{tenant}/sync?size=1000"), Some("ops-key"), None)
                .await;
        assert_eq!(synced.status, 200);
        let mut ids = BTreeSet::new();
        for line in synced.text().lines() {
            let account: Value = serde_json::from_str(line).unwrap();
            assert!(account.get("error").is_none(), "{line}");
            ids.insert(account["id"].as_str().unwrap().to_string());
        }
        assert_eq!(ids.len(), members, "every member once");
        peaks.push(server.peak_memory());
        workspace.stop().await;
    }
    let (small, large) = (peaks[0], peaks[1]);
    println!(
        "server peak memory: {:.1} MiB after 10,000 members, {:.1} MiB after 100,000",
        small as f64 / 1048576.0,
        large as f64 / 1048576.0
    );
    // Ten times the members, and the peak grows by at most a page's worth, not with the size.
    assert!(large <= small + (16 << 20), "{small} -> {large}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_50_calls_finishes_or_reports_each_and_exits_within_its_bound() {
    let dir = scratch("server-sigterm");
    let server = Process::start(&dir, &process_config(1500));
    let workspace = mock("ws-term", 40, 0).await;
    register_workspace(server.addr, "acme-term", &workspace, "ws-term").await;
    // Half the calls' reads are answered at once, half only after the drain's bound.
    let mut attempts = vec![Some(Fault::Slow { millis: 100 }); 25];
    attempts.extend(vec![Some(Fault::Slow { millis: 8000 }); 200]);
    workspace.service().set_faults(FaultPlan {
        scripts: vec![FaultScript {
            method: "GET".into(),
            path_suffix: "/users".into(),
            attempts,
            seen: 0,
        }],
        ..FaultPlan::default()
    });
    let addr = server.addr;
    let calls: Vec<_> = (0..50)
        .map(|_| {
            tokio::spawn(async move {
                call(addr, "GET", "/v1/tenants/acme-term/accounts?size=5", Some("ops-key"), None)
                    .await
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let sent = std::time::Instant::now();
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut completed = 0;
    let mut cut_off = 0;
    for handle in calls {
        let answer = handle.await.unwrap();
        match answer.status {
            200 => completed += 1,
            503 => {
                assert_eq!(answer.json()["type"], "draining", "{}", answer.text());
                assert!(
                    answer.json()["message"].as_str().unwrap().contains("cut off"),
                    "{}",
                    answer.text()
                );
                cut_off += 1;
            }
            other => panic!("a call ended {other}: {}", answer.text()),
        }
    }
    let mut server = server;
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(8),
            "the server did not exit within its bound"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    println!("{completed} completed, {cut_off} cut off, exited after {:?}", sent.elapsed());
    assert_eq!(completed + cut_off, 50, "no call lost");
    assert!(completed >= 1 && cut_off >= 1, "{completed} completed, {cut_off} cut off");
    assert!(!status.success(), "calls were cut off, and the exit says so");
    let stderr: Vec<String> = server.stderr.try_iter().collect();
    let report = stderr.iter().find(|l| l.contains("harness serve: stopped")).unwrap();
    assert!(report.contains(&format!("{cut_off} cut off")), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_registers_syncs_applies_a_batch_and_reads_the_audit_log() {
    let api = start("python", "").await;
    let workspace = mock("ws-python", 25, 2).await;
    let script = crate::common::workspace_root().join("examples/python/example.py");
    let url = format!("http://{}", api.addr);
    let output = tokio::process::Command::new("python3")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(&script)
        .args([
            "--url",
            &url,
            "--key",
            "ops-key",
            "--base-url",
            &workspace.base_url(),
            "--account-id",
            "ws-python",
            "--token",
            OWNER_TOKEN,
        ])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["synced"], 25, "{summary}");
    assert_eq!(summary["planned"], json!(["planned", "planned", "planned", "planned"]));
    assert_eq!(summary["applied"], json!(["pending", "pending", "pending", "applied"]));
    assert_eq!(summary["audit"]["key"], "ops");
    assert_eq!(summary["audit"]["dry_run_sent"], 0);
    let ws = workspace.service().workspace("ws-python").unwrap();
    for n in 0..3 {
        assert!(ws.invite_by_email(&format!("python-example-{n}@example.com")).is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_speaks_http2_and_tls_with_a_certificate() {
    // HTTP/2 without TLS (prior knowledge), as a platform's own proxy would speak it.
    let api = start("h2c", "").await;
    let stream = tokio::net::TcpStream::connect(api.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .uri(format!("http://{}/v1/connectors", api.addr))
        .header("authorization", "Bearer ops-key")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!((response.status().as_u16(), response.version()), (200, hyper::Version::HTTP_2));

    // HTTPS with the configured certificate, HTTP/2 offered by ALPN.
    let dir = scratch("server-tls");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("server.crt"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), certified.key_pair.serialize_pem()).unwrap();
    let config = process_config(1000).replacen(
        "[limits]",
        "[tls]\ncertificate = \"server.crt\"\nprivate-key = \"server.key\"\n[limits]",
        1,
    );
    let server = Process::start(&dir, &config);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .uri(format!("https://localhost:{}/v1/tenants", server.addr.port()))
        .header("authorization", "Bearer ops-key")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Plain HTTP to the HTTPS port gets no answer.
    let plain = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let handshake =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await;
        match handshake {
            Ok((mut sender, connection)) => {
                tokio::spawn(connection);
                let request = hyper::Request::builder()
                    .uri("/healthz")
                    .header("host", "x")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                sender.send_request(request).await.is_ok()
            }
            Err(_) => false,
        }
    })
    .await
    .unwrap_or(false);
    assert!(!plain, "plain HTTP is not served on the TLS port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_leaves_its_write_finished_and_on_the_record() {
    let api = start("disconnect", "").await;
    let workspace = mock("ws-gone", 10, 0).await;
    register_workspace(api.addr, "acme-gone", &workspace, "ws-gone").await;
    let member = workspace
        .service()
        .workspace("ws-gone")
        .unwrap()
        .members
        .iter()
        .find(|m| m.role == "standard-user" && !m.is_scim_managed)
        .unwrap()
        .clone();
    // The role change's answer is slow; the client gives up and goes before it comes.
    workspace.service().set_faults(FaultPlan {
        scripts: vec![FaultScript {
            method: "PATCH".into(),
            path_suffix: format!("/users/{}", member.id),
            attempts: vec![Some(Fault::Slow { millis: 800 })],
            seen: 0,
        }],
        ..FaultPlan::default()
    });
    let body = json!({"account": {"id": member.id}, "entitlement": "role:admin"}).to_string();
    let gone = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        call(
            api.addr,
            "POST",
            "/v1/tenants/acme-gone/grant",
            Some("ops-key"),
            Some(("application/json", body.into_bytes())),
        ),
    )
    .await;
    assert!(gone.is_err(), "the client left before the answer");
    let record = loop {
        let records = api.audit_records();
        if let Some(record) =
            records.into_iter().find(|r| r["operation"] == "grant" && r["tenant"] == "acme-gone")
        {
            break record;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(record["outcomes"][0], "applied", "{record}");
    assert_eq!(record["sent"][0]["method"], "PATCH");
    let now = workspace.service().workspace("ws-gone").unwrap();
    assert_eq!(now.members.iter().find(|m| m.id == member.id).unwrap().role, "account-admin");
}

/// Sends `head` and then `body` over a fresh connection as a simple client does (curl, a
/// script): everything written before anything is read; write errors ignored, as the answer
/// may come before the body has gone. Returns all the server sent back.
async fn send_all_then_read(addr: SocketAddr, head: String, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let written = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await
    }
    .await;
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer).await;
    assert!(
        !answer.is_empty(),
        "no answer (written: {written:?}, read: {read:?}): the connection was reset"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_its_413_even_when_the_client_sends_it_all_first() {
    // Limits far below the bodies, so most of each body is still on its way when the server
    // answers: closing then with unread data would reset the connection, and a client still
    // writing would get a broken pipe (hyper's reports it instead of the answer).
    let api = start("too-large", "[limits]\nmax-body-bytes = 1024\nmax-upload-bytes = 65536").await;
    let upload = vec![0u8; 8 << 20];
    let json = format!("{{\"pad\": \"{}\"}}", "x".repeat(4 << 20));
    for round in 0..5 {
        let head = format!(
            "PUT /v1/connectors/huge HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer ops-key\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\n\r\n",
            api.addr,
            upload.len()
        );
        let answer = send_all_then_read(api.addr, head, &upload).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "round {round}: {answer}");
        assert!(answer.contains("payload-too-large"), "round {round}: {answer}");
        // The same without a length: the limit trips part way through the chunks.
        let head = format!(
            "POST /v1/tenants/acme-ws/batch HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer ops-key\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
            api.addr
        );
        let mut chunked = Vec::new();
        for piece in json.as_bytes().chunks(16 << 10) {
            chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            chunked.extend_from_slice(piece);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let answer = send_all_then_read(api.addr, head, &chunked).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "round {round}, chunked: {answer}");
        // And a client that reads the answer as soon as it comes (hyper's): its write must
        // not fail first.
        let answer = call(
            api.addr,
            "PUT",
            "/v1/connectors/huge",
            Some("ops-key"),
            Some(("application/wasm", upload.clone())),
        )
        .await;
        assert_eq!(answer.status, 413, "round {round}: {}", answer.text());
    }
    // The server still serves.
    assert_eq!(api.send("GET", "/healthz", "/healthz", None, None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_well_formed() {
    let api = start("document", "").await;
    let doc = &api.contract.doc;
    assert_eq!(doc["openapi"], "3.1.0");
    // Every schema is a valid JSON Schema (2020-12, as OpenAPI 3.1 has it) and every
    // reference resolves.
    let components = doc["components"].clone();
    for (name, schema) in components["schemas"].as_object().unwrap() {
        let mut rooted = schema.clone();
        if let Some(object) = rooted.as_object_mut() {
            object.insert("components".into(), components.clone());
        }
        assert!(jsonschema::validator_for(&rooted).is_ok(), "schema {name}");
    }
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for reference in all {
        let pointer = reference.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "{reference} resolves");
    }
    // Operation ids are unique, every path parameter is declared, every operation answers.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                ids.insert(operation["operationId"].as_str().unwrap().to_string()),
                "{method} {path}"
            );
            assert!(
                operation["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let in_path: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(declared, in_path, "{method} {path}");
            if path.starts_with("/v1/") {
                assert!(operation["security"].is_array(), "{method} {path} says it needs a key");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_sent_twice_with_one_idempotency_key_is_one_job() {
    let api = start("idempotent", "").await;
    let workspace = mock("ws-idem", 20, 0).await;
    register_workspace(api.addr, "acme-idem", &workspace, "ws-idem").await;
    let member = workspace
        .service()
        .workspace("ws-idem")
        .unwrap()
        .members
        .into_iter()
        .find(|m| m.role == "standard-user" && !m.is_scim_managed)
        .unwrap();
    let body = json!({"changes": [{"action": "grant", "account": {"id": member.id}, "entitlement": "role:admin"}]});
    let path = "/v1/tenants/acme-idem/jobs";
    let first =
        crate::cluster::call_with_header(api.addr, path, ("idempotency-key", "k-1"), &body).await;
    let again =
        crate::cluster::call_with_header(api.addr, path, ("idempotency-key", "k-1"), &body).await;
    let other =
        crate::cluster::call_with_header(api.addr, path, ("idempotency-key", "k-2"), &body).await;
    for answer in [&first, &again, &other] {
        assert_eq!(answer.status, 202, "{}", answer.text());
    }
    assert_eq!(first.json()["id"], again.json()["id"]);
    assert_ne!(first.json()["id"], other.json()["id"]);
    let long = "k".repeat(300);
    let refused =
        crate::cluster::call_with_header(api.addr, path, ("idempotency-key", &long), &body).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    workspace.stop().await;
}
