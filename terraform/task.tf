# pg-dump's ECS Fargate task (var.pg_dump.task): the same `lifeboat run
# pg-dump`, in an image built from scratch (`make image`, `make push`), for
# dumps that outgrow a Lambda run. pg-dump starts it with RunTask, in its own
# subnets and security group, without a public IP; the task's role has
# exactly pg-dump's grants for making a dump, and pg-dump's role may start
# only this task definition, in this cluster, and pass only its two roles.
#
# The repository comes first; the task definition refers to the image by
# digest, so it waits for `image_digest` (what `make push` prints).

locals {
  pg_dump_task             = var.pg_dump.task != null
  pg_dump_task_ready       = local.pg_dump_task && try(var.pg_dump.task.image_digest, null) != null
  pg_dump_task_own_cluster = local.pg_dump_task_ready && try(var.pg_dump.task.cluster_arn, null) == null
  pg_dump_task_cluster_arn = !local.pg_dump_task_ready ? null : (
    local.pg_dump_task_own_cluster ? aws_ecs_cluster.pg_dump[0].arn : var.pg_dump.task.cluster_arn
  )
  pg_dump_task_cluster_name = local.pg_dump_task_ready ? element(split("/", local.pg_dump_task_cluster_arn), 1) : null
  pg_dump_task_family       = "${var.name_prefix}pg-dump"
  pg_dump_task_log_group    = "/ecs/${var.name_prefix}pg-dump"
  pg_dump_task_container    = "pg-dump"

  # What the function needs to start the task (functions/pg-dump/src/task.rs).
  pg_dump_task_environment = !local.pg_dump_task_ready ? {} : {
    LIFEBOAT_TASK_CLUSTER         = local.pg_dump_task_cluster_arn
    LIFEBOAT_TASK_DEFINITION      = aws_ecs_task_definition.pg_dump[0].arn
    LIFEBOAT_TASK_CONTAINER       = local.pg_dump_task_container
    LIFEBOAT_TASK_SUBNETS         = join(",", var.pg_dump.subnet_ids)
    LIFEBOAT_TASK_SECURITY_GROUPS = aws_security_group.pg_dump[0].id
  }
  # The task's own environment: a dump's (main.tf); its pg_dump is the image's.
  pg_dump_task_container_environment = [
    for k, v in local.dump_environment : { name = k, value = v }
  ]
}

# Immutable tags: a digest, once pushed, always names the same image.
resource "aws_ecr_repository" "pg_dump" {
  count = local.pg_dump_task ? 1 : 0

  name                 = "${var.name_prefix}pg-dump"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
  }
  tags = var.tags
}

resource "aws_ecs_cluster" "pg_dump" {
  count = local.pg_dump_task_own_cluster ? 1 : 0

  name = "${var.name_prefix}pg-dump"
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = var.tags
}

resource "aws_cloudwatch_log_group" "pg_dump_task" {
  count = local.pg_dump_task_ready ? 1 : 0

  name              = local.pg_dump_task_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.alerts.arn
  tags              = var.tags
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The task's role: the grants pg-dump makes a dump with (iam.tf), no more.
resource "aws_iam_role" "pg_dump_task" {
  count = local.pg_dump_task_ready ? 1 : 0

  name               = "${var.name_prefix}pg-dump-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "pg_dump_task" {
  count = local.pg_dump_task_ready ? 1 : 0

  name   = "dump"
  role   = aws_iam_role.pg_dump_task[0].id
  policy = data.aws_iam_policy_document.pg_dump.json
}

# The execution role: ECS pulls the image and writes the task's logs with it.
resource "aws_iam_role" "pg_dump_task_execution" {
  count = local.pg_dump_task_ready ? 1 : 0

  name               = "${var.name_prefix}pg-dump-task-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "pg_dump_task_execution" {
  count = local.pg_dump_task_ready ? 1 : 0

  # GetAuthorizationToken has no resource-level permissions.
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [aws_ecr_repository.pg_dump[0].arn]
  }
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.pg_dump_task[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "pg_dump_task_execution" {
  count = local.pg_dump_task_ready ? 1 : 0

  name   = "pull-and-log"
  role   = aws_iam_role.pg_dump_task_execution[0].id
  policy = data.aws_iam_policy_document.pg_dump_task_execution[0].json
}

resource "aws_ecs_task_definition" "pg_dump" {
  count = local.pg_dump_task_ready ? 1 : 0

  family                   = local.pg_dump_task_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.pg_dump.task.cpu)
  memory                   = tostring(var.pg_dump.task.memory_mb)
  execution_role_arn       = aws_iam_role.pg_dump_task_execution[0].arn
  task_role_arn            = aws_iam_role.pg_dump_task[0].arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  # The task's ephemeral storage, writable at /tmp (the root file system is not).
  ephemeral_storage {
    size_in_gib = var.pg_dump.task.ephemeral_storage_gib
  }
  volume {
    name = "scratch"
  }
  container_definitions = jsonencode([{
    name      = local.pg_dump_task_container
    image     = "${aws_ecr_repository.pg_dump[0].repository_url}@${var.pg_dump.task.image_digest}"
    essential = true
    # The task's memory, stated for the container too.
    memory                 = var.pg_dump.task.memory_mb
    readonlyRootFilesystem = true
    # An init process as PID 1, which passes ECS's SIGTERM (StopTask, a
    # retirement) on to lifeboat: as PID 1 itself it would ignore it.
    linuxParameters = { initProcessEnabled = true }
    mountPoints     = [{ sourceVolume = "scratch", containerPath = "/tmp", readOnly = false }]
    environment     = local.pg_dump_task_container_environment
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = local.pg_dump_task_log_group
        awslogs-region        = local.region
        awslogs-stream-prefix = "pg-dump"
      }
    }
  }])
  tags = var.tags

  lifecycle {
    precondition {
      condition     = local.pg_dump_in_vpc
      error_message = "pg_dump.task runs in pg-dump's VPC: set pg_dump.vpc_id and subnet_ids."
    }
  }
}

# pg-dump's own grants for the task: start this task definition in this
# cluster, look up the slot's tasks there, and hand ECS the task's two roles.
data "aws_iam_policy_document" "pg_dump_dispatch" {
  count = local.pg_dump_task_ready ? 1 : 0

  statement {
    sid       = "StartDumpTask"
    actions   = ["ecs:RunTask"]
    resources = [aws_ecs_task_definition.pg_dump[0].arn]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.pg_dump_task_cluster_arn]
    }
  }
  # ListTasks authorises against the cluster's container instances, of
  # which a Fargate cluster has none: "*", held to the cluster.
  statement {
    sid       = "ListDumpTasks"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.pg_dump_task_cluster_arn]
    }
  }
  statement {
    sid       = "DescribeDumpTasks"
    actions   = ["ecs:DescribeTasks"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${local.pg_dump_task_cluster_name}/*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.pg_dump_task_cluster_arn]
    }
  }
  statement {
    sid       = "PassDumpTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.pg_dump_task[0].arn, aws_iam_role.pg_dump_task_execution[0].arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "pg_dump_function" {
  source_policy_documents = concat(
    [data.aws_iam_policy_document.pg_dump.json],
    [for d in data.aws_iam_policy_document.pg_dump_dispatch : d.json],
  )
}

# A task that stops without finishing is told once. What the task saw
# itself it has alerted already, and then exits 1 (`lifeboat run`: failed
# and alerted), a stop it was sent included (StopTask, a retirement: the
# SIGTERM ECS sends first). Everything else only ECS sees, and this rule
# tells it: any other exit status (2, a payload refused; 3, a failure it
# could not alert; 137, killed, as for running out of memory or after the
# 30 s a stopped task is given), and no exit status at all (it never
# started: its image could not be pulled, its network not made). The
# pattern is proven against sample events of each kind of stop by
# tests/tests/integration/terraform.rs with a real implementation of EventBridge's
# pattern language (docs/pg-dump.md).
locals {
  pg_dump_task_stopped_pattern = !local.pg_dump_task_ready ? null : {
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn        = [local.pg_dump_task_cluster_arn]
      taskDefinitionArn = [{ prefix = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${local.pg_dump_task_family}:" }]
      startedBy         = [{ prefix = "lifeboat/" }]
      lastStatus        = ["STOPPED"]
      containers        = { exitCode = [{ "anything-but" = [0, 1] }, { exists = false }] }
    }
  }
}

resource "aws_cloudwatch_event_rule" "pg_dump_task_stopped" {
  count = local.pg_dump_task_ready ? 1 : 0

  name          = "${var.name_prefix}pg-dump-task-stopped"
  description   = "pg-dump's task stopped without finishing, and without saying so itself: alert"
  event_pattern = jsonencode(local.pg_dump_task_stopped_pattern)
  tags          = var.tags
}

# One message to the alert topic, naming the database and the slot (its
# startedBy, lifeboat/<plan>/<database>/<slot>/…) and the stop's reason.
resource "aws_cloudwatch_event_target" "pg_dump_task_stopped" {
  count = local.pg_dump_task_ready ? 1 : 0

  rule = aws_cloudwatch_event_rule.pg_dump_task_stopped[0].name
  arn  = aws_sns_topic.alerts.arn
  input_transformer {
    input_paths = {
      started_by       = "$.detail.startedBy"
      task             = "$.detail.taskArn"
      stop_code        = "$.detail.stopCode"
      stopped_reason   = "$.detail.stoppedReason"
      exit_code        = "$.detail.containers[0].exitCode"
      container_reason = "$.detail.containers[0].reason"
      stopped_at       = "$.detail.stoppedAt"
    }
    # An object, not a string: EventBridge puts each value in as JSON (quoted
    # and escaped), where inside a string it would put the text as it is,
    # and a quote in a stop reason would break the message.
    input_template = <<-EOT
      {
        "alert": "Lifeboat: pg-dump's task stopped without finishing its dump. The slot has no dump unless a later run made one.",
        "task": <started_by>,
        "task_is": "lifeboat/plan/database/slot/place",
        "stop_code": <stop_code>,
        "stopped_reason": <stopped_reason>,
        "exit_code": <exit_code>,
        "container_reason": <container_reason>,
        "stopped_at": <stopped_at>,
        "task_arn": <task>,
        "log_group": "${local.pg_dump_task_log_group}"
      }
    EOT
  }
}
