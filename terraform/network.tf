# pg-dump's security group: out to the databases' port and to AWS APIs over
# HTTPS, nothing in. With pg_dump.vpc_endpoints, the endpoints that carry those
# APIs inside the VPC: without them (or a NAT gateway) a dump in a private
# subnet could not write to S3, read its secret, send its alert or its
# metrics, and a failed night would stay silent.

locals {
  pg_dump_in_vpc    = var.pg_dump.vpc_id != null
  pg_dump_endpoints = local.pg_dump_in_vpc && var.pg_dump.vpc_endpoints
  # The endpoints carry every API pg-dump calls, so the open HTTPS rule is
  # only the default without them. pg-dump calls no KMS API itself: S3 and
  # Secrets Manager use the keys on its behalf.
  pg_dump_https_cidrs = var.pg_dump.https_cidrs != null ? var.pg_dump.https_cidrs : (local.pg_dump_endpoints ? [] : ["0.0.0.0/0"])
  pg_dump_interface_endpoints = local.pg_dump_endpoints ? merge({
    secretsmanager = "Secrets Manager: the databases' passwords"
    sns            = "SNS: the alert of a failed dump"
    monitoring     = "CloudWatch: PutMetricData, the dump's outcome metrics"
    }, local.pg_dump_task ? {
    ecs       = "ECS: pg-dump starts and looks up its task"
    "ecr.api" = "ECR: the task's image, its manifest"
    "ecr.dkr" = "ECR: the task's image, its layers (from S3, through the gateway endpoint)"
    logs      = "CloudWatch Logs: the task's log"
  } : {}) : {}
}

resource "aws_security_group" "pg_dump" {
  #checkov:skip=CKV2_AWS_5:attached to the pg-dump function through modules/backup-function's vpc variable, which checkov does not follow
  count = local.pg_dump_in_vpc ? 1 : 0

  name        = "${var.name_prefix}pg-dump"
  description = "Lifeboat pg-dump: out to PostgreSQL and AWS APIs only"
  vpc_id      = var.pg_dump.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "pg_dump_database_cidr" {
  for_each = local.pg_dump_in_vpc ? toset(var.pg_dump.database_cidrs) : toset([])

  security_group_id = aws_security_group.pg_dump[0].id
  description       = "PostgreSQL"
  ip_protocol       = "tcp"
  from_port         = var.pg_dump.database_port
  to_port           = var.pg_dump.database_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "pg_dump_database_sg" {
  for_each = local.pg_dump_in_vpc ? toset(var.pg_dump.database_security_group_ids) : toset([])

  security_group_id            = aws_security_group.pg_dump[0].id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = var.pg_dump.database_port
  to_port                      = var.pg_dump.database_port
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_egress_rule" "pg_dump_https" {
  for_each = local.pg_dump_in_vpc ? toset(local.pg_dump_https_cidrs) : toset([])

  security_group_id = aws_security_group.pg_dump[0].id
  description       = "AWS APIs: S3, Secrets Manager, SNS, CloudWatch"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

# The subnets' zones: an interface endpoint takes at most one subnet a zone,
# which AWS would only say when the endpoint is created.
data "aws_subnet" "pg_dump" {
  for_each = local.pg_dump_endpoints ? toset(var.pg_dump.subnet_ids) : toset([])

  id = each.value
}

# S3's gateway endpoint: free, and S3 traffic from the route tables' subnets
# goes through it (to this region's buckets, the dump bucket among them).
resource "aws_vpc_endpoint" "pg_dump_s3" {
  count = local.pg_dump_endpoints ? 1 : 0

  vpc_id            = var.pg_dump.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.pg_dump.route_table_ids
  tags              = merge(var.tags, { Name = "${var.name_prefix}pg-dump-s3" })
}

# The other APIs, at their usual names (private DNS), in pg-dump's subnets.
resource "aws_vpc_endpoint" "pg_dump" {
  for_each = local.pg_dump_interface_endpoints

  vpc_id              = var.pg_dump.vpc_id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.pg_dump.subnet_ids
  security_group_ids  = [aws_security_group.pg_dump_endpoints[0].id]
  private_dns_enabled = true
  tags                = merge(var.tags, { Name = "${var.name_prefix}pg-dump-${each.key}" })

  lifecycle {
    precondition {
      condition     = length(distinct([for s in data.aws_subnet.pg_dump : s.availability_zone])) == length(var.pg_dump.subnet_ids) && alltrue([for s in data.aws_subnet.pg_dump : s.vpc_id == var.pg_dump.vpc_id])
      error_message = "pg_dump.subnet_ids must lie in pg_dump.vpc_id, at most one a zone: an interface endpoint takes one subnet per Availability Zone."
    }
  }
}

# The interface endpoints' own group: HTTPS in from pg-dump, nothing else.
resource "aws_security_group" "pg_dump_endpoints" {
  count = local.pg_dump_endpoints ? 1 : 0

  name        = "${var.name_prefix}pg-dump-endpoints"
  description = "Lifeboat pg-dump's VPC endpoints: HTTPS in from pg-dump only"
  vpc_id      = var.pg_dump.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "pg_dump_endpoints" {
  count = local.pg_dump_endpoints ? 1 : 0

  security_group_id            = aws_security_group.pg_dump_endpoints[0].id
  description                  = "HTTPS from Lifeboat pg-dump"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.pg_dump[0].id
}

resource "aws_vpc_security_group_egress_rule" "pg_dump_endpoints" {
  count = local.pg_dump_endpoints ? 1 : 0

  security_group_id            = aws_security_group.pg_dump[0].id
  description                  = "AWS APIs through the VPC endpoints (Secrets Manager, SNS, CloudWatch; ECS, ECR, Logs for the task)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.pg_dump_endpoints[0].id
}

# S3 through the gateway endpoint: S3's addresses in this region, as the
# endpoint's prefix list names them.
resource "aws_vpc_security_group_egress_rule" "pg_dump_s3" {
  count = local.pg_dump_endpoints ? 1 : 0

  security_group_id = aws_security_group.pg_dump[0].id
  description       = "S3 through its gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.pg_dump_s3[0].prefix_list_id
}
