variable "name" {
  description = "The function's name as cargo lambda builds it (rds-snapshot, ebs-snapshot, ami-backup, pg-dump, prune, freshness, restore-drill)."
  type        = string

  validation {
    condition     = contains(["rds-snapshot", "ebs-snapshot", "ami-backup", "pg-dump", "prune", "freshness", "restore-drill"], var.name)
    error_message = "name must be one of Lifeboat's seven functions."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name, so two deployments can share an account (the function is named <prefix><name>)."
  type        = string
  default     = "lifeboat-"
}

variable "zip_path" {
  description = "Path of the function's bootstrap.zip, as `make build` makes it."
  type        = string
}

variable "layers" {
  description = "ARNs of Lambda layers to attach (pg-dump and restore-drill: the PostgreSQL layer)."
  type        = list(string)
  default     = []
}

variable "timeout_seconds" {
  description = "The function's timeout, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout_seconds >= 10 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must lie between 10 and 900 (Lambda's limit)."
  }
}

variable "memory_mb" {
  description = "The function's memory, in MiB."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must lie between 128 and 10240."
  }
}

variable "ephemeral_storage_mb" {
  description = "The function's /tmp, in MiB (restore-drill keeps a throwaway PostgreSQL server there)."
  type        = number
  default     = 512

  validation {
    condition     = var.ephemeral_storage_mb >= 512 && var.ephemeral_storage_mb <= 10240
    error_message = "ephemeral_storage_mb must lie between 512 and 10240 (Lambda's limits)."
  }
}

variable "reserved_concurrency" {
  description = "Executions of this function that may run at once. Schedules fire a few at a time; a cap keeps a runaway retry loop from flooding the AWS APIs the function calls."
  type        = number
  default     = 4

  validation {
    condition     = var.reserved_concurrency >= 1
    error_message = "reserved_concurrency must be at least 1: 0 would stop every backup."
  }
}

variable "environment" {
  description = "Environment variables of the function (never secrets: the functions read passwords from Secrets Manager)."
  type        = map(string)
  default     = {}
}

variable "policy_json" {
  description = "The IAM policy the function's role holds: only the calls this function makes."
  type        = string
}

variable "vpc" {
  description = "Subnets and security groups to run the function in (pg-dump reaches databases in a VPC); null runs it outside any VPC."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default = null
}

variable "alert_topic_arn" {
  description = "The SNS topic for alerts: the on-failure destination of asynchronous invocations and the target of the function's alarms."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the function's logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key that encrypts the function's log group."
  type        = string
}

variable "dead_letter_queue_arn" {
  description = "The SQS queue a schedule sends an invocation to when EventBridge Scheduler could not invoke the function (its retry policy exhausted, or a refusal it does not retry)."
  type        = string
}

variable "dead_letter_kms_key_arn" {
  description = "The KMS key that encrypts the dead-letter queue: the schedules' role sends through SQS with it."
  type        = string
}

variable "schedules" {
  description = "This function's schedules, by name: the EventBridge Scheduler expression, its time zone, its flexible window, and the JSON input (already rendered, with `<aws.scheduler.scheduled-time>` in it)."
  type = map(object({
    expression              = string
    timezone                = string
    flexible_window_minutes = number
    enabled                 = bool
    input                   = string
  }))
  default = {}
}

variable "schedule_group" {
  description = "The EventBridge Scheduler schedule group the schedules go into."
  type        = string
  default     = "default"
}

variable "duration_alarm_ratio" {
  description = "The Duration alarm fires when a run takes more than this share of the timeout."
  type        = number
  default     = 0.8

  validation {
    condition     = var.duration_alarm_ratio > 0 && var.duration_alarm_ratio < 1
    error_message = "duration_alarm_ratio must lie strictly between 0 and 1."
  }
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}
