#!/usr/bin/env bash
# Makes this machine able to run Chorus's compose stack: a Docker engine, a
# compose command, and the base images (built locally where no registry is
# reachable: deploy/base-images/build.sh).
# On Debian as root it installs docker.io, docker-compose and debootstrap and
# starts dockerd when none is running; elsewhere it only checks and says what
# is missing. Exit 0 when `docker info` answers and the base images exist.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
log=/var/log/chorus-dockerd.log

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  if ! can_install; then
    echo "docker-setup: missing ${missing[*]} (apt-get install them as root)" >&2
    exit 1
  fi
  echo "docker-setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "docker-setup: no Docker engine answers and only root may start dockerd" >&2
    exit 1
  fi
  echo "docker-setup: starting dockerd (log: $log)" >&2
  nohup dockerd >"$log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "docker-setup: dockerd did not come up in 60 s; the end of $log:" >&2
    tail -20 "$log" >&2
    exit 1
  fi
fi

"$root/deploy/base-images/build.sh"
