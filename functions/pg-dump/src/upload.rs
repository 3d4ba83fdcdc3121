//! One S3 object written as it streams, with bounded memory: parts of a fixed
//! size go up while the next fills, at most `parts_in_flight` at once, and
//! their buffers are reused. The multipart upload is created only when the
//! first part is full (a small dump is one `PutObject`), and is aborted on
//! any failure, so a failed dump leaves nothing behind.
//!
//! Every object is written only if its key is free (`If-None-Match: *` on the
//! `PutObject` or `CompleteMultipartUpload`), and carries the run that wrote
//! it (`x-amz-meta-lifeboat-run`): of two runs of one slot, one writes, the
//! other learns it lost, and each can tell its own object from the other's.
//!
//! A multipart upload is created with the CRC32 algorithm
//! (`x-amz-checksum-algorithm`), each part is sent with its CRC32, and the
//! completion lists each part's as S3 answered it (or as it was sent, if the
//! answer did not carry it): the way S3 documents for
//! checksums of parts (an upload created without an algorithm takes no part
//! that names one), whatever the client's default checksum setting.
//!
//! Bodies go up unsigned (`x-amz-content-sha256: UNSIGNED-PAYLOAD`) when they
//! carry the SDK's checksum (CRC32, which S3 checks before it stores the
//! object) and travel over TLS (or stay on the machine, to a local stand-in):
//! AWS's Go and Python SDKs likewise send S3 uploads unsigned with a checksum
//! over HTTPS (as a trailer). A signed payload would be a second SHA-256 of
//! every byte of the dump, in the function's own CPU, beside the one the
//! manifest records. Without a checksum (a `PutObject` with
//! `request_checksum_calculation = when_required`) or over plain HTTP to
//! another host, the SDK signs as before.

use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, MultipartUpload,
    ServerSideEncryption,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;

/// `client`, with its `PutObject` and `UploadPart` bodies sent unsigned (the
/// module's doc says why); every other call as before.
pub fn unsigned_uploads(client: &Client) -> Client {
    Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(UnsignedUploads)
            .build(),
    )
}

/// Tells the signer, for a `PutObject` or `UploadPart` that carries a
/// checksum and goes over TLS or to this machine, to sign `UNSIGNED-PAYLOAD`
/// instead of the body's SHA-256 (what the SDK's `disable_payload_signing`
/// does for one request, without its cost in code per operation). It reads
/// the request as it will be signed: after every change to it, the SDK's
/// checksum header included.
#[derive(Debug)]
struct UnsignedUploads;

impl Intercept for UnsignedUploads {
    fn name(&self) -> &'static str {
        "UnsignedUploads"
    }

    fn read_before_signing(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let upload = matches!(
            cfg.load::<Metadata>().map(Metadata::name),
            Some("PutObject" | "UploadPart")
        );
        let request = context.request();
        let checksummed = request
            .headers()
            .iter()
            .any(|(name, _)| name.starts_with("x-amz-checksum-"));
        if upload && checksummed && protected_in_transit(request.uri()) {
            cfg.interceptor_state()
                .store_put(PayloadSigningOverride::unsigned_payload());
        }
        Ok(())
    }
}

/// Whether a request to `uri` is protected in transit without a signed
/// payload: over TLS, or to this machine (a local stand-in for S3).
fn protected_in_transit(uri: &str) -> bool {
    if uri.starts_with("https://") {
        return true;
    }
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// S3's smallest part (but the last) and its most parts.
pub const MIN_PART_SIZE: usize = 5 << 20;
/// S3's largest part.
pub const MAX_PART_SIZE: usize = 5 << 30;
const MAX_PARTS: i32 = 10_000;
/// S3's largest object.
pub const MAX_OBJECT_SIZE: u64 = 5 << 40;
/// What the part buffers may take while parts grow, unless the configured
/// size and parallelism take more to begin with.
const BUFFER_BUDGET: usize = 64 << 20;
/// Parts grow with the dump, so that S3's 10,000 parts can never be what
/// stops a dump below S3's own object limit: (last part number of a tier,
/// multiple of the configured size). The last 1,000 parts take whatever is
/// left of 5 TiB.
const TIERS: [(i32, usize); 5] = [(2_000, 1), (4_000, 2), (6_000, 4), (8_000, 8), (9_000, 32)];

/// Where and how the object is written.
#[derive(Debug, Clone)]
pub struct Target {
    /// The bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// Object tags, as S3's `Tagging` query string wants them.
    pub tagging: String,
    /// The KMS key for SSE-KMS, if one is configured.
    pub kms_key_id: Option<String>,
    /// The run writing it, recorded on the object as `lifeboat-run` metadata.
    pub run: String,
}

/// The object's metadata key naming the run that wrote it.
pub const RUN_METADATA: &str = "lifeboat-run";

/// The object as S3 wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Its version (`None` in a bucket without versioning).
    pub version_id: Option<String>,
    /// Its ETag.
    pub e_tag: Option<String>,
}

/// How the object is cut into parts.
#[derive(Debug, Clone, Copy)]
pub struct PartPlan {
    /// Bytes per part, to begin with.
    pub part_size: usize,
    /// Parts uploading at once, to begin with.
    pub parts_in_flight: usize,
}

impl PartPlan {
    /// The size of part `number` (1-based): the configured size for the
    /// first 2,000 parts, then twice, four, eight and 32 times that, then
    /// for the last 1,000 parts what is left of S3's 5 TiB object; never
    /// more than S3's 5 GiB part.
    pub fn size_of(&self, number: i32) -> usize {
        let mut below = 0u64;
        let mut from = 1;
        for (last, times) in TIERS {
            let size = self.part_size.saturating_mul(times).min(MAX_PART_SIZE);
            if number <= last {
                return size;
            }
            below += (last - from + 1) as u64 * size as u64;
            from = last + 1;
        }
        let rest = MAX_OBJECT_SIZE
            .saturating_sub(below)
            .div_ceil((MAX_PARTS - from + 1) as u64);
        (rest as usize).clamp(self.part_size.min(MAX_PART_SIZE), MAX_PART_SIZE)
    }

    /// How many parts of `size` may upload at once: as configured while the
    /// buffers fit the configured memory or 64 MiB, whichever is more; fewer
    /// as parts grow, but never none.
    pub fn in_flight(&self, size: usize) -> usize {
        let budget = BUFFER_BUDGET.max((self.parts_in_flight + 1) * self.part_size);
        (budget / size)
            .saturating_sub(1)
            .clamp(1, self.parts_in_flight)
    }
}

/// An S3 failure, with the operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct UploadError {
    /// The S3 operation (`UploadPart`).
    pub operation: &'static str,
    /// S3's code and message, or the transport error.
    pub message: String,
    /// S3's error code, when S3 answered.
    pub code: Option<String>,
}

impl UploadError {
    pub(crate) fn new(operation: &'static str, message: impl Into<String>) -> Self {
        UploadError {
            operation,
            message: message.into(),
            code: None,
        }
    }

    pub(crate) fn aws<E>(operation: &'static str, error: &E) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        UploadError {
            code: error.code().map(str::to_owned),
            ..UploadError::new(operation, lifeboat::aws::summarize(error))
        }
    }

    /// Whether S3 refused the write because the key is taken, or was being
    /// taken by a concurrent write (412 `PreconditionFailed`, 409 `ConditionalRequestConflict`).
    pub fn key_taken(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("PreconditionFailed" | "ConditionalRequestConflict")
        )
    }
}

/// The multipart uploads that several writers have open, by key: a stop
/// that drops the writers half-way (a deadline, a signal, a lost claim)
/// aborts what they left with [`abort_all`](Self::abort_all).
#[derive(Debug, Clone, Default)]
pub struct OpenUploads(Arc<Mutex<BTreeMap<String, String>>>);

impl OpenUploads {
    fn set(&self, key: &str, upload_id: Option<&str>) {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match upload_id {
            Some(id) => open.insert(key.to_owned(), id.to_owned()),
            None => open.remove(key),
        };
    }

    /// Aborts every upload still open in `bucket`.
    pub async fn abort_all(&self, client: &Client, bucket: &str) {
        let open = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for (key, upload_id) in open {
            abort_upload(client, bucket, &key, &upload_id).await;
        }
    }
}

/// An object being written. Call [`write`](Self::write) with the stream's
/// bytes in order, then [`finish`](Self::finish), or [`abort`](Self::abort) on failure.
pub struct StreamingUpload {
    client: Client,
    target: Target,
    plan: PartPlan,
    upload_id: Option<String>,
    /// Where the open upload is known beyond this writer, if anywhere.
    open: Option<OpenUploads>,
    filling: BytesMut,
    in_flight: JoinSet<Result<(CompletedPart, Bytes), UploadError>>,
    done: Vec<CompletedPart>,
    spare: Vec<BytesMut>,
    next_part: i32,
    completion_sent: bool,
}

impl StreamingUpload {
    /// An upload of `target` that has sent nothing yet.
    pub fn new(client: Client, target: Target, plan: PartPlan) -> Self {
        StreamingUpload {
            filling: BytesMut::with_capacity(plan.size_of(1)),
            client,
            target,
            plan,
            upload_id: None,
            open: None,
            in_flight: JoinSet::new(),
            done: Vec::new(),
            spare: Vec::new(),
            next_part: 1,
            completion_sent: false,
        }
    }

    /// This upload, known in `open` while it is open.
    pub fn known_in(self, open: OpenUploads) -> Self {
        StreamingUpload {
            open: Some(open),
            ..self
        }
    }

    /// Records whether the multipart upload is open, where it is known.
    fn set_open(&mut self, upload_id: Option<String>) {
        if let Some(open) = &self.open {
            open.set(&self.target.key, upload_id.as_deref());
        }
        self.upload_id = upload_id;
    }

    /// Takes the next bytes of the object; waits while the parts in flight are at their limit.
    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<(), UploadError> {
        while !bytes.is_empty() {
            let size = self.plan.size_of(self.next_part);
            let room = size - self.filling.len();
            let n = room.min(bytes.len());
            self.filling.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.filling.len() == size {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    async fn send_part(&mut self) -> Result<(), UploadError> {
        if self.next_part > MAX_PARTS {
            return Err(UploadError::new(
                "UploadPart",
                format!(
                    "the dump is larger than S3's largest object ({} TiB)",
                    MAX_OBJECT_SIZE >> 40
                ),
            ));
        }
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => self.create().await?,
        };
        let number = self.next_part;
        let size = self.plan.size_of(number);
        let next_size = self.plan.size_of(number + 1);
        while self.in_flight.len() >= self.plan.in_flight(next_size) {
            self.join_one().await?;
        }
        if next_size != size {
            // Parts grow: the smaller buffers go, the memory with them.
            self.spare.clear();
            tracing::info!(key = %self.target.key, part = number + 1, part_mib = next_size >> 20, in_flight = self.plan.in_flight(next_size), "parts grow");
        }
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(next_size));
        let body = std::mem::replace(&mut self.filling, next).freeze();
        self.next_part += 1;
        let request = self
            .client
            .upload_part()
            .bucket(&self.target.bucket)
            .key(&self.target.key)
            .upload_id(upload_id)
            .part_number(number)
            // The algorithm the upload was created with, whatever the
            // client's default (`AWS_REQUEST_CHECKSUM_CALCULATION`).
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body.clone()));
        self.in_flight.spawn(async move {
            let out = request
                .send()
                .await
                .map_err(|e| UploadError::aws("UploadPart", &e))?;
            // S3 answers with the part's CRC32; one that did not is listed
            // with the CRC32 it was sent with, which the completion needs.
            let crc32 = out.checksum_crc32.unwrap_or_else(|| crc32_of(&body));
            let part = CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .checksum_crc32(crc32)
                .build();
            Ok((part, body))
        });
        Ok(())
    }

    /// Waits for one part in flight; its buffer goes back to the spares.
    async fn join_one(&mut self) -> Result<(), UploadError> {
        let Some(joined) = self.in_flight.join_next().await else {
            return Ok(());
        };
        let (part, body) = joined
            .map_err(|e| UploadError::new("UploadPart", format!("the upload task ended: {e}")))??;
        self.done.push(part);
        // The SDK has let go of the body once the request is done: reuse the
        // buffer, if it is of the size parts have now.
        if let Ok(mut buffer) = body.try_into_mut()
            && buffer.capacity() >= self.plan.size_of(self.next_part)
        {
            buffer.clear();
            self.spare.push(buffer);
        }
        Ok(())
    }

    async fn create(&mut self) -> Result<String, UploadError> {
        let mut request = self
            .client
            .create_multipart_upload()
            .bucket(&self.target.bucket)
            .key(&self.target.key)
            .tagging(&self.target.tagging)
            .metadata(RUN_METADATA, &self.target.run)
            // Each part carries its CRC32, which S3 checks; an upload created
            // without the algorithm takes no part that names one.
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .content_type("application/octet-stream");
        if let Some(key) = &self.target.kms_key_id {
            request = request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(key);
        }
        let out = request
            .send()
            .await
            .map_err(|e| UploadError::aws("CreateMultipartUpload", &e))?;
        let id = out
            .upload_id
            .ok_or_else(|| UploadError::new("CreateMultipartUpload", "S3 returned no upload id"))?;
        tracing::info!(key = %self.target.key, upload_id = %id, "multipart upload started");
        self.set_open(Some(id.clone()));
        Ok(id)
    }

    /// How many parts the object has been given so far.
    pub fn parts(&self) -> i32 {
        (self.next_part - 1).max(1)
    }

    /// Whether the call that makes the object (`CompleteMultipartUpload`, or
    /// the single `PutObject`) was sent: after that, S3 may hold the object
    /// even when the call failed or was cut off.
    pub fn completion_sent(&self) -> bool {
        self.completion_sent
    }

    /// Sends what is left and completes the object, if its key is still free.
    /// Returns the number of parts and the object written.
    pub async fn finish(&mut self) -> Result<(i32, Written), UploadError> {
        if self.upload_id.is_none() {
            // Smaller than one part: a single PutObject.
            let body = std::mem::take(&mut self.filling).freeze();
            self.completion_sent = true;
            let written = put_object(&self.client, &self.target, body).await?;
            return Ok((1, written));
        }
        if !self.filling.is_empty() {
            self.send_part().await?;
        }
        while !self.in_flight.is_empty() {
            self.join_one().await?;
        }
        self.done.sort_by_key(|p| p.part_number);
        let parts = self.done.len() as i32;
        self.completion_sent = true;
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.target.bucket)
            .key(&self.target.key)
            .upload_id(self.upload_id.as_deref().unwrap_or_default())
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.done)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| UploadError::aws("CompleteMultipartUpload", &e))?;
        // Completed: nothing is left to abort.
        self.set_open(None);
        Ok((
            parts,
            Written {
                version_id: out.version_id,
                e_tag: out.e_tag,
            },
        ))
    }

    /// Stops the parts in flight and aborts the multipart upload, so S3 keeps
    /// no part of it. Failures are logged: the bucket's lifecycle rule for
    /// incomplete uploads is the last line of defence.
    pub async fn abort(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        let Some(upload_id) = self.upload_id.clone() else {
            return;
        };
        self.set_open(None);
        abort_upload(
            &self.client,
            &self.target.bucket,
            &self.target.key,
            &upload_id,
        )
        .await;
    }
}

/// `bytes`' CRC32 as S3 writes it: base64 of its four bytes, big-endian.
fn crc32_of(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(crc32fast::hash(bytes).to_be_bytes())
}

/// The multipart uploads open under `prefix`, every page of them. By hand:
/// the SDK has no paginator for `ListMultipartUploads`, whose place in the
/// listing is two markers (key and upload id).
pub(crate) async fn uploads_under(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<MultipartUpload>, String> {
    let failed = |why: String| format!("ListMultipartUploads {prefix}: {why}");
    let mut uploads = Vec::new();
    let mut markers: (Option<String>, Option<String>) = (None, None);
    loop {
        let page = client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(markers.0.clone())
            .set_upload_id_marker(markers.1.clone())
            .send()
            .await
            .map_err(|e| failed(lifeboat::aws::summarize(&e)))?;
        uploads.extend(page.uploads.unwrap_or_default());
        if page.is_truncated != Some(true) {
            return Ok(uploads);
        }
        let next = (page.next_key_marker, page.next_upload_id_marker);
        if next.0.is_none() || next == markers {
            return Err(failed("a page said more follow, but not where".into()));
        }
        markers = next;
    }
}

/// Aborts every multipart upload open under `prefix`, whichever run began
/// it: only for a prefix that no other run writes under (a parallel dump's
/// files while this run holds the slot's claim). This catches what
/// [`OpenUploads`] cannot know: an upload S3 began but whose answer was lost
/// (to a dropped connection, the SDK's retry then began another) or cut off
/// by a stop. Failures are logged, as [`abort_upload`]'s are.
pub(crate) async fn abort_all_under(client: &Client, bucket: &str, prefix: &str) {
    match uploads_under(client, bucket, prefix).await {
        Ok(uploads) => {
            for upload in uploads {
                if let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) {
                    abort_upload(client, bucket, key, id).await;
                }
            }
        }
        Err(error) => {
            tracing::warn!(prefix, %error, "the uploads left open could not be listed; the bucket's lifecycle rule removes them")
        }
    }
}

/// Aborts a multipart upload, so S3 keeps no part of it. Failures are
/// logged: the bucket's lifecycle rule for incomplete uploads is the last
/// line of defence. An upload that S3 no longer has is not a failure: it
/// was aborted already, or completed by a request whose answer was lost,
/// and then the object it made is this run's, which the run's clean-up
/// deletes.
pub(crate) async fn abort_upload(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    match client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
    {
        Ok(_) => tracing::info!(key, "multipart upload aborted"),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_upload()) => {
            tracing::info!(key, "the multipart upload had ended already")
        }
        Err(e) => tracing::error!(
            key,
            upload_id,
            error = %lifeboat::aws::summarize(&e),
            "the multipart upload could not be aborted; the bucket's lifecycle rule removes it"
        ),
    }
}

/// Writes a small object whole (the manifest, or a dump smaller than one part), if its key is free.
pub async fn put_object(
    client: &Client,
    target: &Target,
    body: Bytes,
) -> Result<Written, UploadError> {
    let content_type = if target.key.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let mut request = client
        .put_object()
        .bucket(&target.bucket)
        .key(&target.key)
        .tagging(&target.tagging)
        .metadata(RUN_METADATA, &target.run)
        .if_none_match("*")
        .content_type(content_type)
        .body(ByteStream::from(body));
    if let Some(key) = &target.kms_key_id {
        request = request
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(key);
    }
    let out = request
        .send()
        .await
        .map_err(|e| UploadError::aws("PutObject", &e))?;
    Ok(Written {
        version_id: out.version_id,
        e_tag: out.e_tag,
    })
}

/// S3's `Tagging` query string for these tags.
pub fn tagging(tags: &[(&str, String)]) -> String {
    tags.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn a_part_crc32_is_written_as_s3_writes_it() {
        // Python: base64.b64encode(zlib.crc32(b"hello").to_bytes(4, "big")).
        assert_eq!(crc32_of(b"hello"), "NhCmhg==");
        assert_eq!(crc32_of(b""), "AAAAAA==");
    }

    #[test]
    fn payloads_go_unsigned_only_over_tls_or_to_this_machine() {
        for (uri, unsigned) in [
            (
                "https://bucket.s3.eu-west-1.amazonaws.com/key?partNumber=1",
                true,
            ),
            ("https://s3.eu-west-1.amazonaws.com/bucket/key", true),
            ("http://127.0.0.1:5055/bucket/key", true),
            ("http://localhost:9000/bucket/key?uploadId=x", true),
            ("http://[::1]:9000/bucket/key", true),
            ("http://10.0.0.7:9000/bucket/key", false),
            ("http://minio.internal/bucket/key", false),
            ("http://localhost.example.com/bucket/key", false),
            ("ftp://127.0.0.1/key", false),
        ] {
            assert_eq!(protected_in_transit(uri), unsigned, "{uri}");
        }
    }

    /// Bytes in the first `parts` parts, and the most the buffers held on the way.
    fn walk(plan: PartPlan, until: u64) -> (i32, u64, usize) {
        let (mut parts, mut bytes, mut peak) = (0, 0u64, 0);
        while bytes < until && parts < MAX_PARTS {
            parts += 1;
            let size = plan.size_of(parts);
            bytes += size as u64;
            peak = peak.max((plan.in_flight(size) + 1) * size);
        }
        (parts, bytes, peak)
    }

    #[test]
    fn parts_grow_so_that_the_part_count_never_stops_a_dump_below_s3s_limit() {
        for (mib, in_flight) in [(5, 1), (8, 4), (64, 16), (5120, 1)] {
            let plan = PartPlan {
                part_size: mib * MIB,
                parts_in_flight: in_flight,
            };
            let (parts, bytes, _) = walk(plan, MAX_OBJECT_SIZE);
            assert!(
                parts <= MAX_PARTS && bytes >= MAX_OBJECT_SIZE,
                "{mib} MiB: {parts} parts hold {bytes} bytes"
            );
            for n in 1..=MAX_PARTS {
                let size = plan.size_of(n);
                assert!(
                    (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size),
                    "{mib} MiB: part {n}: {size}"
                );
            }
        }
    }

    #[test]
    fn at_the_defaults_the_buffers_stay_within_64_mib_up_to_100_gib() {
        let defaults = PartPlan {
            part_size: 8 * MIB,
            parts_in_flight: 4,
        };
        let (parts, _, peak) = walk(defaults, 100 << 30);
        assert!(peak <= 64 * MIB, "{} MiB at {parts} parts", peak / MIB);
        assert_eq!(
            (defaults.size_of(1), defaults.in_flight(8 * MIB)),
            (8 * MIB, 4)
        );
        assert_eq!(
            (defaults.size_of(2_001), defaults.in_flight(16 * MIB)),
            (16 * MIB, 3)
        );
        assert_eq!(
            (defaults.size_of(4_001), defaults.in_flight(32 * MIB)),
            (32 * MIB, 1)
        );
        // Beyond, memory grows with the part size: never fewer than one part in flight.
        assert_eq!(defaults.in_flight(defaults.size_of(9_500)), 1);
    }

    #[test]
    fn tags_become_a_query_string() {
        let tags = [
            ("managed-by", "lifeboat".to_owned()),
            ("lifeboat:scheduled-time", "2026-11-20T02:00:00Z".to_owned()),
        ];
        assert_eq!(
            tagging(&tags),
            "managed-by=lifeboat&lifeboat%3Ascheduled-time=2026-11-20T02%3A00%3A00Z"
        );
    }

    #[tokio::test]
    async fn uploads_are_listed_over_every_page_and_a_page_that_says_not_where_next_is_an_error() {
        use aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput;
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        // A page of the upload of `k/1.dat`, more to follow, and its markers if any.
        let truncated = |markers: bool| {
            let page = ListMultipartUploadsOutput::builder()
                .uploads(
                    MultipartUpload::builder()
                        .key("k/1.dat")
                        .upload_id("u")
                        .build(),
                )
                .is_truncated(true);
            match markers {
                true => page.next_key_marker("k/1.dat").next_upload_id_marker("u"),
                false => page,
            }
            .build()
        };
        let first = mock!(Client::list_multipart_uploads)
            .match_requests(|r| r.key_marker().is_none() && r.upload_id_marker().is_none())
            .then_output(move || truncated(true));
        let second = mock!(Client::list_multipart_uploads)
            .match_requests(|r| {
                r.prefix() == Some("k/")
                    && r.key_marker() == Some("k/1.dat")
                    && r.upload_id_marker() == Some("u")
            })
            .then_output(|| {
                ListMultipartUploadsOutput::builder()
                    .uploads(
                        MultipartUpload::builder()
                            .key("k/2.dat")
                            .upload_id("u")
                            .build(),
                    )
                    .is_truncated(false)
                    .build()
            });
        let s3 = mock_client!(aws_sdk_s3, RuleMode::Sequential, [&first, &second]);
        let listed = uploads_under(&s3, "dumps", "k/").await.expect("listed");
        let keys: Vec<_> = listed.iter().filter_map(|u| u.key()).collect();
        assert_eq!(keys, ["k/1.dat", "k/2.dat"]);
        // A truncated page without a marker would be listed again forever,
        // and so would one whose markers point back at itself (run out at
        // the third call rather than answer forever).
        let endless = mock!(Client::list_multipart_uploads).then_output(move || truncated(false));
        let again = mock!(Client::list_multipart_uploads)
            .sequence()
            .output(move || truncated(true))
            .times(2)
            .build();
        for (rule, calls) in [(&endless, 1), (&again, 2)] {
            let s3 = mock_client!(aws_sdk_s3, [rule]);
            let error = uploads_under(&s3, "dumps", "k/")
                .await
                .expect_err("no way on");
            assert!(error.contains("said more follow, but not where"), "{error}");
            assert_eq!(rule.num_calls(), calls);
        }
    }
}
