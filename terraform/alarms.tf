# What freshness finds, per plan it checks: a resource whose newest backup is
# older than its RPO, a resource with no backup at all, one with no recent
# passed restore drill, and freshness itself gone quiet; the account's snapshot quotas filling up; and a schedule that
# could not invoke its function. Each function's own alarms (errors,
# throttles, duration) live in modules/backup-function.

resource "aws_cloudwatch_metric_alarm" "stale_backups" {
  for_each = local.freshness_plans

  alarm_name          = "${var.name_prefix}${each.key}-stale-backups"
  alarm_description   = "Plan ${each.key}: a protected resource's newest backup is older than its RPO (max_age_hours). The freshness alert lists which; see README, Deploy to AWS."
  namespace           = var.metric_namespace
  metric_name         = "StaleBackups"
  dimensions          = { Plan = each.key }
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  # freshness reports once a run: between runs the alarm keeps the state the
  # last run set (it stays in ALARM until a run finds nothing stale), and
  # silence is the heartbeat alarm's to report.
  treat_missing_data = "ignore"
  alarm_actions      = [aws_sns_topic.alerts.arn]
  ok_actions         = [aws_sns_topic.alerts.arn]
  tags               = var.tags
}

resource "aws_cloudwatch_metric_alarm" "unprotected_resources" {
  for_each = local.freshness_plans

  alarm_name          = "${var.name_prefix}${each.key}-unprotected-resources"
  alarm_description   = "Plan ${each.key}: a resource that should be protected has no complete backup at all. The freshness alert lists which; see README, Deploy to AWS."
  namespace           = var.metric_namespace
  metric_name         = "UnprotectedResources"
  dimensions          = { Plan = each.key }
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "ignore"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}

# freshness publishes UnprovenResources per plan: the resources whose newest
# passed restore drill is older than the check's limit (or that have none).
# A backup that has never been restored is a hope, not a backup.
resource "aws_cloudwatch_metric_alarm" "unproven_resources" {
  for_each = local.freshness_plans

  alarm_name          = "${var.name_prefix}${each.key}-unproven-resources"
  alarm_description   = "Plan ${each.key}: a protected resource has no passed restore drill within its limit. The freshness alert lists which; restore-drill's alerts and report say why a drill failed (docs/restore.md)."
  namespace           = var.metric_namespace
  metric_name         = "UnprovenResources"
  dimensions          = { Plan = each.key }
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  # As the stale-backups alarm: the last run's finding stands until the next.
  treat_missing_data = "ignore"
  alarm_actions      = [aws_sns_topic.alerts.arn]
  ok_actions         = [aws_sns_topic.alerts.arn]
  tags               = var.tags
}

# freshness writes Heartbeat = 1 on every run that completed its checks; no
# datapoint for heartbeat_hours hours means nobody is watching the backups.
resource "aws_cloudwatch_metric_alarm" "heartbeat" {
  for_each = local.freshness_plans

  alarm_name          = "${var.name_prefix}${each.key}-heartbeat-missing"
  alarm_description   = "Plan ${each.key}: freshness has not completed a run for ${var.heartbeat_hours} hours, so stale backups would go unnoticed. Check its schedule, its errors alarm and its logs."
  namespace           = var.metric_namespace
  metric_name         = "Heartbeat"
  dimensions          = { Plan = each.key }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = var.heartbeat_hours
  datapoints_to_alarm = var.heartbeat_hours
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}

# The account's RDS snapshot quotas, as freshness reads them
# (DescribeAccountAttributes): at a quota, CreateDBSnapshot and
# CreateDBClusterSnapshot fail and every further backup of that kind with
# them, so the alarm fires at 80%, while there is room to prune or to ask for
# more. Only a deployment that runs freshness publishes them.
locals {
  snapshot_quotas = length(local.freshness_plans) == 0 ? {} : {
    ManualSnapshots        = { slug = "manual-snapshots", what = "RDS manual DB instance snapshots" }
    ManualClusterSnapshots = { slug = "manual-cluster-snapshots", what = "Aurora manual DB cluster snapshots" }
  }
}

resource "aws_cloudwatch_metric_alarm" "snapshot_quota" {
  for_each = local.snapshot_quotas

  alarm_name          = "${var.name_prefix}snapshot-quota-${each.value.slug}"
  alarm_description   = "The account's quota of ${each.value.what} (${each.key}) is 80% used or more: at 100% new snapshots of that kind fail. Prune harder, delete snapshots no one needs, or ask Service Quotas for more; see README, Deploy to AWS."
  namespace           = var.metric_namespace
  metric_name         = "SnapshotQuotaUsedPercent"
  dimensions          = { Quota = each.key }
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 80
  # As with stale backups: freshness reports once a run, and the use changes
  # only when snapshots are made or deleted, so between runs the alarm keeps
  # the state the last run set; freshness gone quiet is the heartbeat's to say.
  treat_missing_data = "ignore"
  alarm_actions      = [aws_sns_topic.alerts.arn]
  ok_actions         = [aws_sns_topic.alerts.arn]
  tags               = var.tags

  lifecycle {
    precondition {
      condition     = length("${var.name_prefix}snapshot-quota-${each.value.slug}") <= 255
      error_message = "Alarm names are at most 255 characters (CloudWatch's limit): shorten name_prefix."
    }
  }
}

# EventBridge Scheduler's own failures, for the deployment's schedule group
# (AWS/Scheduler publishes them per ScheduleGroup). A slot that Scheduler
# could not invoke would otherwise be silent until freshness notices it the
# next day. TargetErrorCount (an Invoke call refused or throttled) is left
# to the dashboard: the retry policy retries it, and one that never succeeds
# ends as a drop.
locals {
  schedule_group_dimensions = { ScheduleGroup = aws_scheduler_schedule_group.lifeboat.name }
  schedule_alarm_names = {
    dropped            = "${var.name_prefix}schedule-invocations-dropped"
    dead_letter_failed = "${var.name_prefix}schedule-dead-letters-lost"
    dead_letters       = "${var.name_prefix}schedule-dead-letters-waiting"
  }
}

resource "aws_cloudwatch_metric_alarm" "schedule_invocations_dropped" {
  alarm_name          = local.schedule_alarm_names.dropped
  alarm_description   = "EventBridge Scheduler gave up invoking a Lifeboat function (its retries exhausted, or refused): that slot did not run. The dead letter in ${aws_sqs_queue.schedule_dead_letters.name} names the schedule and the error; see README, Deploy to AWS."
  namespace           = "AWS/Scheduler"
  metric_name         = "InvocationDroppedCount"
  dimensions          = local.schedule_group_dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  # Scheduler publishes a datapoint only when something was dropped.
  treat_missing_data = "notBreaching"
  alarm_actions      = [aws_sns_topic.alerts.arn]
  tags               = var.tags

  lifecycle {
    precondition {
      condition     = alltrue([for n in values(local.schedule_alarm_names) : length(n) <= 255])
      error_message = "Alarm names are at most 255 characters (CloudWatch's limit): shorten name_prefix."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "schedule_dead_letters_lost" {
  alarm_name          = local.schedule_alarm_names.dead_letter_failed
  alarm_description   = "EventBridge Scheduler could not invoke a Lifeboat function and could not send the dead letter to ${aws_sqs_queue.schedule_dead_letters.name} either (the schedules' role may not send to it or use its key?): the slot is lost with no record but this alarm. See README, Deploy to AWS."
  namespace           = "AWS/Scheduler"
  metric_name         = "InvocationsFailedToBeSentToDeadLetterCount"
  dimensions          = local.schedule_group_dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "schedule_dead_letters_waiting" {
  alarm_name          = local.schedule_alarm_names.dead_letters
  alarm_description   = "A dead letter waits in ${aws_sqs_queue.schedule_dead_letters.name}: a scheduled Lifeboat run did not happen. Read it (it names the schedule and holds its input), run that slot by hand, then delete it; see README, Deploy to AWS."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.schedule_dead_letters.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  # SQS stops publishing for a queue that has stayed empty and untouched for
  # hours; a queue with a message in it is active and reports it.
  treat_missing_data = "notBreaching"
  alarm_actions      = [aws_sns_topic.alerts.arn]
  ok_actions         = [aws_sns_topic.alerts.arn]
  tags               = var.tags
}
