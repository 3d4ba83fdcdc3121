//! Lambda entry point of `freshness`.

use freshness::Freshness;
use lifeboat::logging::{self, LogFormat};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(LogFormat::Json);
    let aws = lifeboat::aws::load().await;
    let function = Freshness::from_env(&aws)?;
    lifeboat::runtime::serve(function).await
}
