# Lifeboat: six backup functions and the restore drill, their schedules, the
# alert topic, the dump bucket, alarms and a dashboard. Each function is one instance of
# modules/backup-function with the policy of exactly the calls it makes (iam.tf).

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  function_names = ["rds-snapshot", "ebs-snapshot", "ami-backup", "pg-dump", "prune", "freshness", "restore-drill"]

  # Where `make build` puts the zips: terraform/ sits beside target/.
  build_dir = abspath("${path.module}/../target/lambda")

  # Every function: where alerts and metrics go.
  common_environment = {
    LIFEBOAT_SNS_TOPIC_ARN    = aws_sns_topic.alerts.arn
    LIFEBOAT_METRIC_NAMESPACE = var.metric_namespace
    RUST_LOG                  = var.log_level
  }
  # A dump's making, whichever runner makes it: pg-dump and its task.
  dump_environment = merge(local.common_environment, {
    LIFEBOAT_BUCKET          = aws_s3_bucket.dumps.id
    LIFEBOAT_KMS_KEY_ID      = aws_kms_key.dumps.arn
    LIFEBOAT_PART_SIZE_MIB   = tostring(var.pg_dump.part_size_mib)
    LIFEBOAT_PARTS_IN_FLIGHT = tostring(var.pg_dump.parts_in_flight)
  })
  environment = {
    "rds-snapshot" = merge(local.common_environment, { LIFEBOAT_CONCURRENCY = tostring(var.concurrency) })
    "ebs-snapshot" = merge(local.common_environment, { LIFEBOAT_CONCURRENCY = tostring(var.concurrency) })
    "ami-backup"   = merge(local.common_environment, { LIFEBOAT_CONCURRENCY = tostring(var.concurrency) })
    "prune"        = merge(local.common_environment, { LIFEBOAT_BUCKET = aws_s3_bucket.dumps.id })
    "freshness"    = merge(local.common_environment, { LIFEBOAT_BUCKET = aws_s3_bucket.dumps.id })
    # The layer's pg_dump, and the task it hands long dumps to (task.tf).
    "pg-dump" = merge(local.dump_environment, local.pg_dump_task_environment, {
      PG_DUMP_PATH = "/opt/pgsql/bin/pg_dump"
    })
    # pg_restore from pg-dump's layer; psql, initdb and postgres for the
    # throwaway server are the ones beside it. /tmp is the function's
    # ephemeral storage, where that server keeps its data.
    "restore-drill" = merge(local.common_environment, {
      LIFEBOAT_BUCKET    = aws_s3_bucket.dumps.id
      PG_RESTORE_PATH    = "/opt/pgsql/bin/pg_restore"
      LIFEBOAT_DRILL_DIR = "/tmp"
    })
  }

  # The payloads as the functions take them. Terraform's optional attributes
  # are null when left out, and a payload field that is present must have a
  # value of its type (`"reboot": null` is refused, like any wrong type), so
  # every level drops its nulls.
  payloads = {
    for name, s in var.schedules : name => merge(
      { for k, v in s.payload : k => v if v != null && !contains(["select", "clusters", "instances", "copy_to", "keep", "checks", "databases", "dumps", "ebs", "amis", "rds"], k) },
      { for k in ["select", "clusters", "instances"] : k => { for sk, sv in s.payload[k] : sk => sv if sv != null } if s.payload[k] != null },
      s.payload.copy_to == null ? {} : { copy_to = [for t in s.payload.copy_to : { for k, v in t : k => v if v != null }] },
      s.payload.keep == null ? {} : { keep = { for k, v in s.payload.keep : k => v if v != null } },
      s.payload.databases == null ? {} : { databases = [for d in s.payload.databases : { for k, v in d : k => v if v != null }] },
      s.payload.checks == null ? {} : {
        checks = [for c in s.payload.checks : merge(
          { for k, v in c : k => v if v != null && k != "select" },
          c.select == null ? {} : { select = { for k, v in c.select : k => v if v != null } },
        )]
      },
      # restore-drill's sections; an RDS drill restores into the drills'
      # subnet group and security group (drills.tf) unless it names its own.
      s.payload.dumps == null ? {} : { dumps = { for k, v in s.payload.dumps : k => v if v != null } },
      { for section in ["ebs", "amis"] : section => merge(
        { for k, v in s.payload[section] : k => v if v != null && k != "select" },
        { select = { for k, v in s.payload[section].select : k => v if v != null } },
      ) if s.payload[section] != null },
      s.payload.rds == null ? {} : {
        rds = merge(
          { for k, v in s.payload.rds : k => v if v != null && !contains(["instances", "clusters", "query"], k) },
          s.payload.rds.query == null ? {} : { query = { for k, v in s.payload.rds.query : k => v if v != null } },
          { for k in ["instances", "clusters"] : k => { for sk, sv in s.payload.rds[k] : sk => sv if sv != null } if s.payload.rds[k] != null },
          s.payload.rds.subnet_group != null ? {} : { subnet_group = local.drill_subnet_group },
          s.payload.rds.security_groups != null ? {} : { security_groups = local.drill_security_groups },
        )
      },
      # EventBridge Scheduler replaces this placeholder with the slot's time.
      { scheduled_time = "<aws.scheduler.scheduled-time>" },
    )
  }

  # jsonencode escapes < and > as \u003c and \u003e, which the scheduler would
  # not recognise as its placeholder; both are legal as they are in JSON strings.
  schedule_inputs = {
    for name, payload in local.payloads :
    name => replace(replace(jsonencode(payload), "\\u003c", "<"), "\\u003e", ">")
  }

  # The secrets pg-dump may read: those its schedules name, and no other.
  pg_dump_secret_arns = distinct(flatten([
    for s in values(var.schedules) : [for d in coalesce(s.payload.databases, []) : d.secret_arn] if s.function == "pg-dump"
  ]))

  # The plans freshness checks, each with its own alarms.
  freshness_plans = toset([for s in values(var.schedules) : s.payload.plan if s.function == "freshness"])
}

resource "aws_scheduler_schedule_group" "lifeboat" {
  name = trimsuffix(var.name_prefix, "-")
  tags = var.tags

  lifecycle {
    # A precondition rather than a validation of var.schedules: it reads
    # var.restore_drill too, and a validation that does would be skipped
    # whenever restore_drill itself is invalid.
    precondition {
      condition = alltrue([for s in values(var.schedules) : s.function != "restore-drill" || s.payload.rds == null || (
        (try(s.payload.rds.subnet_group, null) != null || length(var.restore_drill.subnet_ids) > 0) &&
        (try(s.payload.rds.security_groups, null) != null || length(var.restore_drill.subnet_ids) > 0) &&
        startswith(try(s.payload.rds.instance_class, ""), "db.")
      )])
      error_message = "A restore-drill schedule with rds needs instance_class (db.…) and either its own subnet_group and security_groups or restore_drill.subnet_ids, from which Lifeboat makes the drills' DB subnet group and security group (drills.tf)."
    }
    precondition {
      condition     = !local.drill_queries || local.drill_network
      error_message = "rds.query needs restore_drill.vpc_id and subnet_ids: restore-drill runs there to reach the databases it restores (drills.tf)."
    }
  }
}

locals {
  pg_dump_layer_zip = coalesce(var.pg_dump_layer_zip, "${local.build_dir}/pg-dump-layer.zip")
  # scripts/pg-layer.sh leaves a copy of the CA bundle it put in the layer beside the zip.
  pg_dump_ca_bundle = "${trimsuffix(local.pg_dump_layer_zip, ".zip")}.ca-bundle.pem"
  # Databases whose server certificate pg-dump must check against a CA bundle.
  verified_databases = flatten([
    for name, s in var.schedules : [
      for db in coalesce(s.payload.databases, []) : "${name}: ${db.name}"
      if contains(["verify-ca", "verify-full"], coalesce(db.sslmode, "require"))
    ] if s.function == "pg-dump"
  ])
}

resource "aws_lambda_layer_version" "pg_dump" {
  layer_name               = "${var.name_prefix}pg-dump"
  description              = "PostgreSQL 18 (pg_dump; pg_restore, psql and the restore drill's server) and its libraries under /opt/pgsql"
  filename                 = local.pg_dump_layer_zip
  source_code_hash         = filebase64sha256(local.pg_dump_layer_zip)
  compatible_runtimes      = ["provided.al2023"]
  compatible_architectures = ["x86_64"]

  lifecycle {
    precondition {
      condition     = length(local.verified_databases) == 0 || fileexists(local.pg_dump_ca_bundle)
      error_message = "sslmode verify-ca/verify-full (${join(", ", local.verified_databases)}) needs the servers' CA bundle in pg-dump's layer, and ${local.pg_dump_layer_zip} was built without one: run make build CA_BUNDLE=path/to/global-bundle.pem (RDS's CA bundle: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem), then apply again. See docs/pg-dump.md, TLS."
    }
  }
}

module "function" {
  source   = "./modules/backup-function"
  for_each = toset(local.function_names)

  name        = each.key
  name_prefix = var.name_prefix
  zip_path    = lookup(var.function_zips, each.key, "${local.build_dir}/${each.key}/bootstrap.zip")
  # restore-drill restores with pg-dump's layer: pg_restore, psql and the
  # server programs for its throwaway PostgreSQL.
  layers      = contains(["pg-dump", "restore-drill"], each.key) ? [aws_lambda_layer_version.pg_dump.arn] : []
  environment = local.environment[each.key]
  policy_json = local.function_policies[each.key]

  # restore-drill (var.restore_drill): 900 s, Lambda's most, since a run
  # restores a whole dump or waits on RDS; 4096 MiB, about 2.3 vCPUs (Lambda
  # gives CPU in proportion to memory), so that the PostgreSQL server,
  # pg_restore and the function's own download and SHA-256 each have a core
  # and the restore time measured is the restore's, not a starved CPU's, with
  # room for the server's shared buffers and pg_restore; 10240 MiB of /tmp,
  # Lambda's most, for the restored database's files (a dump restores to
  # several times its compressed size). Larger dumps need a bigger scratch.
  timeout_seconds      = lookup({ "pg-dump" = var.pg_dump.timeout_seconds, "restore-drill" = var.restore_drill.timeout_seconds }, each.key, try(var.functions[each.key].timeout_seconds, 300))
  memory_mb            = lookup({ "pg-dump" = var.pg_dump.memory_mb, "restore-drill" = var.restore_drill.memory_mb }, each.key, try(var.functions[each.key].memory_mb, 256))
  ephemeral_storage_mb = lookup({ "pg-dump" = var.pg_dump.ephemeral_storage_mb, "restore-drill" = var.restore_drill.ephemeral_storage_mb }, each.key, 512)
  reserved_concurrency = try(var.functions[each.key].reserved_concurrency, 4)

  vpc = lookup({
    "pg-dump" = var.pg_dump.vpc_id == null ? null : {
      subnet_ids         = var.pg_dump.subnet_ids
      security_group_ids = [aws_security_group.pg_dump[0].id]
    }
    # Only to run rds.query on the restored databases (drills.tf).
    "restore-drill" = local.drill_queries && local.drill_network ? {
      subnet_ids         = var.restore_drill.subnet_ids
      security_group_ids = [aws_security_group.restore_drill[0].id]
    } : null
  }, each.key, null)

  alert_topic_arn    = aws_sns_topic.alerts.arn
  log_retention_days = var.log_retention_days
  log_kms_key_arn    = aws_kms_key.alerts.arn

  schedule_group          = aws_scheduler_schedule_group.lifeboat.name
  dead_letter_queue_arn   = aws_sqs_queue.schedule_dead_letters.arn
  dead_letter_kms_key_arn = aws_kms_key.alerts.arn
  schedules = {
    for name, s in var.schedules : name => {
      expression              = s.expression
      timezone                = s.timezone
      flexible_window_minutes = s.flexible_window_minutes
      enabled                 = s.enabled
      input                   = local.schedule_inputs[name]
    } if s.function == each.key
  }

  tags = var.tags
}
