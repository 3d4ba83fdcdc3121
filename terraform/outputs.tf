output "alert_topic_arn" {
  description = "The alert topic: subscribe people and pagers to it."
  value       = aws_sns_topic.alerts.arn
}

output "dump_bucket" {
  description = "The bucket pg-dump writes to."
  value       = aws_s3_bucket.dumps.id
}

output "functions" {
  description = "The functions' names by Lifeboat function."
  value       = { for f, m in module.function : f => m.function_name }
}

output "schedules" {
  description = "Each schedule's rendered input, as EventBridge Scheduler will send it (before it fills in the scheduled time)."
  value       = local.schedule_inputs
}

output "dashboard" {
  description = "The CloudWatch dashboard's name."
  value       = aws_cloudwatch_dashboard.lifeboat.dashboard_name
}
