//! The archive check against real `pg_dump -Fc` output: archives written by
//! pg_dump 15 (format 1.14) and 18 (format 1.16) of a small database with two
//! schemas, table data and a large object, as `pg_restore --list` reads them.

use lifeboat::postgres::archive::{ArchiveError, CustomArchiveCheck};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check(
    bytes: &[u8],
    piece: usize,
) -> Result<lifeboat::postgres::archive::ArchiveSummary, ArchiveError> {
    let mut check = CustomArchiveCheck::new();
    for chunk in bytes.chunks(piece) {
        check.feed(chunk)?;
    }
    check.finish()
}

#[test]
fn real_archives_read_whole() {
    // `pg_restore --list` of both files says "TOC Entries: 13"; two tables'
    // data and the large objects have data blocks. Both were written to a
    // pipe, as the function reads them (to a file, pg_dump 18 appends a copy
    // of the table of contents).
    for (name, version, entries) in [("pg18.dump", "1.16.0", 13), ("pg15.dump", "1.14.0", 13)] {
        let bytes = fixture(name);
        for piece in [1, 7, 4096, bytes.len()] {
            let summary = check(&bytes, piece).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(summary.archive_version.as_deref(), Some(version), "{name}");
            assert_eq!(summary.toc_entries, Some(entries), "{name}");
            assert_eq!(summary.data_blocks, Some(3), "{name}");
        }
    }
}

#[test]
fn real_archives_cut_short_are_incomplete() {
    for name in ["pg18.dump", "pg15.dump"] {
        let bytes = fixture(name);
        for cut in (0..bytes.len()).step_by(97) {
            let result = check(&bytes[..cut], 64);
            assert!(
                matches!(result, Err(ArchiveError::Truncated(_))),
                "{name} cut at {cut}: {result:?}"
            );
        }
    }
}
