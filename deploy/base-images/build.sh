#!/usr/bin/env bash
# Makes, on a machine that cannot pull from a registry, the base images that
# Chorus's Dockerfiles and compose.yaml name, under the same tags:
#   debian:bookworm-slim        debootstrap --variant=minbase
#   python:3.11-slim-bookworm   the above plus Debian's python3 (3.11) and venv
#   postgres:15-bookworm        Debian's PostgreSQL 15 behind an entrypoint that
#                               takes the official image's POSTGRES_* variables
#   nginx:1.22-bookworm         Debian's nginx, configured like the official image
# An image that already exists is kept (pass --rebuild to make them anew).
# Where a registry is reachable none of this is needed: docker pulls the real ones.
#
# The images trust this host's CA bundle (/etc/ssl/certs/ca-certificates.crt),
# so that apt and pip inside later builds get through a TLS-inspecting egress
# proxy, and set PIP_CERT to the system bundle (pip otherwise uses certifi's).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
host_ca=/etc/ssl/certs/ca-certificates.crt
rebuild=false
[ "${1:-}" = "--rebuild" ] && rebuild=true

have() { ! $rebuild && docker image inspect "$1" >/dev/null 2>&1; }

# debootstrap a root filesystem with extra packages, add the host CA bundle,
# and import it as an image
import_rootfs() {  # tag, comma-separated extra packages
  local tag="$1" include="$2" root
  root="$(mktemp -d /tmp/chorus-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' RETURN
  echo "base-images: debootstrap $tag (a few minutes)" >&2
  debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" >/dev/null
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp "$host_ca" "$root/usr/local/share/ca-certificates/host-bundle.crt"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PIP_CERT=$host_ca" \
    --change 'CMD ["bash"]' - "$tag" >/dev/null
}

have debian:bookworm-slim || import_rootfs debian:bookworm-slim ca-certificates
have python:3.11-slim-bookworm || import_rootfs python:3.11-slim-bookworm ca-certificates,python3,python3-venv,python-is-python3
for name in postgres:15-bookworm nginx:1.22-bookworm; do
  if ! have "$name"; then
    echo "base-images: building $name" >&2
    docker build -q -t "$name" "$here/${name%%:*}" >/dev/null
  fi
done
echo "base-images: ready" >&2
