//! Fault injection: make the mock misbehave the way the real service does under load.
//!
//! Faults are scripted per route and attempt (the first two `POST .../invites` get 429, then the
//! request goes through) or drawn at random at a given rate from a seed, so a run can be
//! repeated exactly.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One way a response can go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Fault {
    /// 429 `{"detail":"too many requests"}`, with `Retry-After` when given (seconds).
    TooManyRequests {
        /// Seconds to announce in `Retry-After`.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// 409 `{"detail":"Conflict"}`: a concurrent change to the same member.
    Conflict,
    /// A 5xx with `{"detail": ..}`.
    ServerError {
        /// 500, 502 or 503.
        status: u16,
    },
    /// 403 with an HTML bot-protection page.
    HtmlChallenge,
    /// 200 with an HTML page instead of JSON.
    HtmlOk,
    /// The request is handled, but the JSON answer is cut short.
    TruncatedJson,
    /// The connection is dropped before any answer; nothing is applied.
    Reset,
    /// The answer comes after this many milliseconds.
    Slow {
        /// Delay in milliseconds.
        millis: u64,
    },
    /// The request is applied, but its answer is lost (the connection drops).
    AppliedButLost,
}

impl Fault {
    /// Every kind of fault, with typical parameters.
    pub const ALL: [Fault; 12] = [
        Fault::TooManyRequests { retry_after: None },
        Fault::TooManyRequests { retry_after: Some(1) },
        Fault::Conflict,
        Fault::ServerError { status: 500 },
        Fault::ServerError { status: 502 },
        Fault::ServerError { status: 503 },
        Fault::HtmlChallenge,
        Fault::HtmlOk,
        Fault::TruncatedJson,
        Fault::Reset,
        Fault::Slow { millis: 300 },
        Fault::AppliedButLost,
    ];

    /// Whether the request is handled (state changes) before the fault shows.
    pub fn applies_request(self) -> bool {
        matches!(self, Fault::TruncatedJson | Fault::Slow { .. } | Fault::AppliedButLost)
    }

    /// The delay before answering, for `Slow`.
    pub fn delay(self) -> Option<Duration> {
        match self {
            Fault::Slow { millis } => Some(Duration::from_millis(millis)),
            _ => None,
        }
    }
}

/// Faults for requests whose method and path match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultScript {
    /// HTTP method, or `*`.
    pub method: String,
    /// A suffix the path must end with (e.g. `/invites`), or empty for any.
    #[serde(default)]
    pub path_suffix: String,
    /// The fault of the 1st, 2nd, ... matching request; `None` lets it through. Past the end,
    /// requests go through.
    pub attempts: Vec<Option<Fault>>,
    /// Matching requests seen so far.
    #[serde(skip)]
    pub seen: usize,
}

/// Random faults at a rate, reproducible from a seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomFaults {
    /// Probability of a fault per request, 0 to 1.
    pub rate: f64,
    /// Seed of the draws.
    pub seed: u64,
    /// The kinds to draw from (default: all).
    #[serde(default)]
    pub kinds: Vec<Fault>,
    /// Only requests with these methods (default: all).
    #[serde(default)]
    pub methods: Vec<String>,
}

/// The fault plan of a mock: scripts first, then random faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Scripted faults.
    #[serde(default, rename = "script")]
    pub scripts: Vec<FaultScript>,
    /// Random faults.
    #[serde(default)]
    pub random: Option<RandomFaults>,
    /// Draws made so far.
    #[serde(skip)]
    pub draws: u64,
}

impl FaultPlan {
    /// The fault, if any, for the next request with this method and path.
    pub fn next(&mut self, method: &str, path: &str) -> Option<Fault> {
        for script in &mut self.scripts {
            if (script.method == "*" || script.method.eq_ignore_ascii_case(method))
                && path.ends_with(&script.path_suffix)
            {
                let fault = script.attempts.get(script.seen).copied().flatten();
                script.seen += 1;
                if fault.is_some() {
                    return fault;
                }
            }
        }
        let random = self.random.as_ref()?;
        if !random.methods.is_empty()
            && !random.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
        {
            return None;
        }
        self.draws += 1;
        let roll = splitmix(random.seed ^ self.draws.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let unit = (roll >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= random.rate {
            return None;
        }
        let kinds: &[Fault] = if random.kinds.is_empty() { &Fault::ALL } else { &random.kinds };
        Some(kinds[(splitmix(roll) % kinds.len() as u64) as usize])
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_apply_per_attempt_and_random_faults_repeat_from_their_seed() {
        let mut plan = FaultPlan {
            scripts: vec![FaultScript {
                method: "POST".into(),
                path_suffix: "/invites".into(),
                attempts: vec![Some(Fault::Conflict), None, Some(Fault::Reset)],
                seen: 0,
            }],
            ..FaultPlan::default()
        };
        let got: Vec<_> = (0..4).map(|_| plan.next("POST", "/a/invites")).collect();
        assert_eq!(got, [Some(Fault::Conflict), None, Some(Fault::Reset), None]);
        assert_eq!(plan.next("GET", "/a/invites"), None);

        let random = || FaultPlan {
            random: Some(RandomFaults {
                rate: 0.2,
                seed: 9,
                kinds: Vec::new(),
                methods: Vec::new(),
            }),
            ..FaultPlan::default()
        };
        let (mut a, mut b) = (random(), random());
        let draws_a: Vec<_> = (0..1000).map(|_| a.next("GET", "/x")).collect();
        let draws_b: Vec<_> = (0..1000).map(|_| b.next("GET", "/x")).collect();
        assert_eq!(draws_a, draws_b);
        let faults = draws_a.iter().filter(|f| f.is_some()).count();
        assert!((150..250).contains(&faults), "{faults} faults at 20%");
    }

    #[test]
    fn the_documented_fault_file_parses() {
        let plan: FaultPlan = toml::from_str(
            r#"
[[script]]
method = "POST"
path_suffix = "/invites"
attempts = [{ kind = "too-many-requests" }, { kind = "too-many-requests", retry_after = 2 }]

[random]
rate = 0.2
seed = 42
kinds = [{ kind = "server-error", status = 503 }, { kind = "slow", millis = 300 }, { kind = "applied-but-lost" }]
"#,
        )
        .unwrap();
        assert_eq!(
            plan.scripts[0].attempts[1],
            Some(Fault::TooManyRequests { retry_after: Some(2) })
        );
        let random = plan.random.unwrap();
        assert_eq!(random.kinds[1], Fault::Slow { millis: 300 });
        assert!(
            toml::from_str::<FaultPlan>(
                "[[script]]\nmethod = \"GET\"\nattempts = [{ kind = \"meteor\" }]"
            )
            .is_err()
        );
    }
}
