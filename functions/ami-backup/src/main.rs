//! Lambda entry point of `ami-backup`.

use ami_backup::AmiBackup;
use lifeboat::logging::{self, LogFormat};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(LogFormat::Json);
    let aws = lifeboat::aws::load().await;
    let function = AmiBackup::from_env(&aws)?;
    lifeboat::runtime::serve(function).await
}
