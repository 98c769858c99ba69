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

/// The largest fault plan file read.
pub const MAX_FAULT_PLAN_BYTES: u64 = 1 << 20;

/// Why a fault plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault plan: {0}")]
pub struct FaultPlanError(String);

impl Fault {
    /// Refuses parameters the mock cannot honour, naming them.
    fn check(self, at: &str) -> Result<(), FaultPlanError> {
        let fail = |m: String| Err(FaultPlanError(format!("{at}: {m}")));
        match self {
            Fault::ServerError { status } if !(500..=599).contains(&status) => {
                fail(format!("server-error status {status} is not 500 to 599"))
            }
            Fault::Slow { millis } if millis > 600_000 => {
                fail(format!("slow millis {millis} is more than 600000 (ten minutes)"))
            }
            Fault::TooManyRequests { retry_after: Some(s) } if s > 86_400 => {
                fail(format!("retry_after {s} is more than 86400 seconds (a day)"))
            }
            _ => Ok(()),
        }
    }
}

impl FaultPlan {
    /// Reads a TOML fault plan and checks it: a rate between 0 and 1, statuses that are server
    /// errors, delays and `Retry-After` values within reason.
    pub fn from_toml(text: &str) -> Result<FaultPlan, FaultPlanError> {
        let plan: FaultPlan = toml::from_str(text).map_err(|e| FaultPlanError(e.to_string()))?;
        plan.check()?;
        Ok(plan)
    }

    /// Checks a plan (see [`FaultPlan::from_toml`]).
    pub fn check(&self) -> Result<(), FaultPlanError> {
        for (i, script) in self.scripts.iter().enumerate() {
            for (attempt, fault) in script.attempts.iter().enumerate() {
                if let Some(fault) = fault {
                    fault.check(&format!("script[{i}] attempt {}", attempt + 1))?;
                }
            }
        }
        if let Some(random) = &self.random {
            if !(0.0..=1.0).contains(&random.rate) {
                return Err(FaultPlanError(format!(
                    "random rate {} is not a probability from 0 to 1",
                    random.rate
                )));
            }
            for fault in &random.kinds {
                fault.check("random kinds")?;
            }
        }
        Ok(())
    }

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

    #[test]
    fn a_plan_the_mock_cannot_honour_is_refused_by_name() {
        for (text, expected) in [
            ("[random]\nrate = 7.5\nseed = 1", "rate 7.5"),
            ("[random]\nrate = -3\nseed = 1", "rate -3"),
            ("[random]\nrate = nan\nseed = 1", "rate NaN"),
            (
                "[[script]]\nmethod = \"GET\"\nattempts = [{ kind = \"server-error\", status = 200 }]",
                "script[0] attempt 1: server-error status 200",
            ),
        ] {
            let error = FaultPlan::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert!(FaultPlan::from_toml("[random]\nrate = 0.3\nseed = 1").is_ok());
    }

    proptest::proptest! {
        /// Any bytes in a fault plan file, read as `harness mock --faults` reads it: a plan, or
        /// a typed error (not UTF-8, not TOML, a value out of range), never a panic.
        #[test]
        fn any_bytes_are_a_plan_or_a_typed_error(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            toml_like in "(\\[\\[script\\]\\]|\\[random\\]|rate = -?[0-9.e]{1,6}|seed = [0-9]{1,3}|method = \"[A-Z*]{1,5}\"|attempts = \\[\\{ kind = \"[a-z-]{1,20}\"( , status = [0-9]{1,4})? \\}\\]|\n){0,12}",
        ) {
            let path = std::env::temp_dir().join(format!("faults-prop-{}.toml", std::process::id()));
            for candidate in [bytes, toml_like.into_bytes()] {
                std::fs::write(&path, &candidate).unwrap();
                if let Ok(text) = accessgov_policy::bounded_read::read_text(&path, MAX_FAULT_PLAN_BYTES)
                    && let Ok(plan) = FaultPlan::from_toml(&text)
                {
                    let rate = plan.random.as_ref().map_or(0.0, |r| r.rate);
                    proptest::prop_assert!((0.0..=1.0).contains(&rate));
                }
            }
        }
    }
}
