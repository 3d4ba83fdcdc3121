//! CloudWatch metrics, behind a small trait with an in-memory fake.

use crate::error::BoxError;
pub use crate::report::{Metric, Unit};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use std::sync::Mutex;

/// The namespace when `LIFEBOAT_METRIC_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "Lifeboat";

/// PutMetricData takes at most 1,000 data per call and 1 MB per request; with
/// Lifeboat's few short dimensions, 500 data stay far below the size limit.
pub const BATCH: usize = 500;

/// Somewhere to send metrics.
#[async_trait]
pub trait Metrics: Send + Sync {
    /// Sends all of `metrics`, in as many calls as the service's limits need.
    async fn put(&self, metrics: &[Metric]) -> Result<(), BoxError>;
}

/// Metrics sent to CloudWatch.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
}

impl CloudWatchMetrics {
    /// Metrics to `namespace` through `client`.
    pub fn new(client: aws_sdk_cloudwatch::Client, namespace: impl Into<String>) -> Self {
        CloudWatchMetrics {
            client,
            namespace: namespace.into(),
        }
    }
}

#[async_trait]
impl Metrics for CloudWatchMetrics {
    async fn put(&self, metrics: &[Metric]) -> Result<(), BoxError> {
        for batch in metrics.chunks(BATCH) {
            let data = batch.iter().map(datum).collect();
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(data))
                .send()
                .await?;
        }
        Ok(())
    }
}

fn datum(metric: &Metric) -> MetricDatum {
    let dimensions = metric
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
        .collect();
    MetricDatum::builder()
        .metric_name(metric.name)
        .set_dimensions(Some(dimensions))
        .value(metric.value)
        .unit(match metric.unit {
            Unit::Count => StandardUnit::Count,
            Unit::Seconds => StandardUnit::Seconds,
            Unit::Percent => StandardUnit::Percent,
        })
        .build()
}

/// Metrics kept in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryMetrics {
    sent: Mutex<Vec<Metric>>,
}

impl MemoryMetrics {
    /// The metrics sent so far.
    pub fn sent(&self) -> Vec<Metric> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Metrics for MemoryMetrics {
    async fn put(&self, metrics: &[Metric]) -> Result<(), BoxError> {
        self.sent
            .lock()
            .map_err(|_| "metric store poisoned")?
            .extend_from_slice(metrics);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::Client;
    use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    #[tokio::test]
    async fn more_metrics_than_one_call_takes_are_sent_in_batches() {
        let put = mock!(Client::put_metric_data)
            .match_requests(|r| r.namespace() == Some("Lifeboat") && r.metric_data().len() <= BATCH)
            .then_output(|| PutMetricDataOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&put]);
        let metrics: Vec<Metric> = (0..1_201)
            .map(|i| Metric {
                name: "BackupAgeSeconds",
                dimensions: vec![("Source", format!("vol-{i}"))],
                value: f64::from(i),
                unit: Unit::Seconds,
            })
            .collect();
        CloudWatchMetrics::new(client, DEFAULT_NAMESPACE)
            .put(&metrics)
            .await
            .expect("sent");
        assert_eq!(put.num_calls(), 3);
    }
}
