# Lifeboat's entry points. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export TF_CLI_CONFIG_FILE := $(CURDIR)/.state/terraformrc

# The Lambda functions (crate and binary names are what cargo lambda builds).
FUNCTIONS := rds-snapshot ebs-snapshot ami-backup pg-dump prune freshness restore-drill

.PHONY: setup build layer image push up down test lint tf-check tf-static iam-policies iam-lint iam-simulate iam-check demo reliability

## setup: install everything the project needs (idempotent)
setup:
	@scripts/setup.sh

## build: release Lambda zips in target/lambda/<function>/bootstrap.zip, and pg_dump's layer
## (CA_BUNDLE=path/to/global-bundle.pem puts the databases' CA bundle in the layer, for sslmode verify-full)
build: setup layer
	cargo lambda build --release --output-format zip $(addprefix -p ,$(FUNCTIONS))
	@ls -l $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap.zip) target/lambda/pg-dump-layer.zip

## layer: target/lambda/pg-dump-layer.zip (PostgreSQL 18: pg_dump, pg_restore, psql, the drill's
## server and their libraries), checked: glibc <= 2.34 for every ELF file, every library in the
## layer, and (as root) a server round trip from it as Lambda's uid without a passwd entry
layer: setup
	@CA_BUNDLE="$(CA_BUNDLE)" scripts/pg-layer.sh build
	@scripts/pg-layer.sh check

## image: pg-dump's container image for its ECS Fargate task, target/image/lifeboat-pg-dump.tar
## (OCI), built from scratch with buildah (no Docker engine): lifeboat (release), the layer's
## pg_dump and their libraries, the TLS roots; no shell (scripts/image.sh)
image: setup layer
	@scripts/image.sh build

## push: that image to pg-dump's ECR repository (Terraform's pg_dump_task_repository_url, or
## IMAGE_REPOSITORY), tagged by its digest; prints the digest for pg_dump.task.image_digest
push: setup
	@scripts/image.sh push

## up / down: start / stop the local stand-ins (moto server, PostgreSQL) on 127.0.0.1
up: setup
	@scripts/stack.sh up
down:
	@scripts/stack.sh down

## lint: formatting, clippy and the API docs (cargo doc), warnings are errors
lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	@# --lib --bins --examples: the same dependency features as clippy's (the examples turn on the
	@# SDKs' test-util), so the SDK crates are checked once, not again for the docs
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --lib --bins --examples --quiet

## tf-check: Terraform formatting, offline init + validate, checkov (0 failed; each skip justified
## beside it), and parliament on every policy Terraform renders (0 findings; each suppression
## justified in scripts/parliament-suppressions.yaml), and restore-drill's role through a real IAM
## policy evaluator (iam-simulate)
# The example is a tfvars for the root module: tests/tests/integration/terraform.rs plans,
# applies and destroys it against the emulator, and checkov reads it here.
tf-check: tf-static iam-lint iam-simulate

tf-static: setup
	terraform fmt -check -recursive terraform/
	terraform -chdir=terraform init -backend=false -input=false -no-color >/dev/null
	terraform -chdir=terraform validate -no-color
	checkov --directory terraform --framework terraform --skip-download --quiet --compact \
	  --var-file terraform/examples/seeds-policy/terraform.tfvars

# The policies reference ARNs made in the same apply, so a plan cannot render
# them: the terraform test writes them after its apply against the emulator.
# Rendered again only when terraform/ is newer than the last render.
POLICIES_JSON := target/aws-policies.json
$(POLICIES_JSON): $(shell find terraform -name .terraform -prune -o \( -name '*.tf' -o -name '*.tfvars' \) -print) | setup
	cargo test -p lifeboat-tests --test integration terraform::
iam-policies: $(POLICIES_JSON)

## iam-lint: parliament on every rendered policy (renders them first if terraform/ changed)
iam-lint: setup iam-policies
	.venv/bin/python scripts/iam_grants.py lint

## iam-simulate: restore-drill's rendered role refuses deletes of untagged instances, clusters and
## volumes and creates without lifeboat:drill, allows them on a drill's own (npm's iam-simulate)
iam-simulate: setup iam-policies
	.venv/bin/python scripts/iam_grants.py simulate

## iam-check: every AWS call the emulator tests recorded is granted by its function's rendered
## policy (SAR resource types and condition keys), grants no call uses are listed; and its self-test
iam-check: setup
	.venv/bin/python scripts/iam_grants.py self-test
	.venv/bin/python scripts/iam_grants.py check

## test: every check (unit, SDK-level mocks, emulator integration, Terraform, the IAM guards)
# The recorded calls and the rendered policies are cleared first, so the
# guards after the run read this run's, never a stale one's.
test: setup lint layer tf-static
	rm -rf target/aws-calls $(POLICIES_JSON)
	cargo test --workspace
	.venv/bin/python scripts/iam_grants.py all

## reliability: the reliability scenarios at full size, as in docs/reliability.md (about half an hour)
reliability: setup
	cargo run -p lifeboat-tests --example reliability -- --seed 7

## demo: a full backup cycle against the local stand-ins, shown step by step
demo: setup
	@scripts/demo.sh
