//! Alerts to people: one SNS message per run that failed, behind a small trait
//! so that tests can hold the messages in memory.

use crate::error::{BoxError, Error};
use crate::report::{Notice, Report};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// SNS refuses subjects longer than this.
const SUBJECT_MAX: usize = 100;

/// How many skipped sources a failure alert lists.
const SKIPPED_SHOWN: usize = 20;

/// One message for the alert topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// A short line for a mail subject.
    pub subject: String,
    /// The message, readable by a person.
    pub body: String,
    /// Message attributes that subscriptions can filter on (`function`, `plan`, `severity`).
    pub attributes: BTreeMap<String, String>,
}

impl Alert {
    /// The alert for a run whose report lists failures.
    pub fn for_failures(report: &Report) -> Self {
        let subject = if report.failed.is_empty() {
            format!(
                "Lifeboat {}: a notice or metric was not delivered (plan {})",
                report.function, report.plan
            )
        } else {
            format!(
                "Lifeboat {}: {} of {} failed (plan {})",
                report.function,
                report.failed.len(),
                report.failed.len() + report.created.len() + report.skipped.len(),
                report.plan
            )
        };
        let mut body = format!(
            "Lifeboat {} could not back up everything in plan `{}`, slot {}.\n\n",
            report.function, report.plan, report.slot
        );
        body.push_str(&table(
            ["kind", "source", "error"],
            report
                .failed
                .iter()
                .map(|f| [f.kind.to_string(), f.source.clone(), f.error.clone()]),
        ));
        if !report.skipped.is_empty() {
            // SNS takes 256 KB a message: the first rows, and a count of the rest.
            body.push_str("\nLeft alone this run, and why:\n\n");
            body.push_str(&table(
                ["kind", "source", "reason"],
                report
                    .skipped
                    .iter()
                    .take(SKIPPED_SHOWN)
                    .map(|s| [s.kind.to_string(), s.source.clone(), s.reason.clone()]),
            ));
            let more = report.skipped.len().saturating_sub(SKIPPED_SHOWN);
            if more > 0 {
                body.push_str(&format!(
                    "… and {more} more (the run's report lists them)\n"
                ));
            }
        }
        for undelivered in &report.undelivered {
            body.push_str(&format!("\nNot delivered: {undelivered}\n"));
        }
        body.push_str(&format!(
            "\nCreated: {}. Skipped: {}. The function returns an error, so its Errors alarm fires too.\n",
            report.created.len(),
            report.skipped.len()
        ));
        Self::new(subject, body, &report.function, report.plan.as_str())
    }

    /// The alert for a run that stopped before it could handle its sources.
    pub fn for_error(function: &str, plan: &str, error: &Error) -> Self {
        let subject = format!("Lifeboat {function}: run failed (plan {plan})");
        let body = format!(
            "Lifeboat {function} stopped before backing anything up in plan `{plan}`:\n\n  {}\n",
            crate::aws::describe(error)
        );
        Self::new(subject, body, function, plan)
    }

    /// A function's notice: not a failure of the run, but it needs a person.
    pub fn notice(function: &str, plan: &str, notice: &Notice) -> Self {
        let mut alert = Self::new(notice.subject.clone(), notice.body.clone(), function, plan);
        alert
            .attributes
            .insert("severity".to_owned(), "warning".to_owned());
        alert.attributes.extend(notice.attributes.iter().cloned());
        alert
    }

    fn new(subject: String, body: String, function: &str, plan: &str) -> Self {
        let attributes = BTreeMap::from([
            ("function".to_owned(), function.to_owned()),
            ("plan".to_owned(), plan.to_owned()),
            ("severity".to_owned(), "error".to_owned()),
        ]);
        Alert {
            subject: clip(&subject, SUBJECT_MAX),
            body,
            attributes,
        }
    }
}

/// A plain-text table with aligned columns.
pub fn table<const N: usize>(
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> String {
    let rows: Vec<[String; N]> = rows.into_iter().collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn clip(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.len() <= max {
        return one_line;
    }
    let mut cut = max - 3;
    while !one_line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &one_line[..cut])
}

/// Somewhere to send alerts.
#[async_trait]
pub trait Alerts: Send + Sync {
    /// Sends one alert.
    async fn publish(&self, alert: &Alert) -> Result<(), BoxError>;
}

/// Alerts published to the SNS topic named by `LIFEBOAT_SNS_TOPIC_ARN`.
#[derive(Debug, Clone)]
pub struct SnsAlerts {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsAlerts {
    /// Alerts to `topic_arn` through `client`.
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsAlerts {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl Alerts for SnsAlerts {
    async fn publish(&self, alert: &Alert) -> Result<(), BoxError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&alert.subject)
            .message(&alert.body);
        for (name, value) in &alert.attributes {
            let attribute = aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()?;
            request = request.message_attributes(name, attribute);
        }
        request.send().await?;
        Ok(())
    }
}

/// Alerts kept in memory, for tests and dry runs.
#[derive(Debug, Default)]
pub struct MemoryAlerts {
    sent: Mutex<Vec<Alert>>,
}

impl MemoryAlerts {
    /// The alerts sent so far.
    pub fn sent(&self) -> Vec<Alert> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Alerts for MemoryAlerts {
    async fn publish(&self, alert: &Alert) -> Result<(), BoxError> {
        self.sent
            .lock()
            .map_err(|_| "alert store poisoned")?
            .push(alert.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_short_line() {
        let long = format!("a\nb{}", "é".repeat(80));
        let clipped = clip(&long, SUBJECT_MAX);
        assert!(clipped.len() <= SUBJECT_MAX);
        assert!(!clipped.contains('\n'));
        assert!(clipped.ends_with("..."));
    }

    #[test]
    fn a_failure_alert_says_why_sources_were_left_alone_within_bounds() {
        use crate::model::{Kind, Plan, Slot};
        use crate::report::{Failed, ItemError, Skipped};
        let slot = Slot::from_tag("2026-11-20T02:00:00Z").expect("slot");
        let mut report = Report::new(
            "rds-snapshot",
            Plan::new("nightly").expect("plan"),
            slot,
            false,
        );
        report.failed.push(Failed::new(
            Kind::Rds,
            "db-1",
            ItemError::new("storage full"),
        ));
        for i in 0..25 {
            report.skipped.push(Skipped::new(
                Kind::Rds,
                format!("db-w{i}"),
                None,
                "DB instance is `backing-up` (its backup window)",
            ));
        }
        let alert = Alert::for_failures(&report);
        assert!(alert.body.contains("storage full"));
        assert!(alert.body.contains("db-w0") && alert.body.contains("backup window"));
        assert!(!alert.body.contains("db-w24"), "only the first rows");
        assert!(alert.body.contains("and 5 more"), "{}", alert.body);
    }

    #[test]
    fn tables_align_their_columns() {
        let t = table(
            ["kind", "source"],
            [["rds".to_owned(), "orders-db".to_owned()]],
        );
        assert_eq!(t, "kind  source\n----  ---------\nrds   orders-db\n");
    }
}
