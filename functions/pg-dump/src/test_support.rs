//! What the SDK-level tests inside the crate share.

use super::*;
use aws_smithy_mocks::mock_client;
use lifeboat::alert::MemoryAlerts;
use lifeboat::metrics::MemoryMetrics;
use std::sync::Arc;

/// The function over `s3`, with no other AWS service to call.
pub(super) fn pg_dump(s3: aws_sdk_s3::Client) -> PgDump {
    PgDump {
        s3,
        secrets: mock_client!(aws_sdk_secretsmanager, []),
        ecs: mock_client!(aws_sdk_ecs, []),
        settings: Settings {
            pg_dump: PathBuf::from("pg_dump"),
            bucket: None,
            kms_key_id: None,
            parts: PartPlan {
                part_size: 8 << 20,
                parts_in_flight: 4,
            },
            task: None,
        },
        sinks: Sinks {
            alerts: Arc::new(MemoryAlerts::default()),
            metrics: Arc::new(MemoryMetrics::default()),
        },
    }
}
