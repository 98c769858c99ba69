//! Prometheus metrics, in the text exposition format: calls by tenant, operation and outcome,
//! call durations, egress requests by status, egress denials by rule, calls in flight.
//! Hand-written: a handful of counters and one histogram, where a metrics crate would bring a
//! registry and global state for no gain.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use accessgov_host::call::CallError;
use accessgov_host::egress::{Denial, EgressRecord};

use crate::error::ApiError;

/// Upper bounds of the call-duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    calls: BTreeMap<(String, String, String), u64>,
    durations: BTreeMap<String, Histogram>,
    egress: BTreeMap<(String, String), u64>,
    denials: BTreeMap<String, u64>,
    http: BTreeMap<(String, u16), u64>,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

impl Metrics {
    /// Counts a call of `operation` for `tenant` that ended in `outcome` after `seconds`, with
    /// its egress records.
    pub fn call(
        &self,
        tenant: &str,
        operation: &str,
        outcome: &str,
        seconds: f64,
        egress: &[EgressRecord],
    ) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *c.calls.entry((tenant.into(), operation.into(), outcome.into())).or_default() += 1;
        let h = c.durations.entry(operation.into()).or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        for record in egress {
            if let Some(denial) = &record.denied {
                *c.denials.entry(rule(denial).to_string()).or_default() += 1;
            }
            let status = record.status.map_or_else(|| "none".to_string(), |s| s.to_string());
            *c.egress.entry((tenant.into(), status)).or_default() += 1;
        }
    }

    /// Counts a call of `operation` for `tenant` that failed with `error` (none: it answered)
    /// after `duration_ms`, with its egress records; the outcome is the error's class.
    pub fn report(
        &self,
        tenant: &str,
        operation: &str,
        error: Option<&CallError>,
        duration_ms: u64,
        egress: &[EgressRecord],
    ) {
        let outcome = match error {
            None => "ok".to_string(),
            Some(error) => ApiError::call(error).body.error.unwrap_or_else(|| "error".to_string()),
        };
        self.call(tenant, operation, &outcome, duration_ms as f64 / 1000.0, egress);
    }

    /// Counts an HTTP answer of the server.
    pub fn http(&self, route: &str, status: u16) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *c.http.entry((route.into(), status)).or_default() += 1;
    }

    /// The exposition text, with the calls running now and the host's pooled
    /// `idle_connections`.
    pub fn render(&self, calls_in_flight: usize, idle_connections: usize) -> String {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP accessgov_calls_total Connector calls by tenant, operation and outcome."
        );
        let _ = writeln!(out, "# TYPE accessgov_calls_total counter");
        for ((tenant, op, outcome), n) in &c.calls {
            let _ = writeln!(
                out,
                "accessgov_calls_total{{tenant=\"{}\",operation=\"{op}\",outcome=\"{outcome}\"}} {n}",
                escape(tenant)
            );
        }
        let _ = writeln!(out, "# HELP accessgov_call_duration_seconds Connector call durations.");
        let _ = writeln!(out, "# TYPE accessgov_call_duration_seconds histogram");
        for (op, h) in &c.durations {
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "accessgov_call_duration_seconds_bucket{{operation=\"{op}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "accessgov_call_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "accessgov_call_duration_seconds_sum{{operation=\"{op}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "accessgov_call_duration_seconds_count{{operation=\"{op}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP accessgov_egress_requests_total Requests connectors sent, by tenant and answer status."
        );
        let _ = writeln!(out, "# TYPE accessgov_egress_requests_total counter");
        for ((tenant, status), n) in &c.egress {
            let _ = writeln!(
                out,
                "accessgov_egress_requests_total{{tenant=\"{}\",status=\"{status}\"}} {n}",
                escape(tenant)
            );
        }
        let _ = writeln!(
            out,
            "# HELP accessgov_egress_denied_total Requests the egress policy refused, by rule."
        );
        let _ = writeln!(out, "# TYPE accessgov_egress_denied_total counter");
        for (rule, n) in &c.denials {
            let _ = writeln!(out, "accessgov_egress_denied_total{{rule=\"{}\"}} {n}", escape(rule));
        }
        let _ = writeln!(
            out,
            "# HELP accessgov_http_responses_total Answers of the server, by route and status."
        );
        let _ = writeln!(out, "# TYPE accessgov_http_responses_total counter");
        for ((route, status), n) in &c.http {
            let _ = writeln!(
                out,
                "accessgov_http_responses_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(out, "# HELP accessgov_calls_in_flight Connector calls running now.");
        let _ = writeln!(out, "# TYPE accessgov_calls_in_flight gauge");
        let _ = writeln!(out, "accessgov_calls_in_flight {calls_in_flight}");
        let _ =
            writeln!(out, "# HELP accessgov_idle_connections Pooled idle upstream connections.");
        let _ = writeln!(out, "# TYPE accessgov_idle_connections gauge");
        let _ = writeln!(out, "accessgov_idle_connections {idle_connections}");
        out
    }
}

/// The rule a denial broke, as a label.
fn rule(denial: &Denial) -> &'static str {
    match denial {
        Denial::OriginNotAllowed { .. } => "origin-not-allowed",
        Denial::GuestCredential { .. } => "guest-credential",
        Denial::BadUrl { .. } => "bad-url",
        Denial::DotSegment { .. } => "dot-segment",
        Denial::PrivateAddress { .. } => "private-address",
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
