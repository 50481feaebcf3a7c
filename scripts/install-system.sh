#!/usr/bin/env bash
# Install the system packages shoal's demo, tests and benches use (Debian 12, as root).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system.sh: run as root (apt-get, FUSE and mounts need it)" >&2
  exit 1
fi
PACKAGES=(
  docker-registry skopeo umoci        # the real registry and image tools the tests compare against
  tar gzip pigz attr                  # GNU tar/gzip baselines, getfattr for xattr checks
  busybox-static                      # a tiny static userland for sample images
  debootstrap                         # the realistic Debian image of the lazy-start bench, the clean root of the release test
  systemd                             # systemd-analyze verify of the release's units
  libfuse2 fuse3                      # FUSE for lazy mounts
  containerd runc                     # containers from lazy mounts
  podman                              # an engine pulling whole images through the mirror
  iproute2                            # network namespaces and tc for benches
  chromium fonts-liberation           # headless browser (and fonts for its screenshots) for the status page tests
  ca-certificates
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian starts these services on install; shoal's tests start their own instances.
for svc in docker-registry containerd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
