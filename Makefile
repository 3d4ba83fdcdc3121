# Lifeboat's entry points. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export TF_CLI_CONFIG_FILE := $(CURDIR)/.state/terraformrc

# The Lambda functions (crate and binary names are what cargo lambda builds).
FUNCTIONS := rds-snapshot ebs-snapshot ami-backup pg-dump prune freshness

.PHONY: setup build layer up down test lint tf-check demo reliability

## setup: install everything the project needs (idempotent)
setup:
	@scripts/setup.sh

## build: release Lambda zips in target/lambda/<function>/bootstrap.zip, and pg_dump's layer
## (CA_BUNDLE=path/to/global-bundle.pem puts the databases' CA bundle in the layer, for sslmode verify-full)
build: setup layer
	cargo lambda build --release --output-format zip $(addprefix -p ,$(FUNCTIONS))
	@ls -l $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap.zip) target/lambda/pg-dump-layer.zip

## layer: target/lambda/pg-dump-layer.zip (pg_dump 18 and its libraries), checked:
## glibc <= 2.34 for every ELF file, and pg_dump runs from it with only its own libraries
layer: setup
	@CA_BUNDLE="$(CA_BUNDLE)" scripts/pg-layer.sh build
	@scripts/pg-layer.sh check

## up / down: start / stop the local stand-ins (moto server, PostgreSQL) on 127.0.0.1
up: setup
	@scripts/stack.sh up
down:
	@scripts/stack.sh down

## lint: formatting, clippy and the API docs (cargo doc), warnings are errors
lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

## tf-check: Terraform formatting, offline init + validate, checkov (0 failed; each skip justified beside it)
# The example is a tfvars for the root module: tests/tests/terraform.rs plans,
# applies and destroys it against the emulator, and checkov reads it here.
tf-check: setup
	terraform fmt -check -recursive terraform/
	terraform -chdir=terraform init -backend=false -input=false -no-color >/dev/null
	terraform -chdir=terraform validate -no-color
	checkov --directory terraform --framework terraform --skip-download --quiet --compact \
	  --var-file terraform/examples/seeds-policy/terraform.tfvars

## test: every check (unit, SDK-level mocks, emulator integration, Terraform)
test: setup lint layer tf-check
	cargo test --workspace

## reliability: the reliability scenarios at full size, as in docs/reliability.md (about half an hour)
reliability: setup
	cargo run -p lifeboat-tests --example reliability -- --seed 7

## demo: a full backup cycle against the local stand-ins, shown step by step
demo: setup
	@scripts/demo.sh
