#!/bin/sh
# The entrypoint of Ambit's images: the first argument names the daemon, the rest are its flags
# (what `ambit install` renders: args: [node-agent, --node=..., ...]; a waypoint: args: [waypoint]).
set -e
daemon="${1:-}"
[ $# -gt 0 ] && shift
case "$daemon" in
  control-plane) exec node /opt/ambit/dist/control-plane/main.js "$@" ;;
  node-agent) exec node /opt/ambit/dist/node-agent/main.js "$@" ;;
  node-proxy) exec node /opt/ambit/dist/node-proxy/main.js "$@" ;;
  waypoint) exec node /opt/ambit/dist/l7-waypoint/main.js "$@" ;;
  # The last container of the node cleanup DaemonSet: its pod is Ready once the cleanup has run.
  idle) exec sleep infinity ;;
  *)
    echo "usage: <control-plane|node-agent|node-proxy|waypoint|idle> [flags...] (got '$daemon')" >&2
    exit 2
    ;;
esac
