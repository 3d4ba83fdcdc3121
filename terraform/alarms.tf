# What freshness finds, per plan it checks: a resource whose newest backup is
# older than its RPO, a resource with no backup at all, and freshness itself
# gone quiet. Each function's own alarms (errors, throttles, duration) live in
# modules/backup-function.

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
