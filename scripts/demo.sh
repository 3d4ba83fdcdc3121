#!/usr/bin/env bash
# A full backup cycle against the local emulator, shown step by step.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1;34m### %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

step "Building the lifeboat command"
cargo build --quiet -p lifeboat-cli
lifeboat=target/debug/lifeboat

step "Starting the local stand-ins (moto server, PostgreSQL)"
scripts/stack.sh up
eval "$(scripts/stack.sh env)"
curl -fsS -X POST "$AWS_ENDPOINT_URL/moto-api/reset" >/dev/null   # a clean estate every time

step "Seeding a small estate: 3 RDS instances (2 tagged backup=nightly), 1 tagged Aurora cluster"
export LIFEBOAT_SNS_TOPIC_ARN=$(.venv/bin/python scripts/estate.py seed)
export DEMO_COPY_REGIONS=eu-west-1
echo "alert topic: $LIFEBOAT_SNS_TOPIC_ARN"

step "rds-snapshot: the nightly slot, copied to eu-west-1"
cat events/rds-snapshot.demo.json
show "$lifeboat" run rds-snapshot --event events/rds-snapshot.demo.json

step "The same slot again, as EventBridge Scheduler might deliver it twice: nothing new"
show "$lifeboat" run rds-snapshot --event events/rds-snapshot.demo.json | grep -E '"(reason|backup)"' | sort | uniq -c

step "Lifeboat's snapshots in the emulator (the untagged scratch-db has none)"
.venv/bin/python scripts/estate.py snapshots

step "A payload with a typo is refused before any AWS call"
echo '{"plan": "nightly", "selct": {"tags": {"backup": "nightly"}}}' > .state/typo.json
show "$lifeboat" run rds-snapshot --event .state/typo.json || echo "(exit status $?)"

step "A source that does not exist fails the run and sends one alert"
show "$lifeboat" run rds-snapshot --event events/rds-snapshot.missing.json >/dev/null || echo "(exit status $?)"
.venv/bin/python scripts/estate.py alerts

step "Done. The stand-ins keep running for you to explore (make down stops them):"
scripts/stack.sh env
echo "export LIFEBOAT_SNS_TOPIC_ARN=$LIFEBOAT_SNS_TOPIC_ARN"
