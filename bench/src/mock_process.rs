//! The mock ChatGPT service in a process of its own, so its CPU time and memory are not the
//! host's: `connector-bench serve-mock` serves generated workspaces until its stdin closes.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use accessgov_mock::{Fault, FaultPlan, GenerateSpec, MockServer, MockService, RandomFaults, seed};
use anyhow::{Context, bail};

use connector_bench::tenants::{admin_key_for, token_for};

/// Seed of every generated workspace (the e2e tests' seed).
pub const SEED: u64 = 11;

/// One generated workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceSpec {
    /// Account id.
    pub account_id: String,
    /// Members.
    pub members: usize,
    /// Pending invites.
    pub invites: usize,
}

impl WorkspaceSpec {
    /// `ID:MEMBERS:INVITES`.
    pub fn to_arg(&self) -> String {
        format!("{}:{}:{}", self.account_id, self.members, self.invites)
    }

    /// Parses `ID:MEMBERS:INVITES`.
    pub fn parse(arg: &str) -> anyhow::Result<Self> {
        let mut parts = arg.split(':');
        let (Some(id), Some(members), Some(invites), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            bail!("workspace {arg:?} is not ID:MEMBERS:INVITES");
        };
        Ok(WorkspaceSpec {
            account_id: id.to_string(),
            members: members.parse().context("MEMBERS")?,
            invites: invites.parse().context("INVITES")?,
        })
    }

    /// The workspace, as the mock generates it.
    pub fn generate(&self) -> accessgov_mock::Workspace {
        seed::generate(
            &self.account_id,
            GenerateSpec {
                members: self.members,
                invites: self.invites,
                seed: SEED,
                join_requests: 0,
            },
        )
    }
}

/// Serves `workspaces` (each with its Owner token) on a free loopback port with its own
/// two-thread runtime, each answer `latency` late if given, prints `listening ADDR`, and returns
/// when stdin closes.
pub fn serve(workspaces: &[WorkspaceSpec], latency: Option<Duration>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mock")
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let service = MockService::new();
        for spec in workspaces {
            service.put_workspace(spec.generate());
            service.add_token(&token_for(&spec.account_id), &spec.account_id, "account-owner");
            let read = [accessgov_mock::admin_api::USER_READ];
            service.add_admin_key(&admin_key_for(&spec.account_id), &spec.account_id, &read);
        }
        if let Some(latency) = latency {
            let millis = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
            service.set_faults(FaultPlan {
                random: Some(RandomFaults {
                    rate: 1.0,
                    seed: SEED,
                    kinds: vec![Fault::Slow { millis }],
                    methods: Vec::new(),
                }),
                ..FaultPlan::default()
            });
        }
        let server = MockServer::start_local(service).await?;
        connector_bench::say(format_args!("listening {}", server.addr()))?;
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await?;
        server.stop().await;
        Ok(())
    })
}

/// A running mock process; dropping it ends the process.
pub struct MockProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl MockProcess {
    /// Starts `connector-bench serve-mock` with `workspaces` and waits until it listens.
    pub fn start(workspaces: &[WorkspaceSpec]) -> anyhow::Result<Self> {
        Self::start_with(workspaces, None)
    }

    /// [`MockProcess::start`], each answer `latency` late if given (a distant service).
    pub fn start_with(
        workspaces: &[WorkspaceSpec],
        latency: Option<Duration>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let latency = latency.map(|l| l.as_millis().to_string());
        let mut child = Command::new(exe)
            .arg("serve-mock")
            .args(workspaces.iter().flat_map(|w| ["--workspace".to_string(), w.to_arg()]))
            .args(latency.iter().flat_map(|ms| ["--latency-ms".to_string(), ms.clone()]))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the mock process")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the mock's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("the mock process said {line:?}, not `listening ADDR`"))?;
        Ok(MockProcess { child, stdin, addr })
    }
}

impl MockProcess {
    /// CPU time the mock has used so far.
    pub fn cpu_time(&self) -> anyhow::Result<std::time::Duration> {
        connector_bench::memory::cpu_time(self.child.id()).context("the mock's /proc/<pid>/stat")
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
