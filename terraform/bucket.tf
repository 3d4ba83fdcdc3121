# The dump bucket. Accidents: versioning keeps an overwritten or deleted dump
# for `noncurrent_version_days`, and Object Lock (optional) keeps it from
# anyone for its retention. Attackers: no public access, TLS only, SSE-KMS
# with Lifeboat's dump key and no other, ACLs disabled.

resource "aws_s3_bucket" "dumps" {
  #checkov:skip=CKV_AWS_18:server access logs need a second bucket; CloudTrail data events are the audit trail to turn on for dumps
  #checkov:skip=CKV2_AWS_62:nothing consumes object events: freshness lists the dumps on its schedule
  #checkov:skip=CKV_AWS_144:a replica needs a bucket and key in another region this deployment does not own; add replication there if dumps must survive a region
  bucket              = var.dump_bucket.name
  bucket_prefix       = var.dump_bucket.name == null ? "${var.name_prefix}dumps-" : null
  object_lock_enabled = var.dump_bucket.object_lock != null
  force_destroy       = var.dump_bucket.force_destroy
  tags                = var.tags
}

resource "aws_s3_bucket_versioning" "dumps" {
  bucket = aws_s3_bucket.dumps.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "dumps" {
  bucket = aws_s3_bucket.dumps.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.dumps.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "dumps" {
  bucket                  = aws_s3_bucket.dumps.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "dumps" {
  bucket = aws_s3_bucket.dumps.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "dumps_bucket" {
  statement {
    sid       = "DenyWithoutTLS"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.dumps.arn, "${aws_s3_bucket.dumps.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
  # Objects are written with the bucket's default key; one written with
  # another key could be unreadable to restores, or readable to whoever owns it.
  statement {
    sid       = "DenyOtherKeys"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.dumps.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.dumps.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "dumps" {
  bucket = aws_s3_bucket.dumps.id
  policy = data.aws_iam_policy_document.dumps_bucket.json

  # S3 refuses a policy while the public access block is being written.
  depends_on = [aws_s3_bucket_public_access_block.dumps]
}

resource "aws_s3_bucket_lifecycle_configuration" "dumps" {
  bucket = aws_s3_bucket.dumps.id

  # prune deletes a dump by adding a delete marker; the dump itself stays
  # recoverable as a noncurrent version for this long.
  rule {
    id     = "noncurrent-versions"
    status = "Enabled"
    filter {
      prefix = ""
    }
    noncurrent_version_expiration {
      noncurrent_days = var.dump_bucket.noncurrent_version_days
    }
  }

  rule {
    id     = "expired-delete-markers"
    status = "Enabled"
    filter {
      prefix = ""
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  # A dump that stopped half-way (a timeout) leaves parts that cost money and
  # that nothing lists.
  rule {
    id     = "incomplete-uploads"
    status = "Enabled"
    filter {
      prefix = ""
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # pg-dump's records beside a dump's key (lifeboat:record): a Lambda run cut
  # off by the deadline, the task a slot was handed to. They steer the next
  # slots (docs/pg-dump.md, Runners), which look back a month at most. And
  # the live mark of a run without a deadline that was killed (its task
  # stopped mid-dump), which no run removes; no dump runs for two months.
  # And the claim of a parallel dump's slot, left by a run that was killed.
  dynamic "rule" {
    for_each = toset(["cut", "task", "live", "claim"])
    content {
      id     = "pg-dump-${rule.value}-records"
      status = "Enabled"
      filter {
        tag {
          key   = "lifeboat:record"
          value = rule.value
        }
      }
      expiration {
        days = 62
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.dumps]
}

resource "aws_s3_bucket_object_lock_configuration" "dumps" {
  count = var.dump_bucket.object_lock == null ? 0 : 1

  bucket = aws_s3_bucket.dumps.id
  rule {
    default_retention {
      mode = var.dump_bucket.object_lock.mode
      days = var.dump_bucket.object_lock.days
    }
  }

  depends_on = [aws_s3_bucket_versioning.dumps]
}
