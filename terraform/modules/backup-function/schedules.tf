# EventBridge Scheduler schedules that invoke the function asynchronously,
# with a role that may invoke this function, and send an invocation it could
# not make to the dead-letter queue, and nothing else.

data "aws_iam_policy_document" "assume_scheduler" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  count = length(var.schedules) == 0 ? 0 : 1

  name               = "${local.function_name}-scheduler"
  description        = "EventBridge Scheduler: invoke Lifeboat ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume_scheduler.json
  tags               = var.tags
}

data "aws_iam_policy_document" "invoke" {
  statement {
    sid       = "InvokeThisFunction"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.function.arn, "${aws_lambda_function.function.arn}:*"]
  }
  # Scheduler delivers dead letters with the schedule's execution role, so the
  # role (not a service principal) sends, and SQS encrypts with the role's
  # grant on the queue's key: the key policy hands its use to IAM.
  statement {
    sid       = "SendDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [var.dead_letter_queue_arn]
  }
  statement {
    sid       = "EncryptDeadLetters"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.dead_letter_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count = length(var.schedules) == 0 ? 0 : 1

  name   = "invoke"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.invoke.json
}

resource "aws_scheduler_schedule" "schedule" {
  #checkov:skip=CKV_AWS_297:a schedule's input holds plan names, tag selectors and secret ARNs, never secret values; AWS encrypts it with its own key
  for_each = var.schedules

  name                         = "${local.function_name}-${each.key}"
  group_name                   = var.schedule_group
  description                  = "Lifeboat ${var.name}, schedule ${each.key}"
  schedule_expression          = each.value.expression
  schedule_expression_timezone = each.value.timezone
  state                        = each.value.enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode                      = each.value.flexible_window_minutes == 0 ? "OFF" : "FLEXIBLE"
    maximum_window_in_minutes = each.value.flexible_window_minutes == 0 ? null : each.value.flexible_window_minutes
  }

  lifecycle {
    precondition {
      condition     = length("${local.function_name}-${each.key}") <= 64 && can(regex("^[0-9A-Za-z_.-]+$", each.key))
      error_message = "The schedule name ${local.function_name}-${each.key} must be at most 64 characters of letters, digits, '-', '_' and '.' (EventBridge Scheduler's limit): shorten the schedule's key or name_prefix."
    }
  }

  target {
    arn      = aws_lambda_function.function.arn
    role_arn = aws_iam_role.scheduler[0].arn
    input    = each.value.input

    # Scheduler retries only an Invoke call that failed (throttled, or a
    # service error): the function has not run, so nothing has alerted yet. A
    # slot delivered late is still the same slot (its name and idempotency
    # come from <aws.scheduler.scheduled-time>), so retrying for hours is
    # safe. Scheduler's limits: 0 to 185 attempts, 60 s to 24 h of age.
    retry_policy {
      maximum_event_age_in_seconds = 6 * 3600
      maximum_retry_attempts       = 10
    }

    # What Scheduler still could not invoke (retries exhausted, or a refusal
    # it does not retry, such as a role that may not invoke) is kept here
    # instead of being dropped in silence; the root module alarms on it.
    dead_letter_config {
      arn = var.dead_letter_queue_arn
    }
  }
}
