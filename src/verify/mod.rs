//! The verification gate: after the new version serves, GET `verify-url` a few times and read
//! the `verify-alarms`, and say passed, failed or skipped. Each deploy path decides what a
//! verdict does (continue or roll back a paused ECS blue/green deployment, stop a CodeDeploy
//! one, roll back a rolling or Kubernetes rollout); this module only looks and judges.

pub mod alarms;
pub mod probe;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use crate::outcome::{AlarmReading, Probe, ProbeAnswer, Verdict, Verification};

use crate::error::Error;
use crate::inputs::VerifySettings;
use crate::outcome::DeployPath;

/// How the gate probes: the time limit of one GET and the pause between two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// One GET, connect to last byte; past it the probe counts as a timeout.
    pub timeout: Duration,
    /// Between the end of one GET and the start of the next: `verify-requests` probes spread
    /// over about as many seconds, long enough to see more than one task behind the URL.
    pub gap: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            timeout: Duration::from_secs(5),
            gap: Duration::from_secs(1),
        }
    }
}

/// One app's gate: what its inputs ask, and the clients that look.
#[derive(Debug, Clone)]
pub struct Gate {
    settings: VerifySettings,
    cloudwatch: aws_sdk_cloudwatch::Client,
    prober: probe::Prober,
}

impl Gate {
    /// The gate of an app's `verify-*` settings, reading alarms through `cloudwatch` and probing
    /// at `pace`.
    pub fn new(
        settings: &VerifySettings,
        cloudwatch: aws_sdk_cloudwatch::Client,
        pace: Pace,
    ) -> Gate {
        Gate {
            settings: settings.clone(),
            cloudwatch,
            prober: probe::Prober::new(pace),
        }
    }

    /// True when there is something to verify; else [`verify`] says skipped at once.
    pub fn is_set(&self) -> bool {
        self.settings.is_set()
    }

    /// `verify-test-url`: what ECS blue/green probes while green serves the test traffic only,
    /// and CodeDeploy while production traffic is on the replacement task set.
    pub(crate) fn test_url(&self) -> Option<&str> {
        self.settings.test_url.as_deref()
    }
}

/// Runs the gate: `verify-requests` GETs of the URL (`url_override` instead of `verify-url`
/// when given: at ECS blue/green's POST_TEST_TRAFFIC_SHIFT, the test listener), then one
/// DescribeAlarms of `verify-alarms`, and the verdict. Never an error: a URL that cannot be
/// used, alarms that cannot be read or a cancelled run fail the verification, saying why.
pub async fn verify(
    gate: &Gate,
    url_override: Option<&str>,
    cancel: &CancellationToken,
) -> Verification {
    let s = &gate.settings;
    let mut v = Verification {
        max_failures: s.max_failures,
        ..Verification::skipped()
    };
    if let Some(raw) = url_override.or(s.url.as_deref()) {
        match probe::target(raw) {
            Ok(url) => {
                v.url = Some(url.to_string());
                v.probes = gate.prober.run(&url, s.requests, cancel).await;
            }
            Err(why) => v.problem = Some(why),
        }
    }
    if cancel.is_cancelled() {
        v.problem = Some("the run was cancelled during the verification".into());
    } else if !s.alarms.is_empty() {
        match alarms::read(&gate.cloudwatch, &s.alarms).await {
            Ok(readings) => v.alarms = readings,
            Err(e) => v.problem = Some(format!("the alarms could not be read: {e}")),
        }
    }
    v.verdict = judge(&v);
    v
}

/// The preflight's refusal of `verify-test-url` (`test_url_set`) on a path with no test
/// listener (rolling, Kubernetes): it would never be probed.
pub(crate) fn check_test_url(
    path: DeployPath,
    test_url_set: bool,
    target: &str,
) -> Result<(), Error> {
    if !test_url_set || !matches!(path, DeployPath::Rolling | DeployPath::Kubernetes) {
        return Ok(());
    }
    Err(Error::Verify {
        input: "verify-test-url",
        problem: format!(
            "{target} deploys by {}, which has no test listener, so the test URL would never be probed (ECS blue/green probes it at POST_TEST_TRAFFIC_SHIFT, CodeDeploy once production traffic is on the replacement task set); leave verify-test-url out for this app",
            path.as_str()
        ),
    })
}

/// The verdict of what the gate saw: skipped when it had nothing to look at; failed when it
/// could not look, more probes failed than allowed, or an alarm is in ALARM or missing.
pub(crate) fn judge(v: &Verification) -> Verdict {
    if v.url.is_none() && v.alarms.is_empty() && v.problem.is_none() {
        return Verdict::Skipped;
    }
    let too_many = v.failures() > v.max_failures as usize;
    if v.problem.is_some() || too_many || v.alarms.iter().any(AlarmReading::fails) {
        Verdict::Failed
    } else {
        Verdict::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::types::StateValue;

    fn probe(answer: ProbeAnswer) -> Probe {
        Probe {
            answer,
            elapsed: Duration::from_millis(20),
        }
    }

    fn alarm(name: &str, state: Option<StateValue>) -> AlarmReading {
        AlarmReading {
            name: name.into(),
            state,
            reason: None,
        }
    }

    #[test]
    fn a_test_url_is_refused_where_there_is_no_test_listener() {
        for path in [DeployPath::Rolling, DeployPath::Kubernetes] {
            let e = check_test_url(path, true, "app web1")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("verify-test-url: app web1 deploys by ")
                    && e.contains("no test listener"),
                "{e}"
            );
            assert!(check_test_url(path, false, "app web1").is_ok());
        }
        assert!(check_test_url(DeployPath::EcsBlueGreen, true, "app web1").is_ok());
    }

    #[test]
    fn nothing_to_look_at_is_skipped() {
        assert_eq!(judge(&Verification::skipped()), Verdict::Skipped);
    }

    #[test]
    fn failures_up_to_the_allowance_pass_and_one_more_fails() {
        let mut v = Verification {
            url: Some("https://app.example/health".into()),
            max_failures: 1,
            probes: vec![
                probe(ProbeAnswer::Status(200)),
                probe(ProbeAnswer::Status(301)),
                probe(ProbeAnswer::Status(500)),
            ],
            ..Verification::default()
        };
        assert_eq!(judge(&v), Verdict::Passed);
        v.probes.push(probe(ProbeAnswer::Timeout));
        assert_eq!(judge(&v), Verdict::Failed);
        v.max_failures = 2;
        v.probes
            .push(probe(ProbeAnswer::Refused("connection refused".into())));
        assert_eq!(judge(&v), Verdict::Failed, "refused counts as a failure");
    }

    #[test]
    fn an_off_host_redirect_is_an_answer_but_4xx_is_not() {
        let off = probe(ProbeAnswer::RedirectOffHost {
            status: 302,
            host: "login.example".into(),
        });
        assert!(off.passed());
        assert!(!probe(ProbeAnswer::Status(404)).passed());
        assert!(!probe(ProbeAnswer::Status(199)).passed());
        assert!(probe(ProbeAnswer::Status(399)).passed());
    }

    #[test]
    fn an_alarm_in_alarm_or_missing_fails_and_insufficient_data_does_not() {
        let mut v = Verification {
            alarms: vec![
                alarm("p99", Some(StateValue::Ok)),
                alarm("new", Some(StateValue::InsufficientData)),
            ],
            ..Verification::default()
        };
        assert_eq!(judge(&v), Verdict::Passed);
        v.alarms.push(alarm("gone", None));
        assert_eq!(judge(&v), Verdict::Failed);
        v.alarms.pop();
        v.alarms.push(alarm("5xx", Some(StateValue::Alarm)));
        assert_eq!(judge(&v), Verdict::Failed);
        assert!(
            v.headline().contains("alarms failing: 5xx"),
            "{}",
            v.headline()
        );
    }

    #[test]
    fn a_gate_that_could_not_look_fails() {
        let v = Verification {
            problem: Some("the alarms could not be read: denied".into()),
            ..Verification::default()
        };
        assert_eq!(judge(&v), Verdict::Failed);
    }

    #[test]
    fn the_headline_and_details_say_what_was_seen() {
        let v = Verification {
            verdict: Verdict::Failed,
            url: Some("https://app.example/health".into()),
            max_failures: 0,
            probes: vec![
                probe(ProbeAnswer::Status(200)),
                probe(ProbeAnswer::Status(200)),
                probe(ProbeAnswer::Status(503)),
            ],
            alarms: vec![AlarmReading {
                name: "5xx".into(),
                state: Some(StateValue::Alarm),
                reason: Some("Threshold Crossed".into()),
            }],
            problem: None,
        };
        assert_eq!(
            v.headline(),
            "verification failed: 1 of 3 probes of https://app.example/health failed (0 allowed); alarms failing: 5xx"
        );
        assert_eq!(
            v.details(),
            vec![
                "probes: HTTP 200 ×2".to_string(),
                "probes: HTTP 503 ×1".into(),
                "alarm 5xx: ALARM (Threshold Crossed)".into(),
            ]
        );
    }
}
