#!/usr/bin/env bash
# CPU per query at a fixed rate, signpost vs gdnsd, measured in pairs (issue 6). The same
# servers and configs as compare.sh (weighted name, one UDP thread each on CPU
# $SERVER_CPU, dnsperf on CPU $CLIENT_CPU), but only the fixed-rate measurement, in short
# alternating segments: signpost for $DURATION s, then gdnsd for $DURATION s, $PAIRS
# times. Each segment's CPU is the server's scheduler run time (sum_exec_runtime of
# every thread, /proc/PID/task/*/schedstat, in ns: exact, not sampled by ticks) divided
# by the queries answered. On a shared machine the load of other tenants drifts over
# minutes; two segments seconds apart see nearly the same, so the ratio of each pair is
# steadier than the ratio of compare.sh's rounds. Prints every pair, the median of the
# pair ratios, how many pairs signpost won, and the medians of each server.
#
# Usage: bench/paired.sh               # PAIRS=15 DURATION=4 RATE=30000 NAME=app
# Env:   PAIRS DURATION RATE NAME (app | static) SERVER_CPU CLIENT_CPU SIGNPOST_BIN KEEP=1
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

defaults PAIRS=15 DURATION=4 RATE=30000 NAME=app

bench_start paired dnsperf:dnsperf gdnsd:gdnsd taskset:util-linux python3:python3

start_signpost_and_gdnsd
echo "$NAME.bench.example A" >"$WORK/q"

# Run time of every thread of process $1, in ns.
run_ns() {
  cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# One segment against server $1 (pid $2, port $3): prints "ns_per_query queries".
segment() {
  local pid=$2 port=$3 before after f="$WORK/seg.txt" q
  before=$(run_ns "$pid")
  timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" \
    dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/q" -c 8 -q 500 -t 2 -l "$DURATION" \
    -Q "$RATE" >"$f" 2>&1 || die "dnsperf failed against $1: $(tail -3 "$f")"
  after=$(run_ns "$pid")
  grep -q 'Response codes: *NOERROR [0-9]* (100.00%)' "$f" ||
    log "warning: $1: $(grep 'Response codes' "$f" || echo 'no response codes')"
  q=$(awk '/Queries completed/ { print $3 }' "$f")
  [ "${q:-0}" -gt 0 ] || die "$1 answered nothing"
  awk -v a="$after" -v b="$before" -v q="$q" 'BEGIN { printf "%.0f %d\n", (a - b) / q, q }'
}

log "pairs: $PAIRS x ${DURATION}s each server at ${RATE} qps, name $NAME.bench.example"
OUT="$WORK/pairs.tsv"
printf 'pair\tsignpost_ns\tgdnsd_ns\n' >"$OUT"
for p in $(seq 1 "$PAIRS"); do
  kill -0 "$SP" 2>/dev/null || die "signpost exited; see its log"
  kill -0 "$GD" 2>/dev/null || die "gdnsd exited; see its log"
  res=$(segment signpost "$SP" "$SP_PORT")
  read -r sp _ <<<"$res"
  res=$(segment gdnsd "$GD" "$GD_PORT")
  read -r gd _ <<<"$res"
  printf '%s\t%s\t%s\n' "$p" "$sp" "$gd" >>"$OUT"
  log "pair $p/$PAIRS: signpost $sp ns/query, gdnsd $gd ns/query"
done

echo
echo "signpost vs gdnsd, CPU per query in pairs — $(date -u +%Y-%m-%dT%H:%MZ) — $(machine_line)"
echo "PAIRS=$PAIRS DURATION=${DURATION}s RATE=$RATE NAME=$NAME; servers on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU"
python3 - "$OUT" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
sp = [float(r["signpost_ns"]) for r in rows]
gd = [float(r["gdnsd_ns"]) for r in rows]
ratios = [a / b for a, b in zip(sp, gd)]
print("pair  signpost ns/q  gdnsd ns/q  ratio")
for r, a, b, x in zip(rows, sp, gd, ratios):
    print(f"{r['pair']:>4}  {a:13.0f}  {b:10.0f}  {x:5.3f}")
print(f"median of pair ratios: {statistics.median(ratios):.3f} "
      f"(signpost lower in {sum(x < 1 for x in ratios)} of {len(ratios)} pairs)")
print(f"medians: signpost {statistics.median(sp):.0f} ns/q, gdnsd {statistics.median(gd):.0f} ns/q, "
      f"ratio {statistics.median(sp) / statistics.median(gd):.3f}")
EOF
