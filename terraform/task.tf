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
    mountPoints            = [{ sourceVolume = "scratch", containerPath = "/tmp", readOnly = false }]
    environment            = local.pg_dump_task_container_environment
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
