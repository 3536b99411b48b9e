#!/usr/bin/env bash
# Build (once) a minimal local Docker image that runs this machine's redis-server.
#
# Usage:
#   IMAGE=$(bash scripts/docker-redis-image.sh [TAG] | tail -1)
#
# TAG defaults to $CACHECHECK_IMAGE, then to cachecheck/redis:local.
# No image registry is needed: the image is made with `docker import` from the
# host's redis-server binary plus the shared libraries `ldd` reports for it.
#
# Steps (each is skipped when already done, so the script is idempotent):
#   1. make sure a Docker engine answers `docker info`; if not, install Debian's
#      docker.io when dockerd is missing and start dockerd in the background
#      (log: $DOCKERD_LOG, extra flags: $DOCKERD_FLAGS);
#   2. build the image unless it exists (set CACHECHECK_REBUILD=1 to force);
#   3. print the tag as the last line of stdout. Everything else goes to stderr.
#
# Run the image, e.g.:
#   docker run -d --rm -p 127.0.0.1::6379 "$IMAGE" \
#     /usr/bin/redis-server --bind 0.0.0.0 --protected-mode no --save '' --appendonly no
set -euo pipefail

# Keep the real stdout on fd 3 for the final tag; send everything else to stderr.
exec 3>&1 1>&2

IMAGE="${1:-${CACHECHECK_IMAGE:-cachecheck/redis:local}}"
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
DOCKERD_TIMEOUT="${DOCKERD_TIMEOUT:-60}"
# Extra dockerd flags, word-split on purpose (e.g. DOCKERD_FLAGS="--iptables=false").
DOCKERD_FLAGS="${DOCKERD_FLAGS:-}"

log() { printf '[docker-redis-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

apt_install() {
    log "installing Debian package(s): $*"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

docker_ok() {
    command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

find_dockerd() {
    command -v dockerd 2>/dev/null && return 0
    local p
    for p in /usr/sbin/dockerd /usr/bin/dockerd /usr/local/bin/dockerd; do
        [ -x "$p" ] && { echo "$p"; return 0; }
    done
    return 1
}

# Start dockerd detached from this script: own session, stdin from /dev/null,
# stdout/stderr to the log and fd 3 closed, so that a caller reading our stdout
# through a pipe (`| tail -1`) does not wait for the daemon to exit.
# Returns 0 once `docker info` works; 1 if dockerd exits or the wait times out
# (a daemon that never answered is stopped again).
start_dockerd() {
    local cmd=(setsid nohup "$@")
    [ "$(id -u)" -eq 0 ] || cmd=(sudo "${cmd[@]}")
    log "starting: setsid nohup $* >> $DOCKERD_LOG 2>&1 &"
    "${cmd[@]}" </dev/null >>"$DOCKERD_LOG" 2>&1 3>&- &
    local pid=$! i
    for ((i = 0; i < DOCKERD_TIMEOUT * 4; i++)); do
        docker_ok && return 0
        if [ ! -e "/proc/$pid" ] || grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            log "dockerd exited before answering"
            return 1
        fi
        sleep 0.25
    done
    log "dockerd (pid $pid) did not answer within ${DOCKERD_TIMEOUT}s; stopping it"
    as_root kill "$pid" 2>/dev/null || true
    return 1
}

ensure_docker() {
    if docker_ok; then
        log "docker engine is up"
        return 0
    fi

    local dockerd
    if ! dockerd="$(find_dockerd)"; then
        apt_install docker.io
        dockerd="$(find_dockerd)" || die "dockerd still missing after installing docker.io"
    fi
    command -v docker >/dev/null 2>&1 || apt_install docker.io

    # A daemon may be starting already (e.g. a concurrent run of this script).
    if pgrep -x dockerd >/dev/null 2>&1; then
        log "dockerd is running but not answering yet; waiting"
        local i
        for ((i = 0; i < DOCKERD_TIMEOUT; i++)); do
            docker_ok && return 0
            sleep 1
        done
        tail -n 40 "$DOCKERD_LOG" >&2 || true
        die "running dockerd did not answer within ${DOCKERD_TIMEOUT}s"
    fi

    # A stale pid file left by a killed daemon makes dockerd refuse to start.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        as_root rm -f /var/run/docker.pid
    fi

    # shellcheck disable=SC2086  # DOCKERD_FLAGS is a word list on purpose
    if start_dockerd "$dockerd" $DOCKERD_FLAGS; then
        log "docker engine is up"
        return 0
    fi

    log "last lines of $DOCKERD_LOG:"
    tail -n 40 "$DOCKERD_LOG" >&2 || true
    die "could not start the docker engine (try DOCKERD_FLAGS='--iptables=false --ip6tables=false')"
}

build_image() {
    local redis
    redis="$(command -v redis-server 2>/dev/null || true)"
    if [ -z "$redis" ]; then
        apt_install redis-server
        redis="$(command -v redis-server)" || die "redis-server missing after install"
    fi
    # Debian's /usr/bin/redis-server is a symlink to redis-check-rdb; redis picks
    # its mode from argv[0], so the image gets the real file as /usr/bin/redis-server.
    local redis_real
    redis_real="$(readlink -f "$redis")"
    log "using $redis ($redis_real): $("$redis" --version)"

    local tmp
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/cachecheck-redis-image.XXXXXX")"
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'" EXIT
    local root="$tmp/rootfs"
    mkdir -p "$root/usr/bin" "$root/tmp" "$root/data" "$root/etc"
    chmod 1777 "$root/tmp"
    cp -L "$redis_real" "$root/usr/bin/redis-server"

    # Every file ldd names (libraries and the dynamic loader), copied with its
    # full path and symlinks dereferenced. linux-vdso has no file and is skipped.
    local lib n=0
    while read -r lib; do
        [ -e "$lib" ] || die "ldd listed $lib but it does not exist"
        cp -L --parents "$lib" "$root/"
        n=$((n + 1))
    done < <(ldd "$redis_real" | grep -o '/[^ ]*' | sort -u)
    [ "$n" -gt 0 ] || die "ldd listed no libraries for $redis_real (static binary?)"
    log "copied $n libraries"

    # The dynamic loader's default search path covers /lib/x86_64-linux-gnu, but
    # also point it at every copied library folder in case the layout differs.
    ldd "$redis_real" | grep -o '/[^ ]*' | xargs -n1 dirname | sort -u >"$root/etc/ld.so.conf"
    if command -v ldconfig >/dev/null 2>&1; then
        ldconfig -r "$root" 2>/dev/null || log "ldconfig -r failed (harmless)"
    fi

    # Minimal user database, so anything looking up uid 0 / nobody finds it.
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

    # Sanity check outside docker: run the copied binary with only the copied tree.
    local loader
    loader="$(ldd "$redis_real" | grep -o '/[^ ]*ld-linux[^ ]*' | head -1)"
    if [ -n "$loader" ]; then
        "$root$loader" --library-path "$(sed "s|^|$root|" "$root/etc/ld.so.conf" | paste -sd:)" \
            "$root/usr/bin/redis-server" --version >/dev/null \
            || die "copied redis-server does not run with the copied libraries"
    fi

    tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$tmp/rootfs.tar" .
    log "rootfs tarball: $(du -h "$tmp/rootfs.tar" | cut -f1)"

    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'WORKDIR /data' \
        --change 'EXPOSE 6379' \
        --change 'CMD ["/usr/bin/redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]' \
        --message "redis-server from host: $("$redis" --version)" \
        "$tmp/rootfs.tar" "$IMAGE" >&2

    rm -rf "$tmp"
    trap - EXIT
}

ensure_docker

if [ "${CACHECHECK_REBUILD:-0}" != "1" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "image $IMAGE already exists"
else
    log "building image $IMAGE"
    build_image
    log "built image $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
fi

printf '%s\n' "$IMAGE" >&3
