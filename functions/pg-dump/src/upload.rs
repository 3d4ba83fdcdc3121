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

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use bytes::{Bytes, BytesMut};
use tokio::task::JoinSet;

/// S3's smallest part (but the last) and its most parts.
pub const MIN_PART_SIZE: usize = 5 << 20;
/// S3's largest part.
pub const MAX_PART_SIZE: usize = 5 << 30;
const MAX_PARTS: i32 = 10_000;

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
    /// Bytes per part.
    pub part_size: usize,
    /// Parts uploading at once.
    pub parts_in_flight: usize,
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
    fn new(operation: &'static str, message: impl Into<String>) -> Self {
        UploadError {
            operation,
            message: message.into(),
            code: None,
        }
    }

    fn aws<E>(operation: &'static str, error: &E) -> Self
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

/// An object being written. Call [`write`](Self::write) with the stream's
/// bytes in order, then [`finish`](Self::finish), or [`abort`](Self::abort) on failure.
pub struct StreamingUpload {
    client: Client,
    target: Target,
    plan: PartPlan,
    upload_id: Option<String>,
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
            filling: BytesMut::with_capacity(plan.part_size),
            client,
            target,
            plan,
            upload_id: None,
            in_flight: JoinSet::new(),
            done: Vec::new(),
            spare: Vec::new(),
            next_part: 1,
            completion_sent: false,
        }
    }

    /// Takes the next bytes of the object; waits while the parts in flight are at their limit.
    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<(), UploadError> {
        while !bytes.is_empty() {
            let room = self.plan.part_size - self.filling.len();
            let n = room.min(bytes.len());
            self.filling.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.filling.len() == self.plan.part_size {
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
                    "the dump needs more than {MAX_PARTS} parts of {} MiB: raise LIFEBOAT_PART_SIZE_MIB",
                    self.plan.part_size >> 20
                ),
            ));
        }
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => self.create().await?,
        };
        while self.in_flight.len() >= self.plan.parts_in_flight {
            self.join_one().await?;
        }
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(self.plan.part_size));
        let body = std::mem::replace(&mut self.filling, next).freeze();
        let number = self.next_part;
        self.next_part += 1;
        let request = self
            .client
            .upload_part()
            .bucket(&self.target.bucket)
            .key(&self.target.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body.clone()));
        self.in_flight.spawn(async move {
            let out = request
                .send()
                .await
                .map_err(|e| UploadError::aws("UploadPart", &e))?;
            let part = CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
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
        // The SDK has let go of the body once the request is done: reuse the buffer.
        if let Ok(mut buffer) = body.try_into_mut() {
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
        self.upload_id = Some(id.clone());
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
        self.upload_id = None;
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
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.target.bucket)
            .key(&self.target.key)
            .upload_id(&upload_id)
            .send()
            .await
        {
            Ok(_) => tracing::info!(key = %self.target.key, "multipart upload aborted"),
            Err(e) => tracing::error!(
                key = %self.target.key,
                upload_id,
                error = %lifeboat::aws::summarize(&e),
                "the multipart upload could not be aborted; the bucket's lifecycle rule removes it"
            ),
        }
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
}
