# pg-dump's security group: out to the databases' port and to AWS APIs over
# HTTPS, nothing in.

resource "aws_security_group" "pg_dump" {
  #checkov:skip=CKV2_AWS_5:attached to the pg-dump function through modules/backup-function's vpc variable, which checkov does not follow
  count = var.pg_dump.vpc_id == null ? 0 : 1

  name        = "${var.name_prefix}pg-dump"
  description = "Lifeboat pg-dump: out to PostgreSQL and AWS APIs only"
  vpc_id      = var.pg_dump.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "pg_dump_database_cidr" {
  for_each = var.pg_dump.vpc_id == null ? toset([]) : toset(var.pg_dump.database_cidrs)

  security_group_id = aws_security_group.pg_dump[0].id
  description       = "PostgreSQL"
  ip_protocol       = "tcp"
  from_port         = var.pg_dump.database_port
  to_port           = var.pg_dump.database_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "pg_dump_database_sg" {
  for_each = var.pg_dump.vpc_id == null ? toset([]) : toset(var.pg_dump.database_security_group_ids)

  security_group_id            = aws_security_group.pg_dump[0].id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = var.pg_dump.database_port
  to_port                      = var.pg_dump.database_port
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_egress_rule" "pg_dump_https" {
  for_each = var.pg_dump.vpc_id == null ? toset([]) : toset(var.pg_dump.https_cidrs)

  security_group_id = aws_security_group.pg_dump[0].id
  description       = "AWS APIs: S3, Secrets Manager, SNS, CloudWatch, KMS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}
