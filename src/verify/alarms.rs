//! The gate's CloudWatch alarms: one DescribeAlarms naming every `verify-alarms` entry (metric
//! and composite alarms both), read into one [`AlarmReading`] per name, in the order given.

use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::types::AlarmType;

use crate::error::{Error, Result};
use crate::outcome::AlarmReading;

/// Reads the state of each alarm in `names` (at most 100, the inputs' limit).
pub(crate) async fn read(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    names: &[String],
) -> Result<Vec<AlarmReading>> {
    let out = cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        // Without AlarmTypes, DescribeAlarms returns metric alarms only.
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .max_records(100)
        .send()
        .await
        .map_err(|e| Error::aws("CloudWatch", "DescribeAlarms", e))?;
    Ok(readings(names, &out))
}

/// One reading per name, in `names`' order: the state DescribeAlarms gave, or `None` when it
/// did not return that alarm. Pure.
pub(crate) fn readings(names: &[String], out: &DescribeAlarmsOutput) -> Vec<AlarmReading> {
    let metric = out
        .metric_alarms()
        .iter()
        .map(|a| (a.alarm_name(), a.state_value(), a.state_reason()));
    let composite = out
        .composite_alarms()
        .iter()
        .map(|a| (a.alarm_name(), a.state_value(), a.state_reason()));
    let found: Vec<_> = metric.chain(composite).collect();
    names
        .iter()
        .map(|name| {
            let hit = found.iter().find(|(n, _, _)| *n == Some(name.as_str()));
            AlarmReading {
                name: name.clone(),
                state: hit.and_then(|(_, s, _)| s.cloned()),
                reason: hit.and_then(|(_, _, r)| r.map(str::to_string)),
            }
        })
        .collect()
}

/// The preflight's check: every alarm in `names` exists in this account and region, so a typo
/// is found before anything is deployed rather than failing the verification after.
pub async fn check_exist(cloudwatch: &aws_sdk_cloudwatch::Client, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = read(cloudwatch, names)
        .await?
        .into_iter()
        .filter(|r| r.state.is_none())
        .map(|r| r.name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Verify {
        input: "verify-alarms",
        problem: format!(
            "no CloudWatch alarm named {} in this account and region (DescribeAlarms, metric and composite); check the names (they are case-sensitive) and the region",
            missing.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::types::{CompositeAlarm, MetricAlarm, StateValue};

    #[test]
    fn each_name_gets_its_alarms_state_in_order_and_a_missing_one_none() {
        let out = DescribeAlarmsOutput::builder()
            .metric_alarms(
                MetricAlarm::builder()
                    .alarm_name("5xx")
                    .state_value(StateValue::Alarm)
                    .state_reason("Threshold Crossed")
                    .build(),
            )
            .composite_alarms(
                CompositeAlarm::builder()
                    .alarm_name("health")
                    .state_value(StateValue::Ok)
                    .build(),
            )
            .build();
        let names = ["health".to_string(), "typo".into(), "5xx".into()];
        let r = readings(&names, &out);
        assert_eq!(r[0].state, Some(StateValue::Ok));
        assert_eq!(r[1].state, None);
        assert_eq!(r[1].text(), "typo: not found");
        assert_eq!(r[2].text(), "5xx: ALARM (Threshold Crossed)");
    }
}
