//! Lifeboat's integration tests, one binary: each module is the tests of one
//! part against the local emulator (a moto server of each test's own), real
//! PostgreSQL servers and Terraform. One binary links the SDKs once, not once
//! per file: the twelve files' binaries took about 850 MB of a debug build,
//! this one takes 112 MB (measured 2026-12-07). `cargo test -p lifeboat-tests --test integration <module>::` runs one
//! module. `pg_dump_secrets` is a binary of its own (its log capture needs
//! a process to itself).

mod ec2;
mod freshness;
mod pg_dump;
mod pg_dump_common;
mod pg_dump_parallel;
mod pg_dump_task;
mod prune;
mod rds_snapshot;
mod reliability;
mod restore;
mod restore_drill;
mod scratch_server;
mod terraform;
