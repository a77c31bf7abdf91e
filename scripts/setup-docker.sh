#!/usr/bin/env bash
# Make this machine ready for bosun and its tests: Debian packages, a running
# dockerd, and a single-node swarm. Idempotent; safe to run again.
#
# Installs (apt, only what is missing): docker.io (dockerd), busybox-static
# (test images), iptables, iproute2, util-linux (nsenter/unshare), git, curl,
# keepalived (its `--config-test` checks the rendered VipPolicy files; its
# package is the test image of tests/failover.rs) and ping (the VIP answers).
# Starts dockerd in the background when no daemon answers on
# /var/run/docker.sock (log: /var/log/bosun-dockerd.log), then runs
# `docker swarm init` when this node is not in a swarm yet.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: must run as root (dockerd, network namespaces); try: sudo $0" >&2
  exit 2
fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx sh || need+=(busybox-static)
command -v iptables >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
command -v keepalived >/dev/null || need+=(keepalived)
command -v ping >/dev/null || need+=(iputils-ping)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# docker.io ships its own CLI; a newer one in /usr/local/bin is fine too.
command -v docker >/dev/null || { log "no docker CLI found after install"; exit 2; }

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/bosun-dockerd.log)"
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker
  else
    (setsid nohup dockerd >/var/log/bosun-dockerd.log 2>&1 &)
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up:"; tail -20 /var/log/bosun-dockerd.log >&2; exit 2; }
fi

state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" != "active" ]; then
  log "initialising a single-node swarm"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi
log "ready: dockerd $(docker version --format '{{.Server.Version}}'), swarm active"
