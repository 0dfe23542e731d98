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
# VERSUS=signpost pairs signpost with a second signpost instead (same binary and config,
# on its own port), to measure what a setting costs: SIGNPOST_ENV and VERSUS_ENV are the
# environments (VAR=VALUE words) of the first and the second, e.g. for the response rate
# limit (set high enough never to limit, so only the check is measured):
#   VERSUS=signpost VERSUS_ENV=SIGNPOST__DNS__RATE_LIMIT=1000000 bench/paired.sh
#
# Usage: bench/paired.sh               # PAIRS=15 DURATION=4 RATE=30000 NAME=app
# Env:   PAIRS DURATION RATE NAME (app | static) SERVER_CPU CLIENT_CPU SIGNPOST_BIN KEEP=1
#        VERSUS (gdnsd | signpost) SIGNPOST_ENV VERSUS_ENV
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

defaults PAIRS=15 DURATION=4 RATE=30000 NAME=app VERSUS=gdnsd

case $VERSUS in
  gdnsd)
    bench_start paired dnsperf:dnsperf gdnsd:gdnsd taskset:util-linux python3:python3
    start_signpost_and_gdnsd
    ;;
  signpost)
    bench_start paired dnsperf:dnsperf taskset:util-linux python3:python3
    INGRESS_PORT=$(free_port "${INGRESS_ADDRS[@]}")
    start_ingresses "$CLIENT_CPU"
    SP_PORT=$(free_port 127.0.0.1)
    GD_PORT=$(free_port 127.0.0.1)
    start_bench_signpost SP "$WORK/signpost" "$SP_PORT" "${SIGNPOST_ENV:-}"
    start_bench_signpost GD "$WORK/versus" "$GD_PORT" "${VERSUS_ENV:-}"
    wait_dns 127.0.0.1 "$SP_PORT" app.bench.example 20 || die "signpost did not answer"
    wait_dns 127.0.0.1 "$GD_PORT" app.bench.example 20 || die "the second signpost did not answer"
    sleep 3
    ;;
  *) die "VERSUS=$VERSUS: gdnsd or signpost" ;;
esac
echo "$NAME.bench.example A" >"$WORK/q"

# The two servers' names in the output.
A="signpost${SIGNPOST_ENV:+ [$SIGNPOST_ENV]}"
if [ "$VERSUS" = signpost ]; then
  B="signpost [${VERSUS_ENV:-}]"
else
  B=gdnsd
fi

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
printf 'pair\tfirst_ns\tsecond_ns\n' >"$OUT"
for p in $(seq 1 "$PAIRS"); do
  kill -0 "$SP" 2>/dev/null || die "$A exited; see its log"
  kill -0 "$GD" 2>/dev/null || die "$B exited; see its log"
  res=$(segment "$A" "$SP" "$SP_PORT")
  read -r sp _ <<<"$res"
  res=$(segment "$B" "$GD" "$GD_PORT")
  read -r gd _ <<<"$res"
  printf '%s\t%s\t%s\n' "$p" "$sp" "$gd" >>"$OUT"
  log "pair $p/$PAIRS: $A $sp ns/query, $B $gd ns/query"
done

echo
echo "$A vs $B, CPU per query in pairs — $(date -u +%Y-%m-%dT%H:%MZ) — $(machine_line)"
echo "PAIRS=$PAIRS DURATION=${DURATION}s RATE=$RATE NAME=$NAME; servers on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU"
python3 - "$OUT" "$A" "$B" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
a_name, b_name = sys.argv[2], sys.argv[3]
sp = [float(r["first_ns"]) for r in rows]
gd = [float(r["second_ns"]) for r in rows]
ratios = [a / b for a, b in zip(sp, gd)]
print(f"first: {a_name}; second: {b_name}")
print("pair  first ns/q  second ns/q  ratio")
for r, a, b, x in zip(rows, sp, gd, ratios):
    print(f"{r['pair']:>4}  {a:10.0f}  {b:11.0f}  {x:5.3f}")
print(f"median of pair ratios (first / second): {statistics.median(ratios):.3f} "
      f"(first lower in {sum(x < 1 for x in ratios)} of {len(ratios)} pairs)")
print(f"medians: first {statistics.median(sp):.0f} ns/q, second {statistics.median(gd):.0f} ns/q, "
      f"ratio {statistics.median(sp) / statistics.median(gd):.3f}")
EOF
