//! Lambda entry point of `prune`.

use lifeboat::logging::{self, LogFormat};
use prune::Prune;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(LogFormat::Json);
    let aws = lifeboat::aws::load().await;
    let function = Prune::from_env(&aws)?;
    lifeboat::runtime::serve(function).await
}
