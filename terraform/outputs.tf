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

output "pg_dump_database_ingress" {
  description = "The rule each database's security group needs so pg-dump reaches it: inbound TCP on database_port from pg-dump's security group (null when pg-dump runs outside a VPC). Lifeboat does not change the databases' groups."
  value = local.pg_dump_in_vpc ? {
    source_security_group_id = aws_security_group.pg_dump[0].id
    protocol                 = "tcp"
    port                     = var.pg_dump.database_port
  } : null
}

output "restore_drill_database_ingress" {
  description = "With rds.query on a schedule that names its own rds.security_groups: the rule those groups need so restore-drill reaches the databases it restores (inbound TCP on restore_drill.database_port from restore-drill's security group). Lifeboat adds it to its own drills' group; null without rds.query."
  value = local.drill_queries && local.drill_network ? {
    source_security_group_id = aws_security_group.restore_drill[0].id
    protocol                 = "tcp"
    port                     = var.restore_drill.database_port
  } : null
}

output "pg_dump_task_repository_url" {
  description = "pg-dump's image repository (with pg_dump.task): `make push` pushes the image there and prints the digest to set as pg_dump.task.image_digest. Null without pg_dump.task."
  value       = local.pg_dump_task ? aws_ecr_repository.pg_dump[0].repository_url : null
}
