variable "region" {
  description = "The AWS region Lifeboat runs in: it backs up and prunes the resources of this region (deploy it again in a region that receives copies, to prune them there)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name, so two deployments can share an account."
  type        = string
  default     = "lifeboat-"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,20}-$", var.name_prefix))
    error_message = "name_prefix must be lowercase letters, digits and dashes, at most 22 characters, ending in a dash."
  }
}

variable "tags" {
  description = "Tags for every resource Lifeboat's Terraform creates (the backups themselves carry Lifeboat's own tags)."
  type        = map(string)
  default     = {}
}

variable "function_zips" {
  description = "Paths of the functions' bootstrap.zip by function name; a function left out uses `make build`'s output, target/lambda/<function>/bootstrap.zip."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for f in keys(var.function_zips) : contains(["rds-snapshot", "ebs-snapshot", "ami-backup", "pg-dump", "prune", "freshness", "restore-drill"], f)])
    error_message = "function_zips keys must be Lifeboat function names."
  }
}

variable "pg_dump_layer_zip" {
  description = "Path of the pg_dump layer zip (unpacks to /opt/pgsql); default: `make build`'s target/lambda/pg-dump-layer.zip."
  type        = string
  default     = null
}

variable "metric_namespace" {
  description = "The CloudWatch namespace the functions write their metrics to, and the alarms and dashboard read."
  type        = string
  default     = "Lifeboat"
}

variable "log_level" {
  description = "RUST_LOG of every function."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Days to keep the functions' logs (a value CloudWatch Logs accepts)."
  type        = number
  default     = 365
}

variable "concurrency" {
  description = "LIFEBOAT_CONCURRENCY of rds-snapshot, ebs-snapshot and ami-backup: creations in flight at once."
  type        = number
  default     = 8

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 64 && floor(var.concurrency) == var.concurrency
    error_message = "concurrency must be a whole number from 1 to 64."
  }
}

variable "functions" {
  description = "Timeout (seconds), memory (MiB) and reserved concurrency per function, where the defaults (300 s, 256 MiB, 4) do not fit; pg-dump's timeout and memory are set in var.pg_dump, restore-drill's in var.restore_drill."
  type = map(object({
    timeout_seconds      = optional(number, 300)
    memory_mb            = optional(number, 256)
    reserved_concurrency = optional(number, 4)
  }))
  default = {}

  validation {
    condition     = alltrue([for f in keys(var.functions) : contains(["rds-snapshot", "ebs-snapshot", "ami-backup", "pg-dump", "prune", "freshness", "restore-drill"], f)])
    error_message = "functions keys must be Lifeboat function names."
  }
}

variable "pg_dump" {
  description = <<-EOT
    pg-dump's network and size: the VPC subnets it runs in, where its databases
    are (CIDR blocks and/or security groups, and their port), how it reaches
    the AWS APIs it calls (S3, Secrets Manager, SNS, CloudWatch) over HTTPS,
    its timeout and memory, and where it writes its dumps. Either
    `vpc_endpoints = true`: Lifeboat creates S3's gateway endpoint (in
    `route_table_ids`, the route tables of `subnet_ids`) and interface
    endpoints for the other three, with private DNS, in `subnet_ids` (at most
    one a zone; the VPC needs DNS support and DNS hostnames); or a NAT gateway
    or endpoints of your own, reached at `https_cidrs` (default: 0.0.0.0/0
    without vpc_endpoints, none with them). With `vpc_id = null` it runs
    outside any VPC (databases reachable publicly).

    `ephemeral_storage_mb` is the Lambda run's /tmp (512 to 10240 MiB),
    where a parallel dump (`jobs`) keeps the files it has not uploaded yet.

    `task` adds the ECS Fargate task that dumps what outgrows a Lambda run
    (docs/pg-dump.md, Runners): its ECR repository at once, and, once
    `make push` has pushed the image and printed its digest, the task
    definition of that `image_digest` (cpu units, memory, ephemeral storage
    of 21 to 200 GiB) in `cluster_arn` or a cluster of its own. It runs in
    pg-dump's subnets and security group, without a public IP.
  EOT
  type = object({
    vpc_id                      = optional(string)
    subnet_ids                  = optional(list(string), [])
    database_cidrs              = optional(list(string), [])
    database_security_group_ids = optional(list(string), [])
    database_port               = optional(number, 5432)
    vpc_endpoints               = optional(bool, false)
    route_table_ids             = optional(list(string), [])
    https_cidrs                 = optional(list(string))
    timeout_seconds             = optional(number, 900)
    memory_mb                   = optional(number, 1024)
    ephemeral_storage_mb        = optional(number, 512)
    part_size_mib               = optional(number, 8)
    parts_in_flight             = optional(number, 4)
    secret_kms_key_arns         = optional(list(string), [])
    task = optional(object({
      image_digest          = optional(string)
      cluster_arn           = optional(string)
      cpu                   = optional(number, 1024)
      memory_mb             = optional(number, 4096)
      ephemeral_storage_gib = optional(number, 50)
    }))
  })
  default = {}

  validation {
    condition     = var.pg_dump.vpc_id == null || length(var.pg_dump.subnet_ids) > 0
    error_message = "pg_dump.subnet_ids must name at least one subnet when pg_dump.vpc_id is set."
  }
  validation {
    condition     = var.pg_dump.vpc_id == null || length(var.pg_dump.database_cidrs) + length(var.pg_dump.database_security_group_ids) > 0
    error_message = "pg_dump needs database_cidrs or database_security_group_ids: its security group lets it reach nothing else."
  }
  validation {
    condition     = !var.pg_dump.vpc_endpoints || (var.pg_dump.vpc_id != null && length(var.pg_dump.route_table_ids) > 0)
    error_message = "pg_dump.vpc_endpoints needs pg_dump.vpc_id and pg_dump.route_table_ids (the route tables of subnet_ids, for S3's gateway endpoint)."
  }
  validation {
    condition     = var.pg_dump.ephemeral_storage_mb >= 512 && var.pg_dump.ephemeral_storage_mb <= 10240
    error_message = "pg_dump.ephemeral_storage_mb must lie between 512 and 10240 (Lambda's /tmp)."
  }
  validation {
    condition     = var.pg_dump.database_port >= 1 && var.pg_dump.database_port <= 65535
    error_message = "pg_dump.database_port must be a TCP port."
  }
  validation {
    condition     = var.pg_dump.task == null || var.pg_dump.vpc_id != null
    error_message = "pg_dump.task runs in pg-dump's VPC, without a public IP: set pg_dump.vpc_id and subnet_ids."
  }
  validation {
    condition     = try(var.pg_dump.task.image_digest, null) == null || can(regex("^sha256:[0-9a-f]{64}$", try(var.pg_dump.task.image_digest, "")))
    error_message = "pg_dump.task.image_digest is the image's digest as `make push` prints it: sha256: and 64 hexadecimal digits."
  }
  validation {
    condition     = var.pg_dump.task == null || (try(var.pg_dump.task.ephemeral_storage_gib, 0) >= 21 && try(var.pg_dump.task.ephemeral_storage_gib, 0) <= 200)
    error_message = "pg_dump.task.ephemeral_storage_gib must lie between 21 and 200 (Fargate's ephemeral storage)."
  }
  validation {
    condition     = var.pg_dump.task == null || contains([256, 512, 1024, 2048, 4096, 8192, 16384], try(var.pg_dump.task.cpu, 0))
    error_message = "pg_dump.task.cpu must be a Fargate size: 256, 512, 1024, 2048, 4096, 8192 or 16384 CPU units."
  }
  # Fargate's memory for each cpu: from, to, in steps of (MiB).
  validation {
    condition = var.pg_dump.task == null || try(
      var.pg_dump.task.cpu == 256 ? contains([512, 1024, 2048], var.pg_dump.task.memory_mb) : (
        var.pg_dump.task.memory_mb >= { "512" = 1024, "1024" = 2048, "2048" = 4096, "4096" = 8192, "8192" = 16384, "16384" = 32768 }[tostring(var.pg_dump.task.cpu)] &&
        var.pg_dump.task.memory_mb <= { "512" = 4096, "1024" = 8192, "2048" = 16384, "4096" = 30720, "8192" = 61440, "16384" = 122880 }[tostring(var.pg_dump.task.cpu)] &&
        var.pg_dump.task.memory_mb % { "512" = 1024, "1024" = 1024, "2048" = 1024, "4096" = 1024, "8192" = 4096, "16384" = 8192 }[tostring(var.pg_dump.task.cpu)] == 0
      ),
      false
    )
    error_message = "pg_dump.task.memory_mb does not fit its cpu on Fargate: 256 takes 512, 1024 or 2048; 512 takes 1024 to 4096 by 1024; 1024 takes 2048 to 8192, 2048 4096 to 16384, 4096 8192 to 30720, all by 1024; 8192 takes 16384 to 61440 by 4096; 16384 takes 32768 to 122880 by 8192."
  }
  validation {
    condition     = var.pg_dump.part_size_mib >= 5 && var.pg_dump.part_size_mib <= 5120 && var.pg_dump.parts_in_flight >= 1 && var.pg_dump.parts_in_flight <= 16
    error_message = "pg_dump.part_size_mib must lie between 5 and 5120 (S3's multipart part sizes) and parts_in_flight between 1 and 16."
  }
}

variable "copy_kms_key_arns" {
  description = "KMS keys that encrypt the sources of copies or that copy_to names (rds-snapshot, ebs-snapshot): the functions may use them for copies only. Empty: only unencrypted or AWS-managed-key copies."
  type        = list(string)
  default     = []
}

variable "alert_subscriptions" {
  description = "Who hears the alerts: email addresses (each must confirm) and HTTPS endpoints (a chat or paging webhook)."
  type = object({
    emails = optional(list(string), [])
    https  = optional(list(string), [])
  })
  default = {}

  validation {
    condition     = alltrue([for u in var.alert_subscriptions.https : startswith(u, "https://")])
    error_message = "alert_subscriptions.https must hold https:// URLs."
  }
}

variable "heartbeat_hours" {
  description = "Hours without a freshness Heartbeat before its alarm fires: longer than the freshness schedule's period, with room for a late run."
  type        = number
  default     = 26

  validation {
    condition     = var.heartbeat_hours >= 1 && var.heartbeat_hours <= 168 && floor(var.heartbeat_hours) == var.heartbeat_hours
    error_message = "heartbeat_hours must be a whole number of hours from 1 to 168."
  }
}

variable "dump_bucket" {
  description = <<-EOT
    The dump bucket: its name (null: a generated name), how long overwritten or
    deleted dumps stay recoverable as noncurrent versions, and an optional
    Object Lock default retention (mode GOVERNANCE or COMPLIANCE, and days).
    Object Lock can only be turned on when the bucket is created.
  EOT
  type = object({
    name                    = optional(string)
    noncurrent_version_days = optional(number, 30)
    force_destroy           = optional(bool, false)
    object_lock = optional(object({
      mode = string
      days = number
    }))
  })
  default = {}

  validation {
    condition     = var.dump_bucket.name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.dump_bucket.name))
    error_message = "dump_bucket.name must be an S3 bucket name: 3 to 63 characters of lowercase letters, digits, '.' and '-', starting and ending with a letter or digit."
  }
  validation {
    condition     = var.dump_bucket.noncurrent_version_days >= 1
    error_message = "dump_bucket.noncurrent_version_days must be at least 1."
  }
  validation {
    condition     = var.dump_bucket.object_lock == null || try(contains(["GOVERNANCE", "COMPLIANCE"], var.dump_bucket.object_lock.mode) && var.dump_bucket.object_lock.days >= 1, false)
    error_message = "dump_bucket.object_lock.mode must be GOVERNANCE or COMPLIANCE and days at least 1."
  }
}

variable "schedules" {
  description = <<-EOT
    The backup plans, as data: one entry per schedule, by a name of your
    choosing. Each names the function it invokes, an EventBridge Scheduler
    expression (`cron(0 2 * * ? *)` or `rate(1 hour)`) with its time zone and
    flexible window, and the payload fields of that function (DESIGN.md). The
    input always carries `scheduled_time = <aws.scheduler.scheduled-time>`,
    which names the slot and makes retries idempotent.
  EOT
  type = map(object({
    function                = string
    expression              = string
    timezone                = optional(string, "UTC")
    flexible_window_minutes = optional(number, 0)
    enabled                 = optional(bool, true)
    payload = object({
      plan    = string
      dry_run = optional(bool)
      # rds-snapshot, ebs-snapshot, ami-backup
      select = optional(object({
        tags = optional(map(string))
        ids  = optional(list(string))
      }))
      clusters = optional(object({
        tags = optional(map(string))
        ids  = optional(list(string))
      }))
      instances = optional(object({
        tags = optional(map(string))
        ids  = optional(list(string))
      }))
      exclude_root = optional(bool)
      reboot       = optional(bool)
      copy_to = optional(list(object({
        region     = string
        kms_key_id = optional(string)
      })))
      # prune
      kinds = optional(list(string))
      keep = optional(object({
        last           = optional(number)
        hourly         = optional(number)
        daily          = optional(number)
        weekly         = optional(number)
        monthly        = optional(number)
        yearly         = optional(number)
        within         = optional(string)
        within_hourly  = optional(string)
        within_daily   = optional(string)
        within_weekly  = optional(string)
        within_monthly = optional(string)
        within_yearly  = optional(string)
      }))
      max_deletions = optional(number)
      # freshness
      checks = optional(list(object({
        kind = string
        select = optional(object({
          tags = optional(map(string))
          ids  = optional(list(string))
        }))
        database      = optional(list(string))
        max_age_hours = number
        plans         = optional(list(string))
        # A passed restore drill within this many days, else UnprovenResources.
        proven_within_days = optional(number)
      })))
      # pg-dump
      databases = optional(list(object({
        name         = string
        host         = string
        port         = optional(number)
        dbname       = string
        secret_arn   = string
        format       = optional(string)
        sslmode      = optional(string)
        compression  = optional(string)
        require_auth = optional(string)
        runner       = optional(string)
      })))
      prefix = optional(string)
      # restore-drill (functions/restore-drill/src/fields.rs)
      dumps = optional(object({
        databases   = list(string)
        bucket      = optional(string)
        prefix      = optional(string)
        backup_plan = optional(string)
      }))
      ebs = optional(object({
        select = object({
          tags = optional(map(string))
          ids  = optional(list(string))
        })
        backup_plan = optional(string)
      }))
      amis = optional(object({
        select = object({
          tags = optional(map(string))
          ids  = optional(list(string))
        })
        backup_plan = optional(string)
      }))
      # subnet_group and security_groups default to the ones Lifeboat makes
      # for drills from var.restore_drill.subnet_ids (drills.tf).
      rds = optional(object({
        instances = optional(object({
          tags = optional(map(string))
          ids  = optional(list(string))
        }))
        clusters = optional(object({
          tags = optional(map(string))
          ids  = optional(list(string))
        }))
        backup_plan     = optional(string)
        instance_class  = string
        subnet_group    = optional(string)
        security_groups = optional(list(string))
        # A query on each restored database: the function then runs in
        # restore_drill.subnet_ids, reaching the drills' security group on
        # restore_drill.database_port (drills.tf).
        query = optional(object({
          secret_arn = optional(string)
          dbname     = optional(string)
          sql        = optional(string)
          at_least   = optional(number)
          sslmode    = optional(string)
        }))
      }))
      max_age_hours = optional(number)
      every         = optional(string)
      rto_minutes   = optional(number)
      pick          = optional(string)
    })
  }))

  validation {
    condition     = alltrue([for s in values(var.schedules) : contains(["rds-snapshot", "ebs-snapshot", "ami-backup", "pg-dump", "prune", "freshness", "restore-drill"], s.function)])
    error_message = "Every schedule's function must be one of rds-snapshot, ebs-snapshot, ami-backup, pg-dump, prune, freshness, restore-drill."
  }
  validation {
    condition     = alltrue([for k in keys(var.schedules) : can(regex("^[a-z0-9][a-z0-9-]{0,30}$", k))])
    error_message = "Schedule names must match ^[a-z0-9][a-z0-9-]{0,30}$ (they become part of the schedule's name)."
  }
  validation {
    condition     = alltrue([for k, s in var.schedules : length("${var.name_prefix}${s.function}-${k}") <= 64])
    error_message = "A schedule is named name_prefix + function + \"-\" + its key, and EventBridge Scheduler takes at most 64 characters: shorten the schedule's key or name_prefix."
  }
  validation {
    condition     = alltrue([for s in values(var.schedules) : can(regex("^[a-z0-9][a-z0-9-]{0,30}$", s.payload.plan))])
    error_message = "Every payload.plan must match ^[a-z0-9][a-z0-9-]{0,30}$: it is tagged on every backup and names it."
  }
  validation {
    # cron(minutes hours day-of-month month day-of-week year) with exactly one
    # of the two day fields "?", as EventBridge Scheduler wants, or rate(N unit).
    condition = alltrue([for s in values(var.schedules) :
      can(regex("^rate\\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\\)$", s.expression)) ||
      try((regex("^cron\\((\\S+) (\\S+) (\\S+) (\\S+) (\\S+) (\\S+)\\)$", s.expression)[2] == "?") != (regex("^cron\\((\\S+) (\\S+) (\\S+) (\\S+) (\\S+) (\\S+)\\)$", s.expression)[4] == "?"), false)
    ])
    error_message = "Every schedule expression must be cron(minutes hours day-of-month month day-of-week year) with exactly one of day-of-month and day-of-week set to ?, or rate(N minutes|hours|days)."
  }
  validation {
    condition     = alltrue([for s in values(var.schedules) : s.flexible_window_minutes >= 0 && s.flexible_window_minutes <= 1440])
    error_message = "flexible_window_minutes must lie between 0 (off) and 1440."
  }
  validation {
    # A retention count is a whole number, -1 (unlimited) or more; 0 keeps none by that rule.
    condition = alltrue(flatten([for s in values(var.schedules) : [
      for n in(s.payload.keep == null ? [] : [s.payload.keep.last, s.payload.keep.hourly, s.payload.keep.daily, s.payload.keep.weekly, s.payload.keep.monthly, s.payload.keep.yearly]) :
      n == null ? true : (n >= -1 && floor(n) == n)
    ]]))
    error_message = "keep counts (last, hourly, daily, weekly, monthly, yearly) must be whole numbers, -1 for unlimited."
  }
  validation {
    # An empty policy would be refused at 02:00 every night; refuse it now.
    condition = alltrue([for s in values(var.schedules) :
      s.function != "prune" || try(length([for k, v in s.payload.keep : v if v != null && v != 0]) > 0, false)
    ])
    error_message = "Every prune schedule needs a keep policy with at least one non-zero rule."
  }
  validation {
    condition = alltrue(flatten([for s in values(var.schedules) : [
      for w in(s.payload.keep == null ? [] : [s.payload.keep.within, s.payload.keep.within_hourly, s.payload.keep.within_daily, s.payload.keep.within_weekly, s.payload.keep.within_monthly, s.payload.keep.within_yearly]) :
      w == null ? true : can(regex("^([0-9]+y)?([0-9]+m)?([0-9]+d)?([0-9]+h)?$", w)) && w != ""
    ]]))
    error_message = "keep.within* must be durations in restic's syntax: 1y2m3d4h (m = months)."
  }
  validation {
    condition     = alltrue([for s in values(var.schedules) : s.payload.max_deletions == null ? true : (s.payload.max_deletions >= 1 && floor(s.payload.max_deletions) == s.payload.max_deletions)])
    error_message = "max_deletions must be a whole number, at least 1."
  }
  validation {
    # The recovery point objective: a stale threshold of zero or of years hides every problem.
    condition = alltrue(flatten([for s in values(var.schedules) : [
      for c in coalesce(s.payload.checks, []) : c.max_age_hours > 0 && c.max_age_hours <= 8784
    ]]))
    error_message = "checks[].max_age_hours (the RPO) must be more than 0 and at most 8784 (a year)."
  }
  validation {
    condition = alltrue(flatten([for s in values(var.schedules) : [
      for c in coalesce(s.payload.checks, []) : c.proven_within_days == null ? true : (c.proven_within_days >= 1 && c.proven_within_days <= 366 && floor(c.proven_within_days) == c.proven_within_days)
    ]]))
    error_message = "checks[].proven_within_days must be a whole number of days from 1 to 366 (e.g. 35 for a monthly drill)."
  }
  validation {
    condition = alltrue([for s in values(var.schedules) : alltrue([
      for field, value in s.payload : value == null || contains(concat(["plan", "dry_run"], lookup({
        "rds-snapshot"  = ["select", "clusters", "copy_to"]
        "ebs-snapshot"  = ["select", "instances", "exclude_root", "copy_to"]
        "ami-backup"    = ["select", "reboot"]
        "pg-dump"       = ["databases", "prefix"]
        "prune"         = ["kinds", "keep", "max_deletions"]
        "freshness"     = ["checks"]
        "restore-drill" = ["dumps", "ebs", "amis", "rds", "max_age_hours", "every", "rto_minutes", "pick"]
      }, s.function, [])), field)
    ])])
    error_message = "A schedule's payload holds a field its function does not take (see DESIGN.md: e.g. keep belongs to prune, checks to freshness)."
  }
  validation {
    # The drill's own refusals (fields.rs), at plan time rather than at the first drill.
    condition = alltrue([for s in values(var.schedules) : s.function != "restore-drill" || (
      try(s.payload.rto_minutes >= 1 && floor(s.payload.rto_minutes) == s.payload.rto_minutes, false) &&
      (s.payload.dumps != null || s.payload.ebs != null || s.payload.amis != null || s.payload.rds != null) &&
      (s.payload.every == null || can(regex("^([0-9]+y)?([0-9]+m)?([0-9]+d)?([0-9]+h)?$", s.payload.every)) && !can(regex("^[0yMmdh]*$", s.payload.every))) &&
      (s.payload.pick == null || contains(["newest", "random"], coalesce(s.payload.pick, "newest"))) &&
      (s.payload.max_age_hours == null || try(s.payload.max_age_hours >= 1 && floor(s.payload.max_age_hours) == s.payload.max_age_hours, false))
    )])
    error_message = "Every restore-drill schedule needs rto_minutes (a whole number, at least 1) and at least one of dumps, ebs, amis, rds; every must be a non-zero span in restic's syntax (1m, 30d), pick newest or random, max_age_hours a whole number of at least 1."
  }
  validation {
    condition = alltrue([for s in values(var.schedules) : try(s.payload.rds.query, null) == null || (
      try(startswith(s.payload.rds.query.secret_arn, "arn:"), false) &&
      try(trimspace(s.payload.rds.query.dbname) != "", false) &&
      try(trimspace(s.payload.rds.query.sql) != "", false) &&
      try(s.payload.rds.query.at_least != null, false)
    )])
    error_message = "rds.query needs secret_arn (the secret's ARN: the restored database keeps its source's master login), dbname, sql and at_least."
  }
}

variable "restore_drill" {
  description = <<-EOT
    restore-drill's size, network and keys. Its memory and temporary storage
    hold the throwaway PostgreSQL server a dump is restored into (see
    main.tf). `vpc_id` and `subnet_ids` (private subnets in at least two
    zones): Lifeboat makes a DB subnet group and a security group that admits
    nothing for the RDS and Aurora drills, which schedules use unless their
    payload names its own. `kms_key_arns`: the customer managed keys that
    encrypt the drilled snapshots (RDS and EBS use the role's grants on them
    to restore); empty: only unencrypted backups and those under AWS managed
    keys. With a schedule's `rds.query`, the function runs in `subnet_ids`
    too, with a security group of its own that reaches the drills' group on
    `database_port` and AWS's APIs over HTTPS at `https_cidrs` (a NAT gateway,
    or interface endpoints of your own for EC2, RDS, Secrets Manager, SNS and
    CloudWatch) and `https_prefix_list_ids` (the prefix list of your S3
    gateway endpoint); `secret_kms_key_arns`: the customer managed keys of
    the queries' secrets.
  EOT
  type = object({
    timeout_seconds       = optional(number, 900)
    memory_mb             = optional(number, 4096)
    ephemeral_storage_mb  = optional(number, 10240)
    vpc_id                = optional(string)
    subnet_ids            = optional(list(string), [])
    kms_key_arns          = optional(list(string), [])
    database_port         = optional(number, 5432)
    https_cidrs           = optional(list(string), ["0.0.0.0/0"])
    https_prefix_list_ids = optional(list(string), [])
    secret_kms_key_arns   = optional(list(string), [])
  })
  default = {}

  validation {
    condition     = var.restore_drill.ephemeral_storage_mb >= 512 && var.restore_drill.ephemeral_storage_mb <= 10240
    error_message = "restore_drill.ephemeral_storage_mb must lie between 512 and 10240 (Lambda's limits)."
  }
  validation {
    condition     = length(var.restore_drill.subnet_ids) == 0 || (var.restore_drill.vpc_id != null && length(var.restore_drill.subnet_ids) >= 2)
    error_message = "restore_drill.subnet_ids needs restore_drill.vpc_id and at least two subnets (an RDS DB subnet group spans two Availability Zones)."
  }
  validation {
    condition     = var.restore_drill.database_port >= 1 && var.restore_drill.database_port <= 65535
    error_message = "restore_drill.database_port must be a TCP port."
  }
}
