# Two customer managed keys: one for the alert path (the topic and the
# functions' logs), one for the dumps, so a role that may read alerts' key
# material never reaches the dumps' and the other way round.

data "aws_iam_policy_document" "alerts_key" {
  # A key policy's "*" is this key, and kms:* for the account root hands the
  # key's administration to the account's IAM policies, as AWS's default key
  # policy does: without it the key could become unmanageable.
  #checkov:skip=CKV_AWS_109:key policy: "*" is this key; the root statement delegates to IAM
  #checkov:skip=CKV_AWS_111:key policy: "*" is this key; the root statement delegates to IAM
  #checkov:skip=CKV_AWS_356:key policy: "*" is this key; the root statement delegates to IAM
  # Administration stays with the account's IAM policies.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
  # Alarms publish to the encrypted topic.
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
  # pg-dump's task's stop rule publishes to the encrypted topic (task.tf).
  dynamic "statement" {
    for_each = local.pg_dump_task_ready ? [1] : []
    content {
      sid       = "TaskStopRulePublishes"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
      resources = ["*"]
      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
      # For the alert topic alone (its ARN by name: the topic needs this key first).
      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:sns:topicArn"
        values   = ["arn:${local.partition}:sns:${local.region}:${local.account_id}:${var.name_prefix}alerts"]
      }
    }
  }
  # The functions' log groups and pg-dump's task's, and only they.
  statement {
    sid       = "LogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}*",
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/ecs/${var.name_prefix}*",
      ]
    }
  }
}

resource "aws_kms_key" "alerts" {
  description             = "Lifeboat: the alert topic and the functions' logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.alerts_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "alerts" {
  name          = "alias/${var.name_prefix}alerts"
  target_key_id = aws_kms_key.alerts.key_id
}

data "aws_iam_policy_document" "dumps_key" {
  # A key policy's "*" is this key, and kms:* for the account root hands the
  # key's administration to the account's IAM policies, as AWS's default key
  # policy does: without it the key could become unmanageable.
  #checkov:skip=CKV_AWS_109:key policy: "*" is this key; the root statement delegates to IAM
  #checkov:skip=CKV_AWS_111:key policy: "*" is this key; the root statement delegates to IAM
  #checkov:skip=CKV_AWS_356:key policy: "*" is this key; the root statement delegates to IAM
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "dumps" {
  description             = "Lifeboat: the pg_dump archives in the dump bucket"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.dumps_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "dumps" {
  name          = "alias/${var.name_prefix}dumps"
  target_key_id = aws_kms_key.dumps.key_id
}
