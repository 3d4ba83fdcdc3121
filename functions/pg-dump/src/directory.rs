//! A parallel dump (`jobs` of 2 or more): `pg_dump -Fd -j N` into a local
//! directory, each file uploaded to `<key>/<file>` as pg_dump writes it,
//! from when pg_dump makes it (inotify's create) to when pg_dump has closed
//! it (close-after-write) and it is read to its end, so that the upload
//! overlaps the dump, even of the largest table; local storage holds only
//! what is not yet uploaded: each file is removed once it is in S3. pg_dump
//! writes each file of a directory dump once, from start to end, and never
//! goes back into it (a file that ends shorter than was read fails the
//! dump). What is read of a file goes back to local storage as a hole at
//! once, so a file takes local storage only for what the upload has not yet
//! read. Each file is hashed and read as it uploads (the
//! table of contents parsed, every table's data decompressed and its rows
//! counted), so the manifest lists every file with its size and SHA-256 and
//! holds the same fingerprint as a single-stream dump.
//!
//! Every object is written only if its key is free, as a single stream's is.
//! A dump that fails leaves nothing: the files already uploaded are deleted,
//! by their versions.

use crate::upload::{OpenUploads, PartPlan, StreamingUpload, Target, UploadError, Written};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lifeboat::postgres::archive::{
    ArchiveError, ArchiveSummary, DirectoryCheck, FileCheck, FileRead,
};
use lifeboat::postgres::directory::{DumpFile, file_key, hex};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::AsyncReadExt;

/// How long a file that pg_dump is still writing is left before it is read
/// again, once all it held so far is read.
const GROWING_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// How much of a file is read before its blocks go back to local storage.
const GIVE_BACK_EVERY: u64 = 4 << 20;

/// How often a long dump logs its progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a parallel dump's files did not all reach S3 whole.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A local file could not be read or the directory watched.
    #[error("{0}")]
    Local(String),
    /// S3 refused a file.
    #[error("S3 {0}")]
    Upload(#[from] UploadError),
    /// A file is not what pg_dump writes.
    #[error("the dump would not restore: {0}")]
    Archive(#[from] ArchiveError),
}

/// The local directory of one dump, removed with all it holds when dropped.
pub struct Scratch {
    root: PathBuf,
}

impl Scratch {
    /// `<TMPDIR>/lifeboat-dump-<run>/dump`, made empty (pg_dump writes into
    /// an empty directory that exists).
    pub fn new(run: &str) -> Result<Self, String> {
        let root = std::env::temp_dir().join(format!("lifeboat-dump-{run}"));
        std::fs::create_dir_all(root.join("dump")).map_err(|e| {
            format!(
                "cannot make the local directory {} for the parallel dump: {e}",
                root.display()
            )
        })?;
        Ok(Scratch { root })
    }

    /// The directory pg_dump writes.
    pub fn dir(&self) -> PathBuf {
        self.root.join("dump")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            tracing::warn!(path = %self.root.display(), error = %e, "the dump's local directory could not be removed");
        }
    }
}

/// What the watch saw of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Made: pg_dump is writing it.
    Created(String),
    /// Closed after writing: it holds all it will.
    Closed(String),
}

/// The files pg_dump has closed, shared with the uploads reading them.
#[derive(Debug, Clone, Default)]
struct Closed(Arc<Mutex<ClosedFiles>>);

#[derive(Debug, Default)]
struct ClosedFiles {
    names: BTreeSet<String>,
    /// pg_dump has ended: every file is closed.
    all: bool,
    /// The dump failed: a file not closed will never be whole.
    failed: bool,
}

/// Where a file being read stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writing {
    /// pg_dump may write more of it.
    Open,
    /// It holds all it will.
    Closed,
    /// The dump failed before pg_dump closed it: it will never be whole.
    Abandoned,
}

impl Closed {
    fn close(&self, name: &str) {
        self.lock().names.insert(name.to_owned());
    }

    fn close_all(&self) {
        self.lock().all = true;
    }

    /// The dump failed (pg_dump did, or an upload): files not closed are
    /// left as they are, not read on.
    fn fail(&self) {
        self.lock().failed = true;
    }

    fn of(&self, name: &str) -> Writing {
        let closed = self.lock();
        if closed.all || closed.names.contains(name) {
            Writing::Closed
        } else if closed.failed {
            Writing::Abandoned
        } else {
            Writing::Open
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClosedFiles> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a file is uploaded from when pg_dump makes it. A large
/// objects' table of contents (`blobs.toc`, `blobs_<id>.toc`) is not: pg_dump
/// keeps it open, a line at a time, through a whole batch of large objects,
/// and it would hold one of the upload slots idle all that while.
fn uploaded_as_written(name: &str) -> bool {
    !(name.starts_with("blobs") && name.ends_with(".toc"))
}

/// Watches a directory for files made and files closed after writing.
pub struct Watch {
    events: inotify::EventStream<Vec<u8>>,
}

impl Watch {
    /// Starts watching `dir`, before pg_dump writes into it.
    pub fn new(dir: &Path) -> Result<Self, String> {
        let inotify =
            inotify::Inotify::init().map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        inotify
            .watches()
            .add(
                dir,
                inotify::WatchMask::CREATE | inotify::WatchMask::CLOSE_WRITE,
            )
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        let events = inotify
            .into_event_stream(vec![0; 64 << 10])
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        Ok(Watch { events })
    }

    /// The next file made or closed after writing; `None` when the watch
    /// can tell no more (its queue overflowed: what is left is found by the
    /// listing after pg_dump ends).
    async fn next(&mut self) -> Option<Seen> {
        loop {
            match self.events.next().await? {
                Ok(event) if event.mask.contains(inotify::EventMask::Q_OVERFLOW) => {
                    tracing::warn!(
                        "the watch of the dump's directory overflowed: the files left are uploaded when pg_dump ends"
                    );
                    return None;
                }
                Ok(event) => {
                    if let Some(name) = event.name.and_then(|n| n.to_str().map(str::to_owned)) {
                        return Some(if event.mask.contains(inotify::EventMask::CREATE) {
                            Seen::Created(name)
                        } else {
                            Seen::Closed(name)
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the watch of the dump's directory failed: the files left are uploaded when pg_dump ends");
                    return None;
                }
            }
        }
    }
}

/// The files of one parallel dump on their way to S3.
pub struct Files {
    s3: aws_sdk_s3::Client,
    target: Target,
    plan: PartPlan,
    dir: PathBuf,
    /// Files at once.
    uploads: usize,
    /// Names taken (uploading or uploaded).
    taken: BTreeSet<String>,
    /// The multipart uploads of files under way.
    open: OpenUploads,
    /// The files pg_dump has closed.
    closed: Closed,
    /// Uploaded: the manifest's lines, and what each held.
    pub done: Vec<(DumpFile, Written)>,
    reads: Vec<(String, FileRead)>,
    bytes: u64,
    started: Instant,
    next_report: Instant,
}

type Upload = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<(DumpFile, Written, (String, FileRead)), FilesError>,
            > + Send,
    >,
>;

impl Files {
    /// Files of `dir` to go under `target.key`, `uploads` at once.
    pub fn new(
        s3: aws_sdk_s3::Client,
        target: Target,
        plan: PartPlan,
        dir: PathBuf,
        uploads: usize,
    ) -> Self {
        let uploads = uploads.max(1);
        let plan = PartPlan {
            parts_in_flight: (plan.parts_in_flight / uploads).max(1),
            ..plan
        };
        Files {
            s3,
            target,
            plan,
            dir,
            uploads,
            taken: BTreeSet::new(),
            open: OpenUploads::default(),
            closed: Closed::default(),
            done: Vec::new(),
            reads: Vec::new(),
            bytes: 0,
            started: Instant::now(),
            next_report: Instant::now() + PROGRESS_EVERY,
        }
    }

    /// Bytes uploaded so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Uploads files as pg_dump writes them until `dumping` ends, then every
    /// file left in the directory; returns what `dumping` gave.
    /// A `dumping` that ends not `ok`, or an upload that fails, ends the
    /// uploads of the files pg_dump had not closed at once (they are never
    /// completed); those of closed files end as they would.
    pub async fn run<T>(
        &mut self,
        watch: &mut Watch,
        dumping: impl std::future::Future<Output = T>,
        ok: impl Fn(&T) -> bool,
        database: &str,
    ) -> Result<T, FilesError> {
        let mut running: FuturesUnordered<Upload> = FuturesUnordered::new();
        let mut waiting: Vec<String> = Vec::new();
        let mut watching = true;
        let mut dumping = std::pin::pin!(dumping);
        let ended = loop {
            while running.len() < self.uploads
                && let Some(name) = waiting.pop()
            {
                running.push(self.upload(name));
            }
            tokio::select! {
                ended = &mut dumping => break ended,
                seen = watch.next(), if watching => match seen {
                    Some(seen) => {
                        let (Seen::Created(name) | Seen::Closed(name)) = &seen;
                        let closed = matches!(seen, Seen::Closed(_));
                        if closed {
                            self.closed.close(name);
                        }
                        if (closed || uploaded_as_written(name)) && self.taken.insert(name.clone()) {
                            waiting.insert(0, name.clone());
                        }
                    }
                    None => watching = false,
                },
                Some(done) = running.next() => match done {
                    Ok(done) => self.record(done, database),
                    Err(e) => {
                        self.closed.fail();
                        self.settle(&mut running, database).await;
                        return Err(e);
                    }
                },
            }
        };
        if !ok(&ended) {
            self.closed.fail();
            self.settle(&mut running, database).await;
            return Ok(ended);
        }
        // pg_dump and its workers have ended: no file grows any more.
        self.closed.close_all();
        // pg_dump has ended: whatever it left is closed.
        let mut left: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| FilesError::Local(format!("listing {}: {e}", self.dir.display())))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| !self.taken.contains(name))
            .collect();
        left.sort();
        for name in left {
            self.taken.insert(name.clone());
            waiting.insert(0, name);
        }
        loop {
            while running.len() < self.uploads
                && let Some(name) = waiting.pop()
            {
                running.push(self.upload(name));
            }
            match running.next().await {
                Some(Ok(done)) => self.record(done, database),
                Some(Err(e)) => {
                    self.settle(&mut running, database).await;
                    return Err(e);
                }
                None => break,
            }
        }
        Ok(ended)
    }

    /// Lets the uploads under way end, so that each file that reached S3
    /// is known and [`remove`](Self::remove) deletes it.
    async fn settle(&mut self, running: &mut FuturesUnordered<Upload>, database: &str) {
        while let Some(done) = running.next().await {
            if let Ok(done) = done {
                self.record(done, database);
            }
        }
    }

    fn record(
        &mut self,
        (file, written, read): (DumpFile, Written, (String, FileRead)),
        database: &str,
    ) {
        self.bytes += file.size_bytes;
        self.done.push((file, written));
        self.reads.push(read);
        if Instant::now() >= self.next_report {
            self.next_report += PROGRESS_EVERY;
            let seconds = self.started.elapsed().as_secs_f64();
            tracing::info!(
                database,
                files = self.done.len(),
                bytes = self.bytes,
                mb_per_s = format!("{:.1}", self.bytes as f64 / 1e6 / seconds),
                "dumping in parallel"
            );
        }
    }

    /// Reads one file into its object as pg_dump writes it, hashing and
    /// checking it, and removes it from local storage once it is in S3.
    fn upload(&self, name: String) -> Upload {
        let s3 = self.s3.clone();
        let target = Target {
            key: file_key(&self.target.key, &name),
            ..self.target.clone()
        };
        let plan = self.plan;
        let path = self.dir.join(&name);
        let open = self.open.clone();
        let closed = self.closed.clone();
        Box::pin(async move {
            let mut check = FileCheck::new(&name)?;
            // Open for writing too, as making holes in it takes.
            let mut file = tokio::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .await
                .map_err(|e| FilesError::Local(format!("opening {}: {e}", path.display())))?;
            let (upload_s3, upload_target) = (s3.clone(), target.clone());
            let mut upload = StreamingUpload::new(s3, target, plan).known_in(open);
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut buffer = vec![0u8; 256 << 10];
            let result = async {
                // Read to the end once the file is closed: all of it.
                let mut to_the_end = false;
                let mut given_back = Some(0);
                loop {
                    let n = file.read(&mut buffer).await.map_err(|e| {
                        FilesError::Local(format!("reading {}: {e}", path.display()))
                    })?;
                    if n > 0 {
                        hasher.update(&buffer[..n]);
                        check.feed(&buffer[..n])?;
                        upload.write(&buffer[..n]).await?;
                        size += n as u64;
                        given_back =
                            given_back.and_then(|from| give_back(&file, &path, from, size));
                    } else if to_the_end {
                        break;
                    } else {
                        match closed.of(&name) {
                            Writing::Closed => to_the_end = true,
                            Writing::Open => tokio::time::sleep(GROWING_POLL).await,
                            Writing::Abandoned => {
                                return Err(FilesError::Local(format!(
                                    "{} was left unfinished: the dump failed",
                                    path.display()
                                )));
                            }
                        }
                    }
                }
                let on_disk = file
                    .metadata()
                    .await
                    .map_err(|e| FilesError::Local(format!("reading {}: {e}", path.display())))?;
                if on_disk.len() != size {
                    return Err(FilesError::Local(format!(
                        "{} changed while it was read: {} bytes read, {} on disk",
                        path.display(),
                        size,
                        on_disk.len()
                    )));
                }
                let read = check.finish()?;
                match upload.finish().await {
                    Ok((_, written)) => Ok::<_, FilesError>((written, read)),
                    // A retried write whose first attempt S3 had done is this
                    // run's; anything else at the key is not (the slot is
                    // claimed, and was cleared): a failure, never a skip.
                    Err(e) if e.key_taken() => match own(&upload_s3, &upload_target).await {
                        Some(written) => Ok((written, read)),
                        None => Err(e.into()),
                    },
                    Err(e) => Err(e.into()),
                }
            }
            .await;
            let (written, read) = match result {
                Ok(done) => done,
                Err(e) => {
                    upload.abort().await;
                    return Err(e);
                }
            };
            if let Err(e) = tokio::fs::remove_file(&path).await {
                tracing::warn!(path = %path.display(), error = %e, "an uploaded file could not be removed from local storage");
            }
            let file = DumpFile {
                name,
                size_bytes: size,
                sha256: hex(&hasher.finalize()),
                version_id: written.version_id.clone(),
                e_tag: written.e_tag.clone(),
            };
            Ok((file, written, read))
        })
    }

    /// The whole dump, checked: every file its table of contents names is
    /// there and reads whole.
    pub fn summary(&mut self) -> Result<ArchiveSummary, ArchiveError> {
        let mut check = DirectoryCheck::new();
        for read in std::mem::take(&mut self.reads) {
            check.add(read)?;
        }
        check.finish()
    }

    /// Deletes every file this run uploaded (their versions): a failed
    /// dump leaves nothing behind. First the multipart uploads that a stop
    /// left open are aborted; then the files it knows of, and any other
    /// object under the key that this run wrote (an upload cut off by the
    /// deadline may have reached S3 unseen), are deleted in batches. What
    /// cannot be deleted is logged; without a manifest, it never counts as
    /// a backup, and the slot's next run clears it.
    pub async fn remove(&mut self) {
        self.open.abort_all(&self.s3, &self.target.bucket).await;
        let mut written: Vec<(String, Option<String>)> = std::mem::take(&mut self.done)
            .into_iter()
            .map(|(file, written)| (file_key(&self.target.key, &file.name), written.version_id))
            .collect();
        written.extend(self.unseen(&written).await);
        if let Err(e) = delete_versions(&self.s3, &self.target.bucket, written).await {
            tracing::error!(key = %self.target.key, error = %e, "files of the failed dump could not be removed; they never count as a backup, and the slot's next run clears them");
        }
    }

    /// Objects under the key that this run wrote and does not know of
    /// (`known`): their keys and versions.
    async fn unseen(&self, known: &[(String, Option<String>)]) -> Vec<(String, Option<String>)> {
        let known: BTreeSet<&str> = known.iter().map(|(key, _)| key.as_str()).collect();
        match list_under(&self.s3, &self.target, |key| known.contains(key)).await {
            Ok(found) => found
                .into_iter()
                .filter(|(_, _, run)| run == &self.target.run)
                .map(|(key, version, _)| (key, version))
                .collect(),
            Err(e) => {
                tracing::warn!(key = %self.target.key, error = %e, "the failed dump's files could not be listed: any this run did not see land are left, and never count");
                Vec::new()
            }
        }
    }
}

/// Gives the whole blocks of `file` from `from` to `read` back to local
/// storage (a hole, the file's length kept): what is read is in memory on
/// its way to S3 and never read again, so local storage holds only what
/// pg_dump has written and the upload not yet read, however large the file.
/// Returns where the blocks given back end, or `None` once the filesystem
/// cannot make holes (the file then stays whole until it is uploaded).
fn give_back(file: &tokio::fs::File, path: &Path, from: u64, read: u64) -> Option<u64> {
    const BLOCK: u64 = 4096;
    let to = read & !(BLOCK - 1);
    if to < from + GIVE_BACK_EVERY {
        return Some(from);
    }
    let hole = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
    match rustix::fs::fallocate(file, hole, from, to - from) {
        Ok(()) => Some(to),
        Err(e) => {
            tracing::info!(path = %path.display(), error = %e, "local storage keeps this file whole until it is uploaded: its filesystem makes no holes");
            None
        }
    }
}

/// The object at `target.key` if this run wrote it (its run metadata).
async fn own(s3: &aws_sdk_s3::Client, target: &Target) -> Option<Written> {
    let head = s3
        .head_object()
        .bucket(&target.bucket)
        .key(&target.key)
        .send()
        .await
        .ok()?;
    let run = head
        .metadata()
        .and_then(|m| m.get(crate::upload::RUN_METADATA));
    (run == Some(&target.run)).then(|| Written {
        version_id: head.version_id.clone(),
        e_tag: head.e_tag.clone(),
    })
}

/// Every object under a parallel dump's key (`<key>/`) but those `skip`
/// names: its key, current version and the run that wrote it (one
/// `HeadObject` each, so `skip` what is known already).
pub async fn list_under(
    s3: &aws_sdk_s3::Client,
    target: &Target,
    skip: impl Fn(&str) -> bool,
) -> Result<Vec<(String, Option<String>, String)>, String> {
    let pages = s3
        .list_objects_v2()
        .bucket(&target.bucket)
        .prefix(format!("{}/", target.key))
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| {
            format!(
                "ListObjectsV2 {}/: {}",
                target.key,
                lifeboat::aws::summarize(&e)
            )
        })?;
    let mut found = Vec::new();
    for key in pages
        .iter()
        .flat_map(|p| p.contents())
        .filter_map(|o| o.key())
        .filter(|key| !skip(key))
    {
        let head = s3
            .head_object()
            .bucket(&target.bucket)
            .key(key)
            .send()
            .await;
        match head {
            Ok(head) => {
                let run = head
                    .metadata()
                    .and_then(|m| m.get(crate::upload::RUN_METADATA))
                    .cloned()
                    .unwrap_or_default();
                found.push((key.to_owned(), head.version_id, run));
            }
            // Gone since the listing.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {}
            Err(e) => {
                return Err(format!(
                    "HeadObject {key}: {}",
                    lifeboat::aws::summarize(&e)
                ));
            }
        }
    }
    Ok(found)
}

/// S3's most keys in one `DeleteObjects`.
const DELETE_BATCH: usize = 1000;

/// Deletes exactly these versions (the role may delete versions, never
/// whatever is newest at a key), a batch at a time.
pub async fn delete_versions(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    objects: Vec<(String, Option<String>)>,
) -> Result<(), String> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let mut failed = Vec::new();
    for batch in objects.chunks(DELETE_BATCH) {
        let ids = batch
            .iter()
            .map(|(key, version)| {
                ObjectIdentifier::builder()
                    .key(key)
                    .set_version_id(version.clone())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| e.to_string())?;
        match s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
        {
            Ok(out) => failed.extend(out.errors().iter().map(|e| {
                format!(
                    "{}: {}",
                    e.key().unwrap_or_default(),
                    e.code().unwrap_or_default()
                )
            })),
            Err(e) => failed.push(format!("DeleteObjects: {}", lifeboat::aws::summarize(&e))),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// Stops pg_dump and its workers, started as a process group of their own:
/// SIGTERM (pg_dump's leader cancels its workers' queries and ends them),
/// then, if they have not ended within a few seconds, SIGKILL to all.
pub async fn stop(child: &mut tokio::process::Child) {
    use rustix::process::{Pid, Signal, kill_process_group};
    let Some(group) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw)
    else {
        return;
    };
    let _ = kill_process_group(group, Signal::TERM);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = kill_process_group(group, Signal::KILL);
        let _ = child.wait().await;
    }
}

/// How long pg_dump has to end its workers after SIGTERM.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
