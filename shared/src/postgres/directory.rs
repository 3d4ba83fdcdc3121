//! A directory dump as stored: `pg_dump -Fd`'s files as objects under the
//! dump's key (`<key>/toc.dat`, `<key>/1234.dat.zst`, …), each listed in the
//! manifest with its size, SHA-256 and object version. The manifest's own
//! `sha256` is that of the listing in `sha256sum`'s form, so a person can
//! check a downloaded copy with `sha256sum -c`.
//!
//! Reading one back is [`crate::postgres::verify::fetch_directory`]'s.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One file of a directory dump, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpFile {
    /// Its name in the directory (`toc.dat`, `1234.dat.zst`).
    pub name: String,
    /// Its size.
    pub size_bytes: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// The object version written (`None` in a bucket without versioning).
    pub version_id: Option<String>,
    /// The object's ETag.
    pub e_tag: Option<String>,
}

/// The key of the file `name` of the directory dump at `key`.
pub fn file_key(key: &str, name: &str) -> String {
    format!("{key}/{name}")
}

/// The listing of `files` in `sha256sum`'s form (`<hex>  <name>`), in name order.
pub fn listing(files: &[DumpFile]) -> String {
    let mut sorted: Vec<&DumpFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    sorted
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.name))
        .collect()
}

/// SHA-256 of [`listing`], hex: the manifest's `sha256` of a directory dump.
pub fn listing_sha256(files: &[DumpFile]) -> String {
    hex(&Sha256::digest(listing(files).as_bytes()))
}

/// Hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
