#!/bin/sh
# `cardano-node` in the test cluster's stand-in image (scripts/images.sh node): takes
# cardano-node's own `run` flags and runs the repository's node simulator (`forge-sim node`) in
# its place, so a pod spec written for the real node runs unchanged. Flags the simulator has no
# use for (--config, --topology, --host-addr) are accepted and named in the first log line;
# --port is listened on once consensus has started (after the replay), as cardano-node does.
# Environment: NODE_NAME (default: the host name, i.e. the pod name), NODE_REPLAY_MS (default 0),
# NODE_METRICS_PORT (default: none), NODE_TIMELINE (default: DATABASE_PATH/timeline.jsonl), and
# the realistic node's NODE_RELOAD_MS (N or A..B), NODE_HANDLER_DELAY_MS, NODE_STOP_GRACE_MS.
set -eu

die() { echo "cardano-node (simulator): $*" >&2; exit 2; }

[ "${1:-}" = "run" ] || die "only 'cardano-node run ...' is simulated, got '${1:-}'"
shift

config="" topology="" db="" socket="" kes="" vrf="" opcert="" host="" port="" nonprod=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="${2:?--config needs a value}"; shift 2 ;;
    --topology) topology="${2:?--topology needs a value}"; shift 2 ;;
    --database-path) db="${2:?--database-path needs a value}"; shift 2 ;;
    --socket-path) socket="${2:?--socket-path needs a value}"; shift 2 ;;
    --shelley-kes-key) kes="${2:?--shelley-kes-key needs a value}"; shift 2 ;;
    --shelley-vrf-key) vrf="${2:?--shelley-vrf-key needs a value}"; shift 2 ;;
    --shelley-operational-certificate) opcert="${2:?--shelley-operational-certificate needs a value}"; shift 2 ;;
    --host-addr) host="${2:?--host-addr needs a value}"; shift 2 ;;
    --port) port="${2:?--port needs a value}"; shift 2 ;;
    --start-as-non-producing-node) nonprod=1; shift ;;
    *) die "unknown flag $1" ;;
  esac
done
[ -n "$socket" ] || die "--socket-path is required"
[ -n "$db" ] || die "--database-path is required"
[ -n "$kes" ] && [ -n "$vrf" ] && [ -n "$opcert" ] \
  || die "--shelley-kes-key, --shelley-vrf-key and --shelley-operational-certificate are required by the simulator"

mkdir -p "$db" "$(dirname "$socket")"
echo "cardano-node (simulator): config=$config topology=$topology host-addr=$host (not used) port=$port" >&2
set -- node --name "${NODE_NAME:-$(cat /etc/hostname 2>/dev/null || echo node)}" \
  --socket "$socket" --kes "$kes" --vrf "$vrf" --opcert "$opcert" \
  --timeline "${NODE_TIMELINE:-$db/timeline.jsonl}" --replay-ms "${NODE_REPLAY_MS:-0}"
[ -z "$nonprod" ] || set -- "$@" --start-as-non-producing-node
[ -z "$port" ] || set -- "$@" --listen-port "$port"
[ -z "${NODE_METRICS_PORT:-}" ] || set -- "$@" --metrics-port "$NODE_METRICS_PORT"
[ -z "${NODE_RELOAD_MS:-}" ] || set -- "$@" --reload-ms "$NODE_RELOAD_MS"
[ -z "${NODE_HANDLER_DELAY_MS:-}" ] || set -- "$@" --handler-delay-ms "$NODE_HANDLER_DELAY_MS"
[ -z "${NODE_STOP_GRACE_MS:-}" ] || set -- "$@" --stop-grace-ms "$NODE_STOP_GRACE_MS"
exec /usr/local/bin/forge-sim "$@"
