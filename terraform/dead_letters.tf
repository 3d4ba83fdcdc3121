# Where EventBridge Scheduler puts an invocation it could not make: every
# schedule of the deployment sends to this one queue (a dead letter names its
# schedule), so one alarm watches them all (alarms.tf).

locals {
  schedule_dead_letters_name = "${var.name_prefix}schedule-dead-letters"
}

resource "aws_sqs_queue" "schedule_dead_letters" {
  name = local.schedule_dead_letters_name
  # SQS's longest: a dead letter waits two weeks for someone to read it and
  # run its slot by hand (the input is in the message).
  message_retention_seconds = 14 * 24 * 3600
  # The alert key: dead letters are the alert path, like the topic. The
  # schedules' roles may use it through SQS only (modules/backup-function).
  kms_master_key_id                 = aws_kms_key.alerts.arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = var.tags

  lifecycle {
    precondition {
      condition     = length(local.schedule_dead_letters_name) <= 80 && can(regex("^[A-Za-z0-9_-]+$", local.schedule_dead_letters_name))
      error_message = "The queue name ${local.schedule_dead_letters_name} must be at most 80 characters of letters, digits, '-' and '_' (SQS's limit): shorten name_prefix."
    }
  }
}
