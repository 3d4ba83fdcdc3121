//! The `lifeboat` command's tests, one binary (the SDKs linked once, not once
//! per file): its exit status, its container image run as the Fargate task,
//! and docs/restore.md's runbook run as written.

mod image;
mod run;
mod runbook;
