# One Lifeboat function: the Lambda, its role, its log group and where its
# failed asynchronous invocations go. Schedules and alarms are in their own files.

locals {
  function_name = "${var.name_prefix}${var.name}"
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = local.function_name
  description        = "Lifeboat ${var.name}: only the calls it makes"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "function" {
  name   = var.name
  role   = aws_iam_role.function.id
  policy = var.policy_json
}

# Logs: the role may write to this one log group and create nothing else.
data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }
}

resource "aws_iam_role_policy" "logs" {
  name   = "logs"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.logs.json
}

# In a VPC, Lambda manages the function's network interfaces with its role,
# and checks the role for these six actions on "*" when the function is
# created or updated: a role that grants them on narrower ARNs (subnets,
# security groups, network-interface/*) can be refused with "The provided
# execution role does not have permissions to call CreateNetworkInterface on
# EC2". These are the actions and the resource of AWS's managed policy
# AWSLambdaVPCAccessExecutionRole. The interfaces are Lambda's, not backups:
# no backup can be deleted through them.
data "aws_iam_policy_document" "vpc" {
  #checkov:skip=CKV_AWS_111:Lambda requires these six actions on "*" for a function in a VPC (AWSLambdaVPCAccessExecutionRole), see above
  #checkov:skip=CKV_AWS_356:Lambda requires these six actions on "*" for a function in a VPC (AWSLambdaVPCAccessExecutionRole), see above
  count = var.vpc == null ? 0 : 1

  statement {
    sid = "ManageNetworkInterfaces"
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSubnets",
      "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "vpc" {
  count = var.vpc == null ? 0 : 1

  name   = "vpc"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.vpc[0].json
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_116:failed asynchronous invocations go to the on-failure destination below (the alert topic), which AWS recommends over a DLQ
  #checkov:skip=CKV_AWS_272:the zips are built from this repository by `make build`; there is no AWS Signer profile to sign them with
  #checkov:skip=CKV_AWS_173:the environment holds no secrets (topic ARN, bucket, tuning); Lambda encrypts it at rest with its AWS managed key
  #checkov:skip=CKV_AWS_50:the functions emit no trace segments; active tracing would only add xray:Put* on "*" to every role
  function_name    = local.function_name
  description      = "Lifeboat ${var.name}"
  role             = aws_iam_role.function.arn
  filename         = var.zip_path
  source_code_hash = filebase64sha256(var.zip_path)
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["x86_64"]
  timeout          = var.timeout_seconds
  memory_size      = var.memory_mb
  layers           = var.layers

  ephemeral_storage {
    size = var.ephemeral_storage_mb
  }

  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = var.environment
  }

  dynamic "vpc_config" {
    for_each = var.vpc == null ? [] : [var.vpc]
    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = length(local.function_name) <= 64 && length("${local.function_name}-scheduler") <= 64
      error_message = "The function name ${local.function_name} (and its role ${local.function_name}-scheduler) must be at most 64 characters, Lambda's and IAM's limit: shorten name_prefix."
    }
  }

  # Lambda logs to /aws/lambda/<function name>, the log group above: it must
  # exist first, since the role may not create one, and the role must be able
  # to write to it (and, in a VPC, make its network interfaces).
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.logs, aws_iam_role_policy.vpc]
}

# An asynchronous invocation (every schedule) that failed, timed out or
# crashed lands on the alert topic: a timeout or a crash never sends the
# function's own alert. No retries (docs/terraform.md, Retries): a run that
# failed has already alerted, and a second run of the same slot would alert
# again and, for a dump that hit its deadline, fail the same way; calls are
# retried inside the run (the SDK's standard mode) and a slot by the next one.
resource "aws_lambda_function_event_invoke_config" "function" {
  # Lambda checks, when this is created, that the execution role may publish
  # to the destination: the role's policy (sns:Publish) must be in place first.
  depends_on = [aws_iam_role_policy.function]

  function_name                = aws_lambda_function.function.function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 6 * 3600

  destination_config {
    on_failure {
      destination = var.alert_topic_arn
    }
  }
}
