# One dashboard: how old each resource's newest backup is, what freshness
# found, how each function's runs went, how long restore drills take, how
# full the snapshot quotas are, and whether the schedules invoked their
# functions.

locals {
  dashboard_functions = [for f in local.function_names : module.function[f].function_name]
  # The rows below the functions' outcomes (three a row).
  drill_row_y = 14 + ceil(length(local.function_names) / 3) * 6
  quota_row_y = local.drill_row_y + 6

  dashboard_widgets = concat(
    [
      {
        type = "metric", x = 0, y = 0, width = 24, height = 8
        properties = {
          title  = "Age of the newest backup per resource (hours)"
          region = local.region
          view   = "timeSeries"
          period = 3600
          metrics = [
            [{ expression = "SEARCH('{${var.metric_namespace},Kind,Source} MetricName=\"BackupAgeSeconds\"', 'Maximum', 3600) / 3600", id = "age", label = "" }],
          ]
          yAxis = { left = { min = 0, label = "hours" } }
        }
      },
      {
        type = "metric", x = 0, y = 8, width = 12, height = 6
        properties = {
          title  = "Stale, unprotected and unproven resources per plan"
          region = local.region
          view   = "timeSeries"
          period = 3600
          stat   = "Maximum"
          metrics = [
            [{ expression = "SEARCH('{${var.metric_namespace},Plan} MetricName=\"StaleBackups\"', 'Maximum', 3600)", id = "stale", label = "stale" }],
            [{ expression = "SEARCH('{${var.metric_namespace},Plan} MetricName=\"UnprotectedResources\"', 'Maximum', 3600)", id = "unprotected", label = "unprotected" }],
            [{ expression = "SEARCH('{${var.metric_namespace},Plan} MetricName=\"UnprovenResources\"', 'Maximum', 3600)", id = "unproven", label = "no recent passed drill" }],
          ]
        }
      },
      {
        type = "alarm", x = 12, y = 8, width = 12, height = 6
        properties = {
          title = "Alarms"
          alarms = concat(
            [for a in aws_cloudwatch_metric_alarm.stale_backups : a.arn],
            [for a in aws_cloudwatch_metric_alarm.unprotected_resources : a.arn],
            [for a in aws_cloudwatch_metric_alarm.unproven_resources : a.arn],
            [for a in aws_cloudwatch_metric_alarm.heartbeat : a.arn],
            [for a in aws_cloudwatch_metric_alarm.snapshot_quota : a.arn],
            [
              aws_cloudwatch_metric_alarm.schedule_invocations_dropped.arn,
              aws_cloudwatch_metric_alarm.schedule_dead_letters_lost.arn,
              aws_cloudwatch_metric_alarm.schedule_dead_letters_waiting.arn,
            ],
          )
        }
      },
    ],
    [
      for i, f in local.function_names : {
        type = "metric", x = (i % 3) * 8, y = 14 + floor(i / 3) * 6, width = 8, height = 6
        properties = {
          title  = "${f}: job outcomes"
          region = local.region
          view   = "timeSeries"
          period = 3600
          stat   = "Sum"
          metrics = [
            [{ expression = "SEARCH('{${var.metric_namespace},Function,Plan} Function=\"${f}\" MetricName=\"BackupsCreated\"', 'Sum', 3600)", id = "created", label = "created" }],
            [{ expression = "SEARCH('{${var.metric_namespace},Function,Plan} Function=\"${f}\" MetricName=\"BackupsFailed\"', 'Sum', 3600)", id = "failed", label = "failed" }],
            ["AWS/Lambda", "Errors", "FunctionName", module.function[f].function_name, { label = "Lambda errors" }],
            ["AWS/Lambda", "Throttles", "FunctionName", module.function[f].function_name, { label = "throttles" }],
          ]
        }
      }
    ],
    # restore-drill's RestoreSeconds per kind and source, from the restore
    # call to usable, in minutes: the figure an RTO is held to (the drill
    # fails one over its payload's rto_minutes).
    [
      {
        type = "metric", x = 0, y = local.drill_row_y, width = 24, height = 6
        properties = {
          title  = "Restore drills: restore time per source (minutes)"
          region = local.region
          view   = "timeSeries"
          period = 86400
          metrics = [
            [{ expression = "SEARCH('{${var.metric_namespace},Kind,Source} MetricName=\"RestoreSeconds\"', 'Maximum', 86400) / 60", id = "restore", label = "" }],
          ]
          yAxis = { left = { min = 0, label = "minutes" } }
        }
      },
    ],
    # Used against the quota, per quota: the line to watch is the distance
    # between the two (the alarm fires at 80%).
    [
      for i, quota in keys(local.snapshot_quotas) : {
        type = "metric", x = i * 8, y = local.quota_row_y, width = 8, height = 6
        properties = {
          title  = "Snapshot quota ${quota}: used and max"
          region = local.region
          view   = "timeSeries"
          period = 3600
          stat   = "Maximum"
          metrics = [
            [var.metric_namespace, "SnapshotQuotaUsed", "Quota", quota, { label = "used" }],
            [var.metric_namespace, "SnapshotQuotaMax", "Quota", quota, { label = "max" }],
          ]
          yAxis = { left = { min = 0 } }
        }
      }
    ],
    [
      {
        type = "metric", x = 16, y = local.quota_row_y, width = 8, height = 6
        properties = {
          title  = "Schedules: invocations"
          region = local.region
          view   = "timeSeries"
          period = 3600
          stat   = "Sum"
          metrics = [
            ["AWS/Scheduler", "InvocationAttemptCount", "ScheduleGroup", aws_scheduler_schedule_group.lifeboat.name, { label = "attempts" }],
            ["AWS/Scheduler", "TargetErrorCount", "ScheduleGroup", aws_scheduler_schedule_group.lifeboat.name, { label = "Invoke refused (retried)" }],
            ["AWS/Scheduler", "InvocationDroppedCount", "ScheduleGroup", aws_scheduler_schedule_group.lifeboat.name, { label = "dropped" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.schedule_dead_letters.name, { label = "dead letters", stat = "Maximum" }],
          ]
        }
      },
    ],
  )
}

resource "aws_cloudwatch_dashboard" "lifeboat" {
  dashboard_name = trimsuffix(var.name_prefix, "-")
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
