//! Lambda entry point of `ebs-snapshot`.

use ebs_snapshot::EbsSnapshot;
use lifeboat::logging::{self, LogFormat};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(LogFormat::Json);
    let aws = lifeboat::aws::load().await;
    let function = EbsSnapshot::from_env(&aws)?;
    lifeboat::runtime::serve(function).await
}
