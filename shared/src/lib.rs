//! Lifeboat's shared core: everything the backup functions have in common,
//! in three layers (docs/architecture.md draws them).
//!
//! - [`model`]: the domain's words (plan, kind, slot, label, backup), a leaf.
//! - [`rules`]: every decision, pure: selection, naming, the slot planner,
//!   retention, freshness, the copy window. No AWS type in sight.
//! - [`aws`]: the adapters at the edge, the AWS listings and calls per
//!   service. Alerts and metrics, which every function sends, sit behind the
//!   small traits of [`alert`] and [`metrics`], with in-memory fakes for tests.
//!
//! Around them, the run loop every function shares: [`request`] (the common
//! payload), [`report`], [`runtime`] (parse, run, report, alert, count, with
//! the one alerting policy), [`fanout`] (calls at once) and [`copier`] (the one
//! implementation of cross-region copies over a per-service seam).
//!
//! [`postgres`] holds what the functions that dump and restore PostgreSQL
//! share: its programs, archive format, and the check and restore of a dump.

pub mod alert;
pub mod aws;
pub mod copier;
pub mod error;
pub mod fanout;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod postgres;
pub mod report;
pub mod request;
pub mod rules;
pub mod runtime;

pub use error::{Error, PayloadError};
pub use model::{Backup, BackupLabel, Kind, Plan, Slot};
pub use report::{ItemError, Report};
pub use request::Request;
