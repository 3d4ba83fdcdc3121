//! Lambda entry point of `pg-dump`.

use lifeboat::logging::{self, LogFormat};
use pg_dump::PgDump;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(LogFormat::Json);
    let aws = lifeboat::aws::load().await;
    let function = PgDump::from_env(&aws)?;
    lifeboat::runtime::serve(function).await
}
