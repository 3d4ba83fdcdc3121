#!/usr/bin/env bash
# pg-dump's container image, which its ECS Fargate task runs: `lifeboat run
# pg-dump` built from scratch, without a Docker engine (buildah, with storage
# of its own under a temporary directory).
#
#   scripts/image.sh build   target/image/lifeboat-pg-dump.tar, an OCI archive
#   scripts/image.sh push    that archive to pg-dump's ECR repository (the
#                            Terraform output pg_dump_task_repository_url, or
#                            IMAGE_REPOSITORY), tagged by its own digest, and
#                            prints the digest for pg_dump.task.image_digest
#   scripts/image.sh unpack DIR
#                            the archive unpacked as a runtime unpacks it:
#                            DIR/rootfs and DIR/config.json (the image's config)
#   scripts/image.sh run DIR [NAME=value ...] -- ARGS...
#                            its entrypoint with ARGS, as a container runtime
#                            would run it, without one: in a chroot (as root),
#                            with only its own environment and the pairs given
#
# What the image holds, and nothing else (no shell, no package manager):
#   /lifeboat                       the entrypoint (the operator command)
#   /opt/pgsql/bin/pg_dump          the layer's pg_dump 18 (scripts/pg-layer.sh),
#   /opt/pgsql/lib/                 with the layer's libraries it loads,
#   /opt/pgsql/ca-bundle.pem        and the databases' CA bundle if the layer has one;
#   /lib64, /lib/x86_64-linux-gnu/  the dynamic loader and the libraries from glibc
#                                   (and libgcc_s) that these two programs load,
#                                   from this machine;
#   /etc/ssl/certs/ca-certificates.crt  the roots that the AWS endpoints' TLS is
#                                   checked against (Debian's ca-certificates);
#   /etc/passwd, /etc/group         the one user it runs as, 65532, at home in /tmp;
#   /tmp                            where the task mounts its ephemeral storage.
#
# Settings (environment):
#   IMAGE_BINARY   the `lifeboat` to put in (default: the release build that
#                  `cargo lambda build --release -p lifeboat-cli` makes, built
#                  here); a copy is stripped of its debug information
#   IMAGE_OUT      where the archive goes (default target/image/lifeboat-pg-dump.tar)
#   IMAGE_LAYER    the layer zip whose pg_dump goes in (default
#                  target/lambda/pg-dump-layer.zip, built here if missing)
#   IMAGE_REPOSITORY  where push pushes (default: the Terraform output)
#   IMAGE_PUSH_TLS_VERIFY  false for a registry without TLS (tests' local one)
# The archive is reproducible for the same inputs: fixed times, one layer.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
# cargo-lambda and zig, as make setup installs them (the Makefile's PATH too).
export PATH=$PWD/.venv/bin:$PATH

OUT=${IMAGE_OUT:-target/image/lifeboat-pg-dump.tar}
LAYER=${IMAGE_LAYER:-target/lambda/pg-dump-layer.zip}
NAME=lifeboat-pg-dump
UID_GID=65532
ROOTS=/etc/ssl/certs/ca-certificates.crt

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "scripts/image.sh: $*" >&2; exit 1; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool is missing: run make setup"
  done
}

# Copies each library `ldd` resolves for `file` (with LD_LIBRARY_PATH=`libs`)
# into the image: the layer's own beside pg_dump, any other (glibc's) into
# /lib/x86_64-linux-gnu; and the dynamic loader into /lib64.
libraries_of() {
  local file=$1 libs=$2 root=$3 soname arrow path
  while read -r soname arrow path _; do
    if [ "$arrow" != "=>" ]; then
      # The loader's line: "/lib64/ld-linux-x86-64.so.2 (0x…)".
      case "$soname" in
        /*) mkdir -p "$root$(dirname "$soname")"; cp -L "$soname" "$root$soname" ;;
      esac
      continue
    fi
    [ "$path" != "not" ] || die "$(basename "$file") needs $soname, which is not on this machine or in the layer"
    case "$path" in
      "$libs"/*) cp -L "$path" "$root/opt/pgsql/lib/$soname" ;;
      *) cp -L "$path" "$root/lib/x86_64-linux-gnu/$soname" ;;
    esac
  done < <(env -i LD_LIBRARY_PATH="$libs" ldd "$file")
}

build() {
  need buildah ldd strip unzip
  [ -f "$ROOTS" ] || die "no $ROOTS (Debian's ca-certificates): run make setup"
  # glibc's own run-time loads (NSS: users, hosts) are built into libc from
  # 2.34 on; an older one would need modules that ldd does not list.
  local glibc; glibc=$(ldd --version | awk 'NR == 1 {print $NF}')
  [ "$(printf '%s\n2.34\n' "$glibc" | sort -V | head -n 1)" = 2.34 ] ||
    die "this machine's glibc is $glibc: the image takes glibc from it and needs 2.34 or later"
  if [ ! -f "$LAYER" ]; then
    [ -z "${IMAGE_LAYER:-}" ] || die "IMAGE_LAYER=$LAYER: no such file"
    scripts/pg-layer.sh build
  fi
  local binary=${IMAGE_BINARY:-}
  if [ -z "$binary" ]; then
    say "lifeboat, release build for x86_64 (cargo lambda build --release -p lifeboat-cli)"
    cargo lambda build --release -p lifeboat-cli
    binary=target/lambda/lifeboat/bootstrap
  fi
  [ -x "$binary" ] || die "IMAGE_BINARY=$binary is not an executable file"

  local work; work=$(mktemp -d)
  # buildah's vfs storage holds files owned by other users: removed as it was made.
  trap 'rm -rf "$work"' RETURN
  local root=$work/root layer=$work/layer
  mkdir -p "$root/opt/pgsql/bin" "$root/opt/pgsql/lib" "$root/lib/x86_64-linux-gnu" \
    "$root/etc/ssl/certs" "$root/tmp"
  unzip -q "$LAYER" 'pgsql/*' -d "$layer"
  [ -x "$layer/pgsql/bin/pg_dump" ] || die "$LAYER has no pgsql/bin/pg_dump"

  strip --strip-debug -o "$root/lifeboat" "$binary"
  cp "$layer/pgsql/bin/pg_dump" "$root/opt/pgsql/bin/"
  [ ! -f "$layer/pgsql/ca-bundle.pem" ] || cp "$layer/pgsql/ca-bundle.pem" "$root/opt/pgsql/"
  libraries_of "$root/lifeboat" "$layer/pgsql/lib" "$root"
  libraries_of "$layer/pgsql/bin/pg_dump" "$layer/pgsql/lib" "$root"
  cp -L "$ROOTS" "$root$ROOTS"
  printf 'lifeboat:x:%s:%s:lifeboat:/tmp:/nonexistent\n' "$UID_GID" "$UID_GID" > "$root/etc/passwd"
  printf 'lifeboat:x:%s:\n' "$UID_GID" > "$root/etc/group"
  find "$root" -type d -exec chmod 755 {} +
  find "$root" -type f -exec chmod 644 {} +
  chmod 755 "$root/lifeboat" "$root/opt/pgsql/bin/pg_dump" "$root"/lib*/ld-linux-x86-64.so.2
  chmod 1777 "$root/tmp"
  # Both programs start from the image alone: nothing they load is left outside it.
  local program
  for program in /lifeboat /opt/pgsql/bin/pg_dump; do
    if env -i "$root/lib64/ld-linux-x86-64.so.2" --library-path "$root/lib/x86_64-linux-gnu" --list "$root$program" | grep -q 'not found'; then
      die "$program needs a library that is not in the image"
    fi
  done

  local buildah=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
  local container version revision
  container=$("${buildah[@]}" from scratch)
  "${buildah[@]}" copy --quiet "$container" "$root/" / >/dev/null
  version=$("$root/lib64/ld-linux-x86-64.so.2" --library-path "$root/lib/x86_64-linux-gnu" "$root/lifeboat" --version | awk '{print $NF}')
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  "${buildah[@]}" config \
    --entrypoint '["/lifeboat"]' --cmd '["--help"]' \
    --user "$UID_GID:$UID_GID" --workingdir /tmp --volume /tmp \
    --env PATH=/opt/pgsql/bin --env HOME=/tmp --env SSL_CERT_FILE="$ROOTS" \
    --label org.opencontainers.image.title="$NAME" \
    --label org.opencontainers.image.description="Lifeboat's pg-dump, run as its ECS Fargate task: lifeboat run pg-dump" \
    --label org.opencontainers.image.version="$version" \
    --label org.opencontainers.image.revision="$revision" \
    --label org.opencontainers.image.licenses=Apache-2.0 \
    --created-by "scripts/image.sh" --os linux --arch amd64 "$container"
  mkdir -p "$(dirname "$OUT")"
  rm -f "$OUT"
  "${buildah[@]}" commit --quiet --timestamp 0 --format oci --rm "$container" "oci-archive:$OUT:$NAME" >/dev/null
  "${buildah[@]}" rmi --all --force >/dev/null 2>&1 || true
  local digest
  digest=$(skopeo inspect --format '{{.Digest}}' "oci-archive:$OUT")
  echo "$OUT: $NAME $version, $(du -h "$OUT" | cut -f1), $(cd "$root" && find . -type f | wc -l) files, digest $digest"
}

push() {
  need skopeo
  [ -f "$OUT" ] || die "$OUT is missing: run make image first"
  local repository=${IMAGE_REPOSITORY:-}
  if [ -z "$repository" ]; then
    repository=$(terraform -chdir=terraform output -raw pg_dump_task_repository_url 2>/dev/null) ||
      die "no repository: set IMAGE_REPOSITORY, or apply Terraform with pg_dump.task = {} first (output pg_dump_task_repository_url)"
  fi
  local registry=${repository%%/*} digest tag password
  digest=$(skopeo inspect --format '{{.Digest}}' "oci-archive:$OUT")
  # ECR's tags are immutable here: the tag is the digest's own, so a second
  # push of the same image is the same tag on the same image.
  tag=sha256-${digest#sha256:}
  # ECR's registry login: a 12-hour token from GetAuthorizationToken, with
  # the standard SDK environment's credentials (boto3 from make setup's .venv),
  # in the registry's region (else, for another host name, the environment's).
  password=$(.venv/bin/python - "$registry" <<'PY'
import base64, os, re, sys, boto3
ecr = re.match(r"^[0-9]{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$", sys.argv[1])
client = boto3.client("ecr", region_name=ecr.group(1) if ecr else os.environ.get("AWS_REGION"))
data = client.get_authorization_token()["authorizationData"][0]
print(base64.b64decode(data["authorizationToken"]).decode().split(":", 1)[1])
PY
  ) || die "could not get ECR's login for $registry (GetAuthorizationToken)"
  # The login goes in an auth file of this run's, never on a command line.
  local auth; auth=$(mktemp)
  trap 'rm -f "$auth"' RETURN
  printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$registry" "$(printf 'AWS:%s' "$password" | base64 -w0)" > "$auth"
  # IMAGE_PUSH_TLS_VERIFY=false only for a registry without TLS (a local one).
  local tls=${IMAGE_PUSH_TLS_VERIFY:-true}
  # An immutable tag cannot be pushed twice, even with the same image: an
  # image already there by this digest is left as it is.
  if skopeo inspect --authfile "$auth" --tls-verify="$tls" --format '{{.Digest}}' \
       "docker://$repository@$digest" >/dev/null 2>&1; then
    echo "already there: $repository@$digest"
  else
    say "pushing $OUT to $repository:$tag"
    skopeo copy --quiet --preserve-digests --authfile "$auth" --dest-tls-verify="$tls" \
      "oci-archive:$OUT" "docker://$repository:$tag"
    echo "pushed $repository@$digest"
  fi
  echo "set in your tfvars: pg_dump = { …, task = { image_digest = \"$digest\" } }"
}


# What a container runtime sets up before it runs the entrypoint, and no
# more: $1 the root file system, $2 the image's user, then the command.
# Absolute paths: the environment is the image's, its PATH the image's.
AS_A_RUNTIME='
root=$1 user=$2; shift 2
/usr/bin/mkdir -p "$root/dev" "$root/proc"
# The task definition'"'"'s readonlyRootFilesystem: the root read-only, its mounts not.
/usr/bin/mount --bind "$root" "$root"
/usr/bin/mount -t tmpfs -o mode=755 tmpfs "$root/dev"
for device in null zero random urandom; do
  /usr/bin/touch "$root/dev/$device"
  /usr/bin/mount --bind "/dev/$device" "$root/dev/$device"
done
/usr/bin/mount -t proc proc "$root/proc"
/usr/bin/mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
/usr/bin/mount -o remount,bind,ro "$root"
exec /usr/sbin/chroot --userspec="$user" "$root" "$@"
'

# Unpacks the archive into `dir` as a runtime would: dir/rootfs, the root
# file system (umoci), and dir/config.json, the image's config (its
# entrypoint, environment and user).
unpack() {
  local dir=$1
  need skopeo umoci python3
  [ -f "$OUT" ] || die "$OUT is missing: run make image first"
  mkdir -p "$dir"
  skopeo copy --quiet "oci-archive:$OUT" "oci:$dir/layout:$NAME"
  umoci unpack --image "$dir/layout:$NAME" "$dir/bundle" >/dev/null
  mv "$dir/bundle/rootfs" "$dir/rootfs"
  skopeo inspect --config "oci:$dir/layout:$NAME" | python3 -c 'import json, sys; json.dump(json.load(sys.stdin)["config"], sys.stdout, indent=2)' > "$dir/config.json"
  rm -rf "$dir/layout" "$dir/bundle"
}

# Runs the unpacked image in `dir` as a container runtime would, without one:
# its entrypoint with `args`, as its user, in a chroot of its root file system,
# in mount and PID namespaces of its own with only a runtime's mounts (/dev's
# null, zero, random and urandom, /proc, a tmpfs at /tmp for the task's
# ephemeral storage), and with only its own environment and the `NAME=value`
# pairs given (the task definition's, ECS's), nothing of this machine's.
# The network is this machine's (a task's is its VPC's). Needs root.
run() {
  local dir=$1; shift
  local pairs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do pairs+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  [ "$(id -u)" -eq 0 ] || die "running the image in a chroot needs root"
  [ -d "$dir/rootfs" ] && [ -f "$dir/config.json" ] || die "$dir holds no unpacked image: scripts/image.sh unpack $dir"
  local user entrypoint=() environment=()
  user=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("User") or "0:0")' "$dir/config.json")
  mapfile -t entrypoint < <(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1])).get("Entrypoint") or []))' "$dir/config.json")
  mapfile -t environment < <(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1])).get("Env") or []))' "$dir/config.json")
  exec /usr/bin/env -i "${environment[@]}" "${pairs[@]}" \
    /usr/bin/unshare --mount --propagation private --pid --fork \
    /bin/bash -euc "$AS_A_RUNTIME" runtime "$dir/rootfs" "$user" "${entrypoint[@]}" "$@"
}

case "${1:-}" in
  build) build ;;
  push) push ;;
  unpack) [ $# -eq 2 ] || die "usage: $0 unpack DIR"; unpack "$2" ;;
  run) [ $# -ge 2 ] || die "usage: $0 run DIR [NAME=value ...] -- ARGS..."; shift; run "$@" ;;
  *) echo "usage: $0 build|push|unpack DIR|run DIR [NAME=value ...] -- ARGS..." >&2; exit 2 ;;
esac
