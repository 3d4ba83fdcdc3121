//! A parallel dump (`jobs` of 2 or more): `pg_dump -Fd -j N` into a local
//! directory, each file uploaded to `<key>/<file>` as soon as pg_dump has
//! closed it (inotify's close-after-write), so that the upload overlaps the
//! dump and local storage holds only what is not yet uploaded: each file is
//! removed once it is in S3. Each file is hashed and read as it uploads (the
//! table of contents parsed, every table's data decompressed and its rows
//! counted), so the manifest lists every file with its size and SHA-256 and
//! holds the same fingerprint as a single-stream dump.
//!
//! Every object is written only if its key is free, as a single stream's is.
//! A dump that fails leaves nothing: the files already uploaded are deleted,
//! by their versions.

use crate::upload::{PartPlan, StreamingUpload, Target, UploadError, Written};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lifeboat::postgres::archive::{
    ArchiveError, ArchiveSummary, DirectoryCheck, FileCheck, FileRead,
};
use lifeboat::postgres::directory::{DumpFile, file_key, hex};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::io::AsyncReadExt;

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

/// Watches a directory for files closed after writing.
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
            .add(dir, inotify::WatchMask::CLOSE_WRITE)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        let events = inotify
            .into_event_stream(vec![0; 64 << 10])
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        Ok(Watch { events })
    }

    /// The next file closed after writing: its name; `None` when the watch
    /// can tell no more (its queue overflowed: what is left is found by the
    /// listing after pg_dump ends).
    async fn next(&mut self) -> Option<String> {
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
                        return Some(name);
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

    /// Uploads files as pg_dump closes them until `dumping` ends, then every
    /// file left in the directory; returns what `dumping` gave.
    /// A `dumping` that ends not `ok` ends the uploads at once.
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
                name = watch.next(), if watching => match name {
                    Some(name) if !self.taken.contains(&name) => {
                        self.taken.insert(name.clone());
                        waiting.insert(0, name);
                    }
                    Some(_) => {}
                    None => watching = false,
                },
                Some(done) = running.next() => self.record(done?, database),
            }
        };
        if !ok(&ended) {
            // Let the uploads under way settle, so that each file that
            // reached S3 is known and [`remove`](Self::remove) deletes it.
            while let Some(done) = running.next().await {
                if let Ok(done) = done {
                    self.record(done, database);
                }
            }
            return Ok(ended);
        }
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
                Some(done) => self.record(done?, database),
                None => break,
            }
        }
        Ok(ended)
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

    /// Reads one closed file into its object, hashing and checking it, and
    /// removes it from local storage once it is in S3.
    fn upload(&self, name: String) -> Upload {
        let s3 = self.s3.clone();
        let target = Target {
            key: file_key(&self.target.key, &name),
            ..self.target.clone()
        };
        let plan = self.plan;
        let path = self.dir.join(&name);
        Box::pin(async move {
            let mut check = FileCheck::new(&name)?;
            let mut file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| FilesError::Local(format!("opening {}: {e}", path.display())))?;
            let mut upload = StreamingUpload::new(s3, target, plan);
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut buffer = vec![0u8; 256 << 10];
            let result = async {
                loop {
                    let n = file.read(&mut buffer).await.map_err(|e| {
                        FilesError::Local(format!("reading {}: {e}", path.display()))
                    })?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buffer[..n]);
                    check.feed(&buffer[..n])?;
                    upload.write(&buffer[..n]).await?;
                    size += n as u64;
                }
                let (_, written) = upload.finish().await?;
                Ok::<_, FilesError>(written)
            }
            .await;
            let written = match result {
                Ok(written) => written,
                Err(e) => {
                    upload.abort().await;
                    return Err(e);
                }
            };
            let read = check.finish()?;
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
    /// dump leaves nothing behind. The files it knows of first, then any
    /// other object under the key that this run wrote (an upload cut off
    /// by the deadline may have reached S3 unseen). A file that cannot be
    /// deleted is logged; without a manifest, it never counts as a backup.
    pub async fn remove(&mut self) {
        let mut written: Vec<(String, Option<String>)> = std::mem::take(&mut self.done)
            .into_iter()
            .map(|(file, written)| (file_key(&self.target.key, &file.name), written.version_id))
            .collect();
        written.extend(self.unseen(&written).await);
        for (key, version) in written {
            let deleted = self
                .s3
                .delete_object()
                .bucket(&self.target.bucket)
                .key(&key)
                .set_version_id(version)
                .send()
                .await;
            if let Err(e) = deleted {
                tracing::error!(key, error = %lifeboat::aws::summarize(&e), "a file of the failed dump could not be removed; it never counts as a backup");
            }
        }
    }

    /// Objects under the key that this run wrote and does not know of
    /// (`known`): their keys and versions.
    async fn unseen(&self, known: &[(String, Option<String>)]) -> Vec<(String, Option<String>)> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(&self.target.bucket)
            .prefix(format!("{}/", self.target.key))
            .into_paginator()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut unseen = Vec::new();
        for page in listed {
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(key = %self.target.key, error = %lifeboat::aws::summarize(&e), "the failed dump's files could not be listed: any this run did not see land are left, and never count");
                    break;
                }
            };
            for key in page.contents().iter().filter_map(|o| o.key()) {
                if known.iter().any(|(k, _)| k == key) {
                    continue;
                }
                let head = self
                    .s3
                    .head_object()
                    .bucket(&self.target.bucket)
                    .key(key)
                    .send()
                    .await;
                if let Ok(head) = head
                    && head
                        .metadata()
                        .and_then(|m| m.get(crate::upload::RUN_METADATA))
                        == Some(&self.target.run)
                {
                    unseen.push((key.to_owned(), head.version_id));
                }
            }
        }
        unseen
    }
}
