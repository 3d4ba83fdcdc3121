#!/usr/bin/env bash
# A full backup cycle against the local emulator, shown step by step.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1;34m### %s\033[0m\n' "$*"; }
# One line per report item: what was created, skipped (and why) or failed.
summary() { .venv/bin/python scripts/estate.py summary; }
show() { printf '\033[2m$ %s\033[0m\n' "$*" >&2; "$@"; }

step "Building the lifeboat command"
cargo build --quiet -p lifeboat-cli
lifeboat=target/debug/lifeboat
export RUST_LOG=${RUST_LOG:-warn}   # the reports say what happened; RUST_LOG=info shows the progress lines too

step "Starting the local stand-ins (moto server, PostgreSQL)"
scripts/stack.sh up
eval "$(scripts/stack.sh env)"
curl -fsS -X POST "$AWS_ENDPOINT_URL/moto-api/reset" >/dev/null   # a clean estate every time

step "Seeding a small estate: 3 RDS instances (2 tagged backup=nightly), 1 tagged Aurora cluster,
    4 EBS volumes (3 tagged backup=nightly), 2 EC2 instances with 2 volumes each (tagged backup-set=nightly, ami=weekly)"
export LIFEBOAT_SNS_TOPIC_ARN=$(.venv/bin/python scripts/estate.py seed)
export DEMO_COPY_REGIONS=eu-west-1
echo "alert topic: $LIFEBOAT_SNS_TOPIC_ARN"

step "rds-snapshot: this minute's slot, copied to eu-west-1"
cat events/rds-snapshot.demo.json
show "$lifeboat" run rds-snapshot --event events/rds-snapshot.demo.json

step "The same slot again, as EventBridge Scheduler might deliver it twice: nothing new"
show "$lifeboat" run rds-snapshot --event events/rds-snapshot.demo.json | summary

step "Lifeboat's snapshots in the emulator (the untagged scratch-db has none)"
.venv/bin/python scripts/estate.py snapshots

step "ebs-snapshot: each tagged volume, then each tagged instance as one crash-consistent set"
show "$lifeboat" run ebs-snapshot --event events/ebs-snapshot.json | summary
show "$lifeboat" run ebs-snapshot --event events/ebs-snapshot-instances.json | summary

step "ami-backup: an image of each tagged instance, its snapshots tagged too (run twice: the second skips)"
show "$lifeboat" run ami-backup --event events/ami-backup.json | summary
show "$lifeboat" run ami-backup --event events/ami-backup.json | summary

step "Lifeboat's EBS snapshots and AMIs in the emulator (the untagged volume has none)"
.venv/bin/python scripts/estate.py ec2

step "Two months of earlier nightly snapshots of orders-data, for prune to work on"
.venv/bin/python scripts/estate.py history >/dev/null
echo "60 snapshots, slots 2026-09-21 to 2026-11-19"

step "What the nightly policy (7 daily, 4 weekly, 3 monthly) holds in the long run"
show "$lifeboat" retention --policy '{"daily": 7, "weekly": 4, "monthly": 3}' --simulate 365 --every 1d

step "prune, dry run: the full plan, nothing deleted"
cat events/prune.demo-dry-run.json
show "$lifeboat" run prune --event events/prune.demo-dry-run.json | summary | awk '{print $1}' | sort | uniq -c
show "$lifeboat" run prune --event events/prune.demo-dry-run.json | summary | grep -E "^  kept" | head -14

step "prune for real, then again (nothing more to delete)"
show "$lifeboat" run prune --event events/prune.demo.json | summary | awk '{print $1}' | sort | uniq -c
show "$lifeboat" run prune --event events/prune.demo.json | summary | awk '{print $1}' | sort | uniq -c

step "pg-dump: a demo database on the local PostgreSQL 15, its login in Secrets Manager, dumped by pg_dump 18 into S3"
pg_bin=/usr/lib/postgresql/15/bin
export PGHOST=127.0.0.1 PGPORT=$LIFEBOAT_PG_PORT PGUSER=postgres PGPASSWORD=$(cat .state/pg-password)
"$pg_bin/psql" -qX -d postgres -c "DROP DATABASE IF EXISTS shop" -c "DROP DATABASE IF EXISTS shop_restored" -c "CREATE DATABASE shop"
"$pg_bin/psql" -qX -d shop -v ON_ERROR_STOP=1 <<'SQL'
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id bigint PRIMARY KEY, customer text, amount numeric(12,2), details jsonb, receipt bytea);
INSERT INTO sales.orders SELECT g, 'customer-' || g % 97, g * 1.25, jsonb_build_object('items', g % 5), sha256(int8send(g))
  FROM generate_series(1, 200000) g;
CREATE TABLE public.notes (id serial PRIMARY KEY, body text);
INSERT INTO public.notes (body) SELECT 'note ' || g FROM generate_series(1, 1000) g;
SQL
export LIFEBOAT_BUCKET=lifeboat-dumps PG_DUMP_PATH=$(ls -d "$PWD"/.state/postgresql-*/bin | sort -V | tail -n 1)/pg_dump
.venv/bin/python scripts/estate.py pg-setup >/dev/null
cat .state/pg-dump.demo.json
RUST_LOG=info show "$lifeboat" run pg-dump --event .state/pg-dump.demo.json | summary

step "The dump in S3 with its tags, and its manifest (written last: a dump without one never counts)"
.venv/bin/python scripts/estate.py dumps

step "lifeboat verify: the stored dump against its manifest (the exact version, size, SHA-256, every table's rows)"
show "$lifeboat" verify --bucket lifeboat-dumps --prefix pg --database shop

step "pg-dump's Fargate task: the database moved to it by one payload field (\"runner\": \"task\"). A scheduled run
    (--timeout 900: as a Lambda run would) hands it to the task with RunTask; the emulator's ECS runs no container, so
    the demo plays ECS: the image (make image, built here from this lifeboat, without a Docker engine) runs the task's
    command in a chroot, with only its own environment and the task definition's. Its dump verifies like any other"
if [ "$(id -u)" -ne 0 ]; then
  echo "(left out: running the image in a chroot needs root)"
else
  .venv/bin/python scripts/estate.py task-setup > .state/task.env
  set -a; . .state/task.env; set +a
  show "$lifeboat" run pg-dump --timeout 900 --event .state/pg-dump.task.json | summary
  export IMAGE_OUT=.state/image/lifeboat-pg-dump.tar
  rm -rf .state/image
  IMAGE_BINARY=$lifeboat show scripts/image.sh build
  scripts/image.sh unpack .state/image/unpacked
  mapfile -t as_ecs < <(.venv/bin/python scripts/estate.py task-run)
  printf '\033[2m$ scripts/image.sh run .state/image/unpacked <the task definition'"'"'s environment> -- %s\033[0m\n' "${as_ecs[*]: -4}" >&2
  scripts/image.sh run .state/image/unpacked "${as_ecs[@]}" | summary
  show "$lifeboat" verify --bucket lifeboat-dumps --prefix pg --database shop --plan weekly
  unset LIFEBOAT_TASK_CLUSTER LIFEBOAT_TASK_DEFINITION LIFEBOAT_TASK_SUBNETS LIFEBOAT_TASK_SECURITY_GROUPS IMAGE_OUT
fi

step "pg-dump again for the same slot: skipped, its manifest exists"
show "$lifeboat" run pg-dump --event .state/pg-dump.demo.json | summary

step "A payload with a typo is refused before any AWS call"
echo '{"plan": "nightly", "selct": {"tags": {"backup": "nightly"}}}' > .state/typo.json
show "$lifeboat" run rds-snapshot --event .state/typo.json || echo "(exit status $?)"

step "A source that does not exist fails the run and sends one alert"
show "$lifeboat" run rds-snapshot --event events/rds-snapshot.missing.json >/dev/null || echo "(exit status $?)"
.venv/bin/python scripts/estate.py alerts

step "freshness: every protected resource against its RPO (the EBS backups above are from 2026-11-20, older than 26 h;
    scratch-db is listed by id but never backed up). One alert lists what is wrong"
show "$lifeboat" run freshness --event events/freshness.demo.json | summary || true
.venv/bin/python scripts/estate.py alerts

step "lifeboat status: the same check for a person (exit status 1: something is stale or unprotected)"
show "$lifeboat" status --event events/freshness.demo.json || echo "(exit status $?)"

step "lifeboat restore: the newest dump of shop, streamed from S3 through pg_restore 18 into a new database on this
    PostgreSQL 15 server, in one transaction committed only when its size and SHA-256 are the manifest's; then every
    table's rows compared with the manifest's fingerprint"
"$pg_bin/psql" -qX -d postgres -c "CREATE DATABASE shop_restored"
export PG_RESTORE_PATH=$(readlink -f "$(dirname "$PG_DUMP_PATH")")/pg_restore
show "$lifeboat" restore --bucket lifeboat-dumps --prefix pg --database shop --to "dbname=shop_restored"
for db in shop shop_restored; do
  echo "$db: $("$pg_bin/psql" -qXtA -d "$db" -c "SELECT count(*) || ' orders, checksum ' || md5(string_agg(o::text, ',' ORDER BY id)) FROM sales.orders o")"
done

step "restore-drill, one drill of each kind: the dump restored into a throwaway PostgreSQL 18 the function starts
    itself and checked row by row; each RDS snapshot restored into a temporary instance (Aurora: a cluster and its
    instance) in the drills' own subnet group, checked against the snapshot and deleted; each EBS snapshot restored
    to a volume and deleted; each AMI checked whole. Timed against the RTO, recorded on the backup"
.venv/bin/python scripts/estate.py drill-setup >/dev/null
show "$lifeboat" run restore-drill --event .state/restore-drill.demo.json | summary
.venv/bin/python scripts/estate.py dumps | grep -E "drill|^key" || true

step "lifeboat status again: the last proven restore of each resource (a drill that passed within 35 days, where
    the check asks for one)"
show "$lifeboat" status --event events/freshness.demo.json || echo "(exit status $?: the EBS backups are still stale)"

step "Done. The stand-ins keep running for you to explore (make down stops them):"
scripts/stack.sh env
echo "export LIFEBOAT_SNS_TOPIC_ARN=$LIFEBOAT_SNS_TOPIC_ARN"
