# Where restore-drill's RDS and Aurora drills restore to: a DB subnet group
# of var.restore_drill.subnet_ids and a security group that sends nothing.
# The drill checks a restored database through the RDS API (engine,
# version, encryption, storage), so nobody needs to reach it, unless a
# schedule asks for rds.query: then restore-drill itself runs in those
# subnets, with a group of its own that reaches the drills' group on the
# database port, and the drills' group admits that and nothing else. A
# schedule that names its own subnet group and security groups (payload
# rds.subnet_group, rds.security_groups) uses those instead, and their
# rules are the operator's (output restore_drill_database_ingress).

locals {
  drill_network = length(var.restore_drill.subnet_ids) > 0

  drill_subnet_group    = local.drill_network ? aws_db_subnet_group.drills[0].name : null
  drill_security_groups = local.drill_network ? [aws_security_group.drills[0].id] : null

  # The subnet groups the drills may restore into, by name: the one above
  # and those the restore-drill schedules name.
  drill_subnet_groups = distinct(compact(concat(
    local.drill_network ? [aws_db_subnet_group.drills[0].name] : [],
    [for s in values(var.schedules) : try(s.payload.rds.subnet_group, null) if s.function == "restore-drill"],
  )))

  # The secrets of the schedules' rds.query: restore-drill may read these, and no other.
  drill_query_secret_arns = distinct(compact([
    for s in values(var.schedules) : try(s.payload.rds.query.secret_arn, null) if s.function == "restore-drill"
  ]))
  drill_queries = anytrue([for s in values(var.schedules) : try(s.payload.rds.query, null) != null if s.function == "restore-drill"])
}

resource "aws_db_subnet_group" "drills" {
  count = local.drill_network ? 1 : 0

  name        = "${var.name_prefix}drills"
  description = "Lifeboat restore-drill: temporary restores of Lifeboat's snapshots"
  subnet_ids  = var.restore_drill.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "drills" {
  #checkov:skip=CKV2_AWS_5:restore-drill attaches it to the temporary DB instances and clusters it restores (the schedules' payload), which Terraform does not manage
  count = local.drill_network ? 1 : 0

  name = "${var.name_prefix}drills"
  # Kept as it was before rds.query could be deployed: AWS cannot change a
  # group's description, and a new one would replace the group under
  # running drills. With rds.query it admits restore-drill's group (below).
  description = "Lifeboat restore-drill's temporary databases: nothing in, nothing out"
  vpc_id      = var.restore_drill.vpc_id
  tags        = var.tags
}

# restore-drill's own group, for rds.query: out to the restored databases
# and to AWS's APIs over HTTPS, nothing in.
resource "aws_security_group" "restore_drill" {
  #checkov:skip=CKV2_AWS_5:attached to the restore-drill function through modules/backup-function's vpc variable, which checkov does not follow
  count = local.drill_queries && local.drill_network ? 1 : 0

  name        = "${var.name_prefix}restore-drill"
  description = "Lifeboat restore-drill: out to its restored databases and AWS APIs only"
  vpc_id      = var.restore_drill.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "restore_drill_database" {
  count = local.drill_queries && local.drill_network ? 1 : 0

  security_group_id            = aws_security_group.restore_drill[0].id
  description                  = "PostgreSQL on the restored databases"
  ip_protocol                  = "tcp"
  from_port                    = var.restore_drill.database_port
  to_port                      = var.restore_drill.database_port
  referenced_security_group_id = aws_security_group.drills[0].id
}

# S3 through a gateway endpoint of the operator's: S3's addresses, as the
# endpoint's prefix list names them (https_cidrs cannot).
resource "aws_vpc_security_group_egress_rule" "restore_drill_s3" {
  for_each = local.drill_queries && local.drill_network ? toset(var.restore_drill.https_prefix_list_ids) : toset([])

  security_group_id = aws_security_group.restore_drill[0].id
  description       = "AWS APIs through gateway endpoints (S3)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = each.value
}

resource "aws_vpc_security_group_egress_rule" "restore_drill_https" {
  for_each = local.drill_queries && local.drill_network ? toset(var.restore_drill.https_cidrs) : toset([])

  security_group_id = aws_security_group.restore_drill[0].id
  description       = "AWS APIs: EC2, RDS, S3, Secrets Manager, SNS, CloudWatch"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "drills_from_restore_drill" {
  count = local.drill_queries && local.drill_network ? 1 : 0

  security_group_id            = aws_security_group.drills[0].id
  description                  = "PostgreSQL from Lifeboat restore-drill's queries"
  ip_protocol                  = "tcp"
  from_port                    = var.restore_drill.database_port
  to_port                      = var.restore_drill.database_port
  referenced_security_group_id = aws_security_group.restore_drill[0].id
}
