output "function_name" {
  description = "The Lambda function's name."
  value       = aws_lambda_function.function.function_name
}

output "function_arn" {
  description = "The Lambda function's ARN."
  value       = aws_lambda_function.function.arn
}

output "role_arn" {
  description = "The ARN of the function's execution role."
  value       = aws_iam_role.function.arn
}

output "log_group_name" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.function.name
}

output "schedule_names" {
  description = "The names of the function's schedules."
  value       = [for s in aws_scheduler_schedule.schedule : s.name]
}
