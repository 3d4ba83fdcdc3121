# Each function's policy: only the calls it makes (read from its code in
# functions/*/src and shared/src). EC2's Describe calls and PutMetricData
# have no resource-level permissions, so they name "*"; everything that creates is held to Lifeboat's tag in the request,
# and everything that deletes to Lifeboat's tag on the resource, where the
# service supports it.

locals {
  arn_prefix = "arn:${local.partition}"
  # Copies land in other regions, so snapshots are matched in any region.
  ec2_snapshots_anywhere = "${local.arn_prefix}:ec2:*::snapshot/*"
  ec2_snapshots_here     = "${local.arn_prefix}:ec2:${local.region}::snapshot/*"
  ec2_images_here        = "${local.arn_prefix}:ec2:${local.region}::image/*"
  ec2_instances_here     = "${local.arn_prefix}:ec2:${local.region}:${local.account_id}:instance/*"
  ec2_volumes_here       = "${local.arn_prefix}:ec2:${local.region}:${local.account_id}:volume/*"
  rds_snapshots_anywhere = "${local.arn_prefix}:rds:*:${local.account_id}:snapshot:*"
  rds_cluster_snapshots  = "${local.arn_prefix}:rds:*:${local.account_id}:cluster-snapshot:*"
  rds_snapshots_here     = "${local.arn_prefix}:rds:${local.region}:${local.account_id}:snapshot:*"
  rds_cluster_snaps_here = "${local.arn_prefix}:rds:${local.region}:${local.account_id}:cluster-snapshot:*"
  # RDS authorises its Describe calls per resource type; these cover the
  # account's databases, clusters and snapshots in any region (copies).
  rds_instances_any = "${local.arn_prefix}:rds:*:${local.account_id}:db:*"
  rds_clusters_any  = "${local.arn_prefix}:rds:*:${local.account_id}:cluster:*"

  function_policies = {
    "rds-snapshot"  = data.aws_iam_policy_document.rds_snapshot.json
    "ebs-snapshot"  = data.aws_iam_policy_document.ebs_snapshot.json
    "ami-backup"    = data.aws_iam_policy_document.ami_backup.json
    "pg-dump"       = data.aws_iam_policy_document.pg_dump_function.json
    "prune"         = data.aws_iam_policy_document.prune.json
    "freshness"     = data.aws_iam_policy_document.freshness.json
    "restore-drill" = data.aws_iam_policy_document.restore_drill.json
  }

  # restore-drill names every temporary DB instance and cluster
  # lifeboat-drill-<hash> (a cluster's instance: <cluster>-1), so its RDS
  # grants name those ARNs as well as holding them to the lifeboat:drill tag.
  rds_drill_instances = "${local.arn_prefix}:rds:${local.region}:${local.account_id}:db:lifeboat-drill-*"
  rds_drill_clusters  = "${local.arn_prefix}:rds:${local.region}:${local.account_id}:cluster:lifeboat-drill-*"
  # The tags a drill writes after creating: on its own resource (its step and
  # result) and on the backup it drilled (the result).
  drill_step_tags   = ["lifeboat:drill-step", "lifeboat:drill-pending", "lifeboat:drill-usable", "lifeboat:drill-outcome", "lifeboat:drill-seconds"]
  drill_result_tags = ["lifeboat:drilled-at", "lifeboat:drill-outcome", "lifeboat:drill-seconds"]
}

# Every function: its alert (one SNS message when anything failed) and its
# outcome metrics.
data "aws_iam_policy_document" "common" {
  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }
  statement {
    sid       = "EncryptAlerts"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.alerts.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${local.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "PutMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metric_namespace]
    }
  }
}

# Copies of encrypted snapshots re-encrypt with the key copy_to names (or the
# source's): RDS and EBS use the caller's grants on those keys.
data "aws_iam_policy_document" "copy_keys" {
  dynamic "statement" {
    for_each = length(var.copy_kms_key_arns) == 0 ? [] : [1]
    content {
      sid       = "UseCopyKeys"
      actions   = ["kms:DescribeKey", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKeyWithoutPlaintext"]
      resources = var.copy_kms_key_arns
      condition {
        test     = "StringLike"
        variable = "kms:ViaService"
        values   = ["rds.*.amazonaws.com", "ec2.*.amazonaws.com"]
      }
    }
  }
  dynamic "statement" {
    for_each = length(var.copy_kms_key_arns) == 0 ? [] : [1]
    content {
      sid       = "GrantCopyKeysToServices"
      actions   = ["kms:CreateGrant"]
      resources = var.copy_kms_key_arns
      condition {
        test     = "Bool"
        variable = "kms:GrantIsForAWSResource"
        values   = ["true"]
      }
    }
  }
}

data "aws_iam_policy_document" "rds_snapshot" {
  source_policy_documents = [data.aws_iam_policy_document.common.json, data.aws_iam_policy_document.copy_keys.json]

  statement {
    sid       = "ListDatabasesAndSnapshots"
    actions   = ["rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = [local.rds_instances_any, local.rds_clusters_any, local.rds_snapshots_anywhere, local.rds_cluster_snapshots]
  }
  statement {
    sid     = "SnapshotDatabasesHere"
    actions = ["rds:CreateDBSnapshot", "rds:CreateDBClusterSnapshot"]
    resources = [
      "${local.arn_prefix}:rds:${local.region}:${local.account_id}:db:*",
      "${local.arn_prefix}:rds:${local.region}:${local.account_id}:cluster:*",
    ]
  }
  # The snapshot side of CreateDB*Snapshot and CopyDB*Snapshot, and the tags
  # they carry (creating with tags needs AddTagsToResource): only with
  # managed-by=lifeboat in the request.
  statement {
    sid       = "MakeLifeboatSnapshots"
    actions   = ["rds:CreateDBSnapshot", "rds:CreateDBClusterSnapshot", "rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot", "rds:AddTagsToResource"]
    resources = [local.rds_snapshots_anywhere, local.rds_cluster_snapshots]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["lifeboat"]
    }
  }
}

data "aws_iam_policy_document" "ebs_snapshot" {
  source_policy_documents = [data.aws_iam_policy_document.common.json, data.aws_iam_policy_document.copy_keys.json]

  statement {
    sid       = "ListVolumesAndSnapshots"
    actions   = ["ec2:DescribeVolumes", "ec2:DescribeInstances", "ec2:DescribeSnapshots"]
    resources = ["*"]
  }
  statement {
    sid       = "SnapshotVolumesHere"
    actions   = ["ec2:CreateSnapshot", "ec2:CreateSnapshots"]
    resources = [local.ec2_volumes_here, local.ec2_instances_here]
  }
  # The new snapshot of CreateSnapshot(s) and of CopySnapshot (in the
  # destination region): only with managed-by=lifeboat in the request.
  statement {
    sid       = "MakeLifeboatSnapshots"
    actions   = ["ec2:CreateSnapshot", "ec2:CreateSnapshots", "ec2:CopySnapshot"]
    resources = [local.ec2_snapshots_anywhere]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  # CopySnapshot authorises its source snapshot too: only Lifeboat's own, here.
  statement {
    sid       = "CopyLifeboatSnapshots"
    actions   = ["ec2:CopySnapshot"]
    resources = [local.ec2_snapshots_here]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  statement {
    sid       = "TagWhileCreating"
    actions   = ["ec2:CreateTags"]
    resources = [local.ec2_snapshots_anywhere]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSnapshot", "CreateSnapshots", "CopySnapshot"]
    }
  }
  # Two runs of one slot that race both create a set; the loser deletes its own.
  statement {
    sid       = "DeleteOwnDuplicates"
    actions   = ["ec2:DeleteSnapshot"]
    resources = [local.ec2_snapshots_here]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["lifeboat"]
    }
  }
}

data "aws_iam_policy_document" "ami_backup" {
  source_policy_documents = [data.aws_iam_policy_document.common.json]

  statement {
    sid       = "ListInstancesAndImages"
    actions   = ["ec2:DescribeInstances", "ec2:DescribeImages"]
    resources = ["*"]
  }
  statement {
    sid       = "ImageInstancesHere"
    actions   = ["ec2:CreateImage"]
    resources = [local.ec2_instances_here]
  }
  statement {
    sid       = "MakeLifeboatImages"
    actions   = ["ec2:CreateImage"]
    resources = [local.ec2_images_here, local.ec2_snapshots_here]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  # CreateImage tags the image and its snapshots itself (two tag
  # specifications); tagging is allowed only as part of that call, so the
  # role can never mark another snapshot as Lifeboat's (and so prunable).
  statement {
    sid       = "TagImagesAndSnapshotsWhileCreating"
    actions   = ["ec2:CreateTags"]
    resources = [local.ec2_images_here, local.ec2_snapshots_here]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateImage"]
    }
  }
}

# The secrets a function reads, and no other: pg-dump's databases' logins,
# and the logins of restore-drill's rds.query (a restored database keeps its
# source's master login); with the keys that encrypt them, through Secrets
# Manager only. A partial ARN also matches the six random characters Secrets
# Manager appends.
locals {
  secret_reads = {
    "pg-dump"       = { sid = "Database", arns = local.pg_dump_secret_arns, keys = var.pg_dump.secret_kms_key_arns }
    "restore-drill" = { sid = "DrillQuery", arns = local.drill_query_secret_arns, keys = length(local.drill_query_secret_arns) == 0 ? [] : var.restore_drill.secret_kms_key_arns }
  }
}

data "aws_iam_policy_document" "secret_reads" {
  for_each = local.secret_reads

  dynamic "statement" {
    for_each = length(each.value.arns) == 0 ? [] : [1]
    content {
      sid       = "Read${each.value.sid}Secrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = flatten([for arn in each.value.arns : [arn, "${arn}-??????"]])
    }
  }
  dynamic "statement" {
    for_each = length(each.value.keys) == 0 ? [] : [1]
    content {
      sid       = "Decrypt${each.value.sid}Secrets"
      actions   = ["kms:Decrypt"]
      resources = each.value.keys
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }
}

data "aws_iam_policy_document" "pg_dump" {
  source_policy_documents = [data.aws_iam_policy_document.common.json, data.aws_iam_policy_document.secret_reads["pg-dump"].json]

  # ListBucket makes HeadObject of a missing manifest answer 404 rather than
  # 403 (a slot not yet dumped); ListBucketMultipartUploads finds the uploads
  # an earlier run left behind, to abort them.
  statement {
    sid       = "ListDumpsAndUploads"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.dumps.arn]
  }
  # PutObject covers the multipart calls (create, upload part, complete),
  # PutObjectTagging the tags sent with them, GetObject the HeadObject that
  # tells a finished dump (its manifest exists) from a torn one and its own
  # object from another run's, and the If-Match of a claim's renewal and of a
  # task record's update (S3 asks for GetObject beside PutObject with it). DeleteObjectVersion, not DeleteObject: a run
  # deletes only an exact version (its own torn dump or live mark, or a dead
  # run's dump), never whatever is newest at a key (S3 has no tag condition
  # for deletions).
  statement {
    sid       = "WriteDumps"
    actions   = ["s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:AbortMultipartUpload", "s3:DeleteObjectVersion"]
    resources = ["${aws_s3_bucket.dumps.arn}/*"]
  }
  statement {
    sid       = "EncryptDumps"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.dumps.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "prune" {
  source_policy_documents = [data.aws_iam_policy_document.common.json]

  statement {
    sid       = "ListRdsSnapshots"
    actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = [local.rds_instances_any, local.rds_clusters_any, local.rds_snapshots_anywhere, local.rds_cluster_snapshots]
  }
  statement {
    sid       = "ListEc2Backups"
    actions   = ["ec2:DescribeSnapshots", "ec2:DescribeImages"]
    resources = ["*"]
  }
  statement {
    sid       = "DeleteLifeboatRdsSnapshots"
    actions   = ["rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot"]
    resources = [local.rds_snapshots_here, local.rds_cluster_snaps_here]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  statement {
    sid       = "DeleteLifeboatEc2Backups"
    actions   = ["ec2:DeleteSnapshot", "ec2:DeregisterImage"]
    resources = [local.ec2_snapshots_here, local.ec2_images_here]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  statement {
    sid       = "ListDumps"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.dumps.arn]
  }
  # S3 has no condition on an object's tags for DeleteObject
  # (s3:ExistingObjectTag applies to reads and tag changes only), so this is
  # held to the dump bucket instead; prune reads each dump's tags first and
  # deletes only those tagged managed-by=lifeboat. In the versioned bucket a
  # delete adds a marker: the dump stays recoverable (see bucket.tf).
  # GetObject is HeadObject's permission: after a failed delete, prune looks
  # whether the dump is gone before it reports a failure.
  statement {
    sid       = "DeleteDumps"
    actions   = ["s3:GetObjectTagging", "s3:GetObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.dumps.arn}/*"]
  }
  # The dump whose restore drill passed last is kept: prune reads the drill
  # records (GetObject above), encrypted with the bucket's key (SSE-KMS).
  statement {
    sid       = "DecryptDrillRecords"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.dumps.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "freshness" {
  source_policy_documents = [data.aws_iam_policy_document.common.json]

  statement {
    sid       = "ListDatabasesAndSnapshots"
    actions   = ["rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = [local.rds_instances_any, local.rds_clusters_any, local.rds_snapshots_anywhere, local.rds_cluster_snapshots]
  }
  statement {
    # The manual-snapshot quotas and their usage; the action has no resource type.
    sid       = "ReadSnapshotQuotas"
    actions   = ["rds:DescribeAccountAttributes"]
    resources = ["*"]
  }
  statement {
    sid       = "ListVolumesInstancesAndBackups"
    actions   = ["ec2:DescribeVolumes", "ec2:DescribeInstances", "ec2:DescribeSnapshots", "ec2:DescribeImages"]
    resources = ["*"]
  }
  statement {
    sid       = "ListDumps"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.dumps.arn]
  }
  # The last proven restore of a dump: its restore drill's record, and the
  # key that record is encrypted with (SSE-KMS, the bucket's default).
  statement {
    sid       = "ReadDrillRecords"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.dumps.arn}/*.drill.json"]
  }
  statement {
    sid       = "DecryptDrillRecords"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.dumps.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

# restore-drill: creates only resources that carry lifeboat:drill (and
# managed-by=lifeboat) in the request, deletes only resources that carry it,
# restores only Lifeboat's snapshots, and tags Lifeboat's backups only with
# its result keys. A production instance, cluster or volume has no
# lifeboat:drill tag and the role cannot give it one (CreateTags only while
# CreateVolume; RDS tags only on lifeboat-drill-* resources), so no statement
# here can delete it. Checked by scripts/iam_grants.py simulate.
data "aws_iam_policy_document" "restore_drill" {
  source_policy_documents = [data.aws_iam_policy_document.common.json, data.aws_iam_policy_document.drill_keys.json, data.aws_iam_policy_document.secret_reads["restore-drill"].json]

  # EC2's Describe calls have no resource-level permissions.
  statement {
    sid       = "ListVolumesInstancesAndBackups"
    actions   = ["ec2:DescribeVolumes", "ec2:DescribeInstances", "ec2:DescribeSnapshots", "ec2:DescribeImages"]
    resources = ["*"]
  }
  # CreateVolume authorises the new volume (its request tags) and the
  # snapshot it is made from (that snapshot's tags) separately.
  statement {
    sid       = "CreateDrillVolumes"
    actions   = ["ec2:CreateVolume"]
    resources = [local.ec2_volumes_here]
    condition {
      test     = "Null"
      variable = "aws:RequestTag/lifeboat:drill"
      values   = ["false"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  statement {
    sid       = "CreateVolumesFromLifeboatSnapshots"
    actions   = ["ec2:CreateVolume"]
    resources = [local.ec2_snapshots_here]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  statement {
    sid       = "TagDrillVolumesWhileCreating"
    actions   = ["ec2:CreateTags"]
    resources = [local.ec2_volumes_here]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateVolume"]
    }
  }
  statement {
    sid       = "DeleteDrillVolumes"
    actions   = ["ec2:DeleteVolume"]
    resources = [local.ec2_volumes_here]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/lifeboat:drill"
      values   = ["false"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  # The result on the drilled snapshot or image: Lifeboat's own only, and
  # only the result keys (never managed-by, so nothing becomes prunable).
  statement {
    sid       = "RecordDrillsOnLifeboatEc2Backups"
    actions   = ["ec2:CreateTags"]
    resources = [local.ec2_snapshots_here, local.ec2_images_here]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["lifeboat"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = local.drill_result_tags
    }
  }

  statement {
    sid     = "ListDatabasesAndSnapshots"
    actions = ["rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = [
      "${local.arn_prefix}:rds:${local.region}:${local.account_id}:db:*",
      "${local.arn_prefix}:rds:${local.region}:${local.account_id}:cluster:*",
      local.rds_snapshots_here,
      local.rds_cluster_snaps_here,
    ]
  }
  # The restores, each authorised per resource (SAR: the new db or cluster,
  # the snapshot, the subnet group, option and parameter groups), so one
  # statement per kind of resource: the new instance or cluster (and a
  # drill cluster's instance), with the tags it is created with, only
  # named lifeboat-drill-* and with lifeboat:drill and managed-by=lifeboat
  # in the request (RDS creates with tags through AddTagsToResource).
  statement {
    sid       = "CreateDrillDatabases"
    actions   = ["rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot", "rds:CreateDBInstance", "rds:AddTagsToResource"]
    resources = [local.rds_drill_instances, local.rds_drill_clusters]
    condition {
      test     = "Null"
      variable = "aws:RequestTag/lifeboat:drill"
      values   = ["false"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  statement {
    sid       = "RestoreLifeboatSnapshots"
    actions   = ["rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot"]
    resources = [local.rds_snapshots_here, local.rds_cluster_snaps_here]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  # The groups a restore is placed in: the drills' subnet groups only; the
  # option and parameter groups are the snapshot's (or the engine's
  # default), used as they are and never changed.
  statement {
    sid     = "RestoreIntoDrillGroups"
    actions = ["rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot", "rds:CreateDBInstance"]
    resources = concat(
      [for g in local.drill_subnet_groups : "${local.arn_prefix}:rds:${local.region}:${local.account_id}:subgrp:${g}"],
      [
        "${local.arn_prefix}:rds:${local.region}:${local.account_id}:og:*",
        "${local.arn_prefix}:rds:${local.region}:${local.account_id}:pg:*",
        "${local.arn_prefix}:rds:${local.region}:${local.account_id}:cluster-pg:*",
      ],
    )
  }
  # A drill's step and result on its own resource, which already carries lifeboat:drill.
  statement {
    sid       = "RecordStepsOnDrillDatabases"
    actions   = ["rds:AddTagsToResource"]
    resources = [local.rds_drill_instances, local.rds_drill_clusters]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/lifeboat:drill"
      values   = ["false"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = local.drill_step_tags
    }
  }
  statement {
    sid       = "RecordDrillsOnLifeboatSnapshots"
    actions   = ["rds:AddTagsToResource"]
    resources = [local.rds_snapshots_here, local.rds_cluster_snaps_here]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["lifeboat"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = local.drill_result_tags
    }
  }
  statement {
    sid       = "DeleteDrillDatabases"
    actions   = ["rds:DeleteDBInstance", "rds:DeleteDBCluster"]
    resources = [local.rds_drill_instances, local.rds_drill_clusters]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/lifeboat:drill"
      values   = ["false"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["lifeboat"]
    }
  }
  # DeleteDBCluster also authorises its final snapshot (the SAR lists
  # cluster-snapshot as required). The drill skips it; a snapshot of that
  # name is never made, and it is no backup that could be lost.
  statement {
    sid       = "DrillClustersFinalSnapshot"
    actions   = ["rds:DeleteDBCluster"]
    resources = ["${local.arn_prefix}:rds:${local.region}:${local.account_id}:cluster-snapshot:lifeboat-drill-*"]
  }

  # Dumps: ListBucket lists a database's dumps and drill records (and makes
  # a missing key answer 404, not 403); GetObjectVersion streams the exact
  # version a manifest names, GetObject the manifest; PutObject writes only
  # `<dump>.drill.json` records.
  statement {
    sid       = "ListDumps"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.dumps.arn]
  }
  statement {
    sid       = "ReadDumps"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.dumps.arn}/*"]
  }
  statement {
    sid       = "RecordDrillsBesideDumps"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.dumps.arn}/*.drill.json"]
  }
  statement {
    sid       = "EncryptDumps"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.dumps.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

# Restoring an encrypted snapshot: RDS and EBS use the caller's rights on its
# key and make a grant for the new volume or database (EBS User Guide,
# "Requirements for Amazon EBS encryption": CreateGrant, Decrypt,
# DescribeKey, GenerateDataKeyWithoutPlaintext, ReEncrypt; the SAR's
# dependent actions of rds:CreateDBInstance: CreateGrant, Decrypt,
# DescribeKey, GenerateDataKey). AWS managed keys (aws/ebs,
# aws/rds) allow this to the account through their own key policy.
data "aws_iam_policy_document" "drill_keys" {
  dynamic "statement" {
    for_each = length(var.restore_drill.kms_key_arns) == 0 ? [] : [1]
    content {
      sid       = "UseDrilledBackupsKeys"
      actions   = ["kms:DescribeKey", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"]
      resources = var.restore_drill.kms_key_arns
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["rds.${local.region}.amazonaws.com", "ec2.${local.region}.amazonaws.com"]
      }
    }
  }
  dynamic "statement" {
    for_each = length(var.restore_drill.kms_key_arns) == 0 ? [] : [1]
    content {
      sid       = "GrantDrilledBackupsKeysToServices"
      actions   = ["kms:CreateGrant"]
      resources = var.restore_drill.kms_key_arns
      condition {
        test     = "Bool"
        variable = "kms:GrantIsForAWSResource"
        values   = ["true"]
      }
    }
  }
}
