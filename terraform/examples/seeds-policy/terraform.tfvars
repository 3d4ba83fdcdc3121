# The seeds' backup policy, complete: `make build`, put your own subnets,
# database and secret below, then from terraform/:
#   terraform init
#   terraform apply -var-file=examples/seeds-policy/terraform.tfvars
#
# Every night at 02:00 UTC: RDS instances and Aurora clusters, EBS volumes and
# a pg_dump of the orders database; every Sunday at 03:00 an AMI of the web
# servers. Kept: 7 daily, 4 weekly, 12 monthly, 7 yearly. RPO 24 hours: a
# resource whose newest backup is older than 26 hours (a 2-hour grace for a
# slow night) raises the StaleBackups alarm; AMIs are weekly, so 8 days.
# On the 1st of every month at 04:00 a restore drill of each kind (a random
# kept dump, EBS snapshot and RDS/Aurora snapshot, and the AMIs), with an
# hourly run that moves open drills on; docs/restore.md has what it costs. A
# resource without a passed drill in 35 days raises UnprovenResources.

region      = "us-east-1"
name_prefix = "lifeboat-"

tags = {
  project = "lifeboat"
  owner   = "platform"
}

alert_subscriptions = {
  emails = ["oncall@example.com"]
}

dump_bucket = {
  noncurrent_version_days = 30
  object_lock = {
    mode = "GOVERNANCE"
    days = 7
  }
}

# Private subnets without a NAT gateway: Lifeboat adds the VPC endpoints
# pg-dump needs (S3's gateway endpoint in the subnets' route tables; Secrets
# Manager, SNS and CloudWatch in the subnets, one a zone). With a NAT gateway,
# leave out vpc_endpoints and route_table_ids. The database's security group
# must admit pg-dump: `terraform output pg_dump_database_ingress`.
pg_dump = {
  vpc_id          = "vpc-0123456789abcdef0"
  subnet_ids      = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
  route_table_ids = ["rtb-0123456789abcdef0"]
  vpc_endpoints   = true
  database_cidrs  = ["10.0.16.0/20"]
  database_port   = 5432
  timeout_seconds = 900
  memory_mb       = 1024
  # Dumps that outgrow a 15-minute Lambda run go to an ECS Fargate task
  # (docs/pg-dump.md, Runners). Apply once without image_digest to create the
  # image repository, run `make push`, then put the digest it prints here
  # (this one is a placeholder, like the subnets above).
  task = {
    image_digest          = "sha256:8c1ff0e3c6d3d9f2b5b06a1e9cf6f5c1a0f4f9e0d8f1b3a2c6d4e5f60718293a"
    cpu                   = 2048
    memory_mb             = 8192
    ephemeral_storage_gib = 50
  }
}

heartbeat_hours = 26

# The RDS and Aurora drills restore into a DB subnet group of these private
# subnets (two zones), behind a security group that admits nothing: the
# drill checks a restore through the RDS API and never connects to it.
restore_drill = {
  vpc_id     = "vpc-0123456789abcdef0"
  subnet_ids = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
}

schedules = {
  nightly-rds = {
    function                = "rds-snapshot"
    expression              = "cron(0 2 * * ? *)"
    timezone                = "UTC"
    flexible_window_minutes = 15
    payload = {
      plan     = "nightly"
      select   = { tags = { backup = "nightly" } }
      clusters = { tags = { backup = "nightly" } }
    }
  }

  nightly-ebs = {
    function                = "ebs-snapshot"
    expression              = "cron(0 2 * * ? *)"
    flexible_window_minutes = 15
    payload = {
      plan   = "nightly"
      select = { tags = { backup = "nightly" } }
    }
  }

  nightly-pg = {
    function   = "pg-dump"
    expression = "cron(0 2 * * ? *)"
    payload = {
      plan = "nightly"
      databases = [{
        name       = "orders"
        host       = "orders.cluster-abcdefghijkl.us-east-1.rds.amazonaws.com"
        dbname     = "orders"
        secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lifeboat/orders-AbCdEf"
        format     = "custom"
        sslmode    = "verify-full"
      }]
    }
  }

  weekly-ami = {
    function   = "ami-backup"
    expression = "cron(0 3 ? * SUN *)"
    payload = {
      plan   = "weekly"
      select = { tags = { ami = "weekly" } }
      reboot = false
    }
  }

  # Pruning after the night's backups: each plan keeps its own history.
  nightly-prune = {
    function   = "prune"
    expression = "cron(0 5 * * ? *)"
    payload = {
      plan          = "nightly"
      kinds         = ["rds", "rds-cluster", "ebs", "pg-dump"]
      keep          = { daily = 7, weekly = 4, monthly = 12, yearly = 7 }
      max_deletions = 100
    }
  }

  weekly-prune = {
    function   = "prune"
    expression = "cron(0 5 ? * SUN *)"
    payload = {
      plan          = "weekly"
      kinds         = ["ami"]
      keep          = { weekly = 4, monthly = 12, yearly = 7 }
      max_deletions = 20
    }
  }

  # Restore drills: the seeds' monthly restore test, of a random backup still
  # kept (so older ones are proven too), with a 2-hour RTO. `every` keeps a
  # late or repeated delivery from drilling a source twice in a month. An
  # RDS restore outlasts a run: the hourly progress schedule below takes it
  # on (waits, checks, records, deletes). db.t4g.medium is Aurora
  # PostgreSQL's smallest class, and serves the RDS instances too.
  monthly-drill = {
    function   = "restore-drill"
    expression = "cron(0 4 1 * ? *)"
    payload = {
      plan          = "monthly-drill"
      every         = "25d"
      pick          = "random"
      rto_minutes   = 120
      max_age_hours = 24
      dumps         = { databases = ["orders"], backup_plan = "nightly" }
      ebs           = { select = { tags = { backup = "nightly" } }, backup_plan = "nightly" }
      amis          = { select = { tags = { ami = "weekly" } }, backup_plan = "weekly" }
      rds = {
        instances      = { tags = { backup = "nightly" } }
        clusters       = { tags = { backup = "nightly" } }
        backup_plan    = "nightly"
        instance_class = "db.t4g.medium"
      }
    }
  }

  # Every hour: open EBS and RDS drills move on and clean up, and drill
  # resources older than max_age_hours are deleted. It starts a drill only
  # for a source with none in 35 days (a new source, or a month whose drill
  # could not start), so the monthly schedule stays the one that drills.
  drill-progress = {
    function   = "restore-drill"
    expression = "rate(1 hour)"
    payload = {
      plan          = "monthly-drill"
      every         = "35d"
      rto_minutes   = 120
      max_age_hours = 24
      ebs           = { select = { tags = { backup = "nightly" } }, backup_plan = "nightly" }
      rds = {
        instances      = { tags = { backup = "nightly" } }
        clusters       = { tags = { backup = "nightly" } }
        backup_plan    = "nightly"
        instance_class = "db.t4g.medium"
      }
    }
  }

  # Checked after the backups and before the working day.
  freshness = {
    function   = "freshness"
    expression = "cron(0 6 * * ? *)"
    payload = {
      plan = "nightly"
      checks = [
        { kind = "rds", select = { tags = { backup = "nightly" } }, max_age_hours = 26, proven_within_days = 35 },
        { kind = "rds-cluster", select = { tags = { backup = "nightly" } }, max_age_hours = 26, proven_within_days = 35 },
        { kind = "ebs", select = { tags = { backup = "nightly" } }, max_age_hours = 26, proven_within_days = 35 },
        { kind = "pg-dump", database = ["orders"], max_age_hours = 26, proven_within_days = 35 },
        { kind = "ami", select = { tags = { ami = "weekly" } }, max_age_hours = 192, proven_within_days = 35 },
      ]
    }
  }
}
