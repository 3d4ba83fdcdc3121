#!/usr/bin/env bash
# Installs everything Lifeboat's builds, tests and demo need on a fresh machine
# (Debian with a Rust toolchain and Python 3). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Python tools, in the project's own virtualenv; reinstalled when the list changes.
stamp=.venv/.requirements
if [ ! -x .venv/bin/python ] || ! cmp -s tools/requirements.txt "$stamp"; then
  say "Python tools into .venv (moto, cargo-lambda, zig, checkov)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
  cp tools/requirements.txt "$stamp"
fi

# PostgreSQL 15 server binaries (tests and the demo run real servers on 127.0.0.1).
if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
  say "PostgreSQL 15 server from Debian"
  as_root=""; [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq postgresql-15 >/dev/null
fi

# Rust components the lint target uses.
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

# Terraform runs offline from the machine's provider mirror.
if [ ! -f .state/terraformrc ]; then
  mkdir -p .state
  cat > .state/terraformrc <<'RC'
provider_installation {
  filesystem_mirror {
    path    = "/opt/tf-plugins"
    include = ["registry.terraform.io/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
RC
fi
say "setup complete"
