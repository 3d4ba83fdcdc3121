# The function's own alarms: it failed, it was throttled, or it ran close to
# its timeout (the next run may not finish).

locals {
  function_dimensions = { FunctionName = aws_lambda_function.function.function_name }
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${local.function_name}-errors"
  alarm_description   = "Lifeboat ${var.name} failed: its SNS alert says what; the log group ${aws_cloudwatch_log_group.function.name} has the details."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = local.function_dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alert_topic_arn]
  ok_actions          = [var.alert_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  alarm_name          = "${local.function_name}-throttles"
  alarm_description   = "Lifeboat ${var.name} was throttled: more runs at once than its reserved concurrency."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = local.function_dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alert_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "duration" {
  alarm_name          = "${local.function_name}-duration-near-timeout"
  alarm_description   = "Lifeboat ${var.name} ran for more than ${floor(var.duration_alarm_ratio * 100)}% of its ${var.timeout_seconds} s timeout: raise the timeout or split the plan before runs time out."
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = local.function_dimensions
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = floor(var.timeout_seconds * 1000 * var.duration_alarm_ratio)
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alert_topic_arn]
  tags                = var.tags
}
