//! Lifeboat's shared core: everything the backup functions have in common.
//!
//! The domain modules (`payload`, `slot`, `naming`, `tags`, `report`) are plain
//! Rust over plain structs and know no AWS types. The edges (`alert`,
//! `metrics`, `aws`, `runtime`) hold the few AWS calls every function needs,
//! each behind a small trait with an in-memory fake for tests.

pub mod alert;
pub mod aws;
pub mod catalog;
pub mod copy;
pub mod dumps;
pub mod ec2;
pub mod error;
pub mod freshness;
pub mod logging;
pub mod metrics;
pub mod naming;
pub mod payload;
pub mod rds;
pub mod report;
pub mod retention;
pub mod runtime;
pub mod selection;
pub mod slot;
pub mod tags;

pub use error::{Error, PayloadError};
pub use payload::{Plan, Request};
pub use report::{Kind, Report};
pub use slot::Slot;
