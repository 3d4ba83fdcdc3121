//! PostgreSQL, for the functions that dump and restore it: its client
//! programs ([`tool`]), logins from Secrets Manager ([`secret`]), databases
//! as payloads name them ([`database`]), the custom-format archive read as it
//! streams ([`archive`], [`fingerprint`]), and a stored dump checked against
//! its manifest ([`verify`]) or restored into a database ([`restore`]), for
//! a drill into a throwaway server ([`server`]); a directory dump
//! (`pg_dump -Fd -j N`) is stored and read back file by file ([`directory`]).

pub mod archive;
pub mod database;
pub mod directory;
pub mod fingerprint;
pub mod restore;
pub mod secret;
pub mod server;
pub mod tool;
pub mod verify;
