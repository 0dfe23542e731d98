#!/usr/bin/env bash
# The cluster (issue 13): N signposts gossiping on loopback, in a network namespace of
# their own (only `lo`; made and removed by this script), node i on 127.0.0.i (DNS
# 5300+i, admin 8100+i, gossip UDP 7900+i), one cluster key, gossip_interval 200 ms.
#
#   1. drain propagation: $DRAINS drains/undrains of one site at node 1, alternating;
#      the time from the POST's answer until every node's GET /api/v1/status shows it
#      (polled every 5 ms per node), median and max, with 3 and with 5 nodes
#      ($PROPAGATE_NODES); a small config (3 static endpoints, no probes).
#   2. load: $LOAD_NODES nodes each probing $TARGETS HTTP targets (every $INTERVAL,
#      2000 profiles × 5 endpoints) served by bench/cluster_ingress.rs, which flips
#      $FLIP_PER_MILLE ‰ of them between 200 and 503 every second. After $WARMUP s, over
#      $WINDOW s: each node's CPU (utime+stime of every thread, /proc/PID/stat) and its
#      gossip bytes sent and received (nft counters on the output hook matching its
#      gossip port: every UDP datagram with IP and UDP headers), with its probes and
#      status transitions per second (from /metrics) to show the probes kept their
#      schedule. The same probes on one node without [cluster] give the baseline CPU.
#      A flipped target changes status at its next probe, so the interval sets only the
#      delay, not the rate of changes (about 1 %/s of the targets, less the few that flip
#      back within one interval); 30 s keeps three nodes' 10,000 probes on schedule on a
#      shared 2-core machine.
#   3. partition: node N's gossip dropped both ways (nft) for $PARTITION s while site s1
#      is drained at node 1 and s2 at node N; then the time from healing until every node
#      shows both drains, and until every node lists N live nodes; $PARTITION_RUNS runs.
#
# Usage: bench/cluster.sh               (root: ip netns, nft)
#        QUICK=1 bench/cluster.sh       (DRAINS=10 TARGETS=1000 WINDOW=10 PARTITION=10 PARTITION_RUNS=1)
# Env:   DRAINS PROPAGATE_NODES LOAD_NODES TARGETS INTERVAL FLIP_PER_MILLE WARMUP WINDOW
#        PARTITION PARTITION_NODES PARTITION_RUNS PARTS="propagate load partition"
#        LOAD_MODES="cluster alone" ALONE_NODES=1 (nodes without [cluster] in the baseline)
#        SIGNPOST_BIN INGRESS_BIN (skip the builds) KEEP=1 (keep $WORK)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

quick_defaults DRAINS=10 TARGETS=1000 WARMUP=15 WINDOW=10 PARTITION=10 PARTITION_RUNS=1
defaults DRAINS=50 PROPAGATE_NODES="3 5" LOAD_NODES=3 TARGETS=10000 INTERVAL=30s \
  FLIP_PER_MILLE=10 WARMUP=40 WINDOW=30 PARTITION=30 PARTITION_NODES=3 PARTITION_RUNS=3 \
  PARTS="propagate load partition" LOAD_MODES="cluster alone" ALONE_NODES=1

# --- outside: build, make the namespace, run the rest inside it ----------------------
if [ -z "${CLUSTER_BENCH_NETNS:-}" ]; then
  [ "$(id -u)" = 0 ] || die "needs root (a network namespace and nft rules of its own)"
  bench_start cluster nft:nftables python3:python3 ip:iproute2
  build_release INGRESS_BIN examples/cluster_ingress --example cluster_ingress
  NS="signpost-bench-$$"
  ip netns add "$NS"
  remove_netns() {
    local pid
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    cleanup
  }
  trap remove_netns EXIT
  ip -n "$NS" link set lo up
  head -c 32 /dev/urandom | base64 >"$WORK/cluster.key"
  echo "bench-token-$$" >"$WORK/admin.token"
  cp "$LIB/bench.example.zone" "$WORK/bench.example.zone"
  log "signpost $SIGNPOST_BIN; namespace $NS; work $WORK"
  ip netns exec "$NS" env CLUSTER_BENCH_NETNS="$NS" WORK="$WORK" SIGNPOST_BIN="$SIGNPOST_BIN" \
    INGRESS_BIN="$INGRESS_BIN" DRAINS="$DRAINS" PROPAGATE_NODES="$PROPAGATE_NODES" \
    LOAD_NODES="$LOAD_NODES" TARGETS="$TARGETS" INTERVAL="$INTERVAL" \
    FLIP_PER_MILLE="$FLIP_PER_MILLE" WARMUP="$WARMUP" WINDOW="$WINDOW" \
    PARTITION="$PARTITION" PARTITION_NODES="$PARTITION_NODES" \
    PARTITION_RUNS="$PARTITION_RUNS" PARTS="$PARTS" LOAD_MODES="$LOAD_MODES" ALONE_NODES="$ALONE_NODES" bash "${BASH_SOURCE[0]}"
  exit
fi

# --- inside the namespace --------------------------------------------------------------
# Ends what this part started; the outer part removes $WORK and the namespace.
inner_cleanup() {
  local WORK=
  cleanup
}
trap inner_cleanup EXIT
trap 'exit 130' INT TERM
PY="python3 $LIB/cluster.py"

# nft: byte counters per gossip port (output hook: every datagram once) and an empty
# chain for the partition's drops.
setup_nft() {
  local n=$1 i p
  nft delete table inet spbench 2>/dev/null || true
  nft add table inet spbench
  nft add chain inet spbench count '{ type filter hook output priority 0; }'
  nft add chain inet spbench cut '{ type filter hook input priority -10; }'
  for i in $(seq 1 "$n"); do
    p=$((7900 + i))
    nft add rule inet spbench count udp sport "$p" counter comment "\"tx-$p\""
    nft add rule inet spbench count udp dport "$p" counter comment "\"rx-$p\""
  done
}

NODE_PIDS=()
# start_nodes N TARGETS CLUSTER: configs, addresses, processes; waits for DNS.
start_nodes() {
  local n=$1 targets=$2 cluster=$3 i pid
  rm -rf "$WORK"/n[0-9]*
  $PY configs "$WORK" "$n" "$targets" "${INGRESS_PORT:-80}" "$INTERVAL" "$cluster"
  NODE_PIDS=()
  for i in $(seq 1 "$n"); do
    spawn pid "$WORK/n$i.log" "$SIGNPOST_BIN" --log-level warn serve --config "$WORK/n$i/signpost.toml"
    NODE_PIDS+=("$pid")
  done
  local name=app.bench.example
  [ "$targets" = 0 ] || name=p00000.bench.example
  for i in $(seq 1 "$n"); do
    wait_dns "127.0.0.$i" $((5300 + i)) "$name" 120 >/dev/null ||
      { tail -20 "$WORK/n$i.log" >&2; die "node $i did not answer"; }
  done
}

stop_nodes() {
  local pid
  for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${NODE_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  NODE_PIDS=()
}

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

for part in $PARTS; do
  case $part in
    propagate)
      for n in $PROPAGATE_NODES; do
        setup_nft "$n"
        start_nodes "$n" 0 1
        $PY wait-live "$WORK" "$n" 30
        log "propagation: $n nodes, $DRAINS drains"
        $PY propagate "$WORK" "$n" "$DRAINS" | tee -a "$RESULTS"
        stop_nodes
      done
      ;;
    load)
      INGRESS_PORT=80
      spawn ING "$WORK/ingress.log" "$INGRESS_BIN" "$INGRESS_PORT" "$TARGETS" "$FLIP_PER_MILLE" 100000
      sleep 0.5
      kill -0 "$ING" || { cat "$WORK/ingress.log" >&2; die "cluster_ingress did not start"; }
      for mode in $LOAD_MODES; do
        if [ "$mode" = cluster ]; then n=$LOAD_NODES; c=1; else n=$ALONE_NODES; c=0; fi
        setup_nft "$n"
        start_nodes "$n" "$TARGETS" "$c"
        [ "$c" = 1 ] && $PY wait-live "$WORK" "$n" 60
        log "load ($mode): $n nodes × $TARGETS targets every $INTERVAL, $FLIP_PER_MILLE ‰/s flipping; warm-up $WARMUP s"
        sleep "$WARMUP"
        ports=$(seq -s ' ' 7901 $((7900 + n)))
        # shellcheck disable=SC2086
        before=$($PY sample "${NODE_PIDS[@]}" -- $ports)
        sleep "$WINDOW"
        # shellcheck disable=SC2086
        after=$($PY sample "${NODE_PIDS[@]}" -- $ports)
        tail -1 "$WORK/ingress.log" >&2
        python3 - "$mode" "$n" "$TARGETS" "$before" "$after" <<'EOF' | tee -a "$RESULTS"
import json, os, sys
mode, n, targets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b, a = json.loads(sys.argv[4]), json.loads(sys.argv[5])
dt = a["t"] - b["t"]
hz = os.sysconf("SC_CLK_TCK")
nodes = []
for i, pid in enumerate(b["ticks"]):
    port = str(7901 + i)
    mdt = a["metrics_t"][port] - b["metrics_t"][port]
    nodes.append({
        "node": i + 1,
        "cpu_pct": round(100 * (a["ticks"][pid] - b["ticks"][pid]) / hz / dt, 1),
        "gossip_tx_Bps": round((a["tx"][port] - b["tx"][port]) / dt),
        "gossip_rx_Bps": round((a["rx"][port] - b["rx"][port]) / dt),
        "probes_per_s": round((a["metrics"][port]["signpost_probe_results_total"]
                               - b["metrics"][port]["signpost_probe_results_total"]) / mdt),
        "transitions_per_s": round((a["metrics"][port]["signpost_status_transitions_total"]
                                    - b["metrics"][port]["signpost_status_transitions_total"]) / mdt, 1),
    })
print(json.dumps({"load": mode, "nodes": n, "targets": targets, "window_s": round(dt, 1), "per_node": nodes}))
EOF
        stop_nodes
      done
      kill -TERM "$ING" 2>/dev/null || true
      ;;
    partition)
      n=$PARTITION_NODES
      setup_nft "$n"
      start_nodes "$n" 0 1
      $PY wait-live "$WORK" "$n" 30
      log "partition: node $n cut off for $PARTITION s, $PARTITION_RUNS runs"
      $PY partition "$WORK" "$n" "$PARTITION" "$PARTITION_RUNS" | tee -a "$RESULTS"
      stop_nodes
      ;;
    *) die "unknown part $part" ;;
  esac
done

echo
echo "machine: $(machine_line); date $(date -u +%Y-%m-%dT%H:%MZ)"
cat "$RESULTS"
