# Where restore-drill's RDS and Aurora drills restore to: a DB subnet group
# of var.restore_drill.subnet_ids and a security group that admits nothing
# and sends nothing. The drill checks a restored database through the RDS
# API only (engine, version, encryption, storage), so nobody needs to reach
# it; a schedule that names its own subnet group and security groups
# (payload rds.subnet_group, rds.security_groups) uses those instead.

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

  name        = "${var.name_prefix}drills"
  description = "Lifeboat restore-drill's temporary databases: nothing in, nothing out"
  vpc_id      = var.restore_drill.vpc_id
  tags        = var.tags
}
