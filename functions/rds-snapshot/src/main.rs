//! Lambda entry point of `rds-snapshot`.

use lifeboat::logging::{self, LogFormat};
use rds_snapshot::RdsSnapshot;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(LogFormat::Json);
    let aws = lifeboat::aws::load().await;
    let function = RdsSnapshot::from_env(&aws)?;
    lifeboat::runtime::serve(function).await
}
