#!/usr/bin/env bash
# Failover time (issue 6): from an ingress fault to the last DNS answer that still
# contains the faulty endpoint, for
#   signpost-2s     interval 2 s, timeout 1 s, down after 2 failed probes
#   gdnsd           http_status with the same settings (interval 2 s is gdnsd's minimum;
#                   down_thresh 2, ok_thresh 1: two failures in a row)
#   signpost-500ms  interval 500 ms, timeout 250 ms, down after 2 failed probes
# All three watch the same three local ingresses (127.0.0.11-13, weights 50/30/20), so
# one fault is seen by all of them at the same instant. Faults, on the weight-50 ingress:
#   refused  the ingress process is ended (connection refused)
#   hung     the ingress process is stopped (SIGSTOP): connections open, nothing answers
#   503      the ingress answers HTTP 503
# For each trial a watcher per server asks for the name every $WATCH_MS ms (UDP, loopback)
# for $WINDOW s; the fault is injected 1 s in at a random phase of the probe interval.
# The table shows the median over $RUNS trials, in seconds; "never" means the faulty
# endpoint was still being answered when the window closed.
#
# Usage: bench/failover.sh            # RUNS=3 WINDOW=15 WATCH_MS=10
#        QUICK=1 bench/failover.sh    # RUNS=1 WINDOW=12
# Env:   FAULTS="refused hung 503" SERVERS="signpost-2s gdnsd signpost-500ms"
#        SIGNPOST_BIN (skip the build) KEEP=1 (keep $WORK)
# Targets: signpost-2s no slower than gdnsd; signpost-500ms <= 1.5 s.
#
# VIEW=client bench/failover.sh: the client view (issue 18), at the default monitor and
# TTL, with fast confirmation and health-aware TTL on and off in the same run: the time
# from the fault to the last answer holding the dead address, straight from signpost and
# through Unbound and BIND as the corporate resolver. See bench/lib/failover_client.sh
# (RUNS=5, about 2 minutes a trial).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

if [ "${VIEW:-server}" = client ]; then
  # shellcheck source=lib/failover_client.sh
  source "$LIB/failover_client.sh"
  exit 0
fi

quick_defaults RUNS=1 WINDOW=12
defaults RUNS=3 WINDOW=15 WATCH_MS=10 FAULTS="refused hung 503" \
  SERVERS="signpost-2s gdnsd signpost-500ms"
NAME=app.bench.example
FAULTY=0 # index of the faulted ingress (weight 50)

bench_start failover gdnsd:gdnsd taskset:util-linux python3:python3

INGRESS_PORT=$(free_port "${INGRESS_ADDRS[@]}")
start_ingresses "$INGRESS_CPUS"
ADDR=${INGRESS_ADDRS[$FAULTY]}
log "ingresses on ${INGRESS_ADDRS[*]} port $INGRESS_PORT; faults on $ADDR"

declare -A PORT PID
for s in $SERVERS; do
  PORT[$s]=$(free_port 127.0.0.1)
  case $s in
    signpost-2s)
      write_signpost_config "$WORK/$s" "${PORT[$s]}" 2s 1s 1
      spawn pid "$WORK/$s.log" "$SIGNPOST_BIN" --log-level info serve --config "$WORK/$s/signpost.toml"
      ;;
    signpost-500ms)
      write_signpost_config "$WORK/$s" "${PORT[$s]}" 500ms 250ms 1
      spawn pid "$WORK/$s.log" "$SIGNPOST_BIN" --log-level info serve --config "$WORK/$s/signpost.toml"
      ;;
    gdnsd)
      write_gdnsd_config "$WORK/$s" "${PORT[$s]}" 2 1
      spawn pid "$WORK/$s.log" gdnsd -c "$WORK/$s" start
      ;;
    *) die "unknown server $s" ;;
  esac
  PID[$s]=$pid
done
for s in $SERVERS; do
  wait_dns 127.0.0.1 "${PORT[$s]}" "$NAME" 20 || { tail -20 "$WORK/$s.log" >&2; die "$s did not answer"; }
done

# Waits until every server answers with the faulty ingress again (bounded).
wait_recovered() {
  local s deadline=$((SECONDS + 60)) ok
  for s in $SERVERS; do
    ok=0
    while [ $SECONDS -lt $deadline ]; do
      if python3 "$LIB/dnsq.py" ask 127.0.0.1 "${PORT[$s]}" "$NAME" | grep -qw "$ADDR"; then
        ok=1
        break
      fi
      sleep 0.2
    done
    [ "$ok" = 1 ] || die "$s did not answer with $ADDR again within 60 s (see $WORK/$s.log)"
  done
}

inject() { inject_fault "$1" "$FAULTY"; }
repair() { repair_fault "$1" "$FAULTY"; }

RAW="$WORK/failover.tsv"
: >"$RAW"
for run in $(seq 1 "$RUNS"); do
  for fault in $FAULTS; do
    wait_recovered
    # A random phase against the 2 s probe schedules.
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 1 + r / 32768 * 2 }')"
    declare -A WATCHER=()
    for s in $SERVERS; do
      rm -f "$WORK/watch-$s"
      spawn w "$WORK/watch-$s.log" python3 "$LIB/dnsq.py" watch 127.0.0.1 "${PORT[$s]}" \
        "$NAME" "$WINDOW" "$WATCH_MS" "$WORK/watch-$s"
      WATCHER[$s]=$w
    done
    sleep 1
    T0=$(date +%s%N)
    inject "$fault"
    log "run $run/$RUNS: $fault injected"
    for s in $SERVERS; do
      wait "${WATCHER[$s]}" || true
      r=$(python3 "$LIB/dnsq.py" summarize "$WORK/watch-$s" "$T0" "$ADDR" || true)
      printf '%s\t%s\t%s\t%s\n' "$run" "$fault" "$s" "$r" >>"$RAW"
      log "  $s: $r"
    done
    repair "$fault"
  done
done

echo
echo "failover — $(date -u +%Y-%m-%dT%H:%MZ) — $(machine_line)"
echo "seconds from the fault to the last answer containing $ADDR; median of $RUNS; window ${WINDOW}s, asked every ${WATCH_MS}ms"
python3 - "$RAW" "$SERVERS" "$FAULTS" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
servers, faults = sys.argv[2].split(), sys.argv[3].split()
def med(fault, s):
    vals = [r[3] for r in rows if r[1] == fault and r[2] == s]
    nums = [float(v) for v in vals if v.replace(".", "", 1).isdigit()]
    if len(nums) < len(vals):
        # Any trial that never failed over (or had no answers) makes the median unknown.
        return None, ",".join(vals)
    return statistics.median(nums), ",".join(vals)
hdr = ["fault"] + servers
if "signpost-2s" in servers and "gdnsd" in servers:
    hdr.append("sp-2s/gdnsd")
table = [hdr]
for f in faults:
    row = [f]
    for s in servers:
        m, vals = med(f, s)
        row.append(f"{m:.2f}" if m is not None else f"never ({vals})")
    if "sp-2s/gdnsd" in hdr:
        a, _ = med(f, "signpost-2s")
        b, _ = med(f, "gdnsd")
        row.append(f"{a / b:.2f}" if a is not None and b else "-")
    table.append(row)
w = [max(len(r[i]) for r in table) for i in range(len(hdr))]
for r in table:
    print("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
print()
print("targets: signpost-2s <= gdnsd (ratio <= 1.00); signpost-500ms <= 1.5 s")
print("trials:", "; ".join(f"{r[1]}/{r[2]}#{r[0]}={r[3]}" for r in rows))
EOF
