//! Hosts as workers of NATS JetStream: a real `nats-server` on loopback, `harness worker`
//! processes and a `harness serve --nats` process, against the mock in this process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use accessgov_host::batch::{self, BatchEvent, BatchOptions};
use accessgov_host::types::{Change, PageRequest};
use accessgov_mock::{
    AppliedChangeKind, Fault, FaultPlan, FaultScript, GenerateSpec, MockServer, MockService, seed,
};
use accessgov_server::config::key_hash;
use accessgov_server::model::{Account, BatchChange, JobItem};
use serde_json::{Value, json};

use crate::common::{host, scratch};
use crate::server::{Process, call, json_body};

/// A `nats-server` with JetStream on a free loopback port, its store in a scratch directory.
pub(crate) struct Nats {
    child: std::process::Child,
    pub(crate) url: String,
}

impl Nats {
    pub(crate) fn start(dir: &Path) -> Nats {
        let binary = ["nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|b| std::process::Command::new(b).arg("--version").output().is_ok())
            .expect(
                "nats-server is not installed: `apt-get install nats-server` (`.ci/run` and \
                 build-support/bin/test-services do it)",
            );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let store = dir.join("jetstream");
        let child = std::process::Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats { child, url: format!("nats://127.0.0.1:{port}") }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user and system) process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> =
        stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: u64 =
        fields.get(11..13).map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    ticks as f64 / 100.0
}

/// A deployment: NATS, workers and one server in front.
struct Deployment {
    workers: Vec<Process>,
    server: Process,
    nats: Nats,
}

/// The queue's settings of the tests: a dead worker's job is given out again within seconds.
const QUEUE: [&str; 4] = ["--ack-wait-ms", "2000", "--lease-ttl-ms", "1500"];

fn config(dir: &Path, items_per_call: usize) -> String {
    let text = format!(
        "audit-log = \"audit.jsonl\"\n[limits]\njob-items-per-call = {items_per_call}\n[[key]]\nid = \"ops\"\nsha256 = \"{}\"\ncustomers = [\"acme\"]\naccess = \"read-write\"\noperator = true\nrequests-per-minute = 1000000\n",
        key_hash("ops-key")
    );
    let path = dir.join("server.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

impl Deployment {
    async fn start(
        name: &str,
        workers: usize,
        concurrency: usize,
        env: &[(String, String)],
        items_per_call: usize,
    ) -> Deployment {
        let dir = scratch(&format!("cluster-{name}"));
        let nats = Nats::start(&dir);
        let concurrency = concurrency.to_string();
        let workers = (0..workers)
            .map(|n| {
                let name = format!("w{n}");
                let mut args = vec![
                    "worker",
                    "--nats",
                    &nats.url,
                    "--name",
                    &name,
                    "--concurrency",
                    &concurrency,
                ];
                args.extend(QUEUE);
                Process::spawn(&args, env)
            })
            .collect();
        let config = config(&dir, items_per_call);
        let mut args =
            vec!["serve", "--listen", "127.0.0.1:0", "--config", &config, "--nats", &nats.url];
        args.extend(QUEUE);
        let server = Process::spawn(&args, env);
        Deployment { workers, server, nats }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// CPU seconds used so far by the workers together, the server, and nats-server.
    fn cpu_seconds(&self) -> (f64, f64, f64) {
        let workers = self.workers.iter().map(|w| cpu_seconds(w.child.id())).sum();
        (workers, cpu_seconds(self.server.child.id()), cpu_seconds(self.nats.child.id()))
    }
}

/// A mock of `count` workspaces `ws-000`..., each with its own token, and the environment
/// naming the tokens (tenants shared through the queue hold secrets by reference only).
fn workspaces(count: usize, members: usize) -> (MockService, Vec<(String, String)>) {
    let service = MockService::new();
    let mut env = Vec::new();
    for n in 0..count {
        let ws = format!("ws-{n:03}");
        service.put_workspace(seed::generate(
            &ws,
            GenerateSpec { members, invites: 3, seed: n as u64, join_requests: 0 },
        ));
        let token = format!("token-{n:03}");
        service.add_token(&token, &ws, "account-owner");
        env.push((format!("WS_TOKEN_{n:03}"), token));
    }
    (service, env)
}

/// Where a tenant's mock is: its origin and its console's base URL.
#[derive(Clone)]
struct Target {
    origin: String,
    base_url: String,
}

impl Target {
    fn of(server: &MockServer) -> Target {
        Target { origin: server.origin(), base_url: server.base_url() }
    }
}

fn spec(target: &Target, n: usize, connector: &str) -> Value {
    let ws = format!("ws-{n:03}");
    json!({
        "connector": connector,
        "customer": "acme",
        "allowed_origins": [target.origin],
        "allow_private_addresses": true,
        "settings": {"base-url": target.base_url, "account-id": ws, "retry-base-ms": 5},
        "credentials": [{"origin": target.origin, "bearer_token_env": format!("WS_TOKEN_{n:03}"), "headers": {"chatgpt-account-id": ws}}]
    })
}

async fn register(addr: SocketAddr, target: &Target, n: usize, connector: &str) {
    let put = call(
        addr,
        "PUT",
        &format!("/v1/tenants/t-{n:03}"),
        Some("ops-key"),
        json_body(&spec(target, n, connector)),
    )
    .await;
    assert_eq!(put.status, 200, "tenant {n}: {}", put.text());
}

/// Role grants to `count` standard users of workspace `n`, from the `skip`-th on.
fn role_grants(service: &MockService, n: usize, skip: usize, count: usize) -> Vec<Value> {
    let ws = service.workspace(&format!("ws-{n:03}")).unwrap();
    ws.members
        .iter()
        .filter(|m| m.role == "standard-user" && !m.is_scim_managed && m.deactivated_time.is_none())
        .skip(skip)
        .take(count)
        .map(|m| json!({"action": "grant", "account": {"id": m.id}, "entitlement": "role:admin"}))
        .collect()
}

/// Makes every write to `service` take `millis` milliseconds, so a batch is surely under way
/// when a test acts on it.
fn slow_writes(service: &MockService, millis: u64) {
    service.set_faults(FaultPlan {
        scripts: vec![FaultScript {
            method: "PATCH".into(),
            path_suffix: String::new(),
            attempts: vec![Some(Fault::Slow { millis }); 1000],
            seen: 0,
        }],
        ..FaultPlan::default()
    });
}

/// Starts a job of `changes` for tenant `t-000`; its id.
async fn start_job(addr: SocketAddr, changes: &[Value]) -> String {
    let body = json_body(&json!({"changes": changes}));
    let started = call(addr, "POST", "/v1/tenants/t-000/jobs", Some("ops-key"), body).await;
    assert_eq!(started.status, 202, "{}", started.text());
    started.json()["id"].as_str().unwrap().to_string()
}

/// Job `id` once at least `reported` of its items are reported.
async fn wait_until_reported(addr: SocketAddr, id: &str, reported: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = call(addr, "GET", &format!("/v1/jobs/{id}"), Some("ops-key"), None).await.json();
        if job["reported"].as_u64().unwrap() >= reported {
            return job;
        }
        assert!(Instant::now() < deadline, "the batch never got going: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The name of the worker running `job`'s first attempt, and its index among the deployment's.
fn running_worker(job: &Value) -> (String, usize) {
    let worker = job["attempts"][0]["worker"].as_str().unwrap().to_string();
    let index = worker.trim_start_matches('w').parse().unwrap();
    (worker, index)
}

async fn wait_for_job(addr: SocketAddr, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let job =
            call(addr, "GET", &format!("/v1/jobs/{id}?items=true"), Some("ops-key"), None).await;
        assert_eq!(job.status, 200, "{}", job.text());
        let job = job.json();
        if job["state"] != "running" {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} did not end: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one host in this process makes of the same batch on a twin of the mock.
async fn local_items(
    host: &accessgov_host::Host,
    tenant: &str,
    changes: &[Value],
    per_call: usize,
) -> Vec<JobItem> {
    let items: Vec<Vec<Change>> = changes
        .iter()
        .map(|c| {
            vec![serde_json::from_value::<BatchChange>(c.clone()).unwrap().to_contract().unwrap()]
        })
        .collect();
    let options = BatchOptions { dry_run: false, max_items_per_call: Some(per_call), cancel: None };
    let mut reports = Vec::new();
    batch::apply_with(host, tenant, &items, &options, |event| {
        if let BatchEvent::Item(report) = event {
            reports.push(JobItem::from(report));
        }
    })
    .await
    .unwrap();
    reports.sort_by_key(|i| i.index);
    reports
}

/// An item's outcome, its changes' statuses and its writes' methods, paths and statuses: what
/// must be the same wherever the batch ran.
fn essence(item: &Value) -> Value {
    json!({
        "index": item["index"],
        "outcome": item["outcome"],
        "changes": item["changes"].as_array().unwrap().iter().map(|c| json!([c["action"], c["entitlement"], c["status"]])).collect::<Vec<_>>(),
        "requests": item["requests"].as_array().unwrap().iter().map(|r| json!([r["method"], r["path"], r["status"]])).collect::<Vec<_>>(),
    })
}

/// Per workspace, the intervals during which its write requests were in flight, and whether any
/// two reads of different workspaces overlapped.
fn check_overlaps(service: &MockService) -> (usize, bool) {
    let requests = service.requests();
    let mut writes: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut reads: Vec<(u64, u64, String)> = Vec::new();
    for r in &requests {
        let Some(ws) = r.scope_header.clone() else { continue };
        assert!(r.answered_us > 0, "every request was answered: {r:?}");
        if r.is_write() {
            writes.entry(ws).or_default().push((r.arrived_us, r.answered_us));
        } else {
            reads.push((r.arrived_us, r.answered_us, ws));
        }
    }
    let mut checked = 0;
    for (ws, mut spans) in writes {
        spans.sort();
        for pair in spans.windows(2) {
            assert!(pair[1].0 >= pair[0].1, "two writes to {ws} were in flight at once: {pair:?}");
            checked += 1;
        }
    }
    reads.sort();
    let reads_overlap = reads.windows(2).any(|w| w[1].0 < w[0].1 && w[1].2 != w[0].2);
    (checked, reads_overlap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_run_300_syncs_and_60_batches_as_one_host_would() {
    let (service, env) = workspaces(300, 30);
    let mock = MockServer::start_local(service.clone()).await.unwrap();
    let (twin_service, _) = workspaces(300, 30);
    let twin = MockServer::start_local(twin_service.clone()).await.unwrap();
    // Writes take a while, so that batches of one tenant queued together would overlap.
    slow_writes(&service, 20);
    let deployment = Deployment::start("scale", 3, 16, &env, 2).await;
    let addr = deployment.addr();
    let target = Target::of(&mock);
    let registrations: Vec<_> = (0..300)
        .map(|n| {
            let target = target.clone();
            tokio::spawn(async move { register(addr, &target, n, "chatgpt").await })
        })
        .collect();
    for r in registrations {
        r.await.unwrap();
    }
    // One host in this process, over the twin, for what the answers must be.
    let local = host();
    for n in 0..300 {
        let mut tenant = twin.chatgpt_tenant(
            &format!("t-{n:03}"),
            &format!("ws-{n:03}"),
            &format!("token-{n:03}"),
        );
        tenant
            .settings
            .insert("retry-base-ms".into(), accessgov_host::tenant::SettingValue::Integer(5));
        local.add_tenant(&tenant, Path::new(".")).unwrap();
    }

    // 60 batches: three for each of 20 tenants, queued together, each on people of its own.
    let mut batches = Vec::new();
    for n in 0..20 {
        for part in 0..3 {
            batches.push((n, role_grants(&service, n, part * 4, 4)));
        }
    }
    let started: Vec<_> = batches
        .iter()
        .map(|(n, changes)| {
            let body = json_body(&json!({"changes": changes}));
            let path = format!("/v1/tenants/t-{n:03}/jobs");
            tokio::spawn(async move { call(addr, "POST", &path, Some("ops-key"), body).await })
        })
        .collect();
    // 300 syncs at once with the batches.
    let syncs: Vec<_> = (0..300)
        .map(|n| {
            tokio::spawn(async move {
                let answer = call(
                    addr,
                    "GET",
                    &format!("/v1/tenants/t-{n:03}/sync?size=7"),
                    Some("ops-key"),
                    None,
                )
                .await;
                (n, answer)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for s in started {
        let answer = s.await.unwrap();
        assert_eq!(answer.status, 202, "{}", answer.text());
        ids.push(answer.json()["id"].as_str().unwrap().to_string());
    }
    for sync in syncs {
        let (n, answer) = sync.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
        let got: Vec<Value> =
            answer.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        // The batches run meanwhile on the first 20: their roles may be either side of them.
        if n >= 20 {
            let mut expected = Vec::new();
            let mut page = PageRequest { cursor: None, size: Some(7) };
            loop {
                let report = local.list_accounts(&format!("t-{n:03}"), page.clone()).await.unwrap();
                let listed = report.result.unwrap();
                expected.extend(
                    listed
                        .accounts
                        .into_iter()
                        .map(|a| serde_json::to_value(Account::from(a)).unwrap()),
                );
                match listed.next_cursor {
                    Some(cursor) => page.cursor = Some(cursor),
                    None => break,
                }
            }
            assert_eq!(got, expected, "tenant {n}: the sync equals one host's");
        } else {
            assert_eq!(got.len(), 33, "tenant {n}: every account once");
        }
    }
    for ((n, changes), id) in batches.iter().zip(&ids) {
        let job = wait_for_job(addr, id, Duration::from_secs(120)).await;
        assert_eq!(job["state"], "done", "{job}");
        let items = job["items"].as_array().unwrap();
        assert_eq!(items.len(), changes.len(), "{job}");
        let expected = local_items(&local, &format!("t-{n:03}"), changes, 2).await;
        let expected: Vec<Value> =
            expected.iter().map(|i| essence(&serde_json::to_value(i).unwrap())).collect();
        let got: Vec<Value> = items.iter().map(essence).collect();
        assert_eq!(got, expected, "batch {id} of tenant {n} equals one host's");
        assert!(items.iter().all(|i| i["attempt"] == 1), "one attempt each: {job}");
    }
    // The two mocks end the same.
    for n in 0..20 {
        let ws = format!("ws-{n:03}");
        let roles = |s: &MockService| {
            s.workspace(&ws)
                .unwrap()
                .members
                .iter()
                .map(|m| (m.id.clone(), m.role.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(roles(&service), roles(&twin_service), "{ws}");
    }
    let (pairs, reads_overlap) = check_overlaps(&service);
    assert!(pairs > 100, "writes of one tenant were checked in pairs: {pairs}");
    assert!(reads_overlap, "reads of different tenants ran at once");
    // Every worker took part.
    for worker in &deployment.workers {
        let metrics = call(worker.addr, "GET", "/metrics", None, None).await.text();
        assert!(metrics.contains("operation=\"sync\""), "{metrics}");
    }
    mock.stop().await;
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_leaves_it_to_another_and_no_change_is_made_twice() {
    let (service, env) = workspaces(1, 60);
    let mock = MockServer::start_local(service.clone()).await.unwrap();
    // Each write takes a while, so the batch is surely under way when its worker dies.
    slow_writes(&service, 150);
    let mut deployment = Deployment::start("kill", 3, 4, &env, 3).await;
    let addr = deployment.addr();
    register(addr, &Target::of(&mock), 0, "chatgpt").await;
    let changes = role_grants(&service, 0, 0, 30);
    assert_eq!(changes.len(), 30);
    let id = start_job(addr, &changes).await;
    // Once a few calls are reported, the worker running it is killed outright.
    let job = wait_until_reported(addr, &id, 6).await;
    let (killed, index) = running_worker(&job);
    deployment.workers[index].child.kill().unwrap();
    let reported_at_kill = job["reported"].as_u64().unwrap();
    assert!(reported_at_kill < 30, "the batch was still under way when its worker died");
    let job = wait_for_job(addr, &id, Duration::from_secs(90)).await;
    assert_eq!(job["state"], "done", "{job}");
    let attempts = job["attempts"].as_array().unwrap();
    let interrupted: Vec<&Value> = job["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["interrupted"].is_array())
        .map(|i| &i["index"])
        .collect();
    println!(
        "killed {killed} at {reported_at_kill} reported; attempts {}; items the dead attempt was sending: {interrupted:?}",
        job["attempts"]
    );
    assert!(attempts.len() >= 2, "{job}");
    assert_eq!(attempts[0]["worker"], killed.as_str());
    assert_eq!(attempts[0]["ended"], false, "the first attempt died with its worker");
    assert_ne!(attempts[1]["worker"], killed.as_str());
    let resumed_from = attempts[1]["from_item"].as_u64().unwrap();
    assert!(resumed_from >= 6, "the second attempt resumed after what the first reported: {job}");
    // Every change once, each from the attempt that reported it.
    let items = job["items"].as_array().unwrap();
    let indices: BTreeSet<u64> = items.iter().map(|i| i["index"].as_u64().unwrap()).collect();
    assert_eq!(indices, (0..30).collect(), "{job}");
    for item in items {
        let index = item["index"].as_u64().unwrap();
        let attempt = item["attempt"].as_u64().unwrap();
        assert_eq!(attempt, if index < resumed_from { 1 } else { 2 }, "{item}");
        match item["outcome"].as_str().unwrap() {
            "applied" => assert_eq!(item["requests"].as_array().unwrap().len(), 1, "{item}"),
            // Found in state only where the dead attempt had been sending it.
            "already-in-state" => {
                assert_eq!(item["interrupted"], json!([1]), "{item}");
                assert!(item["requests"].as_array().unwrap().is_empty(), "{item}");
            }
            other => panic!("item {index} ended {other}: {item}"),
        }
    }
    // The audit records, from the workers through the server: each call's writes once, and
    // the job's last record with every change's outcome.
    let audit = call(addr, "GET", "/v1/audit?tenant=t-000&limit=1000", Some("ops-key"), None).await;
    assert_eq!(audit.status, 200, "{}", audit.text());
    let audit = audit.json();
    let records: Vec<&Value> =
        audit.as_array().unwrap().iter().filter(|r| r["job"] == id.as_str()).collect();
    let last: Vec<&&Value> = records.iter().filter(|r| r["operation"] == "job").collect();
    assert_eq!(last.len(), 1, "{audit}");
    assert_eq!(last[0]["outcomes"].as_array().unwrap().len(), 30);
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for record in records.iter().filter(|r| r["operation"] == "job-call") {
        for request in record["sent"].as_array().unwrap() {
            *sent.entry(request["path"].as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    assert!(sent.values().all(|n| *n == 1), "no write on the record twice: {sent:?}");
    for item in items.iter().filter(|i| i["outcome"] == "applied") {
        let path = item["requests"][0]["path"].as_str().unwrap();
        // The item's path is relative to the service's base URL; the record's is whole.
        assert!(sent.keys().any(|p| p.ends_with(path)), "{path} is on the record: {sent:?}");
    }
    // The mock agrees: each of the 30 changed once, and all of them hold the role now.
    let ws = service.workspace("ws-000").unwrap();
    let targets: Vec<String> =
        changes.iter().map(|c| c["account"]["id"].as_str().unwrap().to_string()).collect();
    for id in &targets {
        let member = ws.members.iter().find(|m| &m.id == id).unwrap();
        assert_eq!(member.role, "account-admin", "{id}");
        let changed = ws
            .change_log
            .iter()
            .filter(|c| {
                c.email == member.email.to_lowercase()
                    && matches!(c.kind, AppliedChangeKind::Role { .. })
            })
            .count();
        assert_eq!(changed, 1, "{} changed once", member.email);
    }
    mock.stop().await;
}

/// A JSON POST with one extra header.
pub(crate) async fn call_with_header(
    addr: SocketAddr,
    path: &str,
    header: (&str, &str),
    body: &Value,
) -> crate::server::Answer {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method("POST")
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", "Bearer ops-key")
        .header("content-type", "application/json")
        .header(header.0, header.1)
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    crate::server::Answer::new(status, bytes)
}

/// Info calls answered by each worker so far, by its metrics.
async fn info_calls(deployment: &Deployment) -> Vec<u64> {
    let mut counts = Vec::new();
    for worker in &deployment.workers {
        let metrics = call(worker.addr, "GET", "/metrics", None, None).await.text();
        let count = metrics
            .lines()
            .filter(|l| l.starts_with("accessgov_calls_total{") && l.contains("operation=\"info\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        counts.push(count);
    }
    counts
}

/// `count` info calls at once; the connector names they answered.
async fn info_names(addr: SocketAddr, count: usize) -> BTreeSet<String> {
    let calls: Vec<_> = (0..count)
        .map(|_| {
            tokio::spawn(async move {
                call(addr, "GET", "/v1/tenants/t-000/info", Some("ops-key"), None).await
            })
        })
        .collect();
    let mut names = BTreeSet::new();
    for c in calls {
        let answer = c.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
        names.insert(answer.json()["name"].as_str().unwrap().to_string());
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_connectors_reach_every_worker_without_a_restart() {
    let (service, env) = workspaces(1, 10);
    let mock = MockServer::start_local(service.clone()).await.unwrap();
    let deployment = Deployment::start("shared", 3, 2, &env, 10).await;
    let addr = deployment.addr();
    let named = bundled_connectors::named();
    let upload = |name: &str| Some(("application/wasm", named[name].bytes.to_vec()));
    let put =
        call(addr, "PUT", "/v1/connectors/workspace-app", Some("ops-key"), upload("chatgpt")).await;
    assert_eq!(put.status, 200, "{}", put.text());
    // Registered once, through the server, and used at once by every worker.
    register(addr, &Target::of(&mock), 0, "workspace-app").await;
    assert_eq!(info_names(addr, 30).await, BTreeSet::from(["chatgpt".to_string()]));
    let before = info_calls(&deployment).await;
    assert!(before.iter().all(|n| *n > 0), "every worker answered: {before:?}");
    // Replaced in the store: every worker's next call runs the new component.
    let put = call(
        addr,
        "PUT",
        "/v1/connectors/workspace-app",
        Some("ops-key"),
        upload("openai-platform"),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(info_names(addr, 30).await, BTreeSet::from(["openai-platform".to_string()]));
    let after = info_calls(&deployment).await;
    assert!(
        before.iter().zip(&after).all(|(b, a)| a > b),
        "every worker answered again: {before:?} -> {after:?}"
    );
    // A tenant's secret never goes into the queue's store: only the name of its variable.
    let mut inline = spec(&Target::of(&mock), 1, "chatgpt");
    inline["credentials"][0] = json!({"origin": mock.origin(), "bearer_token": "token-001"});
    let refused = call(addr, "PUT", "/v1/tenants/t-001", Some("ops-key"), json_body(&inline)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("bearer_token_env"), "{}", refused.text());
    for worker in &deployment.workers {
        assert_eq!(call(worker.addr, "GET", "/readyz", None, None).await.status, 200);
    }
    // A tenant removed through the server is gone from the workers too.
    let deleted = call(addr, "DELETE", "/v1/tenants/t-000", Some("ops-key"), None).await;
    assert_eq!(deleted.status, 204);
    register(addr, &Target::of(&mock), 0, "chatgpt").await;
    assert_eq!(info_names(addr, 6).await, BTreeSet::from(["chatgpt".to_string()]));
    // A batch sent twice with one `Idempotency-Key` is one job, run once.
    let changes = role_grants(&service, 0, 0, 2);
    let body = json!({"changes": changes});
    let mut ids = BTreeSet::new();
    for _ in 0..2 {
        let answer = call_with_header(
            addr,
            "/v1/tenants/t-000/jobs",
            ("idempotency-key", "grant-admins-1"),
            &body,
        )
        .await;
        assert_eq!(answer.status, 202, "{}", answer.text());
        ids.insert(answer.json()["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let job = wait_for_job(addr, ids.first().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(job["applied"], 2, "{job}");
    let ws = service.workspace("ws-000").unwrap();
    assert_eq!(
        ws.change_log.iter().filter(|c| matches!(c.kind, AppliedChangeKind::Role { .. })).count(),
        2
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_with_sigterm_hands_its_batch_back_and_exits() {
    let (service, env) = workspaces(1, 40);
    let mock = MockServer::start_local(service.clone()).await.unwrap();
    slow_writes(&service, 100);
    let mut deployment = Deployment::start("drain", 2, 4, &env, 2).await;
    let addr = deployment.addr();
    register(addr, &Target::of(&mock), 0, "chatgpt").await;
    let changes = role_grants(&service, 0, 0, 20);
    let id = start_job(addr, &changes).await;
    let (_, index) = running_worker(&wait_until_reported(addr, &id, 4).await);
    let stopping = &mut deployment.workers[index];
    let pid = stopping.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = stopping.child.try_wait().unwrap() {
            break status;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "the worker did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success());
    let report: Vec<String> = stopping.stderr.try_iter().collect();
    assert!(
        report.iter().any(|l| l.contains("stopped; 1 job(s) were running, 0 left")),
        "{report:?}"
    );
    // Handed back between calls: the other worker goes on at once from the next item, and no
    // item was caught in flight.
    let job = wait_for_job(addr, &id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "done", "{job}");
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{job}");
    assert_eq!(attempts[0]["ended"], true, "the first attempt ended by handing the job back");
    let items = job["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert!(
        items.iter().all(|i| i["outcome"] == "applied" && i.get("interrupted").is_none()),
        "{job}"
    );
    mock.stop().await;
}

/// The figures of docs/scaling.md: 300 tenant syncs of 500 members each, through the server,
/// with one, two and three workers, and where the CPU went. A measurement, not a check; run it
/// with `cargo test -p e2e-tests --test e2e cluster::scaling -- --ignored --nocapture`.
#[ignore = "a measurement for docs/scaling.md"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_throughput_with_one_two_and_three_workers() {
    let (service, env) = workspaces(300, 500);
    let mock = MockServer::start_local(service.clone()).await.unwrap();
    let target = Target::of(&mock);
    println!("workers | syncs/s | CPU ms per sync: workers, server, nats-server, mock");
    // 0: no queue, the server runs the syncs itself (the baseline).
    for workers in 0..=3 {
        let deployment = if workers == 0 {
            let dir = scratch("cluster-scaling-0");
            let config = config(&dir, 25);
            Deployment {
                workers: Vec::new(),
                server: Process::spawn(
                    &["serve", "--listen", "127.0.0.1:0", "--config", &config],
                    &env,
                ),
                nats: Nats::start(&dir),
            }
        } else {
            Deployment::start(&format!("scaling-{workers}"), workers, 16, &env, 25).await
        };
        let addr = deployment.addr();
        for n in 0..300 {
            register(addr, &target, n, "chatgpt").await;
        }
        // Every worker instantiates the connector once before the clock starts.
        let _ = info_names(addr, 6 * workers.max(1)).await;
        let (w0, s0, n0) = deployment.cpu_seconds();
        let m0 = cpu_seconds(std::process::id());
        let started = Instant::now();
        let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(24));
        let syncs: Vec<_> = (0..300)
            .map(|n| {
                let limit = limit.clone();
                tokio::spawn(async move {
                    let _permit = limit.acquire().await.unwrap();
                    call(
                        addr,
                        "GET",
                        &format!("/v1/tenants/t-{n:03}/sync?size=100"),
                        Some("ops-key"),
                        None,
                    )
                    .await
                })
            })
            .collect();
        for sync in syncs {
            let answer = sync.await.unwrap();
            assert_eq!(answer.status, 200);
            assert_eq!(answer.text().lines().count(), 503);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let (w1, s1, n1) = deployment.cpu_seconds();
        let m1 = cpu_seconds(std::process::id());
        let per = |a: f64, b: f64| (b - a) * 1000.0 / 300.0;
        println!(
            "{workers} | {:.1} | {:.1}, {:.1}, {:.1}, {:.1}",
            300.0 / elapsed,
            per(w0, w1),
            per(s0, s1),
            per(n0, n1),
            per(m0, m1)
        );
    }
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_batch_cancelled_part_way_reports_what_was_sent_and_the_mock_agrees() {
    let (service, env) = workspaces(1, 40);
    let mock = MockServer::start_local(service.clone()).await.unwrap();
    slow_writes(&service, 100);
    let deployment = Deployment::start("cancel", 2, 4, &env, 2).await;
    let addr = deployment.addr();
    register(addr, &Target::of(&mock), 0, "chatgpt").await;
    let changes = role_grants(&service, 0, 0, 20);
    let id = start_job(addr, &changes).await;
    wait_until_reported(addr, &id, 4).await;
    let cancel = call(addr, "DELETE", &format!("/v1/jobs/{id}"), Some("ops-key"), None).await;
    assert_eq!(cancel.status, 202, "{}", cancel.text());
    let job = wait_for_job(addr, &id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    let items = job["items"].as_array().unwrap();
    assert_eq!(items.len(), 20, "every change reported");
    let applied: BTreeSet<String> = items
        .iter()
        .filter(|i| i["outcome"] == "applied")
        .map(|i| {
            changes[i["index"].as_u64().unwrap() as usize]["account"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let not_sent = items.iter().filter(|i| i["outcome"] == "not-attempted").count();
    assert_eq!(applied.len() + not_sent, 20, "{job}");
    assert!(not_sent > 0 && applied.len() >= 4, "{job}");
    // What the report says was applied is exactly what the mock changed.
    let ws = service.workspace("ws-000").unwrap();
    let changed: BTreeSet<String> = ws
        .members
        .iter()
        .filter(|m| ws.change_log.iter().any(|c| c.email == m.email.to_lowercase()))
        .map(|m| m.id.clone())
        .collect();
    assert_eq!(changed, applied);
    mock.stop().await;
}

#[test]
fn a_server_with_a_queue_takes_no_tenants_from_its_file_and_a_worker_needs_nats() {
    let dir = scratch("cluster-refusals");
    let config = config(&dir, 10);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[[tenant]]\nid = \"t\"\nconnector = \"chatgpt\"\n[tenant.settings]\nbase-url = \"http://127.0.0.1:9/backend-api\"\naccount-id = \"ws\"\n");
    std::fs::write(&config, text).unwrap();
    let nats = Nats::start(&dir);
    let harness = |args: &[&str]| {
        let output =
            std::process::Command::new(crate::conformance::harness()).args(args).output().unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (ok, stderr) =
        harness(&["serve", "--listen", "127.0.0.1:0", "--config", &config, "--nats", &nats.url]);
    assert!(!ok);
    assert!(stderr.contains("tenants are registered through the API"), "{stderr}");
    let (ok, stderr) = harness(&["worker"]);
    assert!(!ok);
    assert!(stderr.contains("--nats"), "{stderr}");
    let (ok, stderr) = harness(&["worker", "--nats", "nats://127.0.0.1:9"]);
    assert!(!ok);
    assert!(stderr.contains("NATS at nats://127.0.0.1:9"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_batch_larger_than_a_nats_message_runs_to_the_end() {
    let (service, env) = workspaces(1, 10_000);
    let mock = MockServer::start_local(service.clone()).await.unwrap();
    let dir = scratch("cluster-large");
    let nats = Nats::start(&dir);
    let config = config(&dir, 500);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[limits]\n", "[limits]\nmax-body-bytes = 4194304\n");
    std::fs::write(&config, text).unwrap();
    let mut args = vec!["worker", "--nats", &nats.url, "--name", "w0"];
    args.extend(QUEUE);
    let _worker = Process::spawn(&args, &env);
    let mut args =
        vec!["serve", "--listen", "127.0.0.1:0", "--config", &config, "--nats", &nats.url];
    args.extend(QUEUE);
    let server = Process::spawn(&args, &env);
    register(server.addr, &Target::of(&mock), 0, "chatgpt").await;
    // The job's spec holds these 8,000 changes twice (as asked, and in the contract's form):
    // more than NATS's 1 MiB message. It is stored as an object; the record holds progress.
    let changes = role_grants(&service, 0, 0, 8_000);
    assert_eq!(changes.len(), 8_000);
    let body = json_body(&json!({"changes": changes}));
    assert!(body.as_ref().unwrap().1.len() > 600 << 10);
    let started = call(server.addr, "POST", "/v1/tenants/t-000/jobs", Some("ops-key"), body).await;
    assert_eq!(started.status, 202, "{}", started.text());
    let id = started.json()["id"].as_str().unwrap().to_string();
    let job = wait_for_job(server.addr, &id, Duration::from_secs(240)).await;
    assert_eq!(job["state"], "done", "{}", job["stopped"]);
    assert_eq!((job["applied"].as_u64(), job["reported"].as_u64()), (Some(8_000), Some(8_000)));
    // One attempt: its last audit record, too large for a NATS message whole, did not send the
    // job round again.
    assert_eq!(job["attempts"].as_array().unwrap().len(), 1, "{}", job["attempts"]);
    let ws = service.workspace("ws-000").unwrap();
    let targets: BTreeSet<&str> =
        changes.iter().map(|c| c["account"]["id"].as_str().unwrap()).collect();
    let changed = ws.members.iter().filter(|m| targets.contains(m.id.as_str()));
    assert!(
        changed.clone().count() == 8_000 && changed.into_iter().all(|m| m.role == "account-admin")
    );
    mock.stop().await;
}
