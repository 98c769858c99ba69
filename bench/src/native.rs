//! The connector's own logic built natively: a transport over [`crate::http::Connection`] that
//! adds the credentials the host would inject, and the drivers the benchmark times (a full
//! `list-accounts` sync, one `grant`), plus the plain-client replay that is the HTTP floor.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use chatgpt_connector::ChatGptConnector;
use chatgpt_connector::settings::Settings;
use connector_sdk::transport::{HttpRequest, HttpResponse, Transport, TransportError};
use connector_sdk::types::{AccountRef, ChangeOutcome, ChangeResult, PageRequest};
use connector_sdk::{ChangeAction, ChangeRequest};

use crate::http::{Connection, HttpError};

/// A failure of a native run.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// The connector answered with an error.
    #[error("connector error: {0}")]
    Connector(#[from] chatgpt_connector::ConnectorError),
    /// A replayed request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A replayed request got another status than it did when recorded.
    #[error("replayed {method} {target} answered {got}, recorded {want}")]
    Status {
        /// Method.
        method: String,
        /// Path and query.
        target: String,
        /// Status now.
        got: u16,
        /// Status when recorded.
        want: u16,
    },
    /// A change did not end as the benchmark expects.
    #[error("grant to {email}: {message}")]
    Unexpected {
        /// The person.
        email: String,
        /// What happened.
        message: String,
    },
}

/// One request as sent, for replaying the identical sequence with a plain client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    /// Method.
    pub method: &'static str,
    /// Path and query.
    pub target: String,
    /// `accept` (and `content-type` when there is a body).
    pub media_type: &'static str,
    /// Body.
    pub body: Option<String>,
    /// Status answered.
    pub status: u16,
    /// Which round of requests sent together it went in; a request sent alone is a round of its
    /// own.
    pub round: u64,
}

/// Sends the connector's requests to one `http://` origin over kept-alive connections (one per
/// request of a round sent together), with the tenant's credentials (`Authorization: Bearer` and
/// `chatgpt-account-id`) added as the host's egress hook adds them. Optionally records every
/// request.
#[derive(Debug)]
pub struct NativeTransport {
    origin: String,
    addr: SocketAddr,
    connections: Mutex<Vec<Connection>>,
    authorization: String,
    account_id: String,
    recorded: Option<Mutex<Vec<SentRequest>>>,
    sent: Mutex<u64>,
    rounds: Mutex<u64>,
}

impl NativeTransport {
    /// A transport to the service at `addr` (`http://{addr}`) holding `token` for `account_id`.
    pub fn new(addr: SocketAddr, token: &str, account_id: &str, record: bool) -> Self {
        NativeTransport {
            origin: format!("http://{addr}"),
            addr,
            connections: Mutex::new(Vec::new()),
            authorization: format!("Bearer {token}"),
            account_id: account_id.to_string(),
            recorded: record.then(|| Mutex::new(Vec::new())),
            sent: Mutex::new(0),
            rounds: Mutex::new(0),
        }
    }

    /// Requests sent so far.
    pub fn sent(&self) -> u64 {
        *self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// TCP connections opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(Connection::opened)
            .sum()
    }

    /// Sends `requests` together: each is written on a connection of its own before any
    /// response is read, then the responses are read in order. One failing does not stop the
    /// others.
    fn send_round(
        &self,
        requests: &[Outgoing<'_>],
    ) -> Vec<Result<crate::http::Response, crate::http::HttpError>> {
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        while connections.len() < requests.len() {
            connections.push(Connection::new(self.addr));
        }
        let started: Vec<_> = requests
            .iter()
            .zip(connections.iter_mut())
            .map(|(request, connection)| {
                let headers = self.headers(request.media_type, request.body.is_some());
                connection.start(
                    request.method,
                    request.target,
                    &headers,
                    request.body.map(str::as_bytes),
                )
            })
            .collect();
        started
            .into_iter()
            .zip(connections.iter_mut())
            .map(|(started, connection)| started.and_then(|()| connection.finish()))
            .collect()
    }

    /// The headers of a request: what the connector sets and what the host would add.
    fn headers<'a>(&'a self, media_type: &'a str, has_body: bool) -> Vec<(&'a str, &'a str)> {
        let mut headers = vec![
            ("accept", media_type),
            ("authorization", self.authorization.as_str()),
            ("chatgpt-account-id", self.account_id.as_str()),
        ];
        if has_body {
            headers.push(("content-type", media_type));
        }
        headers
    }

    /// Sends a round of the connector's requests and records them.
    fn send_recorded(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
        let round = {
            let mut rounds = self.rounds.lock().unwrap_or_else(|p| p.into_inner());
            *rounds += 1;
            *rounds
        };
        let outgoing: Vec<Result<Outgoing<'_>, TransportError>> =
            requests.iter().map(|r| self.outgoing(r)).collect();
        let ready: Vec<Outgoing<'_>> =
            outgoing.iter().filter_map(|o| o.as_ref().ok()).copied().collect();
        let mut answers = self.send_round(&ready).into_iter();
        outgoing
            .into_iter()
            .map(|outgoing| {
                let outgoing = outgoing?;
                let answer = answers
                    .next()
                    .ok_or_else(|| TransportError::failed("no answer was read for the request"))?;
                let response = answer.map_err(|e| TransportError::failed(e.to_string()))?;
                *self.sent.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                if let Some(recorded) = &self.recorded {
                    recorded.lock().unwrap_or_else(|p| p.into_inner()).push(SentRequest {
                        method: outgoing.method,
                        target: outgoing.target.to_string(),
                        media_type: outgoing.media_type,
                        body: outgoing.body.map(str::to_string),
                        status: response.status,
                        round,
                    });
                }
                Ok(HttpResponse {
                    status: response.status,
                    content_type: response.content_type,
                    retry_after: response.retry_after,
                    body: response.body,
                })
            })
            .collect()
    }

    /// The parts of `request` this client sends; only requests to the transport's origin go.
    fn outgoing<'a>(&self, request: &'a HttpRequest) -> Result<Outgoing<'a>, TransportError> {
        let target = request
            .url
            .strip_prefix(self.origin.as_str())
            .filter(|rest| rest.starts_with('/'))
            .ok_or_else(|| TransportError {
                message: format!("{} is not on {}", request.url, self.origin),
                denied: true,
            })?;
        Ok(Outgoing {
            method: request.method.as_str(),
            target,
            media_type: request.content_type,
            body: request.body.as_deref(),
        })
    }

    /// The requests recorded so far (empty unless recording), and forgets them.
    pub fn take_recorded(&self) -> Vec<SentRequest> {
        self.recorded
            .as_ref()
            .map(|r| std::mem::take(&mut *r.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default()
    }
}

/// A request as this client writes it.
#[derive(Debug, Clone, Copy)]
struct Outgoing<'a> {
    method: &'static str,
    target: &'a str,
    media_type: &'static str,
    body: Option<&'a str>,
}

impl Transport for &NativeTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        self.send_recorded(std::slice::from_ref(request))
            .pop()
            .unwrap_or_else(|| Err(TransportError::failed("no answer was read for the request")))
    }

    fn send_all(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, TransportError>> {
        self.send_recorded(requests)
    }
}

/// The settings the host would serve through `wasi:config`.
pub fn settings_map(base_url: &str, account_id: &str) -> HashMap<String, String> {
    HashMap::from([
        ("base-url".to_string(), base_url.to_string()),
        ("account-id".to_string(), account_id.to_string()),
    ])
}

/// A connector for one call, as the component builds one per call: settings read and validated,
/// nothing carried over but the transport's connection.
fn connector<'a>(
    transport: &'a NativeTransport,
    settings: &HashMap<String, String>,
) -> Result<ChatGptConnector<&'a NativeTransport>, NativeError> {
    Ok(ChatGptConnector::new(transport, Settings::load(settings)?))
}

/// One `list-accounts` call (one page), as the component makes it: the page's account ids and
/// the next page's cursor.
pub fn list_page(
    transport: &NativeTransport,
    settings: &HashMap<String, String>,
    cursor: Option<String>,
    size: Option<u32>,
) -> Result<(Vec<String>, Option<String>), NativeError> {
    let page = connector(transport, settings)?.list_accounts(&PageRequest { cursor, size })?;
    Ok((page.items.into_iter().map(|a| a.id).collect(), page.next_cursor))
}

/// Account ids of a full `list-accounts` sync, one connector call per page of `size` (none: the
/// connector's default); returns them and the number of pages.
pub fn sync(
    transport: &NativeTransport,
    settings: &HashMap<String, String>,
    size: Option<u32>,
) -> Result<(Vec<String>, usize), NativeError> {
    let mut ids = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = list_page(transport, settings, cursor, size)?;
        pages += 1;
        ids.extend(page);
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok((ids, pages)),
        }
    }
}

/// What one `native-connector` process (one `list-accounts` call) prints, as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessCall {
    /// Accounts on the page.
    pub accounts: usize,
    /// Cursor of the next page; none on the last.
    pub next_cursor: Option<String>,
    /// The process's peak resident memory (`VmHWM`), in bytes; 0 when unreadable.
    pub peak_rss_bytes: u64,
}

/// Grants `entitlement` to the member `email` in one call; it must be applied.
pub fn grant(
    transport: &NativeTransport,
    settings: &HashMap<String, String>,
    email: &str,
    entitlement: &str,
) -> Result<ChangeResult, NativeError> {
    let change = ChangeRequest {
        action: ChangeAction::Grant,
        account: AccountRef::Email(email.to_string()),
        entitlement: entitlement.to_string(),
    };
    let unexpected =
        |message: String| NativeError::Unexpected { email: email.to_string(), message };
    let mut results = connector(transport, settings)?.apply_batch(&[change], false)?;
    let result = results.pop().ok_or_else(|| unexpected("no result".to_string()))??;
    if result.outcome != ChangeOutcome::Applied {
        return Err(unexpected(format!("{:?}, not applied", result.outcome)));
    }
    Ok(result)
}

/// The HTTP floor: sends `requests` again, in their order and in the same rounds, over
/// kept-alive connections with the same headers, and reads every body, without any connector
/// logic. Each must get its recorded status.
pub fn replay(transport: &NativeTransport, requests: &[SentRequest]) -> Result<(), NativeError> {
    for round in requests.chunk_by(|a, b| a.round == b.round) {
        let outgoing: Vec<Outgoing<'_>> = round
            .iter()
            .map(|r| Outgoing {
                method: r.method,
                target: &r.target,
                media_type: r.media_type,
                body: r.body.as_deref(),
            })
            .collect();
        for (request, answer) in round.iter().zip(transport.send_round(&outgoing)) {
            let response = answer?;
            if response.status != request.status {
                return Err(NativeError::Status {
                    method: request.method.to_string(),
                    target: request.target.clone(),
                    got: response.status,
                    want: request.status,
                });
            }
        }
    }
    Ok(())
}
