//! Lambda entry point of `restore-drill`.

use lifeboat::logging::{self, LogFormat};
use restore_drill::RestoreDrill;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(LogFormat::Json);
    let aws = lifeboat::aws::load().await;
    let function = RestoreDrill::from_env(&aws)?;
    lifeboat::runtime::serve(function).await
}
