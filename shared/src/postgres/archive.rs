//! Checks a dump while it streams past, without holding it: a custom-format
//! archive's header and table of contents must read as `pg_restore --list`
//! reads them, and every data block the table of contents promises must follow,
//! whole; a plain dump must begin and end as `pg_dump` writes a complete one.
//!
//! The custom format (PostgreSQL's `pg_backup_archiver.c` and
//! `pg_backup_custom.c`): `PGDMP`, version bytes, integer and offset sizes,
//! format, compression, creation time, database name, server and pg_dump
//! versions, then the table of contents, then one block per entry that has data:
//! a type byte, the entry's id, and length-prefixed chunks ending in a zero
//! length (large-object blocks hold such a chunk run per object, ending in oid 0).

use crate::postgres::fingerprint::{Fingerprint, Stream};
use serde::Serialize;
use std::collections::HashMap;

/// The oldest archive version read (pg_dump 9.x and later write at least this).
const MIN_VERSION: (u8, u8) = (1, 12);
/// The newest archive version this check knows (pg_dump 17 and 18 write it).
const MAX_VERSION: (u8, u8) = (1, 16);
/// The largest table-of-contents entry held while it arrives: a limit of this
/// check, not of pg_dump, far above any real entry (one object's definition).
/// The table of contents itself is read entry by entry as it streams, so its
/// size (which grows with the number of objects) takes no memory.
pub const MAX_ENTRY_BYTES: usize = 64 << 20;

const BLK_DATA: u8 = 1;
const BLK_BLOBS: u8 = 3;

/// What the check learned of a complete archive, for the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveSummary {
    /// The archive format's version (`1.16.0`); absent for plain dumps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_version: Option<String>,
    /// The compression of its data, as its header records it (`zstd`, `gzip`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// The server's version, as the dump records it.
    pub server_version: Option<String>,
    /// The version of the `pg_dump` that wrote it.
    pub pg_dump_version: Option<String>,
    /// Entries in the table of contents; absent for plain dumps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toc_entries: Option<u64>,
    /// Data blocks read (each entry with data has one); absent for plain dumps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_blocks: Option<u64>,
    /// Rows per table and large objects, counted in the decompressed data;
    /// absent for plain dumps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
}

/// Why a dump would not restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// The bytes are not what `pg_dump` writes.
    #[error("not a readable pg_dump archive: {0}")]
    Malformed(String),
    /// The stream ended before the archive did.
    #[error("the archive is incomplete: {0}")]
    Truncated(String),
    /// The archive may be whole, but passes a limit of this check.
    #[error("the archive cannot be checked: {0}")]
    Limit(String),
}

/// A custom-format archive checked as it streams: feed it every byte, then [`finish`](Self::finish).
#[derive(Debug, Default)]
pub struct CustomArchiveCheck {
    /// Bytes not yet consumed: the header or the one table-of-contents entry
    /// still arriving, then the few bytes of a block header or a length split
    /// across reads.
    pending: Vec<u8>,
    /// Try to read the pending entry again once this many bytes are pending.
    next_attempt: usize,
    toc: Option<Toc>,
    stage: Stage,
    data_blocks: u64,
    /// The stream of the data block (or large object) being read, and the table it is of.
    stream: Option<(Option<String>, Stream)>,
    /// What was counted so far; `None` when the data cannot be counted.
    fingerprint: Option<Fingerprint>,
}

#[derive(Debug)]
struct Toc {
    int_size: usize,
    offset_size: usize,
    version: (u8, u8, u8),
    compression: String,
    server_version: Option<String>,
    pg_dump_version: Option<String>,
    entries: u64,
    entries_with_data: u64,
    /// `schema.table` of each table-data entry, by dump id.
    tables: HashMap<i64, String>,
    /// 1 for the custom format, 3 for a directory's `toc.dat`.
    format: u8,
    /// A directory's data files as its entries name them (without the
    /// compression's ending), with the table each holds (none: large objects).
    files: Vec<(String, Option<String>)>,
}

impl Toc {
    /// What the manifest records of an archive with this table of contents.
    fn summary(self, data_blocks: u64, fingerprint: Option<Fingerprint>) -> ArchiveSummary {
        let (major, minor, rev) = self.version;
        ArchiveSummary {
            archive_version: Some(format!("{major}.{minor}.{rev}")),
            compression: Some(self.compression),
            server_version: self.server_version,
            pg_dump_version: self.pg_dump_version,
            toc_entries: Some(self.entries),
            data_blocks: Some(data_blocks),
            fingerprint,
        }
    }
}

const FORMAT_CUSTOM: u8 = 1;
/// A directory's `toc.dat` says `tar` (3): pg_dump writes that code for
/// both, the directory being compatible with a tar archive's layout.
const FORMAT_DIRECTORY: u8 = 3;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading the header.
    #[default]
    Header,
    /// Reading the table of contents: this many entries to go.
    Entries { left: u64 },
    /// Between blocks: the next byte starts a block or the archive has ended.
    BlockHeader,
    /// A chunk length of a data block (or of a large object, in a large-object block).
    ChunkLength { in_blobs: bool },
    /// Inside a chunk: this many bytes to pass over.
    Chunk { left: u64, in_blobs: bool },
    /// The next large object's oid, or 0 at the end of a large-object block.
    BlobOid,
}

impl CustomArchiveCheck {
    /// A check that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next bytes of the stream.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        if !self.in_toc() {
            return self.feed_blocks(bytes);
        }
        self.pending.extend_from_slice(bytes);
        // Re-read a pending entry only once the bytes of it have doubled:
        // reading even one huge entry stays linear in its size.
        if self.pending.len() >= self.next_attempt {
            self.read_toc()?;
        }
        Ok(())
    }

    fn in_toc(&self) -> bool {
        matches!(self.stage, Stage::Header | Stage::Entries { .. })
    }

    /// Reads the header and every table-of-contents entry whole in the
    /// pending bytes, keeps the rest, and goes on to the data blocks after the
    /// last entry.
    fn read_toc(&mut self) -> Result<(), ArchiveError> {
        let mut at = 0;
        loop {
            if self.stage == (Stage::Entries { left: 0 }) {
                let rest = self.pending.split_off(at);
                self.pending = Vec::new();
                self.stage = Stage::BlockHeader;
                return self.feed_blocks(&rest);
            }
            let int_size = self.toc.as_ref().map_or(0, |t| t.int_size);
            let mut reader = Reader::new(&self.pending[at..], int_size);
            let read = match &self.toc {
                None => read_header(&mut reader).map(Read::Header),
                Some(toc) => read_entry(&mut reader, toc).map(Read::Entry),
            };
            let used = reader.at;
            match read {
                Ok(Read::Header(toc)) => {
                    self.stage = Stage::Entries { left: toc.entries };
                    // Counting needs the data's compression to be one this check decodes.
                    self.fingerprint = Stream::new(&toc.compression)
                        .is_ok()
                        .then(Fingerprint::default);
                    self.toc = Some(toc);
                }
                Ok(Read::Entry(entry)) => {
                    if let (Stage::Entries { left }, Some(toc)) = (&mut self.stage, &mut self.toc) {
                        *left -= 1;
                        toc.entries_with_data += u64::from(entry.has_data);
                        if let Some(file) = entry.file.filter(|f| !f.is_empty()) {
                            toc.files.push((file, entry.table.clone()));
                        }
                        if let Some(table) = entry.table.filter(|_| entry.has_data) {
                            toc.tables.insert(entry.id, table);
                        }
                    }
                }
                Err(Short::Malformed(m)) => return Err(ArchiveError::Malformed(m)),
                Err(Short::NeedMore) => {
                    self.pending.drain(..at);
                    if self.pending.len() > MAX_ENTRY_BYTES {
                        return Err(ArchiveError::Limit(format!(
                            "a table-of-contents entry is larger than {} MiB, this check's limit (not pg_dump's)",
                            MAX_ENTRY_BYTES >> 20
                        )));
                    }
                    self.next_attempt = self.pending.len() * 2;
                    return Ok(());
                }
            }
            at += used;
        }
    }

    fn feed_blocks(&mut self, mut bytes: &[u8]) -> Result<(), ArchiveError> {
        while !bytes.is_empty() {
            let taken = self.feed_blocks_once(bytes)?;
            bytes = &bytes[taken..];
        }
        Ok(())
    }

    /// Consumes a prefix of `bytes` (at least one byte) and returns its length.
    fn feed_blocks_once(&mut self, bytes: &[u8]) -> Result<usize, ArchiveError> {
        let int_size = self.toc.as_ref().map_or(4, |t| t.int_size);
        if let Stage::Chunk { left, in_blobs } = self.stage {
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
            if let Some((table, stream)) = &mut self.stream {
                stream
                    .feed(&bytes[..n])
                    .map_err(|e| data_error(table, &e))?;
            }
            let left = left - n as u64;
            self.stage = if left == 0 {
                Stage::ChunkLength { in_blobs }
            } else {
                Stage::Chunk { left, in_blobs }
            };
            return Ok(n);
        }
        // A fixed-size field: gather its bytes, which may arrive split across reads.
        let need = match self.stage {
            Stage::BlockHeader => 1 + 1 + int_size,
            _ => 1 + int_size,
        };
        let want = need - self.pending.len();
        let n = want.min(bytes.len());
        self.pending.extend_from_slice(&bytes[..n]);
        if self.pending.len() < need {
            return Ok(n);
        }
        let field = std::mem::take(&mut self.pending);
        let mut reader = Reader::new(&field, int_size);
        let malformed = |_| ArchiveError::Malformed("a data block header is cut short".into());
        self.stage = match self.stage {
            Stage::BlockHeader => {
                let kind = reader.byte().map_err(malformed)?;
                let id = reader.int().map_err(malformed)?;
                self.data_blocks += 1;
                match kind {
                    BLK_DATA => {
                        let table = self.toc.as_ref().and_then(|t| t.tables.get(&id)).cloned();
                        self.start_stream(Some(table.unwrap_or_else(|| format!("entry {id}"))));
                        Stage::ChunkLength { in_blobs: false }
                    }
                    BLK_BLOBS => Stage::BlobOid,
                    other => {
                        return Err(ArchiveError::Malformed(format!(
                            "unknown block type {other} for entry {id}"
                        )));
                    }
                }
            }
            Stage::ChunkLength { in_blobs } => match reader.int().map_err(malformed)? {
                0 => {
                    self.end_stream()?;
                    if in_blobs {
                        Stage::BlobOid
                    } else {
                        Stage::BlockHeader
                    }
                }
                len if len < 0 => {
                    return Err(ArchiveError::Malformed(format!(
                        "negative chunk length {len}"
                    )));
                }
                len => Stage::Chunk {
                    left: len as u64,
                    in_blobs,
                },
            },
            Stage::BlobOid => match reader.int().map_err(malformed)? {
                0 => Stage::BlockHeader,
                _ => {
                    if let Some(fingerprint) = &mut self.fingerprint {
                        fingerprint.large_objects += 1;
                    }
                    self.start_stream(None);
                    Stage::ChunkLength { in_blobs: true }
                }
            },
            Stage::Header | Stage::Entries { .. } | Stage::Chunk { .. } => {
                unreachable!("handled above")
            }
        };
        Ok(n)
    }

    /// Starts reading the compressed stream of a data block (of `table`) or
    /// of a large object (`None`), when the data is being counted.
    fn start_stream(&mut self, table: Option<String>) {
        let compression = self.toc.as_ref().map_or("none", |t| t.compression.as_str());
        self.stream = match (&self.fingerprint, Stream::new(compression)) {
            (Some(_), Ok(stream)) => Some((table, stream)),
            _ => None,
        };
    }

    /// The end of a data block or large object: its stream must be whole, and
    /// a table's data must end as `COPY` ends it; its rows are counted.
    fn end_stream(&mut self) -> Result<(), ArchiveError> {
        let Some((table, stream)) = self.stream.take() else {
            return Ok(());
        };
        let copy_ended = stream.copy_ended();
        let rows = stream.finish().map_err(|e| data_error(&table, &e))?;
        if let (Some(table), Some(fingerprint)) = (table, &mut self.fingerprint) {
            if !copy_ended {
                return Err(ArchiveError::Malformed(format!(
                    "the data of table {table} does not end as COPY ends it"
                )));
            }
            *fingerprint.tables.entry(table).or_default() += rows;
        }
        Ok(())
    }

    /// Ends the check: the stream must have ended between blocks, with every
    /// promised data block present.
    pub fn finish(mut self) -> Result<ArchiveSummary, ArchiveError> {
        if self.in_toc() {
            self.read_toc()?;
        }
        let Some(toc) = self.toc.filter(|_| self.stage != Stage::Header) else {
            return Err(ArchiveError::Truncated(
                "it ends inside its header or table of contents".into(),
            ));
        };
        if toc.format != FORMAT_CUSTOM {
            return Err(ArchiveError::Malformed(
                "it is a directory dump's table of contents, not a custom archive".into(),
            ));
        }
        if let Stage::Entries { left } = self.stage {
            return Err(ArchiveError::Truncated(format!(
                "it ends inside its table of contents, {left} of {} entries short",
                toc.entries
            )));
        }
        if self.stage != Stage::BlockHeader || !self.pending.is_empty() {
            return Err(ArchiveError::Truncated(format!(
                "it ends inside data block {}",
                self.data_blocks
            )));
        }
        if self.data_blocks != toc.entries_with_data {
            return Err(ArchiveError::Truncated(format!(
                "{} of the {} data blocks its table of contents lists are present",
                self.data_blocks, toc.entries_with_data
            )));
        }
        Ok(toc.summary(self.data_blocks, self.fingerprint))
    }
}

/// A directory-format dump (`pg_dump -Fd`) checked file by file, in any
/// order: `toc.dat` is read as a custom archive's table of contents is (with
/// each entry's file name where the custom format has a data offset), each
/// data file is decompressed and its rows counted, each large-object table
/// of contents is read; [`finish`](Self::finish) then matches them: every
/// file an entry names is there, every large object listed has its file,
/// and no file is left over. Memory: one file's check at a time per caller,
/// and a name per file.
#[derive(Debug, Default)]
pub struct DirectoryCheck {
    toc: Option<Toc>,
    /// What each file held, by its name in the directory.
    files: HashMap<String, FileRead>,
}

/// What one file of a directory dump held.
#[derive(Debug)]
pub enum FileRead {
    /// `toc.dat`.
    Toc(Box<TocRead>),
    /// A table's data: its rows.
    Data(u64),
    /// A large object's data.
    LargeObject,
    /// A large-object table of contents: the files it lists.
    LargeObjects(Vec<String>),
}

/// A read `toc.dat`, kept for [`DirectoryCheck::finish`].
#[derive(Debug)]
pub struct TocRead(Toc);

/// One file of a directory dump being checked as it streams past.
#[derive(Debug)]
pub struct FileCheck {
    name: String,
    reading: Reading,
    /// Bytes fed so far.
    size: u64,
}

#[derive(Debug)]
enum Reading {
    Toc(Box<CustomArchiveCheck>),
    Data(Box<Stream>),
    LargeObject(Box<Stream>),
    LargeObjects(Vec<u8>),
}

/// The largest large-object table of contents read (a line per object).
const MAX_LO_TOC: usize = 256 << 20;

/// A file's name without its compression's ending, and that compression
/// as [`Stream::new`] names it.
fn compression_of(name: &str) -> (&str, &'static str) {
    for (ending, compression) in [(".gz", "gzip-file"), (".zst", "zstd"), (".lz4", "lz4")] {
        if let Some(base) = name.strip_suffix(ending) {
            return (base, compression);
        }
    }
    (name, "none")
}

impl FileCheck {
    /// The check of the directory dump's file `name` (`toc.dat`,
    /// `1234.dat.zst`, `blob_16401.dat.gz`, `blobs_17.toc`), or why no
    /// directory dump holds such a file.
    pub fn new(name: &str) -> Result<Self, ArchiveError> {
        let (base, compression) = compression_of(name);
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let stream = || {
            Stream::new(compression)
                .map(Box::new)
                .map_err(|e| ArchiveError::Malformed(format!("{name}: {e}")))
        };
        let reading = if name == "toc.dat" {
            Reading::Toc(Box::default())
        } else if base.strip_suffix(".dat").is_some_and(digits) {
            Reading::Data(stream()?)
        } else if base
            .strip_prefix("blob_")
            .and_then(|b| b.strip_suffix(".dat"))
            .is_some_and(digits)
        {
            Reading::LargeObject(stream()?)
        } else if name == "blobs.toc"
            || name
                .strip_prefix("blobs_")
                .and_then(|b| b.strip_suffix(".toc"))
                .is_some_and(digits)
        {
            Reading::LargeObjects(Vec::new())
        } else {
            return Err(ArchiveError::Malformed(format!(
                "{name} is not a file pg_dump's directory format writes"
            )));
        };
        Ok(FileCheck {
            name: name.to_owned(),
            reading,
            size: 0,
        })
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the file's next bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        let name = &self.name;
        self.size += bytes.len() as u64;
        match &mut self.reading {
            Reading::Toc(check) => check.feed(bytes),
            Reading::Data(stream) | Reading::LargeObject(stream) => stream
                .feed(bytes)
                .map_err(|e| ArchiveError::Malformed(format!("{name}: {e}"))),
            Reading::LargeObjects(text) => {
                if text.len() + bytes.len() > MAX_LO_TOC {
                    return Err(ArchiveError::Limit(format!(
                        "{name} is larger than {} MiB, this check's limit for a large-object table of contents",
                        MAX_LO_TOC >> 20
                    )));
                }
                text.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// The file's end: what it held, or why it is not whole.
    pub fn finish(self) -> Result<(String, FileRead), ArchiveError> {
        let name = self.name;
        let malformed = |e: String| ArchiveError::Malformed(format!("{name}: {e}"));
        let read = match self.reading {
            Reading::Toc(mut check) => {
                if check.in_toc() {
                    check.read_toc()?;
                }
                match (check.toc, check.stage) {
                    (Some(toc), Stage::BlockHeader) if check.pending.is_empty() => {
                        if toc.format != FORMAT_DIRECTORY {
                            return Err(malformed(
                                "it is a custom archive, not a directory's table of contents"
                                    .into(),
                            ));
                        }
                        FileRead::Toc(Box::new(TocRead(toc)))
                    }
                    (Some(_), Stage::BlockHeader) => {
                        return Err(malformed("bytes follow its last entry".into()));
                    }
                    _ => {
                        return Err(ArchiveError::Truncated(format!(
                            "{name} ends inside its header or entries"
                        )));
                    }
                }
            }
            Reading::Data(stream) => {
                let ended = stream.copy_ended();
                let rows = stream.finish().map_err(malformed)?;
                if !ended {
                    return Err(malformed("its data does not end as COPY ends it".into()));
                }
                FileRead::Data(rows)
            }
            // pg_dump's lz4 writes nothing at all for an empty large object.
            Reading::LargeObject(_) if self.size == 0 && name.ends_with(".lz4") => {
                FileRead::LargeObject
            }
            Reading::LargeObject(stream) => {
                stream.finish().map_err(malformed)?;
                FileRead::LargeObject
            }
            Reading::LargeObjects(text) => {
                let text =
                    String::from_utf8(text).map_err(|_| malformed("it is not text".into()))?;
                let files = text
                    .lines()
                    .map(|line| match line.split_once(' ') {
                        Some((oid, file)) if oid.parse::<u32>().is_ok() && !file.is_empty() => {
                            Ok(file.to_owned())
                        }
                        _ => Err(malformed(format!("`{line}` is not `<oid> <file>`"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                FileRead::LargeObjects(files)
            }
        };
        Ok((name, read))
    }
}

impl DirectoryCheck {
    /// A check that has seen no file yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds what a file held ([`FileCheck::finish`]).
    pub fn add(&mut self, (name, read): (String, FileRead)) -> Result<(), ArchiveError> {
        let read = match read {
            FileRead::Toc(toc) => {
                self.toc = Some(toc.0);
                FileRead::LargeObject
            }
            other => other,
        };
        if self.files.insert(name.clone(), read).is_some() {
            return Err(ArchiveError::Malformed(format!("{name} is there twice")));
        }
        Ok(())
    }

    /// Ends the check: every file the table of contents names is there,
    /// whole, and nothing else.
    pub fn finish(mut self) -> Result<ArchiveSummary, ArchiveError> {
        let Some(toc) = self.toc.take() else {
            return Err(ArchiveError::Truncated("toc.dat is missing".into()));
        };
        self.files.remove("toc.dat");
        // The files present, by the name their entries give them.
        let mut present: HashMap<String, (String, FileRead)> = self
            .files
            .into_iter()
            .map(|(name, read)| (compression_of(&name).0.to_owned(), (name, read)))
            .collect();
        let missing = |file: &str| {
            ArchiveError::Truncated(format!(
                "{file}, which its table of contents lists, is missing"
            ))
        };
        let mut fingerprint = Fingerprint::default();
        let mut data_blocks = 0;
        for (file, table) in &toc.files {
            let (name, read) = present.remove(file).ok_or_else(|| missing(file))?;
            data_blocks += 1;
            match (read, table) {
                (FileRead::Data(rows), Some(table)) => {
                    *fingerprint.tables.entry(table.clone()).or_default() += rows;
                }
                (FileRead::Data(_), None) => {}
                (FileRead::LargeObjects(objects), _) => {
                    for object in objects {
                        match present.remove(&object) {
                            Some((_, FileRead::LargeObject)) => fingerprint.large_objects += 1,
                            Some((name, _)) => {
                                return Err(ArchiveError::Malformed(format!(
                                    "{name} is listed as a large object but is not one"
                                )));
                            }
                            None => return Err(missing(&object)),
                        }
                    }
                }
                (_, _) => {
                    return Err(ArchiveError::Malformed(format!(
                        "{name} is not the data its table of contents says"
                    )));
                }
            }
        }
        if let Some((name, _)) = present.into_values().next() {
            return Err(ArchiveError::Malformed(format!(
                "{name} is not in its table of contents"
            )));
        }
        if data_blocks != toc.entries_with_data {
            return Err(ArchiveError::Malformed(format!(
                "{data_blocks} of the {} entries with data name a file",
                toc.entries_with_data
            )));
        }
        Ok(toc.summary(data_blocks, Some(fingerprint)))
    }
}

/// A data stream that does not read, worded with the table it is of.
fn data_error(table: &Option<String>, error: &str) -> ArchiveError {
    match table {
        Some(table) => ArchiveError::Malformed(format!("the data of table {table}: {error}")),
        None => ArchiveError::Malformed(format!("a large object's data: {error}")),
    }
}

/// What one read of the table of contents found.
enum Read {
    Header(Toc),
    Entry(Entry),
}

/// What the check keeps of a table-of-contents entry.
struct Entry {
    id: i64,
    /// Whether a data block for it follows.
    has_data: bool,
    /// `schema.table`, for table data.
    table: Option<String>,
    /// In a directory's table of contents: its data file.
    file: Option<String>,
}

/// Why a read stopped.
enum Short {
    /// The bytes so far end before the thing being read.
    NeedMore,
    /// The bytes cannot be an archive.
    Malformed(String),
}

/// A cursor over the bytes of an archive, reading its integers and strings.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    int_size: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], int_size: usize) -> Self {
        Reader {
            bytes,
            at: 0,
            int_size,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let end = self.at.checked_add(n).ok_or(Short::NeedMore)?;
        let slice = self.bytes.get(self.at..end).ok_or(Short::NeedMore)?;
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, Short> {
        Ok(self.take(1)?[0])
    }

    /// An integer: a sign byte, then `int_size` bytes, least significant first.
    fn int(&mut self) -> Result<i64, Short> {
        let negative = self.byte()? != 0;
        let digits = self.take(self.int_size)?;
        let value = digits
            .iter()
            .rev()
            .fold(0i64, |acc, b| (acc << 8) | i64::from(*b));
        Ok(if negative { -value } else { value })
    }

    /// A string: its length as an integer (-1 for none), then its bytes.
    fn string(&mut self) -> Result<Option<String>, Short> {
        match self.int()? {
            -1 => Ok(None),
            len if len < 0 => Err(Short::Malformed(format!("a string of length {len}"))),
            len => {
                let len = usize::try_from(len).map_err(|_| Short::NeedMore)?;
                if len > MAX_ENTRY_BYTES {
                    return Err(Short::Malformed(format!(
                        "a string of {len} bytes, more than this check's limit of {} MiB per table-of-contents entry",
                        MAX_ENTRY_BYTES >> 20
                    )));
                }
                Ok(Some(String::from_utf8_lossy(self.take(len)?).into_owned()))
            }
        }
    }
}

/// The header, up to the number of table-of-contents entries.
fn read_header(r: &mut Reader<'_>) -> Result<Toc, Short> {
    if r.take(5)? != b"PGDMP" {
        return Err(Short::Malformed("it does not start with PGDMP".into()));
    }
    let version = (r.byte()?, r.byte()?, r.byte()?);
    let v = (version.0, version.1);
    if !(MIN_VERSION..=MAX_VERSION).contains(&v) {
        return Err(Short::Malformed(format!(
            "archive version {}.{} is not one this check reads (1.12 to 1.16): a pg_dump newer than Lifeboat knows?",
            version.0, version.1
        )));
    }
    r.int_size = usize::from(r.byte()?);
    if !(1..=8).contains(&r.int_size) {
        return Err(Short::Malformed(format!("integer size {}", r.int_size)));
    }
    let offset_size = usize::from(r.byte()?);
    let format = r.byte()?;
    if format != FORMAT_CUSTOM && format != FORMAT_DIRECTORY {
        return Err(Short::Malformed(format!(
            "format {format} is neither the custom format nor a directory's table of contents"
        )));
    }
    let compression = if v >= (1, 15) {
        match r.byte()? {
            0 => "none".to_owned(),
            1 => "gzip".to_owned(),
            2 => "lz4".to_owned(),
            3 => "zstd".to_owned(),
            other => return Err(Short::Malformed(format!("compression algorithm {other}"))),
        }
    } else {
        match r.int()? {
            0 => "none".to_owned(),
            _ => "gzip".to_owned(),
        }
    };
    for _ in 0..7 {
        r.int()?; // creation time: second, minute, hour, day, month, year, DST
    }
    r.string()?; // database name
    let server_version = r.string()?;
    let pg_dump_version = r.string()?;
    let entries = r.int()?;
    if entries < 0 {
        return Err(Short::Malformed(format!("{entries} entries")));
    }
    Ok(Toc {
        int_size: r.int_size,
        offset_size,
        version,
        compression,
        server_version,
        pg_dump_version,
        entries: entries as u64,
        entries_with_data: 0,
        tables: HashMap::new(),
        format,
        files: Vec::new(),
    })
}

/// One table-of-contents entry.
fn read_entry(r: &mut Reader<'_>, toc: &Toc) -> Result<Entry, Short> {
    let v = (toc.version.0, toc.version.1);
    let id = r.int()?; // dump id
    let has_data = r.int()? != 0; // had a data dumper: a data block follows
    r.string()?; // table oid
    r.string()?; // oid
    let tag = r.string()?;
    let description = r.string()?;
    r.int()?; // section
    r.string()?; // definition
    r.string()?; // drop statement
    r.string()?; // copy statement
    let namespace = r.string()?;
    r.string()?; // tablespace
    if v >= (1, 14) {
        r.string()?; // table access method
    }
    if v >= (1, 16) {
        r.int()?; // relkind
    }
    r.string()?; // owner
    r.string()?; // "false": WITH OIDS, long gone
    while r.string()?.is_some() {} // dependencies, ending in a null string
    let file = if toc.format == FORMAT_DIRECTORY {
        r.string()? // the entry's data file, empty for none
    } else {
        r.byte()?; // data offset: its state, then its bytes
        r.take(toc.offset_size)?;
        None
    };
    let table = match (description.as_deref(), namespace, tag) {
        (Some("TABLE DATA"), Some(namespace), Some(tag)) => Some(format!("{namespace}.{tag}")),
        (Some("TABLE DATA"), None, Some(tag)) => Some(tag),
        _ => None,
    };
    Ok(Entry {
        id,
        has_data,
        table,
        file,
    })
}

/// A plain (SQL) dump checked as it streams: it must open with pg_dump's
/// header and close with its "dump complete" trailer.
#[derive(Debug, Default)]
pub struct PlainDumpCheck {
    head: Vec<u8>,
    tail: Vec<u8>,
}

const PLAIN_HEAD: usize = 4096;
const PLAIN_TAIL: usize = 4096;

impl PlainDumpCheck {
    /// A check that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next bytes of the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.head.len() < PLAIN_HEAD {
            let n = (PLAIN_HEAD - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * PLAIN_TAIL {
            self.tail.drain(..self.tail.len() - PLAIN_TAIL);
        }
    }

    /// Ends the check.
    pub fn finish(self) -> Result<ArchiveSummary, ArchiveError> {
        let head = String::from_utf8_lossy(&self.head);
        if !head.starts_with("--\n-- PostgreSQL database dump\n--\n") {
            return Err(ArchiveError::Malformed(
                "it does not start with pg_dump's header".into(),
            ));
        }
        let tail = String::from_utf8_lossy(&self.tail);
        if !tail.contains("\n-- PostgreSQL database dump complete\n") {
            return Err(ArchiveError::Truncated(
                "it lacks pg_dump's \"dump complete\" trailer".into(),
            ));
        }
        let version = |label: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(label))
                .map(|v| v.trim().to_owned())
        };
        Ok(ArchiveSummary {
            archive_version: None,
            compression: None,
            server_version: version("-- Dumped from database version "),
            pg_dump_version: version("-- Dumped by pg_dump version "),
            toc_entries: None,
            data_blocks: None,
            fingerprint: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An integer as the archive writes it (4-byte integers).
    fn int(v: i64) -> Vec<u8> {
        let mut out = vec![u8::from(v < 0)];
        out.extend_from_slice(&(v.unsigned_abs() as u32).to_le_bytes());
        out
    }

    fn string(s: Option<&str>) -> Vec<u8> {
        match s {
            None => int(-1),
            Some(s) => [int(s.len() as i64), s.as_bytes().to_vec()].concat(),
        }
    }

    /// A version 1.16 archive, its data not compressed, with three entries:
    /// one without data, a table's with two rows in two chunks, and a
    /// large-object block with two objects.
    fn archive() -> Vec<u8> {
        let mut a = b"PGDMP".to_vec();
        a.extend([1, 16, 0, 4, 8, 1, 0]);
        for t in [25, 54, 18, 22, 10, 126, 0] {
            a.extend(int(t));
        }
        a.extend(string(Some("orders")));
        a.extend(string(Some("18.6")));
        a.extend(string(Some("18.6")));
        a.extend(int(3));
        for (id, data, tag) in [(1, 0, "ENCODING"), (2, 1, "t"), (3, 1, "BLOBS")] {
            a.extend(int(id));
            a.extend(int(data));
            a.extend(string(Some("0")));
            a.extend(string(Some("0")));
            a.extend(string(Some(tag)));
            a.extend(string(Some("TABLE DATA")));
            a.extend(int(2));
            for s in [Some("CREATE"), None, None, Some("public"), None, None] {
                a.extend(string(s));
            }
            a.extend(int(114));
            a.extend(string(Some("postgres")));
            a.extend(string(Some("false")));
            a.extend(string(Some("1")));
            a.extend(string(None));
            a.extend([2, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        a.push(BLK_DATA);
        a.extend(int(2));
        for chunk in [&b"1\thello\n"[..], &b"2\tworld\n\\.\n\n"[..]] {
            a.extend(int(chunk.len() as i64));
            a.extend_from_slice(chunk);
        }
        a.extend(int(0));
        a.push(BLK_BLOBS);
        a.extend(int(3));
        for oid in [16398, 16399] {
            a.extend(int(oid));
            a.extend(int(2));
            a.extend_from_slice(b"lo");
            a.extend(int(0));
        }
        a.extend(int(0));
        a
    }

    /// A version 1.16 archive whose table of contents has `entries` entries
    /// of about 150 bytes, none with data.
    fn archive_of(entries: usize) -> Vec<u8> {
        // The header of `archive()`, up to its count of entries.
        let mut a = archive();
        a.truncate(5 + 7 + 7 * 5 + [6, 4, 4].iter().map(|n| 5 + n).sum::<usize>());
        a.extend(int(entries as i64));
        for id in 0..entries {
            a.extend(int(id as i64 + 1));
            a.extend(int(0));
            for s in [Some("0"), Some("0")] {
                a.extend(string(s));
            }
            a.extend(string(Some(&format!("table_{id:07}"))));
            a.extend(string(Some("TABLE")));
            a.extend(int(1));
            let create = format!("CREATE TABLE public.table_{id:07} (id integer);");
            for s in [
                Some(create.as_str()),
                None,
                None,
                Some("public"),
                None,
                None,
            ] {
                a.extend(string(s));
            }
            a.extend(int(114));
            a.extend(string(Some("postgres")));
            a.extend(string(Some("false")));
            a.extend(string(None));
            a.extend([1, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        a // no data blocks: no entry has data
    }

    #[test]
    fn a_table_of_contents_of_any_size_is_read_as_it_streams_in_little_memory() {
        // 400,000 entries: about 60 MiB of table of contents, twice the 32 MiB
        // that reading it whole once allowed.
        let bytes = archive_of(400_000);
        assert!(bytes.len() > 48 << 20, "{} bytes", bytes.len());
        let mut check = CustomArchiveCheck::new();
        let mut held = 0;
        for chunk in bytes.chunks(64 << 10) {
            check.feed(chunk).expect("readable");
            held = held.max(check.pending.capacity());
        }
        let summary = check.finish().expect("complete");
        assert_eq!(summary.toc_entries, Some(400_000));
        assert_eq!(summary.data_blocks, Some(0));
        assert!(held <= 256 << 10, "held {held} bytes at once");
    }

    #[test]
    fn an_entry_beyond_the_checks_limit_is_worded_as_a_limit() {
        let mut bytes = archive_of(1);
        // The one entry's tag: its length becomes 65 MiB.
        let at = bytes
            .windows(12)
            .position(|w| w == b"table_000000")
            .expect("the tag")
            - 5;
        bytes[at..at + 5].copy_from_slice(&int(65 << 20));
        let error = check_in_pieces(&bytes, 4096).expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("more than this check's limit of 64 MiB per table-of-contents entry"),
            "{error}"
        );
    }

    fn check_in_pieces(bytes: &[u8], piece: usize) -> Result<ArchiveSummary, ArchiveError> {
        let mut check = CustomArchiveCheck::new();
        for chunk in bytes.chunks(piece) {
            check.feed(chunk)?;
        }
        check.finish()
    }

    #[test]
    fn a_whole_archive_reads_however_it_is_split() {
        let bytes = archive();
        for piece in [1, 2, 3, 7, 64, bytes.len()] {
            let summary = check_in_pieces(&bytes, piece).expect("complete");
            assert_eq!(summary.toc_entries, Some(3), "piece {piece}");
            assert_eq!(summary.data_blocks, Some(2));
            assert_eq!(summary.server_version.as_deref(), Some("18.6"));
            assert_eq!(summary.archive_version.as_deref(), Some("1.16.0"));
            assert_eq!(summary.compression.as_deref(), Some("none"));
            let fingerprint = summary.fingerprint.expect("counted");
            assert_eq!(
                fingerprint.tables.into_iter().collect::<Vec<_>>(),
                vec![("public.t".to_owned(), 2)],
                "piece {piece}"
            );
            assert_eq!(fingerprint.large_objects, 2);
        }
    }

    #[test]
    fn an_archive_cut_anywhere_is_incomplete() {
        let bytes = archive();
        for cut in 0..bytes.len() {
            let result = check_in_pieces(&bytes[..cut], 5);
            assert!(
                matches!(result, Err(ArchiveError::Truncated(_))),
                "cut at {cut}: {result:?}"
            );
        }
    }

    #[test]
    fn bytes_that_are_not_an_archive_are_refused() {
        let mut other = archive();
        other[0] = b'X';
        assert!(matches!(
            check_in_pieces(&other, 16),
            Err(ArchiveError::Malformed(_))
        ));
        let mut plain_format = archive();
        plain_format[10] = 0; // the format byte
        assert!(matches!(
            check_in_pieces(&plain_format, 16),
            Err(ArchiveError::Malformed(_))
        ));
        let mut unknown_block = archive();
        // The large-object block: a type byte, its id, two objects of oid,
        // one chunk and an end, then the closing oid 0.
        let at = unknown_block.len() - (1 + 5 + 2 * (5 + 5 + 2 + 5) + 5);
        assert_eq!(unknown_block[at], BLK_BLOBS);
        unknown_block[at] = 9;
        assert!(matches!(
            check_in_pieces(&unknown_block, 16),
            Err(ArchiveError::Malformed(_))
        ));
    }

    #[test]
    fn a_directory_dumps_file_names_tell_what_each_holds() {
        for refused in [
            "toc.dat.zst",
            "12a.dat",
            "blob_.dat",
            "blobs_x.toc",
            "notes.txt",
            "",
        ] {
            assert!(
                matches!(FileCheck::new(refused), Err(ArchiveError::Malformed(_))),
                "{refused}"
            );
        }
        // An empty large object: pg_dump's lz4 writes no frame at all,
        // its gzip and zstd an empty one; nothing is no zstd file.
        let empty = |name: &str| FileCheck::new(name).expect(name).finish();
        assert!(matches!(
            empty("blob_16401.dat.lz4"),
            Ok((_, FileRead::LargeObject))
        ));
        assert!(empty("blob_16401.dat.zst").is_err());
        assert!(
            empty("1234.dat.lz4").is_err(),
            "table data ends as COPY ends it"
        );
        // A table's data file: its rows counted, its end checked.
        let mut data = FileCheck::new("1234.dat").expect("data");
        data.feed(b"1\tone\n2\ttwo\n\\.\n\n\n").expect("fed");
        assert!(matches!(data.finish(), Ok((_, FileRead::Data(2)))));
        let mut lines = FileCheck::new("blobs_17.toc").expect("toc");
        lines
            .feed(b"16401 blob_16401.dat\n16402 blob_16402.dat\n")
            .expect("fed");
        match lines.finish() {
            Ok((_, FileRead::LargeObjects(files))) => {
                assert_eq!(files, ["blob_16401.dat", "blob_16402.dat"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_dumps_need_their_header_and_trailer() {
        let dump = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n-- Dumped from database version 15.18\n-- Dumped by pg_dump version 18.6\n\nSET x = 0;\n".to_owned()
            + &"INSERT INTO t VALUES (1);\n".repeat(1000)
            + "\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n";
        let mut check = PlainDumpCheck::new();
        for chunk in dump.as_bytes().chunks(100) {
            check.feed(chunk);
        }
        let summary = check.finish().expect("complete");
        assert_eq!(summary.server_version.as_deref(), Some("15.18"));
        assert_eq!(summary.pg_dump_version.as_deref(), Some("18.6"));
        let mut cut = PlainDumpCheck::new();
        cut.feed(&dump.as_bytes()[..dump.len() - 80]);
        assert!(matches!(cut.finish(), Err(ArchiveError::Truncated(_))));
        let mut other = PlainDumpCheck::new();
        other.feed(b"hello");
        assert!(matches!(other.finish(), Err(ArchiveError::Malformed(_))));
    }
}
